"""A tiny ASGI app for tests/test_uvicorn.py: it tells which loop serves it.

    GET  /loop   -> {"module": ..., "class": ..., "startup_module": ...}
    POST /echo   -> the request body, reversed
    GET  /sleep  -> {"slept": true} after a short asyncio.sleep
"""

import asyncio
import json

_state = {}


def _loop_name():
    loop = asyncio.get_running_loop()
    return type(loop).__module__, type(loop).__qualname__


async def _read_body(receive):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def _respond(send, status, body, content_type=b"application/json"):
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _state["startup_module"] = _loop_name()[0]
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    assert scope["type"] == "http"
    path = scope["path"]
    if path == "/loop":
        module, name = _loop_name()
        payload = {"module": module, "class": name,
                   "startup_module": _state.get("startup_module")}
        await _respond(send, 200, json.dumps(payload).encode())
    elif path == "/echo" and scope["method"] == "POST":
        body = await _read_body(receive)
        await _respond(send, 200, body[::-1], b"application/octet-stream")
    elif path == "/sleep":
        await asyncio.sleep(0.05)
        await _respond(send, 200, json.dumps({"slept": True}).encode())
    else:
        await _respond(send, 404, b'{"error": "not found"}')
