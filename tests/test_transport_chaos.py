"""Differential chaos on TCP transports: fastloop against the stdlib loop.

Hypothesis generates random sequences of operations on a connected TCP pair
on 127.0.0.1 (writes of 1 B .. 256 KiB of random bytes, writelines,
pause/resume_reading, set_write_buffer_limits, write_eof, close, abort, and
"run the loop N iterations" / "run until idle"), with small SO_SNDBUF and
SO_RCVBUF on both sockets. Each sequence runs on fastloop and on
asyncio.SelectorEventLoop; the outcome compared is:

* the exact byte stream each side received (concatenated: chunk boundaries
  depend on timing), except on a connection the peer reset (see key()),
* each side's protocol callbacks by kind (consecutive data_received calls
  collapsed into one), connection_lost with the exception's type, as two
  sequences: what it read, and the flow control of what it wrote (how the two
  interleave is the kernel's timing, see same()),
* what every operation raised (or not), and the exception-handler messages.

A sequence is only a valid example if the stdlib loop gives the same outcome
on two runs, and if on both every "idle" reached idle (the loop's callbacks
and the kernel's socket queues quiet, see until_idle()) and every byte in
flight was delivered in the wind-down (a run that is still busy when the
next operation comes is a race whose outcome depends on the loop's speed:
fastloop, faster, gets further); the others are rejected with ``assume`` and
counted (and the count may not become most of the examples). Besides the comparison, every
outcome is checked against an absolute oracle: what a side received is a
prefix of what the peer wrote, and all of it when no side closed early and
the run settled.

``FASTLOOP_CHAOS_EXAMPLES`` sets max_examples (default 25, which keeps this
file to a few seconds); tests/stress/transport_chaos_profile.py runs the long
profile.
"""

import asyncio
import fcntl
import os
import random
import socket
import struct
import sys

import hypothesis
import pytest
from conftest import LOOPS, keep_going, report_mismatch, report_progress, set_aside
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

MAX_EXAMPLES = int(os.environ.get("FASTLOOP_CHAOS_EXAMPLES", "25"))
SIDES = ("client", "server")
RUN_TIMEOUT = 20.0
FINAL_TIMEOUT = 5.0
DELIVERY_TIMEOUT = 3.0
# until_idle()'s budget (a scenario may set its own "idle_polls"; and
# "delivery_timeout" for DELIVERY_TIMEOUT).
IDLE_POLLS = 400

# How many examples ran, how many were compared, how many were rejected
# because the stdlib disagreed with itself or did not settle.
# "reset_lengths_differ": compared examples where a stream the peer reset
# ended at another byte on each loop (kernel timing, see key()).
# "idles_held_by_kernel": until_idle() calls (on either loop) that went on
# after the loop had been quiet for long enough, because kernel_busy() said so.
STATS = {"examples": 0, "compared": 0, "stdlib_nondeterministic": 0, "stdlib_unsettled": 0,
         "rechecked": 0, "mismatches": 0, "reset_lengths_differ": 0, "idles_held_by_kernel": 0}


class Recorder(asyncio.Protocol):
    """Records callback kinds and received bytes; may keep open after EOF."""

    def __init__(self, loop, keep_open_on_eof):
        self.events = []
        self.data = bytearray()
        self.transport = None
        self.keep_open_on_eof = keep_open_on_eof
        self.made = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")
        if not self.made.done():
            self.made.set_result(None)

    def data_received(self, data):
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data

    def eof_received(self):
        self.events.append("eof")
        return self.keep_open_on_eof

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append("lost:" + type(exc).__name__)
        if not self.lost.done():
            self.lost.set_result(None)


class BufferedRecorder(Recorder, asyncio.BufferedProtocol):
    """The same through get_buffer()/buffer_updated() (the transport's other
    native read path), with a receive buffer of a chosen size."""

    def __init__(self, loop, keep_open_on_eof, bufsize):
        super().__init__(loop, keep_open_on_eof)
        self.buf = bytearray(bufsize)

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.data_received(bytes(self.buf[:nbytes]))


# --- the operations -------------------------------------------------------

side = st.sampled_from(SIDES)
size = st.one_of(st.integers(1, 64), st.integers(65, 16 * 1024), st.integers(16 * 1024, 256 * 1024))
seed = st.integers(0, 2**32 - 1)

op = st.one_of(
    st.tuples(st.just("write"), side, size, seed),
    st.tuples(st.just("writelines"), side, st.lists(size, min_size=0, max_size=4), seed),
    st.tuples(st.just("pause_reading"), side),
    st.tuples(st.just("resume_reading"), side),
    st.tuples(st.just("limits"), side,
              st.one_of(st.none(), st.sampled_from([0, 1, 1024, 16384, 65536, 262144]))),
    st.tuples(st.just("write_eof"), side),
    st.tuples(st.just("close"), side),
    st.tuples(st.just("abort"), side),
    st.tuples(st.just("run"), st.integers(1, 8)),
    st.tuples(st.just("idle")),
)

# Shrinking SO_RCVBUF under 16 KiB on a connected socket makes Linux stall the
# transfer on zero-window probes with backoff (seconds, on either loop). Even
# 16 KiB (doubled to 32 KiB) under a window announced before the shrink makes
# the receiver drop segments that the sender then retransmits on its backed
# off timer (see until_idle()).
sndbuf = st.sampled_from([None, 2048, 4096, 16 * 1024, 64 * 1024])
rcvbuf = st.sampled_from([None, 16 * 1024, 32 * 1024, 64 * 1024])

scenario = st.fixed_dictionaries({
    "ops": st.lists(op, min_size=1, max_size=12),
    "sndbuf": st.fixed_dictionaries({s: sndbuf for s in SIDES}),
    "rcvbuf": st.fixed_dictionaries({s: rcvbuf for s in SIDES}),
    "keep_open_on_eof": st.fixed_dictionaries({s: st.booleans() for s in SIDES}),
    # None: data_received(); n: BufferedProtocol with an n-byte buffer.
    "get_buffer": st.fixed_dictionaries(
        {s: st.one_of(st.none(), st.sampled_from([1, 7, 1024, 65536, 262144])) for s in SIDES}),
})


def payload(n, s):
    return random.Random(s).randbytes(n)


# Linux's socket queue ioctls (linux/sockios.h, asm-generic/ioctls.h; the
# socket and termios modules export only some of them under these names):
# bytes unread in the receive queue, bytes in the send queue not yet
# acknowledged by the peer (sent or not), and of those the ones not sent yet.
SIOCINQ = 0x541B        # = FIONREAD
SIOCOUTQ = 0x5411       # = TIOCOUTQ
SIOCOUTQNSD = 0x894B
KERNEL_QUEUES = sys.platform.startswith("linux")


def queue_bytes(sock, request):
    """What ioctl ``request`` (SIOCINQ/SIOCOUTQ/SIOCOUTQNSD) says of ``sock``."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, bytes(4)))[0]


def open_socket(p):
    """The side's socket while it is open, else None (the transport closed it)."""
    sock = p.transport.get_extra_info("socket") if p.transport else None
    return sock if sock is not None and sock.fileno() >= 0 else None


def will_read(p):
    """The side's loop reads what arrives: open, not paused, no EOF or reset yet
    (after EOF, or once closing, the transport has no reader)."""
    t = p.transport
    return (t is not None and not t.is_closing() and t.is_reading()
            and "eof" not in p.events and not any(e.startswith("lost:") for e in p.events))


def kernel_busy(protos):
    """True while the kernel still holds bytes or a close that one side's loop
    will see without anything else happening, i.e. while the outcome of the
    next operation still depends on when a kernel timer fires.

    Loopback TCP moves bytes at once, except when the receiver's queue is
    over its SO_RCVBUF (shrunk after connect here): the receiving kernel then
    drops the segment, and the sender retransmits it on its retransmission
    timer (200 ms, doubling on every drop: a long run saw 1.6 s), or probes a
    zero window on its persist timer. Meanwhile no callback runs, so the
    loop-level snapshot of until_idle() is stable. Busy is then:

    * bytes in a side's send queue (unsent or unacknowledged: SIOCOUTQ)
      while its peer reads, or after the peer closed (an RST comes back);
      not while the peer is paused or closing with its reader removed: a
      full window to a side that does not read is a stable state;
    * unread bytes (SIOCINQ) on a side that reads;
    * a side closed (its socket may be gone, its kernel still sending the
      last bytes and the FIN) while its peer reads and has seen neither EOF
      nor a reset: both must arrive.
    """
    if not KERNEL_QUEUES:
        return False
    for s, peer in (("client", "server"), ("server", "client")):
        p, q = protos[s], protos[peer]
        sock, peer_sock = open_socket(p), open_socket(q)
        if sock is not None:
            if queue_bytes(sock, SIOCOUTQ) and (will_read(q) or peer_sock is None):
                return True
            if will_read(p) and queue_bytes(sock, SIOCINQ):
                return True
        if p.transport is not None and p.transport.is_closing() and will_read(q):
            return True
    return False


async def until_idle(protos, polls=IDLE_POLLS):
    """Run the loop until nothing changes for a few polls; False if it was
    still busy after ``polls`` polls.

    Nothing changing means the same bytes and callbacks seen by each side,
    the same write buffer sizes, and a quiet kernel (kernel_busy()): a long
    run found a sequence whose client had 23,205 B sent but dropped by the
    server's full receive queue (SIOCOUTQ 23,205, SIOCOUTQNSD 0, the drop
    counted in TcpExtTCPRcvQDrop) at an "idle" that only looked at the loop;
    the client's kernel retransmitted them on its backed-off timer (the
    fixed case "retransmit_after_drop" below), and whether that came before
    the server's abort two operations later was a race between the loop's
    speed and the timer: the stdlib, reading 1 B per iteration, had backed
    the timer off to 1.6 s and lost the race; fastloop, faster, had it at
    400 ms and won it on some runs, reading the whole stream and the EOF.
    """
    def snapshot():
        return tuple(
            (len(p.data), len(p.events),
             p.transport.get_write_buffer_size() if p.transport else -1)
            for p in protos.values())

    last, stable, loop_stable, held = snapshot(), 0, 0, False
    try:
        for _ in range(polls):
            for _ in range(3):
                await asyncio.sleep(0)
            await asyncio.sleep(0.002)
            now = snapshot()
            loop_stable = loop_stable + 1 if now == last else 0
            stable = stable + 1 if loop_stable and not kernel_busy(protos) else 0
            held |= loop_stable == 4 and stable < 4     # where it used to stop
            if stable >= 4:
                return True
            last = now
        return False
    finally:
        STATS["idles_held_by_kernel"] += held


async def play(loop, sc):
    protos = {s: Recorder(loop, sc["keep_open_on_eof"][s])
              if not sc.get("get_buffer", {}).get(s)
              else BufferedRecorder(loop, sc["keep_open_on_eof"][s], sc["get_buffer"][s])
              for s in SIDES}
    results = []
    written = {s: bytearray() for s in SIDES}
    closed = set()
    discarded = set()   # sides that aborted with bytes still in their transport's buffer
    settled = True
    server = await loop.create_server(lambda: protos["server"], "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await loop.create_connection(lambda: protos["client"], "127.0.0.1", port)
    await protos["server"].made
    server.close()
    for s in SIDES:
        sock = protos[s].transport.get_extra_info("socket")
        if sc["sndbuf"][s]:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sc["sndbuf"][s])
        if sc["rcvbuf"][s]:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sc["rcvbuf"][s])

    for o in sc["ops"]:
        kind = o[0]
        t = protos[o[1]].transport if kind not in ("run", "idle") else None
        try:
            if kind == "write":
                data = payload(o[2], o[3])
                t.write(data)
                if not t._conn_lost:
                    written[o[1]] += data
            elif kind == "writelines":
                chunks = [payload(n, o[3] + i) for i, n in enumerate(o[2])]
                t.writelines(chunks)
                if not t._conn_lost:
                    written[o[1]] += b"".join(chunks)
            elif kind == "pause_reading":
                t.pause_reading()
            elif kind == "resume_reading":
                t.resume_reading()
            elif kind == "limits":
                t.set_write_buffer_limits(high=o[2])
            elif kind == "write_eof":
                t.write_eof()
            elif kind == "close":
                closed.add(o[1])
                t.close()
            elif kind == "abort":
                closed.add(o[1])
                if not t.is_closing() and t.get_write_buffer_size():
                    discarded.add(o[1])
                t.abort()
            elif kind == "run":
                for _ in range(o[1]):
                    await asyncio.sleep(0)
            elif kind == "idle":
                settled &= await until_idle(protos, sc.get("idle_polls", IDLE_POLLS))
            results.append(kind)
        except Exception as exc:  # what the operation raised is part of the outcome
            results.append(f"{kind}:{type(exc).__name__}")

    # Wind down the same way on both loops: let everything flow, then close.
    for s in SIDES:
        if not protos[s].transport.is_closing():
            protos[s].transport.resume_reading()
    await until_idle(protos)
    # Idle is not delivered: with small receive windows the kernel may stall
    # a transfer for a zero-window probe, and a closed sender's last bytes may
    # still be in flight. Wait (bounded) until each side has what its peer's
    # transport accepted (and EOF too if the sender is gone), unless it will
    # read no more (EOF seen, or closing).
    def expecting(receiver, sender):
        p = protos[receiver]
        if "eof" in p.events or p.transport.is_closing():
            return False
        return len(p.data) < len(written[sender]) or protos[sender].transport.is_closing()

    deadline = loop.time() + sc.get("delivery_timeout", DELIVERY_TIMEOUT)
    while loop.time() < deadline and (expecting("client", "server")
                                      or expecting("server", "client")):
        await asyncio.sleep(0.002)
    settled &= not (expecting("client", "server") or expecting("server", "client"))
    for s in SIDES:
        protos[s].transport.close()
    try:
        await asyncio.wait_for(asyncio.gather(*(p.lost for p in protos.values())), FINAL_TIMEOUT)
    except asyncio.TimeoutError:
        results.append("final:timeout")
        for s in SIDES:
            protos[s].transport.abort()
        await until_idle(protos, polls=50)
    await server.wait_closed()
    return {
        "data": {s: bytes(protos[s].data) for s in SIDES},
        "events": {s: protos[s].events for s in SIDES},
        "results": results,
        "written": {s: bytes(written[s]) for s in SIDES},
        "closed": closed,
        "discarded": discarded,
        "settled": settled,
    }


def run_on(loop_name, sc):
    loop = LOOPS[loop_name]()
    errors = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(
        (ctx.get("message"), type(ctx.get("exception")).__name__)))
    try:
        out = loop.run_until_complete(asyncio.wait_for(play(loop, sc), RUN_TIMEOUT))
    except asyncio.TimeoutError:
        # The whole sequence took longer than RUN_TIMEOUT (a starved machine,
        # or a hang): no outcome to compare, and not settled. For the stdlib
        # that rejects the example; for fastloop it is a difference.
        out = {"data": {}, "events": {}, "results": ["run:timeout"], "written": {},
               "closed": set(), "settled": False}
    finally:
        loop.close()
    out["errors"] = sorted(errors)
    return out


# How a side's connection ends when its peer reset it: the peer's socket was
# closed with unread data in its receive queue (or aborted), and Linux then
# sends RST and discards the peer's send queue, whatever of it was not sent yet.
RESET_BY_PEER = ("lost:ConnectionResetError", "lost:BrokenPipeError")


def reset_by_peer(out, s):
    events = out["events"].get(s)
    return bool(events) and events[-1] in RESET_BY_PEER


def peer_discarded(out, s):
    """Whether ``s``'s peer aborted with bytes still in its transport's buffer."""
    peer = SIDES[1 - SIDES.index(s)]
    return peer in out.get("discarded", ())


def per_direction(events):
    """One side's callbacks as two sequences, not interleaved: what it read
    (made, data, eof, lost) and the flow control of what it wrote."""
    reading = []
    for e in events:
        if e not in ("pause", "resume") and not (e == "data" and reading[-1:] == ["data"]):
            reading.append(e)
    return reading, [e for e in events if e in ("pause", "resume")]


def key(out):
    """What must be equal between the loops (the 'written' log is an oracle input;
    each side's callbacks by direction, see same()).

    A stream the peer reset is compared by the oracle only (a prefix of what
    the peer wrote), not to the byte: where it ends is the peer's kernel send
    queue at the reset, i.e. how much of the peer's last send(2) the receiver's
    window let out, and that window is reopened by the receiver's delayed-ACK
    timer (wall clock) by as much as the receiver has read by then (the loop's
    speed). A long run found a sequence whose server got 1,820 B less on the
    stdlib (under a load of 27) and all of it on fastloop (the fixed case
    "close_with_unread_data" below): the same sends and the same close on both
    loops, only the last 1,820 B still unsent (SIOCOUTQNSD) at the client's
    close on the stdlib. On 3.11 each loop gives both lengths across runs; on
    3.15 the stdlib loses them and fastloop does not, until a 4 us callback per
    iteration slows fastloop to the stdlib's pace, and then it loses them too.

    So is a stream whose sender aborted with bytes still in its transport's
    buffer: abort() drops them, and how many went to the kernel before it is
    how often the socket was writable in the iterations before, which the
    kernel's window decides (its receive-buffer autotuning and delayed ACKs
    run on the wall clock). A long run found a server that aborts 8
    iterations after queueing 313,775 B, its client getting 241,099 B on
    fastloop (5 of 5) and on the stdlib in 2 runs of 3, 223,232 B in the
    third (the fixed case "abort_with_queued_data" below).

    A stream that was not reset is compared to the byte. That is fair only
    because until_idle() waits for the kernel too (kernel_busy()): bytes a
    receiver's kernel dropped and the sender's kernel will retransmit later
    are still to come, and an "idle" that ignored them let the loop's speed
    decide how much of them arrived before the next operation.
    """
    data = {s: "reset: a prefix of the peer's stream" if reset_by_peer(out, s)
            else "aborted: a prefix of the peer's stream" if peer_discarded(out, s) else d
            for s, d in out["data"].items()}
    events = {s: per_direction(e) for s, e in out["events"].items()}
    return (data, events, out["results"], out["errors"])


def same(x, y):
    """Whether two runs' outcomes are equal (key()).

    A side's callbacks are compared as two sequences, each in its order: what
    it read (made, data, eof, lost) and the flow control of what it wrote
    (pause, resume). How the two interleave, its data_received against its
    resume_writing, is not compared: the first follows the peer's writes and
    this side's reads, the second the peer's reads and the kernel's ACKs and
    windows, two directions that the loop does not order against each other.
    A 1,000-example run on 3.15 found a server whose last reads of the
    client's 256 KiB (dropped twice by its receive queue, shrunk to 16 KiB)
    came after its resume_writing on fastloop in 3 runs of 5 and before it on
    the stdlib in 5 of 5, the client reading 1 B per iteration (the fixed case
    "retransmit_during_drain" below); with a 6 us callback per iteration,
    fastloop gave the stdlib's order 5 times of 5. A long run then found the
    same without any retransmission: a server reading 7 B per iteration, the
    stdlib giving both orders (2 runs of 4 each), fastloop one, and both once
    slowed by 8 us per iteration (the fixed case "interleaving_of_directions").
    """
    return key(x) == key(y)


def check_oracle(out):
    """Loop-independent invariants of one run."""
    if out["results"] == ["run:timeout"]:
        return      # nothing was recorded (run_on); a difference from a run that finished
    for s, peer in (("client", "server"), ("server", "client")):
        got, sent = out["data"][s], out["written"][peer]
        assert sent.startswith(got), f"{s} received bytes its peer never wrote"
        if not out["closed"] and "final:timeout" not in out["results"] and out["settled"]:
            # Nobody closed early (the wind-down drains before closing): a
            # side that closes with unread data in flight resets the peer.
            # Nor did the wind-down run out of time: a retransmission timer
            # backed off past DELIVERY_TIMEOUT leaves bytes in the kernel (a
            # 1,000-example run once saw fastloop's client 50 KB short that
            # way, and the stdlib unsettled on the replay). An unsettled
            # fastloop run is still held to the stdlib's settled outcome by
            # key(), with a recheck, so a loop that loses bytes is caught.
            assert got == sent, f"{s} received {len(got)} of {len(sent)} bytes"
        events = out["events"][s]
        assert events[0] == "made", events
        assert events[-1].startswith("lost:"), events
        assert sum(e.startswith("lost:") for e in events) == 1, events
        assert events.count("resume") <= events.count("pause"), events


def differential(sc):
    STATS["examples"] += 1
    report_progress("transport_chaos", STATS)
    a = run_on("asyncio", sc)
    b = run_on("asyncio", sc) if a["settled"] else a
    if not (a["settled"] and b["settled"]):
        STATS["stdlib_unsettled"] += 1
        note("the stdlib's run did not settle: its outcome depends on the loop's speed")
        return set_aside()
    if not same(a, b):
        STATS["stdlib_nondeterministic"] += 1
        note(f"stdlib disagrees with itself: {key(a)!r:.500} vs {key(b)!r:.500}")
        return set_aside()
    check_oracle(a)
    f = run_on("fastloop", sc)
    check_oracle(f)
    if not same(f, a):
        # One more round of each, so that timing noise the two stdlib runs
        # happened not to show does not pass for a fastloop bug.
        STATS["rechecked"] += 1
        c = run_on("asyncio", sc)
        if not c["settled"]:
            STATS["stdlib_unsettled"] += 1
            return set_aside()
        if not same(c, a):
            STATS["stdlib_nondeterministic"] += 1
            return set_aside()
        f = run_on("fastloop", sc)
        if not same(f, a):
            report_mismatch("transport_chaos", sc, describe(a, f))
            if keep_going():
                STATS["mismatches"] += 1
                return
    assert same(f, a), describe(a, f)
    STATS["compared"] += 1
    if f["data"] != a["data"]:
        STATS["reset_lengths_differ"] += 1


def describe(a, f):
    lines = ["fastloop and the stdlib loop differ:"]
    for name in ("events", "results", "errors"):
        if a[name] != f[name]:
            lines.append(f"  {name}: stdlib={a[name]!r} fastloop={f[name]!r}")
    for s in SIDES:
        got_a, got_f = a["data"].get(s, b""), f["data"].get(s, b"")
        if got_a != got_f:
            lines.append(f"  {s} data: stdlib {len(got_a)} B, fastloop {len(got_f)} B")
    return "\n".join(lines)


@settings(max_examples=MAX_EXAMPLES, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(scenario)
def test_transport_chaos_matches_stdlib(sc):
    differential(sc)


def test_stdlib_is_deterministic_enough():
    # Runs after the property (file order): if most generated sequences were
    # rejected because the stdlib disagreed with itself or did not settle,
    # the comparison above checked next to nothing.
    if STATS["examples"] == 0:
        pytest.skip("the chaos property did not run in this session")
    print(f"\ntransport chaos: {STATS}")
    assert STATS["mismatches"] == 0, STATS
    assert STATS["compared"] * 2 >= STATS["examples"], STATS


# Fixed sequences: the oracle and the comparison on cases known to matter,
# whatever hypothesis happens to generate.
FIXED = {
    "flow_control": {
        "ops": [("pause_reading", "server"), ("limits", "client", 1024),
                ("write", "client", 200_000, 1), ("idle",), ("resume_reading", "server"),
                ("idle",), ("write_eof", "client"), ("idle",)],
        "sndbuf": {"client": 4096, "server": None}, "rcvbuf": {"client": None, "server": 16384},
        "keep_open_on_eof": {"client": False, "server": True},
    },
    "writelines_then_close": {
        "ops": [("writelines", "server", [1, 70_000, 3, 262_144], 7), ("close", "server"),
                ("write", "server", 10, 2), ("idle",)],
        "sndbuf": {"client": None, "server": 2048}, "rcvbuf": {"client": 16384, "server": None},
        "keep_open_on_eof": {"client": False, "server": False},
    },
    "write_after_eof_raises": {
        "ops": [("write_eof", "client"), ("write", "client", 5, 3), ("run", 3),
                ("write", "server", 1000, 4), ("idle",)],
        "sndbuf": {"client": None, "server": None}, "rcvbuf": {"client": None, "server": None},
        "keep_open_on_eof": {"client": False, "server": True},
    },
    "get_buffer_small": {
        "ops": [("write", "client", 100_000, 8), ("write_eof", "client"),
                ("writelines", "server", [3000, 5], 9), ("idle",)],
        "sndbuf": {"client": 2048, "server": None}, "rcvbuf": {"client": None, "server": 16384},
        "keep_open_on_eof": {"client": False, "server": True},
        "get_buffer": {"client": 1024, "server": 7},
    },
    # Found by a long run (see key()): the client closes while the paused
    # server has not read its 198,266 B, the server then answers with 39,827 B
    # the closing client never reads, so the client's socket resets the
    # connection when its write buffer has drained; the server reads 7 B per
    # event meanwhile.
    "close_with_unread_data": {
        "ops": [("pause_reading", "server"), ("writelines", "client", [198266], 475078),
                ("run", 1), ("run", 2), ("close", "client"), ("limits", "client", None),
                ("resume_reading", "server"), ("limits", "client", None),
                ("resume_reading", "server"), ("write", "server", 39827, 1895), ("idle",),
                ("idle",)],
        "sndbuf": {"client": 2048, "server": 2048}, "rcvbuf": {"client": 32768, "server": 32768},
        "keep_open_on_eof": {"client": True, "server": False},
        "get_buffer": {"client": 7, "server": 7},
    },
    # Found by a long run (see key()): the server queues 313,775 B, half-closes,
    # and aborts 8 iterations later with most of it still in its buffer.
    "abort_with_queued_data": {
        "ops": [("writelines", "server", [30, 21096, 55820, 236823], 184130594),
                ("limits", "client", None), ("limits", "client", 65536),
                ("limits", "client", 1024), ("write", "client", 32, 40189541),
                ("write_eof", "server"), ("resume_reading", "server"), ("run", 8),
                ("abort", "server"), ("close", "server"), ("write_eof", "client"),
                ("write_eof", "client")],
        "sndbuf": {"client": 16384, "server": 16384}, "rcvbuf": {"client": None, "server": None},
        "keep_open_on_eof": {"client": True, "server": False},
        "get_buffer": {"client": None, "server": None},
    },
    "abort_with_unread_data": {
        "ops": [("pause_reading", "client"), ("write", "server", 100_000, 5), ("idle",),
                ("abort", "client"), ("write", "server", 100, 6), ("idle",)],
        "sndbuf": {"client": None, "server": 4096}, "rcvbuf": {"client": 16384, "server": None},
        "keep_open_on_eof": {"client": False, "server": False},
    },
    # Found by a long run (see until_idle()): the server reads 1 B per event
    # from a receive queue shrunk to 16 KiB; its kernel drops 23,205 B of the
    # client's 55,973 B, which the client's kernel retransmits on its backed
    # off timer, after the first idle had been called. The server's abort
    # (op 8) must come after all of it and the EOF of the client's close. At
    # 1 B per iteration the stdlib needs longer than the default budget.
    "retransmit_after_drop": {
        "ops": [("run", 4), ("writelines", "server", [231583, 1082, 12946, 262144], 0),
                ("writelines", "client", [12, 24946, 31015], 133353), ("idle",),
                ("write_eof", "server"), ("idle",), ("writelines", "client", [1035], 78),
                ("abort", "server"), ("run", 4),
                ("writelines", "client", [7, 248200, 40058, 5251], 8021126),
                ("close", "client"), ("abort", "server")],
        "sndbuf": {"client": 16384, "server": 2048}, "rcvbuf": {"client": 65536, "server": 16384},
        "keep_open_on_eof": {"client": False, "server": False},
        "get_buffer": {"client": None, "server": 1},
        "idle_polls": 3000,
    },
    # Found by a 1,000-example run on 3.15 (see same()): in the wind-down the
    # client reads the server's 256 KiB 1 B per iteration, which decides when
    # the server resumes writing, while the server's receive queue (shrunk to
    # 16 KiB) drops the client's 256 KiB for the client's kernel to
    # retransmit. The stdlib needs longer than the default delivery bound.
    # Found by a long run (see same()): the server reads 7 B per iteration
    # while both sides write through 2 KiB send buffers.
    "interleaving_of_directions": {
        "ops": [("write", "server", 25645, 4097), ("write", "client", 252579, 455),
                ("write", "server", 25645, 4097), ("write", "server", 48277, 0),
                ("write", "server", 25645, 4097)],
        "sndbuf": {"client": 2048, "server": 2048}, "rcvbuf": {"client": 16384, "server": None},
        "keep_open_on_eof": {"client": False, "server": False},
        "get_buffer": {"client": None, "server": 7},
    },
    "retransmit_during_drain": {
        "ops": [("pause_reading", "client"), ("limits", "server", None), ("limits", "client", 1),
                ("run", 1), ("limits", "client", 65536), ("limits", "client", 0),
                ("limits", "server", None), ("write", "server", 262144, 90184),
                ("limits", "server", 262144), ("idle",), ("resume_reading", "server"),
                ("write", "client", 262144, 4483628)],
        "sndbuf": {"client": 16384, "server": 16384}, "rcvbuf": {"client": 65536, "server": 16384},
        "keep_open_on_eof": {"client": True, "server": True},
        "get_buffer": {"client": 1, "server": 1024},
        "delivery_timeout": 12.0,
    },
}


def settled_pair(sc, attempts=5):
    """The stdlib's and fastloop's outcome of ``sc``, from the first attempt
    on which both runs settled: on a loaded machine a transfer through small
    windows can stall (zero-window probes back off for seconds) past the
    harness's bounds, and what the peer saw then depends on when the stall
    ended, not on the loop (a 3.14 suite run once saw the server's EOF on
    fastloop only, the stdlib's run having closed before it arrived)."""
    for _ in range(attempts):
        a = run_on("asyncio", sc)
        f = run_on("fastloop", sc)
        # A difference a loop really has reproduces on every attempt; one
        # made by the box's load (the stdlib's server closing before the
        # peer's EOF reached it, seen on 3.11 and 3.15 runs with another
        # suite on the other core) does not, so it is tried again too.
        if a["settled"] and f["settled"] and same(a, f):
            break
    return a, f


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_sequence_matches_stdlib(name):
    a, f = settled_pair(FIXED[name])
    check_oracle(a)
    check_oracle(f)
    assert same(f, a), describe(a, f)


def test_fixed_sequences_outcomes():
    # The harness itself: what the stdlib does on the fixed cases, so that a
    # harness that records nothing cannot pass the comparisons vacuously.
    for _ in range(5):    # settled, as settled_pair() asks (a loaded box stalls it)
        out = run_on("asyncio", FIXED["flow_control"])
        if out["settled"]:
            break
    assert out["data"]["server"] == payload(200_000, 1)
    assert out["events"]["client"][:3] == ["made", "pause", "resume"]
    assert "eof" in out["events"]["server"]
    out = run_on("asyncio", FIXED["write_after_eof_raises"])
    assert "write:RuntimeError" in out["results"]
    assert out["data"]["client"] == payload(1000, 4)
    out = run_on("asyncio", FIXED["get_buffer_small"])
    assert out["data"]["server"] == payload(100_000, 8)
    assert out["data"]["client"] == payload(3000, 9) + payload(5, 10)
    out = run_on("asyncio", FIXED["close_with_unread_data"])
    assert out["events"] == {"client": ["made", "pause", "resume", "lost:NoneType"],
                             "server": ["made", "data", "lost:ConnectionResetError"]}
    assert out["data"]["client"] == b""
    assert 0 < len(out["data"]["server"]) <= 198266
    assert payload(198266, 475078).startswith(out["data"]["server"])
    out = run_on("asyncio", FIXED["abort_with_unread_data"])
    assert out["events"]["client"][-1] == "lost:NoneType"
    assert out["events"]["server"][-1] == "lost:ConnectionResetError"
    assert out["results"].count("abort") == 1
    for _ in range(5):
        out = run_on("asyncio", FIXED["retransmit_after_drop"])
        if out["settled"]:
            break
    # Every byte of the client's first writelines, the retransmitted ones too,
    # and then the EOF of its close reached the server before it aborted.
    assert out["data"]["server"] == b"".join(
        payload(n, 133353 + i) for i, n in enumerate([12, 24946, 31015]))
    # Per direction, as same() compares. How the server's own writes fared is
    # the client's and the kernel's timing: under the load of two test suites
    # at once the stdlib's server once read its first data before its
    # pause_writing (3.12) and once never paused at all (3.13).
    reading, writing = per_direction(out["events"]["server"])
    assert reading == ["made", "data", "eof", "lost:NoneType"]
    assert writing in ([], ["pause", "resume"])


def test_key_compares_a_reset_stream_by_the_oracle_only():
    # The harness itself: two outcomes that differ only in where a stream the
    # peer reset ended are the same; any other difference in the bytes is not.
    sent = payload(5000, 3)

    def outcome(server_got, server_end, client_got=b""):
        return {"data": {"client": client_got, "server": server_got},
                "events": {"client": ["made", "lost:NoneType"],
                           "server": ["made", "data", server_end]},
                "results": ["write", "close", "idle"], "errors": [],
                "written": {"client": sent, "server": b""}, "closed": {"client"},
                "settled": True}

    full = outcome(sent, "lost:ConnectionResetError")
    cut = outcome(sent[:3180], "lost:ConnectionResetError")
    for out in (full, cut):
        check_oracle(out)
    assert key(full) == key(cut)
    assert key(outcome(sent, "lost:BrokenPipeError")) == key(outcome(b"", "lost:BrokenPipeError"))
    # Not reset: every byte counts.
    assert key(outcome(sent, "lost:NoneType")) != key(outcome(sent[:3180], "lost:NoneType"))
    # The reset side's peer is compared to the byte all the same.
    assert key(outcome(sent, "lost:ConnectionResetError", b"ab")) != key(
        outcome(sent, "lost:ConnectionResetError", b"a"))
    # And the oracle still rejects bytes the peer never wrote.
    with pytest.raises(AssertionError):
        check_oracle(outcome(sent[:10] + b"?", "lost:ConnectionResetError"))


def test_key_compares_what_an_aborting_peer_had_queued_by_the_oracle_only():
    # The harness itself: a side whose peer aborted with bytes in its buffer
    # is compared as a prefix; a peer that aborted with an empty buffer, or
    # closed, owes every byte.
    sent = payload(5000, 4)

    def outcome(client_got, discarded):
        return {"data": {"client": client_got, "server": b""},
                "events": {"client": ["made", "data", "eof", "lost:NoneType"],
                           "server": ["made", "lost:NoneType"]},
                "results": ["write", "run", "abort"], "errors": [],
                "written": {"client": b"", "server": sent}, "closed": {"server"},
                "discarded": discarded, "settled": True}

    assert key(outcome(sent, {"server"})) == key(outcome(sent[:1234], {"server"}))
    assert key(outcome(sent, set())) != key(outcome(sent[:1234], set()))
    # Only the aborting side's peer is loosened.
    assert key(outcome(sent, {"client"})) != key(outcome(sent[:1234], {"client"}))
    with pytest.raises(AssertionError):
        check_oracle(outcome(sent[:10] + b"?", {"server"}))


@pytest.mark.skipif(not KERNEL_QUEUES, reason="SIOCINQ/SIOCOUTQ are Linux's socket ioctls")
def test_kernel_busy_sees_what_the_loop_does_not():
    # The harness itself: kernel_busy() on a real connection of the stdlib
    # loop, in states reached by its own operations, not by timing.
    loop = asyncio.SelectorEventLoop()

    async def main():
        protos = {s: Recorder(loop, False) for s in SIDES}
        server = await loop.create_server(lambda: protos["server"], "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await loop.create_connection(lambda: protos["client"], "127.0.0.1", port)
        await protos["server"].made
        server.close()
        protos["server"].transport.pause_reading()
        sent = payload(1 << 20, 1)
        protos["client"].transport.write(sent)
        assert await until_idle(protos)
        # A full window to a paused reader is a stable state, though both
        # kernels hold bytes.
        client_sock = open_socket(protos["client"])
        server_sock = open_socket(protos["server"])
        assert queue_bytes(client_sock, SIOCOUTQNSD) > 0     # unsent: the window is shut
        assert queue_bytes(server_sock, SIOCINQ) > 0
        assert not kernel_busy(protos)
        # Once the server reads, they are bytes in flight.
        protos["server"].transport.resume_reading()
        assert kernel_busy(protos)
        assert await until_idle(protos, polls=5000)
        assert protos["server"].data == sent
        assert queue_bytes(client_sock, SIOCOUTQ) == 0
        assert not kernel_busy(protos)
        # A close is in flight until the reading peer has seen its EOF.
        protos["client"].transport.close()
        assert kernel_busy(protos)
        assert await until_idle(protos)
        assert "eof" in protos["server"].events
        assert not kernel_busy(protos)
        await server.wait_closed()

    try:
        loop.run_until_complete(asyncio.wait_for(main(), RUN_TIMEOUT))
    finally:
        loop.close()


def test_oracle_holds_an_unsettled_run_to_a_prefix():
    # The harness itself: all of the peer's bytes are owed only by a run whose
    # wind-down delivered within its bound; any run, a prefix of them.
    sent = payload(5000, 4)

    def outcome(server_got, settled):
        return {"data": {"client": b"", "server": server_got},
                "events": {"client": ["made", "lost:NoneType"],
                           "server": ["made", "data", "lost:NoneType"]},
                "results": ["write", "idle"], "errors": [],
                "written": {"client": sent, "server": b""}, "closed": set(),
                "settled": settled}

    check_oracle(outcome(sent, True))
    check_oracle(outcome(sent[:3000], False))
    with pytest.raises(AssertionError):
        check_oracle(outcome(sent[:3000], True))
    with pytest.raises(AssertionError):
        check_oracle(outcome(sent[:10] + b"?", False))
    # The comparison with the stdlib's settled run still sees the lost bytes.
    assert key(outcome(sent[:3000], False)) != key(outcome(sent, True))


def test_same_compares_each_direction_not_their_interleaving():
    # The harness itself: a side's reads against its own resume_writing are
    # not compared; what it read, and each direction's order, always.
    def outcome(server_events, server_got=b"abc"):
        return {"data": {"client": b"xyz", "server": server_got},
                "events": {"client": ["made", "data", "lost:NoneType"],
                           "server": server_events},
                "results": ["write", "write", "idle"], "errors": [],
                "written": {"client": b"abc", "server": b"xyz"}, "closed": set(),
                "settled": True}

    before = ["made", "pause", "data", "resume", "lost:NoneType"]
    after = ["made", "pause", "data", "resume", "data", "lost:NoneType"]
    assert per_direction(after) == (["made", "data", "lost:NoneType"], ["pause", "resume"])
    assert same(outcome(before), outcome(after))
    assert not same(outcome(before), outcome(before, b"ab"))
    assert not same(outcome(before),
                    outcome(["made", "data", "pause", "resume", "eof", "lost:NoneType"]))
    assert not same(outcome(before), outcome(["made", "data", "lost:NoneType"]))
    assert not same(outcome(before), outcome(["made", "pause", "data", "lost:NoneType"]))


def test_set_aside_rejects_except_in_a_long_run(monkeypatch, tmp_path):
    # The harness itself: an example set aside is invalid to Hypothesis, but
    # in a long run (keep_going) it returns, so Hypothesis never sees one
    # input pass once and be rejected later (it stops such a run as flaky).
    ran = []

    @settings(max_examples=5, database=None,
              suppress_health_check=[HealthCheck.filter_too_much])
    @given(st.integers())
    def example(_):
        ran.append(set_aside())

    monkeypatch.delenv("FASTLOOP_PROGRESS_DIR", raising=False)
    with pytest.raises(hypothesis.errors.Unsatisfiable):
        example()
    assert ran == []
    monkeypatch.setenv("FASTLOOP_PROGRESS_DIR", str(tmp_path))
    monkeypatch.setenv("FASTLOOP_KEEP_GOING", "1")
    example()
    assert ran and ran == [None] * len(ran)
