"""A gunicorn worker class that serves ASGI apps with uvicorn on fastloop.

    gunicorn -k fastloop.gunicorn_worker.UvicornWorker app:app

It is the ``uvicorn-worker`` package's worker (``pip install uvicorn-worker``,
uvicorn >= 0.36) with uvicorn's ``loop`` setting pointed at fastloop's loop
factory; everything else (HTTP implementation, signals, graceful restarts) is
that worker's own.
"""

from uvicorn_worker import UvicornWorker as _UvicornWorker

__all__ = ["UvicornH11Worker", "UvicornWorker"]


class UvicornWorker(_UvicornWorker):
    CONFIG_KWARGS = {**_UvicornWorker.CONFIG_KWARGS, "loop": "fastloop:new_event_loop"}


class UvicornH11Worker(UvicornWorker):
    """The same with uvicorn's pure-Python h11 HTTP implementation."""

    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "http": "h11"}
