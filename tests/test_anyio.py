"""anyio on fastloop: ``anyio.run(..., backend_options={"loop_factory": ...})``.

anyio's asyncio backend takes a loop factory; these programs check that the
loop it runs is fastloop's and that the anyio primitives built on it (task
groups, cancel scopes, sleeps, TCP streams and listeners, worker threads) work.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

import fastloop

anyio = pytest.importorskip("anyio", reason="anyio is not installed "
                            "(pip install -r requirements-test-extra.txt)")

OPTIONS = {"loop_factory": fastloop.new_event_loop}


def run(func, *args):
    return anyio.run(func, *args, backend="asyncio", backend_options=OPTIONS)


def test_the_running_loop_is_fastloop():
    async def main():
        loop = asyncio.get_running_loop()
        return type(loop), anyio.get_current_task().name

    loop_type, _ = run(main)
    assert issubclass(loop_type, fastloop.Loop)


def test_task_group_and_sleep():
    async def worker(delay, name, done):
        await anyio.sleep(delay)
        done.append(name)

    async def main():
        done = []
        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker, 0.06, "slow", done)
            tg.start_soon(worker, 0.02, "fast", done)
            tg.start_soon(worker, 0.04, "middle", done)
        return done, anyio.current_time() - start

    done, elapsed = run(main)
    assert done == ["fast", "middle", "slow"]
    assert 0.05 <= elapsed < 2


def test_cancel_scope_and_errors_in_a_task_group():
    async def fail():
        await anyio.sleep(0.01)
        raise ValueError("boom")

    async def main():
        with anyio.move_on_after(0.02) as scope:
            await anyio.sleep(10)
        assert scope.cancelled_caught

        cancelled = []

        async def sleeper():
            try:
                await anyio.sleep(10)
            except anyio.get_cancelled_exc_class():
                cancelled.append(True)
                raise

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(sleeper)
                tg.start_soon(fail)
        except Exception as exc:  # an ExceptionGroup (a backport's on 3.10)
            errors = [str(e) for e in getattr(exc, "exceptions", [exc])]
        return cancelled, errors

    cancelled, errors = run(main)
    assert cancelled == [True]
    assert errors == ["boom"]


def test_tcp_round_trip():
    async def handle(stream):
        async with stream:
            async for chunk in stream:
                await stream.send(chunk.upper())

    async def main():
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        replies = []
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            async with await anyio.connect_tcp("127.0.0.1", port) as client:
                for word in (b"hello", b"fastloop", b"x" * 100_000):
                    await client.send(word)
                    got = b""
                    while len(got) < len(word):
                        got += await client.receive()
                    replies.append(got)
            tg.cancel_scope.cancel()
        return replies

    replies = run(main)
    assert replies == [b"HELLO", b"FASTLOOP", b"X" * 100_000]


def test_worker_threads_and_calls_back_into_the_loop():
    async def main():
        main_thread = threading.get_ident()

        def in_thread():
            # Back into the event loop from the worker thread.
            name = anyio.from_thread.run(current_loop_module)
            return threading.get_ident(), name

        async def current_loop_module():
            return type(asyncio.get_running_loop()).__module__

        ident, module = await anyio.to_thread.run_sync(in_thread)
        return ident != main_thread, module

    other_thread, module = run(main)
    assert other_thread
    assert module == fastloop.Loop.__module__


def test_memory_object_streams_between_tasks():
    async def main():
        send, receive = anyio.create_memory_object_stream[int](max_buffer_size=2)
        got = []

        async def producer():
            async with send:
                for i in range(50):
                    await send.send(i)

        async def consumer():
            async with receive:
                async for item in receive:
                    got.append(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            tg.start_soon(producer)
        return got

    assert run(main) == list(range(50))
