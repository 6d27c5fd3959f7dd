"""The native sock_* methods (fastloop/_sockops.pyx), side by side with the stdlib's.

Each behaviour test runs on both loops (the ``any_loop`` fixture) and checks
the same outcome; the registration checks look at ``loop._selector``, which
both loops have.
"""

import asyncio
import inspect
import socket
import ssl
import sys
import types

import pytest

import fastloop

HAS_DATAGRAM_OPS = sys.version_info >= (3, 11)


def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def tcp_pair():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    client.setblocking(False)
    server.setblocking(False)
    return client, server


def registered(loop, sock):
    return sock.fileno() in loop._selector.get_map()


def run(loop, coro):
    return loop.run_until_complete(coro)


# -- the methods are fastloop's own ---------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["sock_recv", "sock_recv_into", "sock_sendall", "sock_connect", "sock_accept"]
    + (["sock_recvfrom", "sock_recvfrom_into", "sock_sendto"] if HAS_DATAGRAM_OPS else []),
)
def test_native_methods_bound(loop, name):
    attr = inspect.getattr_static(fastloop.Loop, name)
    assert not isinstance(attr, types.FunctionType)
    assert attr.__module__ == "fastloop._sockops"
    assert attr is not getattr(asyncio.SelectorEventLoop, name)
    method = getattr(loop, name)
    assert method.__self__ is loop
    assert asyncio.iscoroutinefunction(method)


@pytest.mark.skipif(HAS_DATAGRAM_OPS, reason="3.10 only")
def test_no_datagram_methods_before_311(loop):
    for name in ("sock_recvfrom", "sock_recvfrom_into", "sock_sendto"):
        assert not hasattr(loop, name)


def test_call_returns_coroutine_usable_as_task(loop):
    a, b = pair()
    with a, b:

        async def main():
            coro = loop.sock_recv(a, 10)
            assert asyncio.iscoroutine(coro)
            task = asyncio.create_task(coro)
            b.send(b"x")
            return await task

        assert run(loop, main()) == b"x"


# -- recv -------------------------------------------------------------------------


def test_recv_immediate_data_registers_nothing(any_loop):
    a, b = pair()
    with a, b:
        b.send(b"hello")
        before = len(any_loop._selector.get_map())
        assert run(any_loop, any_loop.sock_recv(a, 100)) == b"hello"
        assert len(any_loop._selector.get_map()) == before
        assert not registered(any_loop, a)


def test_recv_fast_path_creates_no_future(loop, monkeypatch):
    a, b = pair()
    created = []
    monkeypatch.setattr(type(loop), "create_future", lambda self: created.append(1))
    with a, b:
        b.send(b"hello")
        coro = loop.sock_recv(a, 100)
        with pytest.raises(StopIteration) as info:
            coro.send(None)
        assert info.value.value == b"hello"
        assert created == []


def test_recv_delayed_data(any_loop):
    a, b = pair()
    with a, b:

        async def main():
            task = asyncio.create_task(any_loop.sock_recv(a, 100))
            await asyncio.sleep(0)
            assert registered(any_loop, a)
            any_loop.call_later(0.01, b.send, b"late")
            data = await task
            return data, registered(any_loop, a)

        assert run(any_loop, main()) == (b"late", False)


def test_recv_eof(any_loop):
    a, b = pair()
    with a:

        async def main():
            task = asyncio.create_task(any_loop.sock_recv(a, 100))
            await asyncio.sleep(0)
            b.close()
            return await task

        assert run(any_loop, main()) == b""
        assert not registered(any_loop, a)


def test_recv_into_immediate_and_delayed(any_loop):
    a, b = pair()
    buf = bytearray(10)
    with a, b:

        async def main():
            b.send(b"abc")
            n1 = await any_loop.sock_recv_into(a, buf)
            view = memoryview(buf)[3:]
            task = asyncio.create_task(any_loop.sock_recv_into(a, view))
            await asyncio.sleep(0)
            assert registered(any_loop, a)
            b.send(b"defghijklmnop")
            n2 = await task
            return n1, n2

        assert run(any_loop, main()) == (3, 7)
        assert bytes(buf) == b"abcdefghij"
        assert not registered(any_loop, a)


def test_recv_into_readonly_buffer(any_loop):
    a, b = pair()
    with a, b:
        b.send(b"abc")
        with pytest.raises(TypeError):
            run(any_loop, any_loop.sock_recv_into(a, b"readonly"))


def test_recv_bad_size(any_loop):
    a, b = pair()
    with a, b:
        with pytest.raises(ValueError, match="negative buffersize"):
            run(any_loop, any_loop.sock_recv(a, -1))
        with pytest.raises(TypeError):
            run(any_loop, any_loop.sock_recv(a, "10"))
        b.send(b"x" * 300_000)
        big = run(any_loop, any_loop.sock_recv(a, 1_000_000))
        assert 0 < len(big) <= 300_000


def test_recv_connection_reset(any_loop):
    client, server = tcp_pair()
    with client, server:

        async def main():
            task = asyncio.create_task(any_loop.sock_recv(client, 100))
            await asyncio.sleep(0)
            # An abortive close: the peer sends RST.
            linger = b"\x01\x00\x00\x00\x00\x00\x00\x00"    # l_onoff=1, l_linger=0
            server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            server.close()
            return await task

        with pytest.raises(ConnectionResetError):
            run(any_loop, main())
        assert not registered(any_loop, client)


def test_recv_closed_socket(any_loop):
    a, b = pair()
    a.close()
    with b:
        with pytest.raises(OSError) as info:
            run(any_loop, any_loop.sock_recv(a, 10))
        assert info.value.errno == 9


# -- cancellation and concurrency -------------------------------------------------


def test_cancelled_recv_leaves_no_registration(any_loop):
    a, b = pair()
    with a, b:

        async def main():
            task = asyncio.create_task(any_loop.sock_recv(a, 100))
            await asyncio.sleep(0)
            assert registered(any_loop, a)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)
            assert not registered(any_loop, a)
            # The fd is free for add_reader...
            fired = asyncio.Event()
            any_loop.add_reader(a, fired.set)
            b.send(b"1")
            await asyncio.wait_for(fired.wait(), 5)
            assert any_loop.remove_reader(a)
            assert a.recv(10) == b"1"
            # ...and for a new sock_recv, whose data the cancelled one did not take.
            task = asyncio.create_task(any_loop.sock_recv(a, 100))
            await asyncio.sleep(0)
            b.send(b"2")
            return await task

        assert run(any_loop, main()) == b"2"
        assert not registered(any_loop, a)


def test_cancel_after_data_arrived_keeps_data(any_loop):
    # Cancelled in the same iteration as the data arrives, before the reader
    # ran: the data stays in the socket for the next sock_recv.
    a, b = pair()
    with a, b:

        async def main():
            task = asyncio.create_task(any_loop.sock_recv(a, 100))
            await asyncio.sleep(0)
            b.send(b"kept")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await any_loop.sock_recv(a, 100)

        assert run(any_loop, main()) == b"kept"
        assert not registered(any_loop, a)


def test_cancelled_sendall_leaves_no_registration(any_loop):
    client, server = tcp_pair()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    with client, server:

        async def main():
            # Far more than the peer's receive buffer and our send buffer
            # hold while nobody reads: the send must block and register.
            task = asyncio.create_task(any_loop.sock_sendall(client, b"x" * 16_000_000))
            for _ in range(100):  # iterations, not time: until it waits on the fd
                await asyncio.sleep(0)
                if registered(any_loop, client):
                    break
            assert not task.done()
            assert registered(any_loop, client)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)
            return registered(any_loop, client)

        assert run(any_loop, main()) is False


def test_concurrent_recv_same_socket(any_loop):
    # The second waiter's registration replaces the first one's: the data goes
    # to the second, the first keeps waiting without a registration.
    a, b = pair()
    with a, b:

        async def main():
            first = asyncio.create_task(any_loop.sock_recv(a, 100))
            await asyncio.sleep(0)
            second = asyncio.create_task(any_loop.sock_recv(a, 100))
            await asyncio.sleep(0)
            b.send(b"data")
            result = await asyncio.wait_for(second, 5)
            await asyncio.sleep(0.01)
            state = (result, first.done(), registered(any_loop, a))
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            await asyncio.sleep(0)
            return state, registered(any_loop, a)

        assert run(any_loop, main()) == ((b"data", False, False), False)


def test_closed_coroutine_removes_registration(loop):
    # fastloop only: a waiting coroutine closed without its future being
    # cancelled (never resumed) removes its registration in its ``finally``;
    # the stdlib's removal is a done-callback of the future, which never runs.
    a, b = pair()
    with a, b:
        coro = loop.sock_recv(a, 10)
        coro.send(None)     # waits: registered
        assert registered(loop, a)
        coro.close()
        assert not registered(loop, a)


# -- sendall ----------------------------------------------------------------------


def test_sendall_immediate(any_loop):
    a, b = pair()
    with a, b:
        assert run(any_loop, any_loop.sock_sendall(a, b"hello")) is None
        assert b.recv(10) == b"hello"
        assert run(any_loop, any_loop.sock_sendall(a, b"")) is None
        assert not registered(any_loop, a)


def test_sendall_large_partial_writes(any_loop):
    client, server = tcp_pair()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    payload = bytes(range(256)) * 8192     # 2 MiB: many partial writes
    with client, server:

        async def reader():
            got = bytearray()
            while len(got) < len(payload):
                chunk = await any_loop.sock_recv(server, 65536)
                assert chunk
                got += chunk
            return bytes(got)

        async def main():
            sending = asyncio.create_task(any_loop.sock_sendall(client, memoryview(payload)))
            await asyncio.sleep(0)
            assert registered(any_loop, client)     # a partial write: waits for room
            task = asyncio.create_task(reader())
            assert await sending is None
            assert not registered(any_loop, client)
            return await task

        assert run(any_loop, main()) == payload


def test_sendall_broken_pipe(any_loop):
    a, b = pair()
    b.close()
    with a:
        with pytest.raises(BrokenPipeError):
            run(any_loop, any_loop.sock_sendall(a, b"x"))


def test_sendall_not_bytes(any_loop):
    a, b = pair()
    with a, b:
        with pytest.raises(TypeError):
            run(any_loop, any_loop.sock_sendall(a, "text"))


# -- connect and accept -----------------------------------------------------------


def test_connect_and_accept(any_loop):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    client = socket.socket()
    client.setblocking(False)
    with listener, client:

        async def main():
            accepting = asyncio.create_task(any_loop.sock_accept(listener))
            await asyncio.sleep(0)
            assert registered(any_loop, listener)
            await any_loop.sock_connect(client, listener.getsockname())
            conn, address = await accepting
            with conn:
                assert conn.gettimeout() == 0
                assert address == client.getsockname()
                await any_loop.sock_sendall(client, b"ping")
                return await any_loop.sock_recv(conn, 10)

        assert run(any_loop, main()) == b"ping"
        assert not registered(any_loop, listener)
        assert not registered(any_loop, client)


def test_connect_resolves_hostname(any_loop):
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.socket()
    client.setblocking(False)
    with listener, client:
        run(any_loop, any_loop.sock_connect(client, ("localhost", listener.getsockname()[1])))
        assert client.getpeername() == listener.getsockname()


def test_connect_refused(any_loop):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = s.getsockname()
    client = socket.socket()
    client.setblocking(False)
    with client:
        with pytest.raises(ConnectionRefusedError):
            run(any_loop, any_loop.sock_connect(client, address))
        assert not registered(any_loop, client)


def test_connect_unix(any_loop, tmp_path):
    path = str(tmp_path / "sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    client = socket.socket(socket.AF_UNIX)
    client.setblocking(False)
    with listener, client:
        assert run(any_loop, any_loop.sock_connect(client, path)) is None
        conn, _ = listener.accept()
        conn.close()


def test_accept_several_pending(any_loop):
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    listener.setblocking(False)
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    try:

        async def main():
            accepted = [await any_loop.sock_accept(listener) for _ in clients]
            for conn, _ in accepted:
                assert conn.gettimeout() == 0
                conn.close()
            return sorted(address for _, address in accepted)

        assert run(any_loop, main()) == sorted(c.getsockname() for c in clients)
        assert not registered(any_loop, listener)
    finally:
        for c in clients:
            c.close()
        listener.close()


def test_cancelled_accept_leaves_no_registration(any_loop):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    with listener:
        with pytest.raises(asyncio.TimeoutError):
            run(any_loop, asyncio.wait_for(any_loop.sock_accept(listener), 0.01))
        assert not registered(any_loop, listener)


# -- datagrams --------------------------------------------------------------------


@pytest.mark.skipif(not HAS_DATAGRAM_OPS, reason="sock_recvfrom/sock_sendto are 3.11+")
def test_udp_recvfrom_sendto(any_loop):
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    a.setblocking(False)
    b.setblocking(False)
    buf = bytearray(16)
    with a, b:

        async def main():
            waiting = asyncio.create_task(any_loop.sock_recvfrom(a, 100))
            await asyncio.sleep(0)
            assert registered(any_loop, a)
            assert await any_loop.sock_sendto(b, b"one", a.getsockname()) == 3
            first = await waiting
            await any_loop.sock_sendto(b, b"two", a.getsockname())
            await asyncio.sleep(0.01)
            second = await any_loop.sock_recvfrom_into(a, buf, 2)
            return first, second

        first, second = run(any_loop, main())
        assert first == (b"one", b.getsockname())
        assert second == (2, b.getsockname())
        assert buf[:2] == b"tw"
        assert not registered(any_loop, a)


# -- errors -----------------------------------------------------------------------


def blocking_ops(loop, sock):
    ops = [
        loop.sock_recv(sock, 1),
        loop.sock_recv_into(sock, bytearray(1)),
        loop.sock_sendall(sock, b"x"),
        loop.sock_connect(sock, ("127.0.0.1", 1)),
        loop.sock_accept(sock),
    ]
    if HAS_DATAGRAM_OPS:
        ops += [
            loop.sock_recvfrom(sock, 1),
            loop.sock_recvfrom_into(sock, bytearray(1)),
            loop.sock_sendto(sock, b"x", ("127.0.0.1", 1)),
        ]
    return ops


def test_blocking_socket_rejected_in_debug(any_loop):
    any_loop.set_debug(True)
    with socket.socket() as sock:
        for coro in blocking_ops(any_loop, sock):
            with pytest.raises(ValueError, match="the socket must be non-blocking"):
                run(any_loop, coro)


def test_blocking_socket_with_data_works_without_debug(any_loop):
    # Outside debug mode the stdlib does not check; data already there is read.
    a, b = socket.socketpair()
    with a, b:
        b.send(b"x")
        assert run(any_loop, any_loop.sock_recv(a, 10)) == b"x"


def test_ssl_socket_rejected(any_loop):
    context = ssl.create_default_context()
    with context.wrap_socket(socket.socket(), do_handshake_on_connect=False,
                             server_hostname="example.com") as sock:
        for coro in blocking_ops(any_loop, sock):
            with pytest.raises(TypeError, match="Socket cannot be of type SSLSocket"):
                run(any_loop, coro)


def test_closed_loop(any_loop):
    a, b = pair()
    any_loop.close()
    with a, b:
        # Data already there: the stdlib never looks at the loop.
        b.send(b"x")
        coro = any_loop.sock_recv(a, 10)
        with pytest.raises(StopIteration):
            coro.send(None)
        # Having to wait: registering fails.
        coro = any_loop.sock_recv(a, 10)
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            coro.send(None)


def test_fd_used_by_transport(any_loop):
    a, b = pair()
    with b:

        async def main():
            transport, _ = await any_loop.connect_accepted_socket(asyncio.Protocol, a)
            try:
                with pytest.raises(RuntimeError, match="is used by transport"):
                    await any_loop.sock_recv(a, 10)
            finally:
                transport.close()
                await asyncio.sleep(0)

        run(any_loop, main())


@pytest.mark.parametrize("n", [1024, 16384, 16385, 65536, 262144])
@pytest.mark.parametrize("available", [1, 16384, 16385, 40000, 65536, 300000])
def test_recv_sizes_around_the_copy_and_direct_paths(n, available):
    # Small requests are copied out of the shared buffer; large ones go
    # straight into their own bytes object, shrunk (or copied when the result
    # is small). Every combination returns what socket.recv() returns.
    payload = bytes(range(256)) * (available // 256) + bytes(range(available % 256))

    async def main(loop):
        a, b = tcp_pair()
        try:
            b.settimeout(5)
            b.sendall(payload)
            await asyncio.sleep(0.05)       # all of it is in a's receive buffer
            got = b""
            chunks = []
            while len(got) < min(n, available):
                chunk = await loop.sock_recv(a, n)
                chunks.append(len(chunk))
                got += chunk
            return got, all(c <= n for c in chunks)
        finally:
            a.close()
            b.close()

    for factory in (fastloop.new_event_loop, asyncio.SelectorEventLoop):
        loop = factory()
        try:
            got, bounded = loop.run_until_complete(main(loop))
        finally:
            loop.close()
        assert bounded
        assert got == payload[:len(got)]
        assert len(got) >= min(n, available)
