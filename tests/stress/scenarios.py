"""Stress scenarios, one per subprocess: ``python scenarios.py NAME LOOP PARAMS_JSON``.

LOOP is ``fastloop`` or ``asyncio`` (the stdlib's SelectorEventLoop). Each
scenario measures and prints one ``RESULT {json}`` line; the assertions live
in ``checks.py`` so that fastloop and the stdlib loop face the same ones.
Helper processes (clients) are started with the same script and a ``_``-prefixed
role name. Every wait is bounded.
"""

import asyncio
import errno
import gc
import json
import os
import re
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

MB = 1024 * 1024


# -- helpers ------------------------------------------------------------------


def make_loop(kind):
    if kind == "fastloop":
        import fastloop

        return fastloop.new_event_loop()
    if kind == "asyncio":
        loop = asyncio.SelectorEventLoop()
        # Count iterations as fastloop's metrics do: run_forever() calls
        # self._run_once() once per iteration.
        run_once = loop._run_once
        loop.iterations_run = 0

        def counted():
            loop.iterations_run += 1
            run_once()
        loop._run_once = counted
        return loop
    raise ValueError(kind)


def iterations(loop):
    """Loop iterations so far: a spinning loop is one whose count races ahead
    while it should be blocked in poll (a count, unlike CPU time, that a loaded
    machine cannot inflate)."""
    if hasattr(loop, "metrics"):
        return loop.metrics()["iterations"]
    return loop.iterations_run


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def open_fds():
    return sorted(int(x) for x in os.listdir("/proc/self/fd"))


def fd_count():
    # listdir itself opens one fd, the same one every time.
    return len(os.listdir("/proc/self/fd"))


class HandlerLog:
    """An exception handler that records every call (message, exception repr)."""

    def __init__(self):
        self.calls = []

    def __call__(self, loop, context):
        exc = context.get("exception")
        self.calls.append({
            "message": str(context.get("message")),
            "exception": None if exc is None else f"{type(exc).__name__}: {exc}",
            "errno": getattr(exc, "errno", None),
            "t": time.monotonic(),
        })

    def summary(self, limit=5):
        return [f"{c['message']} | {c['exception']}" for c in self.calls[:limit]]


def run_on(kind, main, *args, debug=False):
    loop = make_loop(kind)
    asyncio.set_event_loop(loop)
    log = HandlerLog()
    loop.set_exception_handler(log)
    loop.set_debug(debug)
    try:
        return loop.run_until_complete(main(loop, log, *args))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def wait_until(pred, timeout, step=0.005):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def echo_once(port, payload=b"ping-pong-payload", timeout=5.0):
    """One echo exchange over a new connection; True when every byte came back."""
    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(payload)
            got = await reader.readexactly(len(payload))
            return got == payload
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
    try:
        return await asyncio.wait_for(go(), timeout)
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
        return False


def set_nofile(want):
    """Raise (or lower) the soft RLIMIT_NOFILE to ``want``, capped by the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want, hard


# -- 1. fd exhaustion on accept -------------------------------------------------


def scenario_fd_exhaustion(kind, p):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4096)
    lsock.setblocking(False)
    port = lsock.getsockname()[1]
    client = subprocess.Popen(
        [sys.executable, __file__, "_fd_clients", str(port), str(p["clients"])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        return run_on(kind, _fd_exhaustion_main, lsock, client, p)
    finally:
        if client.poll() is None:
            client.kill()
        client.wait(5)


async def _fd_exhaustion_main(loop, log, lsock, client, p):
    accepted = []
    state = {"freed_at": None, "accept_after_free": None, "serve_after_free": None}

    class Server(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.after_free = state["freed_at"] is not None
            if self.after_free and state["accept_after_free"] is None:
                state["accept_after_free"] = time.monotonic() - state["freed_at"]
            accepted.append(transport)

        def data_received(self, data):
            self.transport.write(data)
            if self.after_free and state["serve_after_free"] is None:
                state["serve_after_free"] = time.monotonic() - state["freed_at"]

    # The server's limit: what is open now plus a little headroom, so a few
    # dozen accepts succeed and then accept() fails with EMFILE.
    highest = max(open_fds())
    limit, hard = set_nofile(highest + 1 + p["headroom"])
    server = await loop.create_server(Server, sock=lsock)    # default backlog (100)
    res = {"nofile_limit": limit, "clients": p["clients"]}

    def emfile_calls():
        return [c for c in log.calls if c["errno"] in (errno.EMFILE, errno.ENFILE)]

    res["emfile_reported"] = await wait_until(lambda: emfile_calls(), 20)
    res["accepted_before_exhaustion"] = len(accepted)
    await asyncio.sleep(0.2)
    # While exhausted: one second of waiting, its CPU time and handler calls.
    calls0 = len(log.calls)
    cpu0 = time.process_time()
    it0 = iterations(loop)
    t0 = time.monotonic()
    await asyncio.sleep(1.0)
    res["window_s"] = round(time.monotonic() - t0, 3)
    res["cpu_s_in_window"] = round(time.process_time() - cpu0, 4)
    res["iterations_in_window"] = iterations(loop) - it0
    res["handler_calls_in_window"] = len(log.calls) - calls0
    # Free the fds: close every accepted connection.
    for tr in accepted:
        tr.close()
    state["freed_at"] = time.monotonic()
    await wait_until(lambda: state["serve_after_free"] is not None, 5)
    res["accept_after_free_s"] = state["accept_after_free"]
    res["serve_after_free_s"] = state["serve_after_free"]
    await asyncio.sleep(0.3)
    res["accepted_total"] = len(accepted)
    res["handler_calls_total"] = len(log.calls)
    res["handler_calls_non_emfile"] = [
        f"{c['message']} | {c['exception']}" for c in log.calls
        if c["errno"] not in (errno.EMFILE, errno.ENFILE)][:5]
    res["handler_first"] = log.summary(1)
    server.close()
    for tr in accepted:
        tr.close()
    await server.wait_closed()
    client.stdin.close()
    line = await loop.run_in_executor(None, client.stdout.readline)
    res["client"] = json.loads(line) if line.strip() else None
    return res


def role_fd_clients(port, n):
    """Open ``n`` non-blocking connections; each sends a ping and counts echoes."""
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    stats = {"connected": 0, "echoes": 0, "errors": 0, "eof": 0}
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE, "connecting")
        socks.append(s)
    deadline = time.monotonic() + 60
    running = True
    while running and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            if key.data == "stdin":
                running = False
            elif key.data == "connecting":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    stats["errors"] += 1
                    sel.unregister(s)
                    continue
                stats["connected"] += 1
                s.send(b"ping")
                sel.modify(s, selectors.EVENT_READ, "reading")
            else:
                try:
                    data = s.recv(100)
                except OSError:
                    data = b""
                if data:
                    stats["echoes"] += 1
                else:
                    stats["eof"] += 1
                    sel.unregister(s)
    print(json.dumps(stats), flush=True)
    for s in socks:
        s.close()


# -- 2. peer reset and broken pipe ---------------------------------------------


def rst_peer(port, read_bytes, send=b""):
    """Blocking client (run in a thread): read some, then reset (SO_LINGER 0)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if send:
            s.sendall(send)
        got = 0
        while got < read_bytes:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        return got
    finally:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def exc_name(exc):
    return None if exc is None else type(exc).__name__


def scenario_peer_reset(kind, p):
    return run_on(kind, _peer_reset_main, p)


async def _peer_reset_main(loop, log, p):
    big = b"x" * MB
    res = {}
    echo_server = await loop.create_server(Echo, "127.0.0.1", 0)
    echo_port = echo_server.sockets[0].getsockname()[1]
    res["other_before"] = await echo_once(echo_port)

    # (a) Protocol/transport: the server writes tens of MB, the peer resets.
    lost = []
    done = loop.create_future()

    class Writer(asyncio.Protocol):
        def connection_made(self, transport):
            for _ in range(p["mb"]):
                transport.write(big)

        def connection_lost(self, exc):
            lost.append(exc)
            if not done.done():
                done.set_result(None)

    server = await loop.create_server(Writer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    peer = loop.run_in_executor(None, rst_peer, port, 2 * MB)
    try:
        await asyncio.wait_for(asyncio.shield(done), 15)
    except asyncio.TimeoutError:
        pass
    res["peer_read"] = await peer
    await asyncio.sleep(0.2)     # a second connection_lost would come by now
    res["transport_lost_calls"] = len(lost)
    res["transport_lost_exc"] = [exc_name(e) for e in lost]
    res["other_after_transport"] = await echo_once(echo_port)
    server.close()
    await server.wait_closed()

    # (b) sock_sendall while the peer resets; (c) sock_recv pending when it resets.
    for case in ("sock_sendall", "sock_recv"):
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(10)
        lsock.setblocking(False)
        lport = lsock.getsockname()[1]
        peer = loop.run_in_executor(None, rst_peer, lport, 2 * MB if case == "sock_sendall" else 0)
        conn, _ = await asyncio.wait_for(loop.sock_accept(lsock), 10)
        conn.setblocking(False)
        outcome = None
        try:
            if case == "sock_sendall":
                await asyncio.wait_for(loop.sock_sendall(conn, big * p["mb"]), 15)
            else:
                await asyncio.sleep(0.1)        # pending in sock_recv before the RST lands
                data = await asyncio.wait_for(loop.sock_recv(conn, 65536), 15)
                outcome = f"returned {len(data)} bytes"
        except asyncio.TimeoutError:
            outcome = "TimeoutError (hang)"
        except Exception as exc:  # noqa: BLE001 - the type is the result
            outcome = exc_name(exc)
        res[f"{case}_outcome"] = outcome
        # After the error: a further sock_recv must not hang or crash.
        try:
            data = await asyncio.wait_for(loop.sock_recv(conn, 10), 5)
            res[f"{case}_recv_after"] = f"returned {len(data)} bytes"
        except asyncio.TimeoutError:
            res[f"{case}_recv_after"] = "TimeoutError (hang)"
        except Exception as exc:  # noqa: BLE001
            res[f"{case}_recv_after"] = exc_name(exc)
        await peer
        conn.close()
        lsock.close()
        res[f"other_after_{case}"] = await echo_once(echo_port)

    # (d) streams: the handler drains tens of MB; (e) a handler blocked in read().
    for case in ("stream_drain", "stream_read"):
        result = loop.create_future()

        async def handler(reader, writer, case=case, result=result):
            outcome = None
            try:
                if case == "stream_drain":
                    for _ in range(p["mb"]):
                        writer.write(big)
                        await writer.drain()
                    outcome = "completed"
                else:
                    data = await reader.read(65536)
                    outcome = f"returned {len(data)} bytes"
            except Exception as exc:  # noqa: BLE001
                outcome = exc_name(exc)
            writer.close()
            try:
                await writer.wait_closed()
            except Exception as exc:  # noqa: BLE001
                outcome += f" (wait_closed: {exc_name(exc)})"
            if not result.done():
                result.set_result(outcome)

        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        sport = server.sockets[0].getsockname()[1]
        peer = loop.run_in_executor(None, rst_peer, sport, 2 * MB if case == "stream_drain" else 0)
        try:
            res[f"{case}_outcome"] = await asyncio.wait_for(asyncio.shield(result), 15)
        except asyncio.TimeoutError:
            res[f"{case}_outcome"] = "TimeoutError (hang)"
        await peer
        server.close()
        await server.wait_closed()
        res[f"other_after_{case}"] = await echo_once(echo_port)

    echo_server.close()
    await echo_server.wait_closed()
    await asyncio.sleep(0.1)
    gc.collect()
    await asyncio.sleep(0.1)
    res["handler_calls"] = log.summary(10)
    return res


# -- 3. many concurrent connections ------------------------------------------


def scenario_many_connections(kind, p):
    n = p["n"]
    want = n + 256
    limit, hard = set_nofile(want)
    res = {"requested": n, "nofile_hard": hard}
    if limit < want:
        n = max(0, limit - 256)
        res["skip_reason"] = (f"RLIMIT_NOFILE hard limit {hard} < {want}: "
                              f"{p['n'] - n} of {p['n']} connections not attempted")
    res["n"] = n
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4096)
    lsock.setblocking(False)
    port = lsock.getsockname()[1]
    client = subprocess.Popen(
        [sys.executable, __file__, "_many_clients", kind, str(port), str(n)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        res.update(run_on(kind, _many_server_main, lsock, client, n))
    finally:
        if client.poll() is None:
            client.kill()
        client.wait(5)
    return res


async def _many_server_main(loop, log, lsock, client, n):
    active = set()
    stats = {"accepted": 0, "bytes_echoed": 0}

    class Server(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            active.add(transport)
            stats["accepted"] += 1

        def data_received(self, data):
            stats["bytes_echoed"] += len(data)
            self.transport.write(data)

        def connection_lost(self, exc):
            active.discard(self.transport)

    fds0 = fd_count()
    server = await loop.create_server(Server, sock=lsock, backlog=4096)
    readline = client.stdout.readline
    t0 = time.monotonic()
    line = await asyncio.wait_for(loop.run_in_executor(None, readline), 120)
    res = {"client_connected_line": line.strip()}
    await wait_until(lambda: len(active) >= n, 20)
    res["connect_s"] = round(time.monotonic() - t0, 2)
    res["server_active"] = len(active)
    res["fds_during"] = fd_count() - fds0
    await asyncio.sleep(1.0)                          # all held idle
    res["server_active_after_idle"] = len(active)
    t1 = time.monotonic()
    client.stdin.write("GO\n")
    client.stdin.flush()
    line = await asyncio.wait_for(loop.run_in_executor(None, readline), 120)
    res["echo_s"] = round(time.monotonic() - t1, 2)
    res["client"] = json.loads(line) if line.strip() else None
    res["bytes_echoed"] = stats["bytes_echoed"]
    client.stdin.close()
    await wait_until(lambda: not active, 20)
    server.close()
    await server.wait_closed()
    res["handler_calls"] = log.summary(5)
    return res


def role_many_clients(kind, port, n):
    set_nofile(n + 256)

    async def main(loop, log):
        done = {}

        class Client(asyncio.Protocol):
            def __init__(self, i):
                self.i = i
                self.buf = bytearray()
                self.want = None

            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                self.buf += data
                if self.want is not None and len(self.buf) >= len(self.want):
                    done[self.i].set_result(bytes(self.buf))

        conns = []
        errors = []
        for start in range(0, n, 500):
            batch = [loop.create_connection(lambda i=i: Client(i), "127.0.0.1", port)
                     for i in range(start, min(n, start + 500))]
            for r in await asyncio.gather(*batch, return_exceptions=True):
                if isinstance(r, BaseException):
                    errors.append(repr(r))
                else:
                    conns.append(r[1])
        print(f"CONNECTED {len(conns)}", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        for c in conns:
            c.want = (b"%08d" % c.i) * 8 + bytes(range(c.i % 200, c.i % 200 + 56))
            done[c.i] = loop.create_future()
            c.transport.write(c.want)
        ok = bad = 0
        try:
            await asyncio.wait_for(asyncio.gather(*done.values()), 60)
        except asyncio.TimeoutError:
            pass
        for c in conns:
            f = done[c.i]
            if f.done() and f.result() == c.want:
                ok += 1
            else:
                bad += 1
        for c in conns:
            c.transport.close()
        await asyncio.sleep(0.1)
        return {"connected": len(conns), "connect_errors": len(errors),
                "first_errors": errors[:3], "echo_ok": ok, "echo_bad_or_missing": bad,
                "handler_calls": log.summary(3)}

    print(json.dumps(run_on(kind, main)), flush=True)


# -- 4. memory stays flat ------------------------------------------------------


def scenario_timers_memory(kind, p):
    return run_on(kind, _timers_main, p["n"])


async def _timers_main(loop, log, n):
    def cb():
        pass

    batch = 1000
    warm = max(n // 10, batch)
    res = {"n": n}
    max_heap = 0
    fds0 = fd_count()
    t0 = time.monotonic()
    call_later = loop.call_later
    for i in range(n // batch):
        for _ in range(batch):
            call_later(10.0, cb).cancel()
        if i % 500 == 0:
            max_heap = max(max_heap, len(loop._scheduled))
        await asyncio.sleep(0)
        if (i + 1) * batch == warm:
            gc.collect()
            rss0 = rss_kb()
    gc.collect()
    res["seconds"] = round(time.monotonic() - t0, 2)
    res["rss_growth_mb"] = round((rss_kb() - rss0) / 1024, 2)
    res["max_heap_len"] = max_heap
    res["final_heap_len"] = len(loop._scheduled)
    res["fd_delta"] = fd_count() - fds0
    res["handler_calls"] = log.summary(5)
    return res


def scenario_connect_cycles(kind, p):
    return run_on(kind, _cycles_main, p["n"])


async def _cycles_main(loop, log, n):
    class OneShotEcho(asyncio.Protocol):
        # Echo one message, then close first, so TIME_WAIT stays on the
        # server side and the client's ephemeral ports are not exhausted.
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)
            self.transport.close()

    gc.collect()
    fds0 = fd_count()
    server = await loop.create_server(OneShotEcho, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    warm = max(n // 20, 100)
    ok = failed = 0
    errors = []
    t0 = time.monotonic()
    for i in range(n):
        payload = b"%016d" % i
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            got = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            await writer.wait_closed()
            if got == payload:
                ok += 1
            else:
                failed += 1
        except (OSError, asyncio.TimeoutError) as exc:
            failed += 1
            if len(errors) < 3:
                errors.append(repr(exc))
        if i + 1 == warm:
            gc.collect()
            rss0 = rss_kb()
    seconds = time.monotonic() - t0
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0.1)
    gc.collect()
    return {"n": n, "ok": ok, "failed": failed, "errors": errors,
            "seconds": round(seconds, 2), "cycles_per_s": round(n / seconds),
            "rss_growth_mb": round((rss_kb() - rss0) / 1024, 2),
            "fd_delta": fd_count() - fds0, "handler_calls": log.summary(5)}


def scenario_slow_reader(kind, p):
    return run_on(kind, _slow_reader_main, p["mb"])


async def _slow_reader_main(loop, log, mb):
    chunk = bytes(range(256)) * 1024          # 256 KiB, a known pattern
    pattern = chunk * 2
    total = mb * MB
    stats = {"max_buffer": 0, "pauses": 0, "sent": 0, "received": 0, "corrupt": 0}
    done = loop.create_future()

    class Pump(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.paused = False
            self.pump()

        def pump(self):
            tr = self.transport
            while not self.paused and stats["sent"] < total and not tr.is_closing():
                tr.write(chunk)
                stats["sent"] += len(chunk)
                stats["max_buffer"] = max(stats["max_buffer"], tr.get_write_buffer_size())
            if stats["sent"] >= total and not tr.is_closing():
                # Not tr.close() here: called from resume_writing() with the
                # buffer just flushed, the stdlib transport then runs
                # _call_connection_lost twice (AttributeError on None._sock).
                loop.call_soon(tr.close)

        def pause_writing(self):
            self.paused = True
            stats["pauses"] += 1

        def resume_writing(self):
            self.paused = False
            self.pump()

    class SlowReader(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.since_pause = 0

        def data_received(self, data):
            off = stats["received"] % len(chunk)
            n = len(data)
            pos = 0
            while pos < n:                # compare against the pattern, every byte
                k = min(n - pos, len(chunk))
                if data[pos:pos + k] != pattern[off:off + k]:
                    stats["corrupt"] += 1
                off = (off + k) % len(chunk)
                pos += k
            stats["received"] += n
            self.since_pause += n
            if self.since_pause >= MB:   # a slow consumer: 1 ms break per MiB
                self.since_pause = 0
                self.transport.pause_reading()
                loop.call_later(0.001, self.transport.resume_reading)

        def connection_lost(self, exc):
            if not done.done():
                done.set_result(exc)

    gc.collect()
    fds0 = fd_count()
    rss0 = rss_kb()
    server = await loop.create_server(Pump, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    t0 = time.monotonic()
    tr, _ = await loop.create_connection(SlowReader, "127.0.0.1", port)
    rss_peak = rss0
    while not done.done() and time.monotonic() - t0 < 600:
        await asyncio.sleep(0.05)
        rss_peak = max(rss_peak, rss_kb())
    lost_exc = done.result() if done.done() else "timeout"
    seconds = time.monotonic() - t0
    tr.close()
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0.1)
    gc.collect()
    return {"mb": mb, "received": stats["received"], "expected": total,
            "corrupt_chunks": stats["corrupt"], "max_write_buffer": stats["max_buffer"],
            "pause_writing_calls": stats["pauses"], "seconds": round(seconds, 2),
            "mb_per_s": round(stats["received"] / MB / max(seconds, 1e-9)),
            "rss_growth_mb": round((rss_peak - rss0) / 1024, 2),
            "fd_delta": fd_count() - fds0, "lost_exc": repr(lost_exc),
            "handler_calls": log.summary(5)}


# -- 5. fork from a running loop's callback -------------------------------------


def scenario_fork(kind, p):
    return run_on(kind, _fork_parent_main, kind, p["exchanges"])


async def _loop_health(loop, port, label):
    """Echo, call_soon_threadsafe from a thread, a signal through the self-pipe."""
    out = {}
    out[f"{label}_echo"] = await echo_once(port)
    fut = loop.create_future()
    t = threading.Thread(target=loop.call_soon_threadsafe,
                         args=(lambda: fut.done() or fut.set_result(True),))
    t.start()
    try:
        out[f"{label}_threadsafe"] = await asyncio.wait_for(fut, 5)
    except asyncio.TimeoutError:
        out[f"{label}_threadsafe"] = False
    t.join()
    sig = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, lambda: sig.done() or sig.set_result(True))
    os.kill(os.getpid(), signal.SIGUSR1)
    try:
        out[f"{label}_signal"] = await asyncio.wait_for(sig, 5)
    except asyncio.TimeoutError:
        out[f"{label}_signal"] = False
    loop.remove_signal_handler(signal.SIGUSR1)
    return out


def _fork_child(kind, parent_port, exchanges, wfd):
    """In the forked child: a new loop, echo exchanges, report, os._exit."""
    code = 3
    try:
        signal.alarm(30)                   # a hung child dies instead of hanging the test
        asyncio.events._set_running_loop(None)     # 3.12+ does this at fork; 3.11 does not

        async def child_main(loop, log):
            server = await loop.create_server(Echo, "127.0.0.1", 0)
            own_port = server.sockets[0].getsockname()[1]
            res = await _loop_health(loop, own_port, "child_own")
            ok = 0
            for _ in range(exchanges):
                ok += await echo_once(parent_port)
            res["child_parent_echoes"] = ok
            server.close()
            await server.wait_closed()
            res["child_handler_calls"] = log.summary(5)
            return res

        res = run_on(kind, child_main)
        res["child_loop_type"] = kind
        os.write(wfd, json.dumps(res).encode())
        code = 0
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        try:
            os.write(wfd, json.dumps({"child_error": repr(exc)}).encode())
        finally:
            code = 2
    finally:
        os._exit(code)


async def _fork_parent_main(loop, log, kind, exchanges):
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    res = await _loop_health(loop, port, "parent_before")
    rfd, wfd = os.pipe()
    forked = loop.create_future()

    def do_fork():
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            _fork_child(kind, port, exchanges, wfd)
        forked.set_result(pid)

    loop.call_soon(do_fork)
    pid = await forked
    os.close(wfd)
    # The parent keeps serving (the child talks to it) while it waits.
    status = None
    parent_echoes = 0
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        parent_echoes += await echo_once(port)
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            break
        await asyncio.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        status = "killed after 40 s"
    res["child_status"] = (status if isinstance(status, str) else
                           f"exit {os.waitstatus_to_exitcode(status)}")
    data = b""
    while True:
        chunk = os.read(rfd, 65536)
        if not chunk:
            break
        data += chunk
    os.close(rfd)
    res["child"] = json.loads(data) if data else None
    res["parent_echoes_while_child_ran"] = parent_echoes
    res.update(await _loop_health(loop, port, "parent_after"))
    cpu0 = time.process_time()
    it0 = iterations(loop)
    await asyncio.sleep(0.5)
    res["parent_idle_cpu_s"] = round(time.process_time() - cpu0, 4)
    res["parent_idle_iterations"] = iterations(loop) - it0
    server.close()
    await server.wait_closed()
    res["handler_calls"] = log.summary(5)
    return res


# -- 6. fd closed while registered, number reused at once -----------------------


def scenario_fd_reuse(kind, p):
    return run_on(kind, _fd_reuse_main)


async def _fd_reuse_main(loop, log):
    res = {}
    for variant in ("reader", "writer"):
        res.update(await _fd_reuse_variant(loop, variant))
    # After all that the loop still runs callbacks and timers.
    fut = loop.create_future()
    loop.call_later(0.01, fut.set_result, True)
    res["loop_still_runs"] = await asyncio.wait_for(fut, 5)
    res["handler_calls"] = log.summary(5)
    return res


async def _fd_reuse_variant(loop, variant):
    res = {}
    calls = {"old": 0, "new": 0}
    if True:
        a1, a2 = socket.socketpair()
        a1.setblocking(False)
        fd = a1.fileno()
        if variant == "reader":
            loop.add_reader(fd, lambda: calls.__setitem__("old", calls["old"] + 1))
        else:
            # A writer on a socket whose buffer is full: registered, never ready.
            try:
                while True:
                    a1.send(b"x" * 65536)
            except BlockingIOError:
                pass
            loop.add_writer(fd, lambda: calls.__setitem__("old", calls["old"] + 1))
        await asyncio.sleep(0.05)
        a1.close()                 # closed while registered, no remove_reader/writer
        a2.close()
        b1, b2 = socket.socketpair()
        b1.setblocking(False)
        res[f"{variant}_same_fd"] = b1.fileno() == fd
        try:
            def new_reader():
                calls["new"] += 1
                try:
                    b1.recv(100)         # consume, so a level-triggered reader goes quiet
                except OSError:
                    pass

            loop.add_reader(b1.fileno(), new_reader)
            res[f"{variant}_add_reader_new"] = "ok"
        except Exception as exc:  # noqa: BLE001
            res[f"{variant}_add_reader_new"] = f"{type(exc).__name__}: {exc}"
        b2.send(b"y")
        cpu0 = time.process_time()
        it0 = iterations(loop)
        await wait_until(lambda: calls["new"] > 0, 0.5)
        await asyncio.sleep(0.1)
        res[f"{variant}_cpu_s"] = round(time.process_time() - cpu0, 3)
        res[f"{variant}_iterations"] = iterations(loop) - it0
        res[f"{variant}_old_calls"] = calls["old"]
        res[f"{variant}_new_calls"] = calls["new"]
        try:
            res[f"{variant}_remove_reader"] = loop.remove_reader(b1.fileno())
            res[f"{variant}_remove_writer"] = loop.remove_writer(b1.fileno())
        except Exception as exc:  # noqa: BLE001
            res[f"{variant}_remove"] = f"{type(exc).__name__}: {exc}"
        b1.close()
        b2.close()
    return res


# -- 7. call_soon_threadsafe from many threads ---------------------------------


def scenario_threads(kind, p):
    res = {}
    holder = {}

    async def main(loop, log):
        holder["loop"] = loop
        count = [0]

        def cb():
            count[0] += 1

        errors = []

        def poster():
            post = loop.call_soon_threadsafe
            try:
                for _ in range(p["per_thread"]):
                    post(cb)
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))

        t0 = time.monotonic()
        threads = [threading.Thread(target=poster) for _ in range(p["threads"])]
        for t in threads:
            t.start()
        await wait_until(lambda: not any(t.is_alive() for t in threads), 300, 0.01)
        expected = p["threads"] * p["per_thread"]
        await wait_until(lambda: count[0] >= expected, 10, 0.001)
        await asyncio.sleep(0.05)
        return {"posted": expected, "executed": count[0], "lost": expected - count[0],
                "post_errors": errors[:3], "seconds": round(time.monotonic() - t0, 2),
                "handler_calls": log.summary(5)}

    res.update(run_on(kind, main))
    loop = holder["loop"]
    try:
        loop.call_soon_threadsafe(lambda: None)
        res["closed_post"] = "no exception"
    except Exception as exc:  # noqa: BLE001
        res["closed_post"] = f"{type(exc).__name__}: {exc}"

    # A thread posting in a tight loop while the loop stops and closes.
    loop = make_loop(kind)
    outcomes = {}
    stop = threading.Event()

    def racer():
        while not stop.is_set():
            try:
                loop.call_soon_threadsafe(lambda: None)
            except Exception as exc:  # noqa: BLE001
                key = f"{type(exc).__name__}: {exc}"
                outcomes[key] = outcomes.get(key, 0) + 1
                if isinstance(exc, RuntimeError):
                    return

    t = threading.Thread(target=racer)
    t.start()
    loop.call_later(0.2, loop.stop)
    loop.run_forever()
    loop.close()
    t.join(10)
    stop.set()
    res["race_outcomes"] = outcomes
    res["race_thread_finished"] = not t.is_alive()
    return res


# -- 8. bad input --------------------------------------------------------------


def describe(exc):
    msg = str(exc)
    msg = re.sub(r"0x[0-9a-fA-F]+", "0x?", msg)
    msg = re.sub(r"\d{4,5}", "N", msg)                   # port numbers, fds
    msg = re.sub(r"<(fastloop|_UnixSelector|Selector)\w*", "<LOOP", msg)
    msg = re.sub(r"fd=\d+", "fd=?", msg)
    msg = re.sub(r"File descriptor \d+", "File descriptor N", msg)
    msg = re.sub(r"is used by transport <.*>", "is used by transport <TRANSPORT>", msg)
    return [type(exc).__name__, msg]


async def _noop():
    pass


def _bad_cases():
    """name -> async fn(loop) doing one bad thing; returns what happened."""
    cases = {}

    def case(name):
        def deco(fn):
            cases[name] = fn
            return fn
        return deco

    def cb():
        pass

    for label, obj in (("int", 1), ("none", None), ("str", "x")):
        @case(f"call_soon_noncallable_{label}")
        async def _(loop, obj=obj):
            loop.call_soon(obj)
            await asyncio.sleep(0.01)

    @case("call_soon_coroutine_object")
    async def _(loop):
        c = _noop()
        try:
            loop.call_soon(c)
            await asyncio.sleep(0.01)
        finally:
            c.close()

    @case("call_soon_coroutine_function")
    async def _(loop):
        loop.call_soon(_noop)
        await asyncio.sleep(0.01)

    for label, delay in (("nan", float("nan")), ("inf", float("inf")), ("neg_inf", float("-inf")),
                         ("huge", 1e300), ("huge_int", 10**400), ("str", "1"),
                         ("none", None)):
        @case(f"call_later_{label}")
        async def _(loop, delay=delay):
            ran = []
            h = loop.call_later(delay, ran.append, 1)
            await asyncio.sleep(0.02)
            h.cancel()
            return f"ran={bool(ran)}"

    for label, fileobj in (("minus_one", -1), ("object", object()), ("str", "3"),
                           ("float", 1.5), ("huge", 2**40), ("int_max", 2**31 - 1)):
        @case(f"add_reader_{label}")
        async def _(loop, fileobj=fileobj):
            loop.add_reader(fileobj, cb)
            return f"removed={loop.remove_reader(fileobj)}"

    @case("add_reader_closed_fd")
    async def _(loop):
        a, b = socket.socketpair()
        fd = a.detach()
        os.close(fd)
        b.close()
        loop.add_reader(fd, cb)
        return f"removed={loop.remove_reader(fd)}"

    @case("add_reader_closed_socket_object")
    async def _(loop):
        a, b = socket.socketpair()
        a.close()
        b.close()
        loop.add_reader(a, cb)

    @case("add_writer_regular_file")
    async def _(loop):
        with open(__file__, "rb") as f:
            loop.add_writer(f.fileno(), cb)

    @case("remove_reader_unregistered_closed_socket")
    async def _(loop):
        a, b = socket.socketpair()
        a.close()
        b.close()
        return f"removed={loop.remove_reader(a)}"

    async def with_transport(loop, fn):
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        try:
            return fn(tr)
        finally:
            tr.close()
            server.close()
            await server.wait_closed()

    for label, data in (("str", "text"), ("int", 5), ("none", None), ("list", [b"a"])):
        @case(f"transport_write_{label}")
        async def _(loop, data=data):
            return await with_transport(loop, lambda tr: tr.write(data))

    @case("transport_writelines_str")
    async def _(loop):
        return await with_transport(loop, lambda tr: tr.writelines(["a", "b"]))

    @case("transport_write_after_write_eof")
    async def _(loop):
        def fn(tr):
            tr.write_eof()
            tr.write(b"x")
        return await with_transport(loop, fn)

    @case("transport_bad_buffer_limits")
    async def _(loop):
        return await with_transport(loop, lambda tr: tr.set_write_buffer_limits(high=1, low=2))

    @case("add_reader_fd_owned_by_transport")
    async def _(loop):
        return await with_transport(loop, lambda tr: loop.add_reader(tr.get_extra_info(
            "socket").fileno(), cb))

    @case("create_server_port_in_use")
    async def _(loop):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        try:
            await loop.create_server(Echo, "127.0.0.1", s.getsockname()[1], reuse_address=False)
        finally:
            s.close()

    @case("create_server_udp_sock")
    async def _(loop):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            await loop.create_server(Echo, sock=s)
        finally:
            s.close()

    @case("create_server_sock_and_host")
    async def _(loop):
        s = socket.socket()
        try:
            await loop.create_server(Echo, "127.0.0.1", 0, sock=s)
        finally:
            s.close()

    @case("create_connection_refused")
    async def _(loop):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)

    @case("create_connection_no_host")
    async def _(loop):
        await loop.create_connection(asyncio.Protocol)

    @case("create_connection_bad_port_type")
    async def _(loop):
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", "notaport")

    for method in ("sock_recv", "sock_sendall", "sock_connect", "sock_accept", "sock_recv_into"):
        for debug in (False, True):
            @case(f"{method}_blocking_socket{'_debug' if debug else ''}")
            async def _(loop, method=method, debug=debug):
                loop.set_debug(debug)
                a, b = socket.socketpair()
                a.setblocking(True)
                b.send(b"z")
                # Every call would complete at once on a blocking socket too
                # (data waiting, a connection pending): no case can block.
                lsn = socket.socket()
                lsn.bind(("127.0.0.1", 0))
                lsn.listen()
                lsn.setblocking(True)
                pending = socket.create_connection(lsn.getsockname())
                s = socket.socket()
                s.setblocking(True)
                try:
                    if method == "sock_recv":
                        return repr(await asyncio.wait_for(loop.sock_recv(a, 1), 1))
                    if method == "sock_recv_into":
                        return await asyncio.wait_for(loop.sock_recv_into(a, bytearray(1)), 1)
                    if method == "sock_sendall":
                        return await asyncio.wait_for(loop.sock_sendall(a, b"x"), 1)
                    if method == "sock_connect":
                        return await asyncio.wait_for(loop.sock_connect(s, lsn.getsockname()), 1)
                    conn, _ = await asyncio.wait_for(loop.sock_accept(lsn), 1)
                    conn.close()
                    return "accepted"
                finally:
                    s.close()
                    pending.close()
                    lsn.close()
                    loop.set_debug(False)
                    a.close()
                    b.close()

    @case("sock_sendall_str")
    async def _(loop):
        a, b = socket.socketpair()
        a.setblocking(False)
        try:
            await loop.sock_sendall(a, "text")
        finally:
            a.close()
            b.close()

    @case("sock_recv_closed_socket")
    async def _(loop):
        a, b = socket.socketpair()
        a.setblocking(False)
        a.close()
        b.close()
        await loop.sock_recv(a, 10)

    @case("sock_connect_udp_refused_addr_type")
    async def _(loop):
        s = socket.socket()
        s.setblocking(False)
        try:
            await loop.sock_connect(s, ("127.0.0.1", "x"))
        finally:
            s.close()

    class DatagramLog(asyncio.DatagramProtocol):
        def __init__(self):
            self.calls = []

        def error_received(self, exc):
            self.calls.append("error_received:" + " ".join(describe(exc)))

        def connection_lost(self, exc):
            self.calls.append("lost:" + (" ".join(describe(exc)) if exc else "None"))

    async def with_datagram(loop, fn, state="open"):
        # An unconnected endpoint and a connected one aimed at it; the result
        # is what the call returned plus every protocol call it caused.
        srv, sp = await loop.create_datagram_endpoint(DatagramLog, local_addr=("127.0.0.1", 0))
        cli, cp = await loop.create_datagram_endpoint(
            DatagramLog, remote_addr=srv.get_extra_info("sockname"))
        try:
            if state != "open":
                srv.close()
                cli.close()
                await asyncio.sleep(0.01)
            value = fn(srv, cli)
            await asyncio.sleep(0.01)
            return f"{value!r} {sp.calls} {cp.calls}"
        finally:
            srv.close()
            cli.close()

    def to_client(srv, cli):
        return cli.get_extra_info("sockname")

    for label, fn in (
            ("str", lambda srv, cli: srv.sendto("text", to_client(srv, cli))),
            ("no_address", lambda srv, cli: srv.sendto(b"x")),
            ("bad_address_type", lambda srv, cli: srv.sendto(b"x", 12)),
            ("bad_port", lambda srv, cli: srv.sendto(b"x", ("127.0.0.1", 70000))),
            ("bad_host", lambda srv, cli: srv.sendto(b"x", ("no such host\0", 9))),
            ("wrong_address_connected", lambda srv, cli: cli.sendto(b"x", ("127.0.0.1", 9))),
            ("oversized", lambda srv, cli: srv.sendto(b"x" * 70000, to_client(srv, cli))),
            ("oversized_connected", lambda srv, cli: cli.sendto(b"x" * 70000))):
        @case(f"datagram_sendto_{label}")
        async def _(loop, fn=fn):
            return await with_datagram(loop, fn)

    for label, fn in (
            ("unconnected", lambda srv, cli: srv.sendto(b"x", to_client(srv, cli))),
            ("connected", lambda srv, cli: cli.sendto(b"x"))):
        @case(f"datagram_sendto_closed_{label}")
        async def _(loop, fn=fn):
            return await with_datagram(loop, fn, state="closed")

    async def with_write_pipe(loop, fn, close_first):
        rfd, wfd = os.pipe()
        proto = DatagramLog()
        tr, _ = await loop.connect_write_pipe(lambda: proto, os.fdopen(wfd, "wb", 0))
        try:
            if close_first:
                tr.close()
                await asyncio.sleep(0.01)
            value = fn(tr)
            await asyncio.sleep(0.01)
            return f"{value!r} {proto.calls}"
        finally:
            tr.close()
            os.close(rfd)

    for label, fn, close_first in (
            ("str", lambda tr: tr.write("text"), False),
            ("after_close", lambda tr: tr.write(b"x"), True),
            ("after_write_eof", lambda tr: (tr.write_eof(), tr.write(b"x")), False)):
        @case(f"pipe_write_{label}")
        async def _(loop, fn=fn, close_first=close_first):
            return await with_write_pipe(loop, fn, close_first)

    @case("pipe_write_broken")
    async def _(loop):
        rfd, wfd = os.pipe()
        os.close(rfd)
        proto = DatagramLog()
        tr, _ = await loop.connect_write_pipe(lambda: proto, os.fdopen(wfd, "wb", 0))
        try:
            tr.write(b"x" * 10)
            await asyncio.sleep(0.01)
            return f"{proto.calls}"
        finally:
            tr.close()

    @case("pipe_read_not_a_pipe")
    async def _(loop):
        with open(__file__, "rb") as f:
            await loop.connect_read_pipe(asyncio.Protocol, f)

    @case("running_loop_run_until_complete")
    async def _(loop):
        c = _noop()
        try:
            loop.run_until_complete(c)
        finally:
            c.close()

    @case("running_loop_run_forever")
    async def _(loop):
        loop.run_forever()

    @case("running_loop_close")
    async def _(loop):
        loop.close()

    @case("run_until_complete_non_awaitable")
    async def _(loop):
        return "n/a"          # checked on a stopped loop, see CLOSED_CASES

    _tls_bad_cases(case)
    return cases


CERTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "certs")


def _tls_bad_cases(case):
    """Misuse of TLS transports and certificates that fail verification."""
    import ssl

    def server_context():
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(os.path.join(CERTS, "server.pem"))
        return ctx

    def client_context():
        return ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))

    async def with_tls(loop, fn, client_ctx=None, **kwargs):
        server = await loop.create_server(Echo, "127.0.0.1", 0, ssl=server_context())
        port = server.sockets[0].getsockname()[1]
        tr = None
        try:
            tr, _ = await loop.create_connection(
                asyncio.Protocol, "127.0.0.1", port, ssl=client_ctx or client_context(),
                server_hostname=kwargs.pop("server_hostname", "localhost"), **kwargs)
            return fn(tr)
        finally:
            if tr is not None:
                tr.close()
            server.close()
            await server.wait_closed()

    for label, data in (("str", "text"), ("int", 5), ("none", None)):
        @case(f"tls_write_{label}")
        async def _(loop, data=data):
            return await with_tls(loop, lambda tr: tr.write(data))

    @case("tls_write_after_close")
    async def _(loop):
        def fn(tr):
            tr.close()
            for _ in range(8):      # past LOG_THRESHOLD_FOR_CONNLOST_WRITES
                tr.write(b"x")
        return await with_tls(loop, fn)

    @case("tls_write_after_double_close")
    async def _(loop):
        def fn(tr):
            tr.close()
            tr.close()
            tr.write(b"x")
        return await with_tls(loop, fn)

    @case("tls_write_eof")
    async def _(loop):
        return await with_tls(loop, lambda tr: tr.write_eof())

    @case("tls_bad_buffer_limits")
    async def _(loop):
        return await with_tls(loop, lambda tr: tr.set_write_buffer_limits(high=1, low=2))

    @case("tls_certificate_unknown_issuer")
    async def _(loop):
        return await with_tls(loop, repr, client_ctx=ssl.create_default_context())

    @case("tls_certificate_hostname_mismatch")
    async def _(loop):
        return await with_tls(loop, repr, server_hostname="example.org")

    @case("tls_handshake_timeout_negative")
    async def _(loop):
        return await with_tls(loop, repr, ssl_handshake_timeout=-1)

    @case("tls_shutdown_timeout_zero")
    async def _(loop):
        # A TypeError on 3.10 (no such parameter), a ValueError on 3.11+.
        return await with_tls(loop, repr, ssl_shutdown_timeout=0)


def _closed_cases():
    """Calls on a closed loop (and on a stopped one) that must raise like the stdlib's."""
    def cb():
        pass

    def server(loop):
        return loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", 0))

    def sock_recv(loop):
        a, b = socket.socketpair()
        a.setblocking(False)
        try:
            c = loop.sock_recv(a, 1)
            try:
                return loop.run_until_complete(c)
            finally:
                c.close()
        finally:
            a.close()
            b.close()

    def add_reader(loop):
        a, b = socket.socketpair()
        try:
            loop.add_reader(a, cb)
        finally:
            a.close()
            b.close()

    return {
        "closed_call_soon": lambda loop: loop.call_soon(cb),
        "closed_call_later": lambda loop: loop.call_later(1, cb),
        "closed_call_soon_threadsafe": lambda loop: loop.call_soon_threadsafe(cb),
        "closed_add_reader": add_reader,
        "closed_remove_reader": lambda loop: loop.remove_reader(0),
        "closed_create_server": server,
        "closed_sock_recv": sock_recv,
        "closed_run_forever": lambda loop: loop.run_forever(),
        "closed_create_task": lambda loop: loop.create_task(_noop()),
        "closed_close_again": lambda loop: loop.close(),
    }


def scenario_bad_input(kind, p):
    out = {}
    for name, fn in _bad_cases().items():
        if name == "run_until_complete_non_awaitable":
            loop = make_loop(kind)
            try:
                loop.run_until_complete(1)
                out[name] = ["ok", "None"]
            except Exception as exc:  # noqa: BLE001
                out[name] = describe(exc)
            finally:
                loop.close()
            continue
        loop = make_loop(kind)
        log = HandlerLog()
        loop.set_exception_handler(log)
        try:
            async def run_case(fn=fn, loop=loop):
                return await fn(loop)
            value = loop.run_until_complete(asyncio.wait_for(run_case(), 5))
            outcome = ["ok", describe(Exception(str(value)))[1]]
        except Exception as exc:  # noqa: BLE001
            outcome = describe(exc)
        try:
            loop.run_until_complete(asyncio.sleep(0.01))
        except Exception:  # noqa: BLE001, S110
            pass
        handled = [describe(Exception(c["exception"] or c["message"]))[1] for c in log.calls]
        out[name] = outcome + [handled]
        loop.close()
    for name, fn in _closed_cases().items():
        loop = make_loop(kind)
        loop.close()
        try:
            value = fn(loop)
            out[name] = ["ok", str(value is None)]
        except Exception as exc:  # noqa: BLE001
            out[name] = describe(exc)
    return {"cases": out}


# -- entry point ---------------------------------------------------------------


def main(argv):
    name = argv[1]
    if name == "_fd_clients":
        return role_fd_clients(int(argv[2]), int(argv[3]))
    if name == "_many_clients":
        return role_many_clients(argv[2], int(argv[3]), int(argv[4]))
    kind, params = argv[2], json.loads(argv[3])
    result = globals()[f"scenario_{name}"](kind, params)
    sys.stdout.flush()
    print("RESULT " + json.dumps(result, default=repr), flush=True)


if __name__ == "__main__":
    main(sys.argv)
