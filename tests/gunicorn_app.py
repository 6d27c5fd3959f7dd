"""A tiny ASGI app for tests/test_gunicorn.py: which worker and loop serve it.

    GET /whoami -> {"pid", "ppid", "module", "class"} of the worker's loop
    GET /hold   -> the same, after blocking the worker's loop for HOLD seconds,
                   so that requests sent meanwhile go to the other worker
"""

import asyncio
import json
import os
import time

HOLD = 0.3


def hold_the_loop():
    time.sleep(HOLD)


def _whoami():
    loop = asyncio.get_running_loop()
    return {"pid": os.getpid(), "ppid": os.getppid(),
            "module": type(loop).__module__, "class": type(loop).__qualname__}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/hold":
        hold_the_loop()
    body = json.dumps(_whoami()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
