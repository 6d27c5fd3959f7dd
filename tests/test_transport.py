"""The native stream transport against the stdlib's, side by side.

Each scenario runs on fastloop and on the stdlib loop with the same protocol
code; the observable results (bytes, callback kinds and order, exception
types, exception-handler messages) must match.
"""

import asyncio
import inspect
import socket
import sys
import threading
import tracemalloc

import pytest
from conftest import LOOPS

import fastloop
from fastloop.transport import SocketTransport


def run_on(loop_name, coro_fn):
    loop = LOOPS[loop_name]()
    errors = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    try:
        return loop.run_until_complete(asyncio.wait_for(coro_fn(loop), 30)), errors
    finally:
        loop.close()


class Recorder(asyncio.Protocol):
    """Records the callback kinds a transport delivers, and echoes if asked."""

    def __init__(self, echo=False):
        self.events = []
        self.data = bytearray()
        self.echo = echo
        self.transport = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def data_received(self, data):
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        if self.echo:
            self.transport.write(data)

    def eof_received(self):
        self.events.append("eof")

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append(f"lost:{type(exc).__name__}")
        self.lost.set_result(None)


async def start_pair(loop, server_proto):
    server = await loop.create_server(lambda: server_proto, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client_proto = Recorder()
    await loop.create_connection(lambda: client_proto, "127.0.0.1", port)
    while server_proto.transport is None:
        await asyncio.sleep(0)
    return server, client_proto


def test_fastloop_uses_the_native_transport():
    async def main(loop):
        proto = Recorder()
        server, client = await start_pair(loop, proto)
        transport = proto.transport
        await asyncio.sleep(0)      # the reader is registered after connection_made
        reader = loop._selector.get_key(transport._sock_fd).data[0]._callback
        client.transport.close()
        await proto.lost
        server.close()
        return transport, reader

    (transport, reader), _ = run_on("fastloop", main)
    assert type(transport) is SocketTransport
    assert isinstance(transport, asyncio.Transport)
    for name in ("write", "_read_ready__data_received", "_read_ready__get_buffer"):
        assert not inspect.isfunction(inspect.getattr_static(SocketTransport, name)), name
    # Readiness goes straight to the native core, whose C fields hold the
    # per-message state the stdlib's code reads as attributes.
    assert reader is transport._core
    # Named as the stdlib's reader, so handle reprs and messages read the same.
    assert reader.__qualname__ == "_SelectorSocketTransport._read_ready"
    assert type(transport._core).__name__ == "TransportCore"
    for name in ("_sock_fd", "_protocol", "_buffer", "_conn_lost", "_eof", "_empty_waiter",
                 "_read_ready_cb"):
        assert isinstance(inspect.getattr_static(SocketTransport, name), property), name
        assert name not in transport.__dict__, name


@pytest.mark.parametrize("size", [1, 1024, 1 << 20])
def test_echo_exchange_matches(size):
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))

    async def main(loop):
        proto = Recorder(echo=True)
        server, client = await start_pair(loop, proto)
        client.transport.write(payload)
        while len(client.data) < size:
            await asyncio.sleep(0.001)
        client.transport.write_eof()
        while "eof" not in proto.events:
            await asyncio.sleep(0.001)
        proto.transport.close()
        await client.lost
        await proto.lost
        server.close()
        await server.wait_closed()
        return bytes(client.data), proto.events, client.events

    results = {name: run_on(name, main) for name in LOOPS}
    for name, ((data, _, _), errors) in results.items():
        assert data == payload, name
        assert errors == [], name
    assert results["fastloop"][0][1:] == results["asyncio"][0][1:]


def test_flow_control_with_small_send_buffer_matches():
    # 4 MiB into a socket whose send buffer is tiny, while the peer does not
    # read: the transport must queue, call pause_writing once, and
    # resume_writing once the reader drains it; every byte arrives.
    total = 4 << 20

    async def main(loop):
        proto = Recorder()
        server, client = await start_pair(loop, proto)
        sock = proto.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client.transport.pause_reading()
        chunk = b"x" * 65536
        for _ in range(total // len(chunk)):
            proto.transport.write(chunk)
        queued = proto.transport.get_write_buffer_size()
        await asyncio.sleep(0.05)
        client.transport.resume_reading()
        while len(client.data) < total:
            await asyncio.sleep(0.001)
        proto.transport.close()
        await client.lost
        server.close()
        return queued > 0, proto.events, client.events[:2], len(client.data)

    results = {name: run_on(name, main) for name in LOOPS}
    for name, ((queued, events, _, received), errors) in results.items():
        assert queued, name
        assert received == total, name
        assert errors == [], name
        assert events[:3] == ["made", "pause", "resume"], (name, events)
    assert results["fastloop"][0] == results["asyncio"][0]


def test_peer_reset_while_writing_matches():
    async def main(loop):
        proto = Recorder()
        server, client = await start_pair(loop, proto)
        raw = client.transport.get_extra_info("socket")
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.transport.abort()   # RST
        await client.lost
        for _ in range(200):
            if proto.lost.done():
                break
            proto.transport.write(b"y" * 65536)
            await asyncio.sleep(0.005)
        await proto.lost
        server.close()
        return proto.events[-1], proto.events.count("made")

    results = {name: run_on(name, main) for name in LOOPS}
    for name, ((last, made), errors) in results.items():
        assert last in ("lost:ConnectionResetError", "lost:BrokenPipeError"), (name, last)
        assert made == 1
        assert errors == [], (name, errors)


async def until_reset(sock):
    # Until the kernel has taken the peer's RST (TCP_CLOSE): on loopback it
    # arrives during the peer's close(), but the test does not rely on that.
    for _ in range(1000):
        if sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_CLOSE:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the peer's RST never arrived")


TCP_CLOSE = 7  # tcp_states.h; what TCP_INFO's first byte says after a reset


@pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="TCP_INFO tells when the RST arrived")
@pytest.mark.parametrize("reset_read", [False, True])
def test_write_eof_after_peer_reset_matches(reset_read):
    # The long chaos run's case (server write_eof() after the client closed
    # with data in flight): write_eof() is the stdlib's own method on both
    # loops. If the reader has not met the reset yet (reading paused), the
    # shutdown(2) in it raises (ENOTCONN); once the reader met it, the
    # transport is closed and write_eof() does nothing. Both loops must agree
    # on each, and on what the connection reports afterwards.
    async def main(loop):
        proto = Recorder()
        server, client = await start_pair(loop, proto)
        if not reset_read:
            proto.transport.pause_reading()
        raw = client.transport.get_extra_info("socket")
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.transport.abort()   # RST
        await client.lost
        await until_reset(proto.transport.get_extra_info("socket"))
        if reset_read:
            await proto.lost
        try:
            proto.transport.write_eof()
            outcome = "returned"
        except OSError as exc:
            outcome = (type(exc).__name__, exc.errno)
        state = (proto.transport.is_closing(), proto.transport._eof)
        if not reset_read:
            proto.transport.resume_reading()
            await proto.lost
        server.close()
        return outcome, state, proto.events

    results = {name: run_on(name, main) for name in LOOPS}
    assert results["fastloop"] == results["asyncio"]
    (outcome, state, events), errors = results["asyncio"]
    assert errors == []
    if reset_read:
        assert outcome == "returned" and state == (True, False)
    else:
        assert outcome[0] == "OSError" and state == (False, True)
    assert events == ["made", "lost:ConnectionResetError"]


class Falsy:
    def __bool__(self):
        raise ValueError("no truth value")


@pytest.mark.parametrize("debug", [False, True])
def test_reader_is_named_as_the_stdlibs_in_handles_and_messages(debug):
    # The registered reader is the native core; handles name it by its
    # __qualname__, which must be the stdlib's reader's. An eof_received()
    # result whose truth value raises escapes the reader (the stdlib's own
    # _read_ready__on_eof tests it outside its try), so the loop reports
    # "Exception in callback <reader>()".
    class BadEof(Recorder):
        def eof_received(self):
            # Once; end of file stays readable, and the next call closes.
            self.events.append("eof")
            return Falsy() if self.events.count("eof") == 1 else False

    async def main(loop):
        loop.set_debug(debug)
        proto = BadEof()
        server, client = await start_pair(loop, proto)
        handle = loop._selector.get_key(proto.transport._sock_fd).data[0]
        text = repr(handle), handle._callback.__qualname__
        client.transport.write_eof()
        await proto.lost
        client.transport.close()
        server.close()
        loop.set_debug(False)
        return text, proto.events

    results = {name: run_on(name, main) for name in LOOPS}
    messages = {name: [(e["message"], type(e.get("exception")).__name__) for e in errors]
                for name, (_, errors) in results.items()}
    stdlib_reader = asyncio.selector_events._SelectorSocketTransport._read_ready.__qualname__
    assert messages["asyncio"] == [(f"Exception in callback {stdlib_reader}()", "ValueError")]
    assert messages["fastloop"] == messages["asyncio"]
    ((repr_std, name_std), events_std), _ = results["asyncio"]
    ((repr_fast, name_fast), events_fast), _ = results["fastloop"]
    assert events_fast == events_std == ["made", "eof", "eof", "lost:NoneType"]
    assert name_fast == name_std == stdlib_reader
    if not debug:   # a debug handle's repr says where it was created: a different line
        assert repr_fast == repr_std


class BufferedRecorder(asyncio.BufferedProtocol):
    def __init__(self, buffer_size):
        self.buffer = bytearray(buffer_size)
        self.data = bytearray()
        self.transport = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return self.buffer

    def buffer_updated(self, nbytes):
        self.data += self.buffer[:nbytes]

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        self.lost.set_result(exc)


@pytest.mark.parametrize("buffer_size", [1, 7, 65536])
def test_buffered_protocol_matches(buffer_size):
    payload = bytes(range(256)) * 300

    async def main(loop):
        proto = BufferedRecorder(buffer_size)
        server, client = await start_pair(loop, proto)
        client.transport.write(payload)
        client.transport.write_eof()
        exc = await proto.lost
        client.transport.close()
        server.close()
        return bytes(proto.data), exc

    results = {name: run_on(name, main) for name in LOOPS}
    for name, ((data, exc), errors) in results.items():
        assert data == payload, name
        assert exc is None
        assert errors == []


def test_empty_get_buffer_is_a_fatal_error_like_the_stdlib():
    class Empty(BufferedRecorder):
        def get_buffer(self, sizehint):
            return bytearray()

    async def main(loop):
        proto = Empty(0)
        server, client = await start_pair(loop, proto)
        client.transport.write(b"hello")
        exc = await proto.lost
        client.transport.close()
        server.close()
        return type(exc).__name__

    results = {name: run_on(name, main) for name in LOOPS}
    for name, (exc_name, errors) in results.items():
        assert exc_name == "RuntimeError", name
        assert [e["message"] for e in errors] == [
            "Fatal error: protocol.get_buffer() call failed."
        ], name


@pytest.mark.parametrize(
    "action",
    ["write_str", "write_after_eof", "write_int"],
)
def test_write_errors_match(action):
    async def main(loop):
        proto = Recorder()
        server, client = await start_pair(loop, proto)
        t = proto.transport
        try:
            if action == "write_str":
                t.write("text")
            elif action == "write_int":
                t.write(42)
            else:
                t.write_eof()
                t.write(b"late")
        except Exception as exc:  # noqa: BLE001  (the comparison is the test)
            outcome = (type(exc).__name__, str(exc))
        else:
            outcome = None
        t.close()
        client.transport.close()
        server.close()
        return outcome

    results = {name: run_on(name, main)[0] for name in LOOPS}
    assert results["fastloop"] is not None
    assert results["fastloop"] == results["asyncio"]


def test_connections_get_fastloops_transport_type():
    # Both ends of a fastloop TCP connection are fastloop's SocketTransport
    # (not the stdlib's _SelectorSocketTransport) and still asyncio.Transport.
    loop = fastloop.new_event_loop()
    try:
        async def main():
            server_side = loop.create_future()
            server = await loop.create_server(
                lambda: _Keep(server_side), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            client, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            srv = await server_side
            kinds = [type(client), type(srv)]
            client.close()
            srv.close()
            server.close()
            await server.wait_closed()
            return kinds, [isinstance(t, asyncio.Transport) for t in (client, srv)]

        kinds, is_transport = loop.run_until_complete(main())
    finally:
        loop.close()
    assert kinds == [SocketTransport, SocketTransport]
    assert is_transport == [True, True]


class _Keep(asyncio.Protocol):
    def __init__(self, fut):
        self.fut = fut

    def connection_made(self, transport):
        self.fut.set_result(transport)


def test_loops_in_threads_never_see_each_others_bytes():
    # Every loop of the process shares the native read buffer: each loop must
    # copy its data out before another thread can fill the buffer.
    import threading

    results = {}

    def worker(tag):
        async def main(loop):
            got = bytearray()
            done = loop.create_future()

            class Sink(asyncio.Protocol):
                def data_received(self, data):
                    got.extend(data)
                    if len(got) >= 2_000_000 and not done.done():
                        done.set_result(None)

            a, b = socket.socketpair()
            b.setblocking(False)
            await loop.connect_accepted_socket(Sink, a)
            payload = bytes([tag]) * 2_000_000
            await loop.sock_sendall(b, payload)
            await done
            b.close()
            return sum(1 for byte in got if byte != tag)

        results[tag] = run_on("fastloop", main)[0]

    threads = [threading.Thread(target=worker, args=(tag,)) for tag in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {1: 0, 2: 0, 3: 0, 4: 0}


def test_the_state_fastloop_keeps_natively_is_what_the_stdlib_transport_assigns():
    # On every Python: the stdlib's own transport assigns each attribute that
    # fastloop's SocketTransport turns into a property over C fields, and
    # fastloop's instances keep none of them in their __dict__.
    from fastloop import _compat

    def make(loop):
        a, b = socket.socketpair()
        tr = loop._make_socket_transport(a, asyncio.Protocol())
        return tr, b

    stdlib_loop = asyncio.SelectorEventLoop()
    fast_loop = fastloop.new_event_loop()
    try:
        plain, b1 = make(stdlib_loop)
        native, b2 = make(fast_loop)
        for name in _compat.TRANSPORT_STATE_ATTRIBUTES:
            assert name in vars(plain), name
            assert name not in vars(native), name
            assert isinstance(inspect.getattr_static(SocketTransport, name), property), name
        # Same values where the two transports' states are comparable.
        for name in ("_conn_lost", "_eof", "_empty_waiter"):
            assert getattr(native, name) == getattr(plain, name), name
        assert native._sock_fd == native._sock.fileno()
        assert type(native._buffer) is type(plain._buffer)
        assert native._read_ready_cb == native._read_ready__data_received
        plain.close()
        native.close()
        stdlib_loop.run_until_complete(asyncio.sleep(0))
        fast_loop.run_until_complete(asyncio.sleep(0))
        b1.close()
        b2.close()
    finally:
        stdlib_loop.close()
        fast_loop.close()


def test_set_protocol_switches_the_read_path():
    # set_protocol() between a Protocol and a BufferedProtocol changes how
    # the transport delivers reads (data_received vs get_buffer/buffer_updated):
    # fastloop keeps that choice as a native read mode, set when the stdlib's
    # set_protocol() assigns _read_ready_cb.
    stages = [b"A" * 3000, b"B" * 70_000, b"C" * 5000]

    async def main(loop):
        first = Recorder()
        buffered = BufferedRecorder(4096)
        last = Recorder()
        server, client = await start_pair(loop, first)
        tr = first.transport
        got = []
        for chunk, proto in zip(stages, (first, buffered, last), strict=True):
            if proto is not first:
                tr.set_protocol(proto)
            before = len(proto.data)
            client.transport.write(chunk)
            for _ in range(10_000):  # iterations, not time
                if len(proto.data) - before >= len(chunk):
                    break
                await asyncio.sleep(0)
            got.append((type(proto).__name__, bytes(proto.data[before:])))
        tr.close()
        client.transport.close()
        server.close()
        return got

    results = {name: run_on(name, main) for name in LOOPS}
    expected = [("Recorder", stages[0]), ("BufferedRecorder", stages[1]),
                ("Recorder", stages[2])]
    for name, (got, errors) in results.items():
        assert got == expected, name
        assert errors == [], name


def test_closed_transport_is_freed_without_the_cyclic_gc():
    # The stdlib's transport breaks its own reference cycles when the
    # connection is lost (3.14+; earlier ones keep a bound method of their
    # own); fastloop's, with its native core, must leave no more than the
    # stdlib's, so a closed connection is freed by reference counting alone
    # wherever the stdlib's is.
    import gc
    import weakref

    from conftest import same_on_both_loops

    def scenario(loop):
        refs = []

        async def main():
            a, b = socket.socketpair()
            tr, _ = await loop.create_connection(asyncio.Protocol, sock=a)
            refs.append(weakref.ref(tr))
            tr.write(b"x")
            tr.close()
            del tr
            for _ in range(3):
                await asyncio.sleep(0)
            b.close()

        gc.collect()
        gc.disable()
        try:
            loop.run_until_complete(main())
            return [r() is None for r in refs]
        finally:
            gc.enable()

    same_on_both_loops(scenario)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_reads_of_changing_sizes_arrive_whole(loop_name):
    # The native read guesses each read's size from the last one: the same
    # size, a smaller one (the bytes object is shrunk), a larger one (grown,
    # the rest copied in from the scratch buffer), small or large, must all
    # reach data_received byte for byte.
    sizes = [1000, 1000, 10, 5000, 3, 40000, 7, 1000, 102400, 102400, 61440, 153600, 20, 102400]
    payloads = [bytes((i * 7 + j) % 251 for j in range(n)) for i, n in enumerate(sizes)]

    async def main(loop):
        received = bytearray()
        grown = asyncio.Event()

        class Sink(asyncio.Protocol):
            def data_received(self, data):
                assert type(data) is bytes
                received.extend(data)
                grown.set()

        server = await loop.create_server(Sink, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        expected = bytearray()
        for payload in payloads:
            writer.write(payload)
            expected.extend(payload)
            while len(received) < len(expected):
                grown.clear()
                await grown.wait()
            assert received == expected
        writer.close()
        server.close()
        return bytes(received)

    result, errors = run_on(loop_name, main)
    assert result == b"".join(payloads)
    assert errors == []


def test_a_read_allocates_no_more_than_it_delivers():
    # fastloop only: the stdlib's recv(256 KiB) allocates 256 KiB per read
    # and shrinks it, which glibc serves with mmap, a page fault per 4 KiB
    # and munmap whenever the block is above its mmap threshold (128 KiB
    # until a large block is freed whole). fastloop's read allocates the
    # size of the previous read (then shrinks or grows it to what came), so
    # the memory a read takes is the larger of this and the last chunk.
    # Measured with tracemalloc's peak between two data_received() calls;
    # each message is sent once the last one has arrived whole, from a
    # thread with a blocking socket (the loop allocates nothing for it).
    kib = 1024
    sizes = [100 * kib] * 4 + [60 * kib, 100 * kib, 150 * kib, 150 * kib, 20 * kib, 100 * kib]
    payloads = [bytes((i * 13 + j) % 253 for j in range(n)) for i, n in enumerate(sizes)]
    slack = 16 * kib  # the iteration's own small objects

    async def main(loop):
        received = bytearray()
        reads = []          # (chunk size, peak traced memory above the last mark)
        arrived = threading.Event()
        state = {"base": 0, "expected": 0}

        class Sink(asyncio.Protocol):
            def data_received(self, data):
                _, peak = tracemalloc.get_traced_memory()
                reads.append((len(data), peak - state["base"]))
                received.extend(data)
                if len(received) == state["expected"]:
                    arrived.set()
                # The mark leaves this chunk out: it is freed on return.
                tracemalloc.reset_peak()
                state["base"] = tracemalloc.get_traced_memory()[0] - sys.getsizeof(data)

        server = await loop.create_server(Sink, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        def client():
            with socket.create_connection(("127.0.0.1", port)) as sock:
                for payload in payloads:
                    arrived.clear()
                    state["expected"] += len(payload)
                    sock.sendall(payload)
                    assert arrived.wait(30)

        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            state["base"] = tracemalloc.get_traced_memory()[0]
            await loop.run_in_executor(None, client)
        finally:
            tracemalloc.stop()
        server.close()
        return bytes(received), reads

    (data, reads), errors = run_on("fastloop", main)
    assert errors == []
    assert data == b"".join(payloads)
    # The first read's figure also holds the connection's set-up.
    previous = reads[0][0]
    for size, taken in reads[1:]:
        assert size <= 256 * kib
        assert taken <= max(size, previous) + slack, (size, previous, taken, reads)
        previous = size
