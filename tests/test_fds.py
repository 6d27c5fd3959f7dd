"""add_reader/add_writer/remove_*: return values, errors and selector view like the stdlib."""

import asyncio
import os
import socket
import tempfile

import pytest
from conftest import LOOPS
from conftest import same_on_both_loops as both


def outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - compared across loops
        return ("raise", type(exc), str(exc))




def run_briefly(loop, n=3):
    for _ in range(n):
        loop.call_soon(loop.stop)
        loop.run_forever()


@pytest.mark.parametrize("kind", ["socketpair", "pipe"])
def test_reader_writer_fire_and_return_values(kind):
    def scenario(loop):
        if kind == "socketpair":
            a, b = socket.socketpair()
            rfd, wfd = a.fileno(), b.fileno()
            closers = [a.close, b.close]
        else:
            rfd, wfd = os.pipe()
            closers = [lambda: os.close(rfd), lambda: os.close(wfd)]
        out = []
        try:
            res = [loop.add_reader(rfd, lambda: out.append(("r", os.read(rfd, 10))))]
            res.append(loop.add_writer(wfd, lambda: out.append("w")))
            run_briefly(loop, 1)
            os.write(wfd, b"hi")
            res.append(loop.remove_writer(wfd))
            run_briefly(loop, 2)
            res += [loop.remove_reader(rfd), loop.remove_reader(rfd), loop.remove_writer(wfd)]
        finally:
            for c in closers:
                c()
        return res, out

    res, out = both(scenario)
    assert res == [None, None, True, True, False, False]
    assert out == ["w", ("r", b"hi")]


def test_replacing_a_reader_cancels_the_old_handle():
    def scenario(loop):
        a, b = socket.socketpair()
        out = []
        try:
            loop.add_reader(a, out.append, "old")
            old = loop._selector.get_key(a).data[0]
            loop.add_reader(a, lambda: (out.append("new"), loop.remove_reader(a)))
            new = loop._selector.get_key(a).data[0]
            b.send(b"x")
            run_briefly(loop)
            return old.cancelled(), new.cancelled(), out
        finally:
            a.close()
            b.close()

    assert both(scenario) == (True, True, ["new"])


def test_remove_reader_of_a_closed_socket():
    def scenario(loop):
        a, b = socket.socketpair()
        loop.add_reader(a, lambda: None)
        loop.add_writer(a, lambda: None)
        a.close()
        res = [outcome(lambda: loop.remove_reader(a)), outcome(lambda: loop.remove_writer(a)),
               outcome(lambda: loop.remove_reader(a))]
        res.append(outcome(lambda: loop.remove_reader(b.fileno() + 1000)))
        b.close()
        return res

    def scenario_one(loop):
        a, b = socket.socketpair()
        loop.add_reader(a, lambda: None)
        a.close()
        res = [outcome(lambda: loop.remove_reader(a)), outcome(lambda: loop.remove_reader(a)),
               outcome(lambda: loop.remove_writer(a))]
        b.close()
        return res

    res = both(scenario)
    # Reader and writer: the stdlib's modify() fails (EBADF) and forgets the fd.
    assert res[0] == ("raise", OSError, "[Errno 9] Bad file descriptor")
    assert res[1][1] is ValueError and res[3] == ("ok", False)
    res = both(scenario_one)
    assert res[0] == ("ok", True)
    assert res[1] == res[2] == ("raise", ValueError, "Invalid file descriptor: -1")


def test_closed_fd_reused_by_a_new_socket():
    """Documented difference: fastloop polls the new file, the stdlib does not.

    The stdlib's selector keeps the stale key for the reused fd number and
    never registers the new file with epoll, so its new reader never fires.
    fastloop re-registers it. Neither loop runs the old registration's
    callback.
    """
    fired = {}
    for name, factory in LOOPS.items():
        loop = factory()
        out = []
        a, b = socket.socketpair()
        try:
            loop.add_reader(a, out.append, "old")
            fd = a.fileno()
            a.close()
            c, d = socket.socketpair()
            if c.fileno() != fd:
                c, d = d, c
            if c.fileno() != fd:
                c.close()
                d.close()
                pytest.skip("the kernel did not reuse the fd number")
            loop.add_reader(c, lambda c=c, out=out: out.append(("new", c.recv(10))))
            d.send(b"x")
            loop.call_later(0.05, loop.stop)
            loop.run_forever()
            loop.remove_reader(c)
            c.close()
            d.close()
        finally:
            b.close()
            loop.close()
        fired[name] = out
    assert fired["fastloop"] == [("new", b"x")]
    assert fired["asyncio"] == []


@pytest.mark.parametrize("method", ["add_reader", "add_writer", "remove_reader",
                                    "remove_writer", "get_key"])
@pytest.mark.parametrize("what", ["-1", "closed_fd", "object", "str", "float", "regular_file",
                                  "closed_socket", "unused_high", "int_max", "int_max+1",
                                  "huge"])
def test_bad_fds_raise_like_stdlib(method, what):
    def scenario(loop):
        tf = tempfile.TemporaryFile()
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        s = socket.socket()
        s.close()
        arg = {"-1": -1, "closed_fd": r, "object": None, "str": "x", "float": 3.0,
               "regular_file": tf, "closed_socket": s,
               # Numbers no fd can have: must fail cleanly, not size fd tables
               # (add_reader(2**31 - 1) used to crash fastloop).
               "unused_high": 100_000, "int_max": 2**31 - 1, "int_max+1": 2**31,
               "huge": 10**30}[what]
        if what == "object":
            arg = object
        args = (arg, lambda: None) if method.startswith("add") else (arg,)
        if method == "get_key":
            return outcome(lambda: loop._selector.get_key(arg))[:2]
        try:
            return outcome(lambda: getattr(loop, method)(*args))
        finally:
            tf.close()

    both(scenario)


def test_readd_reader_on_closed_registered_fd():
    # The stdlib makes no syscall when the mask does not change.
    def scenario(loop):
        a, b = socket.socketpair()
        loop.add_reader(a, lambda: None)
        fd = a.fileno()
        a.close()
        res = [outcome(lambda: loop.add_reader(fd, lambda: None)),
               outcome(lambda: loop.remove_reader(fd))]
        b.close()
        return res

    assert both(scenario) == [("ok", None), ("ok", True)]


def test_failed_modify_unregisters_like_stdlib():
    def scenario(loop):
        a, b = socket.socketpair()
        loop.add_reader(a, lambda: None)
        fd = a.fileno()
        a.close()
        res = [outcome(lambda: loop.add_writer(fd, lambda: None))[:2],
               outcome(lambda: loop.remove_reader(fd))]
        b.close()
        return res

    assert both(scenario) == [("raise", OSError), ("ok", False)]


def test_selector_get_key_like_stdlib():
    def scenario(loop):
        a, b = socket.socketpair()
        try:
            res = [outcome(lambda: loop._selector.get_key(a))[:2]]
            loop.add_reader(a, print)
            k = loop._selector.get_key(a)
            res.append((k.fileobj is a, k.fd == a.fileno(), k.events, k.data[1],
                        type(k.data[0]).__name__))
            loop.add_writer(a.fileno(), print)
            k = loop._selector.get_key(a.fileno())
            res.append((k.fileobj is a, k.events, k.data[0] is not None, k.data[1] is not None))
            res.append(a.fileno() in loop._selector.get_map())
            loop.remove_reader(a)
            loop.remove_writer(a)
            res.append(outcome(lambda: loop._selector.get_key(a))[:2])
            res.append(outcome(lambda: loop._selector.get_key(-1)))
            return res
        finally:
            a.close()
            b.close()

    res = both(scenario)
    assert res[0] == ("raise", KeyError)
    assert res[1] == (True, True, 1, None, "Handle")


async def test_transport_repr_reads_the_selector():
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    try:
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        r = repr(transport)
        assert "read=polling" in r and "write=<idle" in r
        transport.pause_reading()
        assert "read=idle" in repr(transport)
        transport.close()
        await asyncio.sleep(0)
        assert "closed" in repr(transport)
    finally:
        b.close()


def test_many_fds_registered_from_another_thread_while_the_loop_waits():
    # Against asyncio's one-thread rule, but it must not corrupt memory: the
    # poller does not move the event array the kernel writes into while the
    # loop waits without the GIL; it grows it before the next wait. 200 new
    # fds outgrow the initial 64 slots while the loop is (most likely) blocked.
    import threading
    import time

    import fastloop

    loop = fastloop.new_event_loop()
    pairs = [socket.socketpair() for _ in range(200)]
    seen = set()
    started = threading.Event()

    def on_readable(fd):
        seen.add(fd)
        if len(seen) == len(pairs):
            loop.stop()

    def other_thread():
        started.wait(10)
        time.sleep(0.05)  # lets the loop reach its blocking poll; no assertion on time
        for a, b in pairs:
            loop.add_reader(a.fileno(), on_readable, a.fileno())
            b.send(b"x")
        loop.call_soon_threadsafe(lambda: None)

    t = threading.Thread(target=other_thread)
    try:
        t.start()
        loop.call_soon(started.set)
        guard = loop.call_later(60, loop.stop)  # hang guard only
        loop.run_forever()
        guard.cancel()
        t.join(10)
        assert len(seen) == len(pairs)
    finally:
        for a, b in pairs:
            loop.remove_reader(a.fileno())
            a.close()
            b.close()
        loop.close()
