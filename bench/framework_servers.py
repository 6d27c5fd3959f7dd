"""Real-framework HTTP servers for bench/frameworks.py, on the loop of your choice.

    python bench/framework_servers.py --loop fastloop --app uvicorn [--tls]

Prints the port it listens on (one line, on 127.0.0.1), then serves until
killed or until --lifetime seconds have passed. Apps:

  uvicorn   uvicorn with httptools and a plain ASGI app: every GET gets
            200 "Hello, World!" (text/plain); no access log
  aiohttp   an aiohttp.web Application with one GET route answering the same

--tls serves HTTPS with bench/cert.pem (self-signed ECDSA P-256), through
the framework's own TLS option (uvicorn's ssl_certfile; aiohttp's
ssl_context). A loop or framework that cannot do what is asked (rloop has no
TLS) makes the server print "unsupported: ..." on stderr and exit with status
3, as bench/servers.py does.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

from servers import (
    CERT,
    LOOPS,
    MISSING_API,
    TRANSPORT_LIBS,
    make_loop,
    run_server,
    unsupported,
)

APPS = ("uvicorn", "aiohttp")
BODY = b"Hello, World!"


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", b"%d" % len(BODY))]})
    await send({"type": "http.response.body", "body": BODY})


_tasks: set[asyncio.Task] = set()


async def serve_uvicorn(listener: socket.socket, tls: bool) -> None:
    import uvicorn

    config = uvicorn.Config(asgi_app, http="httptools", loop="none", lifespan="off",
                            log_level="warning", access_log=False,
                            ssl_certfile=CERT if tls else None)
    server = uvicorn.Server(config)
    # uvicorn's own serve(), main loop and all (it keeps the Date header
    # current once a second), on the socket bound here.
    task = asyncio.ensure_future(server.serve(sockets=[listener]))
    _tasks.add(task)
    while not server.started:
        if task.done():
            exc = task.exception()
            if isinstance(exc, MISSING_API):
                unsupported("uvicorn" + (" over TLS" if tls else ""), exc)
            raise RuntimeError(f"uvicorn did not start: {exc!r}")
        await asyncio.sleep(0.01)


async def serve_aiohttp(listener: socket.socket, tls: bool) -> None:
    from aiohttp import web

    async def hello(request):
        return web.Response(body=BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ssl_context = None
    if tls:
        import ssl

        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(CERT)
    try:
        await web.SockSite(runner, listener, ssl_context=ssl_context).start()
    except MISSING_API as exc:
        unsupported("aiohttp" + (" over TLS" if tls else ""), exc)


SERVE = {"uvicorn": serve_uvicorn, "aiohttp": serve_aiohttp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loop", choices=LOOPS + TRANSPORT_LIBS, default="fastloop")
    parser.add_argument("--app", choices=APPS, default="uvicorn")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=600.0)
    args = parser.parse_args(argv)
    try:
        loop = make_loop(args.loop)
        __import__(args.app)
    except ImportError as exc:
        print(f"not installed: {exc}", file=sys.stderr)
        return 2
    asyncio.set_event_loop(loop)
    return run_server(loop, args, lambda listener: SERVE[args.app](listener, args.tls))


if __name__ == "__main__":
    sys.exit(main())
