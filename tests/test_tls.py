"""TLS on fastloop: the stdlib's behaviour through the native per-record path.

Every scenario runs on fastloop and on the stdlib loop and compares the
protocol call traces (runs of data_received() merged into their total, since
the record boundaries the kernel hands over vary from run to run).
"""

import asyncio
import gc
import logging
import os
import ssl
import weakref

import pytest
from conftest import LOOPS, same_on_both_loops

import fastloop
from fastloop import _compat

CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "certs")


def server_context():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(CERTS, "server.pem"))
    return ctx


def client_context():
    return ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))


class Recorder(asyncio.Protocol):
    """Records its calls; consecutive data_received() calls merge into one entry."""

    def __init__(self, traces, name, on_data=None, eof_result=None):
        # Each side its own list: the two sides' calls interleave differently
        # from run to run, each side's own order does not.
        self.trace = traces.setdefault(name, [])
        self.name, self.on_data, self.eof_result = name, on_data, eof_result
        self.transport = None
        self.lost = asyncio.get_running_loop().create_future()

    def _add(self, what, arg=None):
        if what == "data" and self.trace and self.trace[-1][1] == "data":
            self.trace[-1] = (self.name, "data", self.trace[-1][2] + arg)
        else:
            self.trace.append((self.name, what, arg))

    def connection_made(self, transport):
        self.transport = transport
        self._add("made")

    def data_received(self, data):
        self._add("data", bytes(data))
        if self.on_data:
            self.on_data(self, data)

    def eof_received(self):
        self._add("eof")
        return self.eof_result

    def pause_writing(self):
        self._add("pause_writing")

    def resume_writing(self):
        self._add("resume_writing")

    def connection_lost(self, exc):
        self._add("lost", None if exc is None else type(exc).__name__)
        if not self.lost.done():
            self.lost.set_result(None)


class BufferedRecorder(asyncio.BufferedProtocol, Recorder):
    def __init__(self, *args, **kwargs):
        Recorder.__init__(self, *args, **kwargs)
        self.buffer = bytearray(1000)     # smaller than a record: several reads each

    def get_buffer(self, sizehint):
        # A view: the stdlib fills the rest of a partly filled buffer through
        # buf[offset:], which for a bytearray would be a copy.
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes):
        self.data_received(bytes(self.buffer[:nbytes]))


def echo(proto, data):
    proto.transport.write(data)


def run_pair(loop, client_script, *, server_on_data=echo, server_eof=None,
             client_cls=Recorder, server_ctx=None):
    """Serve with a Recorder over TLS, run client_script(loop, client, server_protos)."""
    traces = {}
    servers = []

    async def main():
        def factory():
            proto = Recorder(traces, "server", server_on_data, server_eof)
            servers.append(proto)
            return proto

        srv = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ctx or server_context())
        port = srv.sockets[0].getsockname()[1]
        try:
            _, client = await loop.create_connection(
                lambda: client_cls(traces, "client"), "127.0.0.1", port, ssl=client_context(),
                server_hostname="localhost")
            await client_script(loop, client, servers)
            await asyncio.wait_for(client.lost, 10)
            if servers:
                await asyncio.wait_for(servers[0].lost, 10)
        finally:
            srv.close()
            await srv.wait_closed()
        return traces.get("client", []) + traces.get("server", [])

    return loop.run_until_complete(main())


async def until(predicate):
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def test_tls_is_the_stdlibs_sslprotocol_over_the_native_transport():
    # The stdlib's own SSLProtocol (behaviour by construction), its records
    # carried by fastloop's native socket transport: measured faster on TLS
    # echo than a Cython port of the protocol was (bench/README.md).
    loop = fastloop.new_event_loop()
    try:
        async def script(loop, client, servers):
            tr = client.transport
            assert isinstance(tr, asyncio.Transport)
            assert type(tr._ssl_protocol) is asyncio.sslproto.SSLProtocol
            raw = tr._ssl_protocol._transport
            assert type(raw).__module__ == "fastloop.transport"
            assert isinstance(tr.get_extra_info("ssl_object"), ssl.SSLObject)
            assert tr.get_extra_info("peercert")["subject"] == ((("commonName", "localhost"),),)
            tr.close()

        run_pair(loop, script)
    finally:
        loop.close()


@pytest.mark.parametrize("size", [1, 1000, 16 * 1024 + 1, 300_000])
@pytest.mark.parametrize("buffered", [False, True], ids=["protocol", "buffered"])
def test_echo_then_close(size, buffered):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)

    async def script(loop, client, servers):
        client.transport.write(payload[: size // 2])
        client.transport.writelines([payload[size // 2:]])
        await until(lambda: sum(len(t[2]) for t in client.trace
                                if t[:2] == ("client", "data")) >= size)
        client.transport.close()

    trace = same_on_both_loops(lambda loop: run_pair(
        loop, script, client_cls=BufferedRecorder if buffered else Recorder))
    assert trace[0] == ("client", "made", None)
    assert ("client", "data", payload) in trace
    assert ("server", "data", payload) in trace
    assert trace[-1] == ("server", "lost", None)


def test_server_closes_first():
    async def script(loop, client, servers):
        client.transport.write(b"hello")
        await until(lambda: servers and servers[0].trace and servers[0].trace[-1][1] == "data")
        servers[0].transport.close()

    trace = same_on_both_loops(lambda loop: run_pair(loop, script, server_on_data=None))
    if _compat.SSLPROTO_STATE_MACHINE:   # 3.10's SSL pipe reports no eof_received() here
        assert ("client", "eof", None) in trace


def test_eof_received_returning_true_is_ignored_with_a_warning(caplog):
    async def script(loop, client, servers):
        await until(lambda: servers and servers[0].transport)
        client.transport.close()

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        trace = same_on_both_loops(lambda loop: run_pair(loop, script, server_eof=True))
    warned = [r.getMessage() for r in caplog.records if "eof_received" in r.getMessage()]
    if _compat.SSLPROTO_STATE_MACHINE:   # 3.10's SSL pipe closes without calling it
        assert ("server", "eof", None) in trace
        assert len(warned) == 2     # once per loop


@pytest.mark.parametrize("who", ["client", "server"])
def test_abort(who):
    async def script(loop, client, servers):
        client.transport.write(b"x" * 5000)
        await until(lambda: any(t[:2] == ("client", "data") and len(t[2]) == 5000
                                for t in client.trace))
        (client if who == "client" else servers[0]).transport.abort()

    trace = same_on_both_loops(lambda loop: run_pair(loop, script))
    assert (who, "lost", None) in trace


def test_half_close_is_refused():
    async def script(loop, client, servers):
        tr = client.transport
        out = [tr.can_write_eof()]
        with pytest.raises(NotImplementedError):
            tr.write_eof()
        tr.close()
        return out

    same_on_both_loops(lambda loop: run_pair(loop, script))


def test_flow_control_against_a_slow_reader():
    written = []

    async def script(loop, client, servers):
        await until(lambda: servers and servers[0].transport)
        servers[0].transport.pause_reading()
        tr = client.transport
        tr.set_write_buffer_limits(high=64 * 1024)
        chunk = b"y" * 65536
        while not any(t[1] == "pause_writing" for t in client.trace):
            tr.write(chunk)
            written.append(len(chunk))
            await asyncio.sleep(0)
        size_paused = tr.get_write_buffer_size() > 0
        servers[0].transport.resume_reading()
        await until(lambda: any(t[1] == "resume_writing" for t in client.trace))
        await until(lambda: servers[0].trace[-1][1] == "data"
                    and len(servers[0].trace[-1][2]) == sum(written))
        tr.close()
        client.trace.append(("client", "buffer_was_nonempty", size_paused))

    def scenario(loop):
        written.clear()
        trace = run_pair(loop, script, server_on_data=None)
        # How many chunks fit before the pause depends on the kernel's socket
        # buffers at that moment: compare that everything arrived, not sizes.
        return [(who, what, len(arg) == sum(written) if what == "data" else arg)
                for who, what, arg in trace]

    trace = same_on_both_loops(scenario)
    calls = [t[1] for t in trace if t[0] == "client"]
    assert calls.index("pause_writing") < calls.index("resume_writing")
    assert ("server", "data", True) in trace


def test_write_after_close_counts_and_warns(caplog):
    async def script(loop, client, servers):
        tr = client.transport
        tr.close()
        for _ in range(_compat.LOG_THRESHOLD_FOR_CONNLOST_WRITES + 2):
            tr.write(b"late")

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        same_on_both_loops(lambda loop: run_pair(loop, script))
    warned = [r for r in caplog.records if r.getMessage() == "SSL connection is closed"]
    # Each loop: the writes past the threshold (3.10 drops them silently).
    assert len(warned) == (2 * 2 if _compat.SSLPROTO_STATE_MACHINE else 0)


@pytest.mark.parametrize("client_ctx, hostname", [
    ("default", "localhost"), ("test-ca", "example.org")], ids=["unknown-issuer", "hostname"])
def test_certificate_verification_failure(client_ctx, hostname):
    def scenario(loop):
        async def main():
            srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                           ssl=server_context())
            port = srv.sockets[0].getsockname()[1]
            ctx = ssl.create_default_context() if client_ctx == "default" else client_context()
            try:
                await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=ctx,
                                             server_hostname=hostname)
            except ssl.SSLCertVerificationError as exc:
                return exc.verify_code, exc.verify_message, exc.reason
            finally:
                srv.close()
                await srv.wait_closed()
            return None

        return loop.run_until_complete(main())

    assert same_on_both_loops(scenario) is not None


def test_start_tls_upgrades_a_plain_connection():
    def scenario(loop):
        async def main():
            traces = {}
            server_protos = []

            def factory():
                proto = Recorder(traces, "server", echo)
                server_protos.append(proto)
                return proto

            srv = await loop.create_server(factory, "127.0.0.1", 0)
            port = srv.sockets[0].getsockname()[1]
            plain, client = await loop.create_connection(
                lambda: Recorder(traces, "client"), "127.0.0.1", port)
            await until(lambda: server_protos and server_protos[0].transport)
            server = server_protos[0]
            # start_tls() does not call connection_made(): the protocols are
            # told their new transports here.
            client.transport, server.transport = await asyncio.gather(
                loop.start_tls(plain, client, client_context(), server_hostname="localhost"),
                loop.start_tls(server.transport, server, server_context(), server_side=True))
            client.transport.write(b"hello")
            await until(lambda: client.trace[-1][1:] == ("data", b"hello"))
            client.transport.close()
            await asyncio.wait_for(client.lost, 10)
            await asyncio.wait_for(server.lost, 10)
            srv.close()
            await srv.wait_closed()
            return traces["client"] + traces["server"]

        return loop.run_until_complete(main())

    trace = same_on_both_loops(scenario)
    assert ("client", "data", b"hello") in trace and ("server", "data", b"hello") in trace


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_protocol_and_context_freed_without_the_cyclic_gc(loop_name):
    loop = LOOPS[loop_name]()
    gc.disable()
    try:
        ctx = client_context()
        refs = []

        async def main():
            srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0,
                                           ssl=server_context())
            port = srv.sockets[0].getsockname()[1]
            tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=ctx,
                                                 server_hostname="localhost")
            refs.append(weakref.ref(tr._ssl_protocol))
            tr.close()
            for _ in range(50):
                await asyncio.sleep(0.01)
            srv.close()
            await srv.wait_closed()

        loop.run_until_complete(main())
        ctx = weakref.ref(ctx)
        assert refs[0]() is None
        assert ctx() is None
    finally:
        gc.enable()
        loop.close()
