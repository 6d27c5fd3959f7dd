"""The server accept loop (fastloop/_accept.pyx) and its Python fallback.

``Loop._accept_connection`` is native (accept4 with SOCK_NONBLOCK |
SOCK_CLOEXEC) for plain ``socket.socket`` listeners of family AF_INET,
AF_INET6 and AF_UNIX on Linux; everything else goes to
``Loop._accept_connection_py``. These tests check that the native loop is the
one that runs, that the peer addresses are exactly what ``sock.accept()``
returns (on both loops), and that the accepted sockets, the batching, the
errors and the out-of-fds pause are those of the Python loop.
"""

import asyncio
import errno
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import uuid

import pytest

import fastloop
from fastloop import _accept, _compat

LINUX = sys.platform.startswith("linux")
native_only = pytest.mark.skipif(not _accept.HAVE_ACCEPT4,
                                 reason="no accept4 here: the Python accept loop runs")
linux_only = pytest.mark.skipif(not LINUX, reason="Linux abstract socket names")


def _has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _has_ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6 loopback (::1) on this machine")


@pytest.fixture
def fallback_calls(monkeypatch):
    """Every call of the Python accept loop, recorded (and still made)."""
    calls = []
    original = fastloop.Loop._accept_connection_py

    def spy(self, protocol_factory, sock, *args, **kwargs):
        calls.append(sock)
        return original(self, protocol_factory, sock, *args, **kwargs)

    monkeypatch.setattr(fastloop.Loop, "_accept_connection_py", spy)
    return calls


@pytest.fixture
def no_fallback(monkeypatch):
    """Fail loudly if the Python accept loop runs."""
    def refuse(self, protocol_factory, sock, *args, **kwargs):
        raise AssertionError(f"the Python accept loop ran for {sock!r}")

    monkeypatch.setattr(fastloop.Loop, "_accept_connection_py", refuse)


@pytest.fixture
def short_dir():
    """A directory with a short path: AF_UNIX paths are limited to 107 bytes."""
    path = tempfile.mkdtemp(prefix="fla-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def listener(family, address):
    sock = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6 and address[0].startswith("::ffff:"):
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(address)
    sock.listen(100)
    sock.setblocking(False)
    return sock


async def peer_seen_by_server(loop, lsock, client, address=None):
    """Serve ``lsock`` on ``loop``, connect ``client``: the peername the server sees."""
    seen = loop.create_future()

    class Server(asyncio.Protocol):
        def connection_made(self, transport):
            if not seen.done():
                seen.set_result(transport.get_extra_info("peername"))
            transport.close()

    if lsock.family == socket.AF_UNIX:
        server = await loop.create_unix_server(Server, sock=lsock)
    else:
        server = await loop.create_server(Server, sock=lsock)
    try:
        await loop.sock_connect(client, address or lsock.getsockname())
        return await asyncio.wait_for(seen, 5)
    finally:
        server.close()
        await server.wait_closed()


def reference_accept(lsock, client, address=None):
    """What a plain sock.accept() returns for ``client``'s connection to ``lsock``."""
    client.connect(address or lsock.getsockname())
    lsock.setblocking(True)
    conn, peer = lsock.accept()
    conn.close()
    return peer


def _capture_accepts(loop):
    """Replace the loop's _accept_connection2 by a recorder of its arguments."""
    accepted = []

    def accept2(protocol_factory, conn, extra, *args, **kwargs):
        accepted.append((conn, extra, (protocol_factory, args, kwargs)))
        return asyncio.sleep(0)

    loop._accept_connection2 = accept2
    return accepted


def _finish(loop, accepted):
    loop.run_until_complete(asyncio.sleep(0))
    for conn, _, _ in accepted:
        conn.close()


# -- which accept loop runs ---------------------------------------------------


def test_accept_connection_is_native():
    assert fastloop.Loop._accept_connection is _accept.accept_connection
    assert _accept.HAVE_ACCEPT4 == LINUX


async def _echo_once(open_connection):
    reader, writer = await open_connection()
    writer.write(b"ping")
    data = await asyncio.wait_for(reader.readexactly(4), 5)
    writer.close()
    await writer.wait_closed()
    return data


async def _echo_handler(reader, writer):
    writer.write(await reader.readexactly(4))
    await writer.drain()
    writer.close()


@native_only
def test_tcp_server_uses_native_accept(loop, no_fallback):
    async def main():
        server = await asyncio.start_server(_echo_handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await _echo_once(lambda: asyncio.open_connection("127.0.0.1", port))

    assert loop.run_until_complete(main()) == b"ping"


@native_only
def test_unix_server_uses_native_accept(loop, no_fallback, short_dir):
    path = os.path.join(short_dir, "srv.sock")

    async def main():
        server = await asyncio.start_unix_server(_echo_handler, path)
        async with server:
            return await _echo_once(lambda: asyncio.open_unix_connection(path))

    assert loop.run_until_complete(main()) == b"ping"


def test_socket_subclass_uses_python_accept(loop, fallback_calls):
    class SubSocket(socket.socket):
        pass

    lsock = SubSocket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen()

    async def main():
        server = await asyncio.start_server(_echo_handler, sock=lsock)
        port = lsock.getsockname()[1]
        async with server:
            return await _echo_once(lambda: asyncio.open_connection("127.0.0.1", port))

    assert loop.run_until_complete(main()) == b"ping"
    assert fallback_calls and all(s is lsock for s in fallback_calls)


@native_only
def test_listener_with_timeout_uses_python_accept(loop, fallback_calls):
    # A listening socket with a timeout is not what _start_serving sets up;
    # the native loop leaves it to socket.accept().
    with listener(socket.AF_INET, ("127.0.0.1", 0)) as lsock, \
            socket.create_connection(lsock.getsockname()) as client:
        lsock.settimeout(5)
        accepted = _capture_accepts(loop)
        # One accept() call in all (3.14+ makes backlog + 1 per wake-up): a
        # second one would wait out the socket's timeout, on any loop.
        backlog = 1 - _compat.ACCEPT_EXTRA_TRIES
        loop._accept_connection(asyncio.Protocol, lsock, None, None, backlog)
        assert fallback_calls == [lsock]
        assert [extra["peername"] for _, extra, _ in accepted] == [client.getsockname()]
        _finish(loop, accepted)


# -- peer addresses: exactly what sock.accept() returns -----------------------


INET_CASES = [
    pytest.param(socket.AF_INET, "127.0.0.1", socket.AF_INET, id="ipv4"),
    pytest.param(socket.AF_INET6, "::1", socket.AF_INET6, id="ipv6", marks=needs_ipv6),
    pytest.param(socket.AF_INET6, "::ffff:127.0.0.1", socket.AF_INET, id="ipv4-mapped",
                 marks=needs_ipv6),
]


@pytest.mark.parametrize(("family", "host", "client_family"), INET_CASES)
def test_inet_peer_address(any_loop, fallback_calls, family, host, client_family):
    connect_host = "127.0.0.1" if client_family == socket.AF_INET else host
    with listener(family, (host, 0)) as ref, socket.socket(client_family) as ref_client:
        reference = reference_accept(ref, ref_client, (connect_host, ref.getsockname()[1]))
        ref_client_name = ref_client.getsockname()
    with listener(family, (host, 0)) as lsock, socket.socket(client_family) as client:
        client.setblocking(False)
        address = (connect_host, lsock.getsockname()[1])
        peer = any_loop.run_until_complete(peer_seen_by_server(any_loop, lsock, client, address))
        client_name = client.getsockname()

    assert [type(x) for x in peer] == [type(x) for x in reference]
    if family == client_family:
        # accept()'s address is the client's own getsockname(), on both sides.
        assert reference == ref_client_name
        assert peer == client_name
    else:
        # An IPv4 client of a dual-stack listener: ('::ffff:127.0.0.1', port, 0, 0).
        assert reference[0] == peer[0] == "::ffff:127.0.0.1"
        assert reference[2:] == peer[2:] == (0, 0)
        assert (reference[1], peer[1]) == (ref_client_name[1], client_name[1])
    if isinstance(any_loop, fastloop.Loop) and _accept.HAVE_ACCEPT4:
        assert fallback_calls == []


def unix_client(case, directory, tag):
    """A client AF_UNIX socket, bound as ``case`` says (a fresh name per ``tag``)."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if case == "path":
        client.bind(os.path.join(directory, f"client-{tag}.sock"))
    elif case == "undecodable-path":
        client.bind(os.fsencode(directory) + b"/client-\xff\xfe-" + tag.encode() + b".sock")
    elif case == "longest-path":
        # 107 bytes: sun_path's 108 with the terminating NUL.
        prefix = os.path.join(directory, f"c{tag}-")
        client.bind(prefix + "x" * (107 - len(os.fsencode(prefix))))
    elif case == "abstract":
        client.bind(b"\0fastloop-test-" + uuid.uuid4().hex.encode() + b"\0tail")
    elif case == "autobind":
        client.bind("")     # Linux picks a unique abstract name
    else:
        assert case == "unnamed"
    return client


UNIX_CASES = [
    "unnamed",
    "path",
    "undecodable-path",
    "longest-path",
    pytest.param("abstract", marks=linux_only),
    pytest.param("autobind", marks=linux_only),
]


@pytest.mark.parametrize("case", UNIX_CASES)
def test_unix_peer_address(any_loop, fallback_calls, short_dir, case):
    with listener(socket.AF_UNIX, os.path.join(short_dir, "ref.sock")) as ref, \
            unix_client(case, short_dir, "ref") as ref_client:
        reference = reference_accept(ref, ref_client)
        ref_client_name = ref_client.getsockname()
    with listener(socket.AF_UNIX, os.path.join(short_dir, "srv.sock")) as lsock, \
            unix_client(case, short_dir, "srv") as client:
        client.setblocking(False)
        peer = any_loop.run_until_complete(peer_seen_by_server(any_loop, lsock, client))
        client_name = client.getsockname()

    # accept() reports the client's own getsockname(): '' when unnamed, a str
    # path (undecodable bytes surrogate-escaped), bytes for an abstract name.
    assert reference == ref_client_name
    assert peer == client_name
    assert type(peer) is type(reference)
    if case == "unnamed":
        assert peer == reference == ""
    elif case in ("abstract", "autobind"):
        assert isinstance(peer, bytes) and peer[:1] == b"\0"
    if isinstance(any_loop, fastloop.Loop) and _accept.HAVE_ACCEPT4:
        assert fallback_calls == []


# -- batching and the accepted sockets ------------------------------------------


@native_only
def test_every_pending_connection_accepted_in_one_call(loop, no_fallback):
    with listener(socket.AF_INET, ("127.0.0.1", 0)) as lsock:
        clients = [socket.create_connection(lsock.getsockname()) for _ in range(7)]
        accepted = _capture_accepts(loop)
        try:
            # One readiness callback accepts all of them (backlog=100) ...
            loop._accept_connection(asyncio.Protocol, lsock, None, None, 100)
            assert len(accepted) == 7
            assert ({extra["peername"] for _, extra, _ in accepted}
                    == {c.getsockname() for c in clients})
            # ... and the next one finds the queue empty (EAGAIN) and returns.
            assert loop._accept_connection(asyncio.Protocol, lsock, None, None, 100) is None
            assert len(accepted) == 7
        finally:
            _finish(loop, accepted)
            for c in clients:
                c.close()


@native_only
def test_at_most_backlog_connections_per_call(loop, no_fallback):
    with listener(socket.AF_INET, ("127.0.0.1", 0)) as lsock:
        clients = [socket.create_connection(lsock.getsockname()) for _ in range(5)]
        accepted = _capture_accepts(loop)
        try:
            counts = []
            # The stdlib's rule: backlog accept() calls per wake-up (3.14+:
            # backlog + 1).
            for _ in range(4):
                loop._accept_connection(asyncio.Protocol, lsock, None, None, 1)
                counts.append(len(accepted))
            per_call = 1 + _compat.ACCEPT_EXTRA_TRIES
            assert counts == [min(5, per_call * k) for k in range(1, 5)]
        finally:
            _finish(loop, accepted)
            for c in clients:
                c.close()


ACCEPT_PATHS = [
    pytest.param("_accept_connection", id="native", marks=native_only),
    pytest.param("_accept_connection_py", id="python"),
]


@pytest.mark.parametrize("family", ["tcp", "unix"])
@pytest.mark.parametrize("method", ACCEPT_PATHS)
def test_accepted_socket(loop, short_dir, method, family):
    if family == "tcp":
        lsock = listener(socket.AF_INET, ("127.0.0.1", 0))
        client = socket.create_connection(lsock.getsockname())
    else:
        lsock = listener(socket.AF_UNIX, os.path.join(short_dir, "srv.sock"))
        client = socket.socket(socket.AF_UNIX)
        client.connect(lsock.getsockname())
    accepted = _capture_accepts(loop)
    with lsock, client:
        getattr(loop, method)(asyncio.Protocol, lsock, None, None, 100)
        try:
            [(conn, extra, _)] = accepted
            assert type(conn) is socket.socket
            assert (conn.family, conn.type, conn.proto) == (lsock.family, socket.SOCK_STREAM,
                                                            lsock.proto)
            assert conn.type is socket.SOCK_STREAM      # no SOCK_NONBLOCK flag in it
            assert conn.gettimeout() == 0.0
            assert conn.getblocking() is False
            assert os.get_blocking(conn.fileno()) is False
            assert os.get_inheritable(conn.fileno()) is False
            assert extra == {"peername": client.getsockname()}
            assert conn.getpeername() == client.getsockname()
            client.sendall(b"x")
            assert _recv_soon(conn) == b"x"
        finally:
            _finish(loop, accepted)


def _recv_soon(conn):
    conn.settimeout(5)
    try:
        return conn.recv(1)
    finally:
        conn.setblocking(False)


@pytest.mark.parametrize("given", [(), (11.0,), (11.0, 12.0), "kw"])
def test_same_arguments_to_accept_connection2(loop, given):
    # The timeouts _start_serving passes reach _accept_connection2 unchanged
    # (completed with their defaults, as the Python loop does).
    n = len(_compat.ACCEPT_TIMEOUT_DEFAULTS)
    if given == "kw":
        args, kwargs = (), {"ssl_handshake_timeout": 11.0}
    else:
        args, kwargs = given[:n], {}
    results = []
    for method in ("_accept_connection", "_accept_connection_py"):
        with listener(socket.AF_INET, ("127.0.0.1", 0)) as lsock, \
                socket.create_connection(lsock.getsockname()):
            accepted = _capture_accepts(loop)
            getattr(loop, method)(asyncio.Protocol, lsock, "ctx", "server", 100, *args, **kwargs)
            [(_, _, call)] = accepted
            results.append(call)
            _finish(loop, accepted)
    assert results[0] == results[1]
    assert results[0][1][:2] == ("ctx", "server")


@native_only
def test_debug_log_line(loop, no_fallback, caplog):
    loop.set_debug(True)
    with listener(socket.AF_INET, ("127.0.0.1", 0)) as lsock, \
            socket.create_connection(lsock.getsockname()) as client:
        accepted = _capture_accepts(loop)
        with caplog.at_level(logging.DEBUG, logger="asyncio"):
            loop._accept_connection(asyncio.Protocol, lsock, None, "the-server", 100)
        [(conn, _, _)] = accepted
        expected = f"'the-server' got a new connection from {client.getsockname()!r}: {conn!r}"
        assert expected in caplog.messages
        _finish(loop, accepted)


# -- errors ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ACCEPT_PATHS)
def test_other_errors_propagate(loop, method):
    # accept() on a socket that is not listening: EINVAL, as socket.accept() raises it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        with pytest.raises(OSError) as reference:
            sock.accept()
        with pytest.raises(OSError) as raised:
            getattr(loop, method)(asyncio.Protocol, sock, None, None, 100)
    assert type(raised.value) is type(reference.value)
    assert raised.value.args == reference.value.args
    assert raised.value.errno == errno.EINVAL


@pytest.mark.parametrize("method", ACCEPT_PATHS)
def test_out_of_fds_reported_once_then_paused(loop, method):
    with listener(socket.AF_INET, ("127.0.0.1", 0)) as lsock:
        clients = [socket.create_connection(lsock.getsockname()) for _ in range(3)]
        reports = []
        loop.set_exception_handler(lambda _, context: reports.append(context))
        loop._add_reader(lsock.fileno(), lambda: None)
        accepted = _capture_accepts(loop)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        lowest_free = os.dup(0)
        os.close(lowest_free)
        try:
            # No new fd can be allocated: accept fails with EMFILE.
            resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
            getattr(loop, method)(asyncio.Protocol, lsock, None, None, 100)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        try:
            assert accepted == []
            [report] = reports
            assert report["message"] == "socket.accept() out of system resource"
            assert type(report["exception"]) is OSError
            assert report["exception"].errno == errno.EMFILE
            assert isinstance(report["socket"], _compat.TransportSocket)
            assert report["socket"].fileno() == lsock.fileno()
            # Accepting stops and _start_serving is re-armed once, after the delay.
            assert lsock.fileno() not in loop._selector.get_map()
            retries = [h for h in loop._scheduled if h._callback == loop._start_serving]
            assert len(retries) == 1
            assert retries[0]._args == (asyncio.Protocol, lsock, None, None, 100,
                                        *_compat.ACCEPT_TIMEOUT_DEFAULTS)
            assert (retries[0].when() - loop.time()
                    == pytest.approx(_compat.ACCEPT_RETRY_DELAY, abs=0.5))
            retries[0].cancel()
        finally:
            for c in clients:
                c.close()


@native_only
def test_fd_closed_when_socket_object_cannot_be_built():
    # An audit hook refuses the socket object: the accepted fd must not leak
    # (the client sees the connection closed), the error propagates.
    script = textwrap.dedent("""
        import asyncio, os, socket, sys
        import fastloop

        armed = False

        def hook(event, args):
            if armed and event == "socket.__new__":
                raise RuntimeError("refused by the audit hook")

        sys.addaudithook(hook)
        loop = fastloop.new_event_loop()
        lsock = socket.create_server(("127.0.0.1", 0))
        lsock.setblocking(False)
        client = socket.create_connection(lsock.getsockname())
        client.settimeout(5)
        before = sorted(os.listdir("/proc/self/fd"))
        armed = True
        try:
            loop._accept_connection(asyncio.Protocol, lsock, None, None, 100)
            outcome = "no error"
        except RuntimeError as exc:
            outcome = str(exc)
        armed = False
        after = sorted(os.listdir("/proc/self/fd"))
        print(outcome)
        print(before == after)
        print(client.recv(1) == b"")
        loop.close()
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["refused by the audit hook", "True", "True"]
