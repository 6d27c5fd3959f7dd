"""The native pipe transports against the stdlib's, side by side.

connect_read_pipe, connect_write_pipe and subprocess pipes run on fastloop and
on the stdlib loop with the same protocol code; the protocol call traces, the
bytes, what each call raised and the exception-handler messages must match.
"""

import asyncio
import os
import pty
import sys

import pytest
from side_by_side import attempt, describe, on_both, settle

import fastloop
from fastloop.pipes import ReadPipeTransport, WritePipeTransport


class Recorder(asyncio.Protocol):
    def __init__(self, trace, name):
        self.trace = trace
        self.name = name
        self.data = bytearray()
        self.transport = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.trace.append((self.name, "made"))

    def data_received(self, data):
        # Chunk boundaries depend on timing: consecutive data collapse.
        if not self.trace or self.trace[-1] != (self.name, "data"):
            self.trace.append((self.name, "data"))
        self.data += data

    def eof_received(self):
        self.trace.append((self.name, "eof"))

    def pause_writing(self):
        self.trace.append((self.name, "pause"))

    def resume_writing(self):
        self.trace.append((self.name, "resume"))

    def connection_lost(self, exc):
        self.trace.append((self.name, "lost", None if exc is None else describe(exc)))
        if not self.lost.done():
            self.lost.set_result(None)


def test_fastloop_uses_the_native_pipe_transports():
    async def main():
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        rt, _ = await loop.connect_read_pipe(asyncio.Protocol, os.fdopen(r, "rb", 0))
        wt, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(w, "wb", 0))
        assert type(rt) is ReadPipeTransport and type(wt) is WritePipeTransport
        assert isinstance(rt, asyncio.ReadTransport) and isinstance(wt, asyncio.WriteTransport)
        wt.close()
        rt.close()
        await settle()

    fastloop.run(main())


def test_read_pipe_data_eof_and_order():
    async def scenario(loop):
        trace = []
        r, w = os.pipe()
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(trace, "r"), os.fdopen(r, "rb", 0))
        payload = os.urandom(300_000)
        os.set_blocking(w, False)
        view = memoryview(payload)
        while view:
            try:
                n = os.write(w, view[:65536])
            except BlockingIOError:
                n = 0
            view = view[n:]
            await asyncio.sleep(0)
        loop.call_soon(trace.append, ("soon-before-eof",))
        os.close(w)
        await rp.lost
        return trace, bytes(rp.data) == payload

    trace, same = on_both(scenario)
    assert same and trace[-2:] == [("r", "eof"), ("r", "lost", None)]


def test_read_pipe_pause_and_resume_reading():
    async def scenario(loop):
        trace = []
        r, w = os.pipe()
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(trace, "r"), os.fdopen(r, "rb", 0))
        os.write(w, b"first")
        await settle()
        rt.pause_reading()
        os.write(w, b"while paused")
        await settle()
        seen_paused = bytes(rp.data)
        rt.resume_reading()
        await settle()
        os.close(w)
        await rp.lost
        # (3.10's read pipe transport has no is_reading(): NotImplementedError.)
        return trace, seen_paused, bytes(rp.data), attempt(rt.is_reading)

    trace, seen_paused, data, reading = on_both(scenario)
    assert seen_paused == b"first" and data == b"firstwhile paused"


def test_read_pipe_close_and_abort_paths():
    async def scenario(loop):
        trace = []
        out = []
        for how in ("close", "protocol_raises"):
            r, w = os.pipe()
            rec = Recorder(trace, how)
            if how == "protocol_raises":
                def boom(data, rec=rec):
                    raise ValueError("protocol failed")
                rec.data_received = boom
            rt, rp = await loop.connect_read_pipe(lambda rec=rec: rec, os.fdopen(r, "rb", 0))
            if how == "close":
                rt.close()
                out.append(attempt(rt.close))
            else:
                os.write(w, b"x")
                await settle()
                out.append(rt.is_closing())
                rt.close()
            await rp.lost
            os.close(w)
        return trace, out

    on_both(scenario)


def test_read_pipe_from_a_pty_keeps_the_stdlib_read():
    # A character device: EOF is not sticky there, so the stdlib's read runs.
    async def scenario(loop):
        trace = []
        master, slave = pty.openpty()
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(trace, "pty"),
                                              os.fdopen(master, "rb", 0))
        os.write(slave, b"hello\n")
        for _ in range(200):
            if rp.data:
                break
            await asyncio.sleep(0.005)
        os.close(slave)
        await rp.lost
        return trace, bytes(rp.data).replace(b"\r\n", b"\n")

    trace, data = on_both(scenario)
    assert data == b"hello\n"


def test_write_pipe_flow_control_and_close_after_drain():
    async def scenario(loop):
        trace = []
        r, w = os.pipe()
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(trace, "w"), os.fdopen(w, "wb", 0))
        wt.set_write_buffer_limits(high=32768, low=4096)
        payload = os.urandom(400_000)
        sizes = []
        for i in range(0, len(payload), 10_000):
            wt.write(payload[i:i + 10_000])
            sizes.append(wt.get_write_buffer_size())
        wt.close()
        raised = [attempt(lambda: wt.write(b"after close")), wt.is_closing()]
        got = bytearray()
        os.set_blocking(r, False)
        while len(got) < len(payload):
            try:
                got += os.read(r, 65536)
            except BlockingIOError:
                await asyncio.sleep(0.001)
        await wp.lost
        os.close(r)
        return trace, raised, bytes(got) == payload, sizes[0]

    trace, raised, same, first = on_both(scenario)
    assert same and ("w", "pause") in trace and trace[-1] == ("w", "lost", None)


def test_write_pipe_broken_pipe_and_reader_gone():
    async def scenario(loop):
        trace = []
        out = []
        # EPIPE on the first write: the stdlib's fatal-error path.
        r, w = os.pipe()
        os.close(r)
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(trace, "epipe"),
                                               os.fdopen(w, "wb", 0))
        wt.write(b"x")
        out.append(wt.is_closing())
        for _ in range(8):
            wt.write(b"more")       # counted, then warned about, not raised
        await wp.lost
        # The reader goes away while data is queued: BrokenPipeError.
        r, w = os.pipe()
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(trace, "queued"),
                                               os.fdopen(w, "wb", 0))
        wt.write(b"y" * 200_000)
        out.append(wt.get_write_buffer_size() > 0)
        os.close(r)
        await wp.lost
        # The reader goes away with nothing queued: a clean close.
        r, w = os.pipe()
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(trace, "idle"),
                                               os.fdopen(w, "wb", 0))
        wt.write(b"z")
        os.close(r)
        await wp.lost
        return trace, out

    trace, out = on_both(scenario)
    assert ("epipe", "lost", ("BrokenPipeError", "[Errno 32] Broken pipe")) in trace
    assert ("idle", "lost", None) in trace


class SubprocessRecorder(asyncio.SubprocessProtocol):
    def __init__(self, trace):
        self.trace = trace
        self.data = {1: bytearray(), 2: bytearray()}
        self.exited = asyncio.get_running_loop().create_future()
        self.pipes_closed = {1: False, 2: False}

    def pipe_data_received(self, fd, data):
        self.data[fd] += data

    def pipe_connection_lost(self, fd, exc):
        self.trace.append(("pipe_lost", fd, None if exc is None else describe(exc)))

    def process_exited(self):
        self.trace.append(("exited",))
        self.exited.set_result(None)


@pytest.mark.parametrize("case", ["cat", "child_exits_first", "stdin_broken"])
def test_subprocess_pipes(case):
    # Per pipe the order is fixed (data, then its connection_lost); between
    # pipes and the exit it depends on the child's timing on either loop, so
    # each pipe's events are compared in order and the exit separately.
    code = {
        "cat": "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read());"
               "sys.stderr.write('done')",
        "child_exits_first": "import sys, os; sys.stdout.write('bye'); os._exit(3)",
        "stdin_broken": "import sys, os; os.close(0); sys.stdout.write('closed stdin');"
                        "sys.stdout.flush(); import time; time.sleep(0.2)",
    }[case]

    async def scenario(loop):
        trace = []
        payload = os.urandom(1_000_000)
        tr, proto = await loop.subprocess_exec(
            lambda: SubprocessRecorder(trace), sys.executable, "-c", code)
        stdin = tr.get_pipe_transport(0)
        raised = None
        if case == "cat":
            stdin.write(payload)
            stdin.close()
        elif case == "stdin_broken":
            await asyncio.sleep(0.1)
            stdin.write(b"x" * 200_000)
        await proto.exited
        for _ in range(100):
            if proto.pipes_closed and sum(1 for e in trace if e[0] == "pipe_lost") >= 2:
                break
            await asyncio.sleep(0.01)
        code_ = tr.get_returncode()
        tr.close()
        await settle()
        per_pipe = sorted(e for e in trace if e[0] == "pipe_lost" and e[1] != 0)
        stdin_lost = [e for e in trace if e[0] == "pipe_lost" and e[1] == 0]
        out = bytes(proto.data[1])
        return (per_pipe, len(stdin_lost) <= 1, code_, out == payload if case == "cat" else out,
                bytes(proto.data[2]), raised)

    result = on_both(scenario)
    if case == "cat":
        assert result[3] is True and result[4] == b"done"
    if case == "child_exits_first":
        assert result[2] == 3 and result[3] == b"bye"


def test_read_pipe_on_a_socket_read_error():
    # A Unix stream socket as the "pipe": the peer closes without reading
    # what we sent, so our read fails once with ECONNRESET (and then sees
    # end of file): the stdlib's fatal-error path, on both loops.
    import socket

    async def scenario(loop):
        trace = []
        a, b = socket.socketpair()
        a.send(b"never read by b")
        b.send(b"data for a")
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(trace, "r"), a)
        await settle()
        b.close()
        await rp.lost
        return trace, bytes(rp.data)

    trace, data = on_both(scenario)
    reset = ("ConnectionResetError", "[Errno 104] Connection reset by peer")
    assert trace[-1] == ("r", "lost", reset)


def test_closed_pipe_transports_are_freed_as_the_stdlibs_are():
    # With the cyclic GC off: the native cores drop their back-references
    # when the connection is lost, as main's stream core does.
    import gc
    import weakref

    async def scenario(loop):
        refs = []
        r, w = os.pipe()
        rt, _ = await loop.connect_read_pipe(asyncio.Protocol, os.fdopen(r, "rb", 0))
        wt, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(w, "wb", 0))
        wt.write(b"data")
        await settle()
        refs += [weakref.ref(rt), weakref.ref(wt)]
        wt.close()
        rt.close()
        del rt, wt
        await settle()
        return [ref() is None for ref in refs]

    gc.collect()
    gc.disable()
    try:
        on_both(scenario)
    finally:
        gc.enable()


@pytest.mark.parametrize("loop_name", ["asyncio", "fastloop"])
def test_read_chunks_of_changing_sizes_arrive_whole(loop_name):
    # fastloop reads a chunk into an object sized after the previous read,
    # the rest into a scratch buffer: a repeated, a smaller, a larger and a
    # pipe-full chunk must each reach data_received() whole and in order.
    sizes = [1000, 1000, 500, 4000, 65536, 100, 30000, 30000, 7]
    loop = fastloop.new_event_loop() if loop_name == "fastloop" else asyncio.new_event_loop()
    rfd, wfd = os.pipe()
    got = []

    class Reader(asyncio.Protocol):
        def data_received(self, data):
            got.append(bytes(data))

    async def main():
        transport, _ = await loop.connect_read_pipe(Reader, os.fdopen(rfd, "rb", 0))
        try:
            for i, size in enumerate(sizes):
                os.write(wfd, bytes([i]) * size)
                for _ in range(2000):
                    if sum(map(len, got)) == sum(sizes[:i + 1]):
                        break
                    await asyncio.sleep(0.001)
        finally:
            transport.close()

    try:
        loop.run_until_complete(main())
    finally:
        os.close(wfd)
        loop.close()
    assert [len(chunk) for chunk in got] == sizes
    assert all(chunk == bytes([i]) * len(chunk) for i, chunk in enumerate(got))
