"""Behaviour that changed between CPython releases, compared with the running stdlib.

Each test runs the same program on fastloop and on the interpreter's own loop
and requires the same result, so it checks whatever the running Python does
(3.10 through 3.15): 3.14's thread-safe handles, 3.14's accept loop, 3.15's
transport contexts, write buffer size and end-time window.
"""

import asyncio
import contextvars
import socket
import threading

import pytest
from conftest import same_on_both_loops

from fastloop import _compat

var = contextvars.ContextVar("var", default="unset")


def test_call_soon_threadsafe_handle_class():
    # 3.14+: the stdlib's _ThreadSafeHandle (its cancel() waits for a running
    # callback); before, no such class exists on either loop.
    def scenario(loop):
        handle = loop.call_soon_threadsafe(lambda: None)
        stdlib_class = _compat.ThreadSafeHandle
        return stdlib_class is not None and isinstance(handle, stdlib_class)

    same_on_both_loops(scenario)


def test_call_soon_threadsafe_handle_fields():
    # fastloop fills the 3.14+ handle's slots itself (no __init__ chain): every
    # slot, the lock's type, repr and context must be what the stdlib's loop
    # leaves, with an explicit context and without one.
    import contextvars

    ctx = contextvars.copy_context()

    def scenario(loop):
        def cb(*args):
            pass

        out = []
        for context in (None, ctx):
            h = loop.call_soon_threadsafe(cb, 1, "two", context=context)
            slots = {name: getattr(h, name, "<unset>") for name in (
                "_callback", "_args", "_cancelled", "_loop", "_source_traceback",
                "_repr", "_context", "_lock")}
            out.append((
                type(h).__name__,
                slots.pop("_context") is ctx,
                type(slots.pop("_lock")).__name__,
                slots.pop("_loop") is loop,
                slots.pop("_callback") is cb,
                sorted(slots.items(), key=str),
                repr(h).replace(hex(id(cb)), "CB"),
            ))
            h.cancel()
            out.append((h.cancelled(), h._callback, h._args))
        return out

    same_on_both_loops(scenario)


def test_threadsafe_cancel_waits_for_the_running_callback():
    # What the lock of 3.14's thread-safe handle promises (and, before 3.14,
    # what the plain handle does not): the order in which another thread's
    # cancel() and the callback's end happen.
    def scenario(loop):
        events = []
        started = threading.Event()

        def callback():
            started.set()
            # Long enough for the other thread to reach cancel() first if it
            # does not wait; the trace below does not depend on the length.
            threading.Event().wait(0.3)
            events.append("callback done")

        def other_thread(handle):
            started.wait(10)
            handle.cancel()
            events.append("cancel returned")
            loop.call_soon_threadsafe(loop.stop)

        handle = loop.call_soon_threadsafe(callback)
        t = threading.Thread(target=other_thread, args=(handle,))
        t.start()
        loop.run_forever()
        t.join(10)
        return events

    events = same_on_both_loops(scenario)
    if _compat.ThreadSafeHandle is not None:
        assert events == ["callback done", "cancel returned"]


def test_due_window_on_a_long_running_clock():
    # At 2**40 s the clock's ulp (2**-12 s) is far above its resolution: 3.15
    # widens the due window to one ulp, so a timer at exactly "now" runs in
    # this iteration; earlier versions leave it for the next.
    now = 2.0 ** 40

    def scenario(loop):
        ran = []
        loop.time = lambda: now
        loop.call_at(now, ran.append, "timer")
        loop.call_soon(loop.stop)
        loop.run_forever()
        first = list(ran)
        loop.call_soon(loop.stop)
        loop.run_forever()
        return first, ran

    first, _ = same_on_both_loops(scenario)
    assert (first == ["timer"]) == _compat.END_TIME_ADDS_ULP


def _echo_context_scenario(loop):
    """Protocol callbacks of two connections: which context each runs in."""
    seen = []

    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            seen.append(("made", var.get()))
            var.set(f"conn-{len(seen)}")

        def data_received(self, data):
            seen.append(("data", data, var.get()))
            self.transport.write(data)

        def connection_lost(self, exc):
            seen.append(("lost", var.get()))

    async def main():
        var.set("server")
        server = await loop.create_server(Proto, "127.0.0.1", 0)
        var.set("main")
        port = server.sockets[0].getsockname()[1]
        for payload in (b"one", b"two"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            assert await reader.readexactly(len(payload)) == payload
            writer.close()
            await writer.wait_closed()
            for _ in range(10):
                await asyncio.sleep(0)
        server.close()
        await server.wait_closed()

    loop.run_until_complete(main())
    return sorted(seen, key=repr)


def test_protocol_callbacks_run_in_the_same_contexts():
    # 3.15 runs a connection's transport and protocol callbacks in a copy of
    # the server's context; earlier versions in copies taken at each handle.
    same_on_both_loops(_echo_context_scenario)


def test_write_buffer_size_while_queued():
    # 3.15 keeps a running _buffer_size; the native write must add to it as
    # the stdlib's write does, and the stdlib's writer subtract from it.
    def scenario(loop):
        a, b = socket.socketpair()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        b.setblocking(False)
        sizes = []

        async def main():
            transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
            transport.set_write_buffer_limits(high=1 << 30)
            for _ in range(8):
                transport.write(b"x" * 65536)
            sizes.append(transport.get_write_buffer_size() > 0)
            drained = 0
            while transport.get_write_buffer_size():
                try:
                    drained += len(b.recv(1 << 20))
                except BlockingIOError:
                    pass
                await asyncio.sleep(0)
            while drained < 8 * 65536:
                try:
                    drained += len(b.recv(1 << 20))
                except BlockingIOError:
                    await asyncio.sleep(0)
            sizes.append((transport.get_write_buffer_size(), drained))
            transport.close()
            await asyncio.sleep(0)

        try:
            loop.run_until_complete(main())
        finally:
            b.close()
        return sizes

    assert same_on_both_loops(scenario) == [True, (0, 8 * 65536)]


@pytest.mark.parametrize("bad", ["text", 7, None, [b"list"]])
def test_write_type_error_is_the_running_stdlibs(bad):
    def scenario(loop):
        a, b = socket.socketpair()

        async def main():
            transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
            try:
                transport.write(bad)
            except TypeError as exc:
                return str(exc)
            finally:
                transport.close()
                await asyncio.sleep(0)

        try:
            return loop.run_until_complete(main())
        finally:
            b.close()

    assert same_on_both_loops(scenario) is not None


def test_accept_calls_per_wake_up():
    # backlog accept() calls per readiness event, 3.14+ backlog + 1: counted
    # on real sockets through each loop's own _accept_connection.
    def scenario(loop):
        with socket.create_server(("127.0.0.1", 0)) as lsock:
            lsock.setblocking(False)
            clients = [socket.create_connection(lsock.getsockname()) for _ in range(6)]
            started = []
            loop._accept_connection2 = lambda *args, **kwargs: _done(started, args)
            try:
                loop._accept_connection(asyncio.Protocol, lsock, None, None, 2)
                loop.call_soon(loop.stop)
                loop.run_forever()
                return len(started)
            finally:
                for c in clients:
                    c.close()

    assert same_on_both_loops(scenario) == 2 + _compat.ACCEPT_EXTRA_TRIES


async def _finish(started, args):
    started.append(args[1].getpeername())
    args[1].close()


def _done(started, args):
    return _finish(started, args)
