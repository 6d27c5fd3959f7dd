"""Differential chaos on datagram transports: fastloop against the stdlib loop.

Hypothesis generates random sequences of operations on two UDP endpoints on
127.0.0.1, an unconnected one ("server") and one connected to it ("client"):
sendto of 0 B .. 70,000 B (over the UDP limit) to the peer as a fresh tuple,
to the tuple a datagram arrived with, to no address, to a closed port, to an
invalid port, to the wrong address on the connected side; bytes, bytearray
and memoryview data; close, abort, pause/resume_reading, a high-water mark
of 0 (so pause_writing fires on anything queued), and "run the loop N
iterations". Each sequence runs on fastloop and on asyncio.SelectorEventLoop
and must give the same outcome: every protocol call on each side in order
(datagram length and the sender's role, error_received's exception,
pause/resume_writing, connection_lost), what each operation raised, and the
exception-handler messages.

A sequence counts only if the stdlib loop gives the same outcome on two runs
(the others are rejected with ``assume`` and counted; they may not become
most of the examples). Besides the comparison, an absolute oracle: each side
sees connection_made first and connection_lost once, last, and every
datagram a side received was sent by the other side, in order.

``FASTLOOP_CHAOS_EXAMPLES`` sets max_examples (default 25).
"""

import asyncio
import os

import pytest
from conftest import set_aside
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from side_by_side import describe

import fastloop

MAX_EXAMPLES = int(os.environ.get("FASTLOOP_CHAOS_EXAMPLES", "25"))
SIDES = ("server", "client")
STATS = {"examples": 0, "stdlib_nondeterministic": 0}
LOOP_FACTORIES = {"fastloop": fastloop.new_event_loop, "asyncio": asyncio.SelectorEventLoop}


class Recorder(asyncio.DatagramProtocol):
    def __init__(self, name, out, roles):
        self.name = name
        self.out = out
        self.roles = roles
        self.transport = None
        self.last_addr = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.out["events"][self.name].append("made")

    def datagram_received(self, data, addr):
        self.last_addr = addr
        self.out["events"][self.name].append(
            ("datagram", len(data), data[:1].hex(), self.roles.get(addr, repr(addr))))

    def error_received(self, exc):
        self.out["events"][self.name].append(("error", *describe(exc)))

    def pause_writing(self):
        self.out["events"][self.name].append("pause")

    def resume_writing(self):
        self.out["events"][self.name].append("resume")

    def connection_lost(self, exc):
        self.out["events"][self.name].append(("lost", None if exc is None else describe(exc)))
        if not self.lost.done():
            self.lost.set_result(None)


SIZES = st.sampled_from([0, 1, 7, 1024, 9000, 65507, 70000])
KINDS = st.sampled_from(["bytes", "bytearray", "memoryview"])
SERVER_TARGETS = st.sampled_from(["fresh", "known", "none", "dead", "bad_port"])
CLIENT_TARGETS = st.sampled_from(["none", "same", "wrong"])
OPS = st.one_of(
    st.tuples(st.just("send"), st.just("server"), SIZES, KINDS, SERVER_TARGETS),
    st.tuples(st.just("send"), st.just("client"), SIZES, KINDS, CLIENT_TARGETS),
    st.tuples(st.sampled_from(["close", "abort", "pause", "resume", "high0"]),
              st.sampled_from(SIDES)),
    st.tuples(st.just("run"), st.integers(0, 4)),
)
scenario = st.lists(OPS, min_size=1, max_size=25)


async def play(loop, ops, out):
    roles = {}
    counter = [0]
    st_, sp = await loop.create_datagram_endpoint(
        lambda: Recorder("server", out, roles), local_addr=("127.0.0.1", 0))
    server_addr = st_.get_extra_info("sockname")
    ct, cp = await loop.create_datagram_endpoint(
        lambda: Recorder("client", out, roles), remote_addr=server_addr)
    client_addr = ct.get_extra_info("sockname")
    roles[server_addr] = "server"
    roles[client_addr] = "client"
    dead = ("127.0.0.1", 9)     # discard: nobody listens on it here
    transports = {"server": st_, "client": ct}
    protocols = {"server": sp, "client": cp}
    for op in ops:
        try:
            if op[0] == "send":
                _, side, size, kind, target = op
                counter[0] += 1
                data = bytes([counter[0] % 256]) * size
                data = {"bytes": data, "bytearray": bytearray(data),
                        "memoryview": memoryview(data)}[kind]
                if side == "server":
                    addr = {"fresh": tuple(client_addr),
                            "known": sp.last_addr or tuple(client_addr),
                            "none": None, "dead": dead,
                            "bad_port": ("127.0.0.1", 70000)}[target]
                    st_.sendto(data, addr)
                else:
                    addr = {"none": None, "same": tuple(server_addr), "wrong": dead}[target]
                    ct.sendto(data, addr)
            elif op[0] == "run":
                for _ in range(op[1]):
                    await asyncio.sleep(0)
            else:
                t = transports[op[1]]
                if op[0] == "close":
                    t.close()
                elif op[0] == "abort":
                    t.abort()
                elif op[0] == "pause":
                    t.pause_reading()
                elif op[0] == "resume":
                    t.resume_reading()
                else:
                    t.set_write_buffer_limits(high=0)
            out["results"].append("ok")
        except Exception as exc:  # noqa: BLE001 - compared across loops
            out["results"].append(describe(exc))
        out["results"].append(tuple(t.get_write_buffer_size() for t in transports.values()))
    for _ in range(5):
        await asyncio.sleep(0)
    for t in transports.values():
        t.close()
    await asyncio.wait_for(asyncio.gather(*(p.lost for p in protocols.values())), 5)


def run_on(name, ops):
    loop = LOOP_FACTORIES[name]()
    out = {"events": {s: [] for s in SIDES}, "results": [], "errors": []}

    def handler(_loop, ctx):
        exc = ctx.get("exception")
        out["errors"].append((ctx["message"], None if exc is None else describe(exc)))

    loop.set_exception_handler(handler)
    try:
        loop.run_until_complete(asyncio.wait_for(play(loop, ops, out), 20))
    finally:
        loop.close()
    return out


def check_oracle(out, ops):
    for side in SIDES:
        events = out["events"][side]
        assert events[0] == "made", events
        assert events[-1][0] == "lost", events
        assert sum(1 for e in events if e[0] == "lost") == 1, events
        other = "client" if side == "server" else "server"
        assert all(e[3] == other for e in events if e[0] == "datagram"), events


def differential(ops):
    STATS["examples"] += 1
    a = run_on("asyncio", ops)
    b = run_on("asyncio", ops)
    if a != b:
        STATS["stdlib_nondeterministic"] += 1
        note(f"stdlib disagrees with itself: {a!r:.500} vs {b!r:.500}")
        return set_aside()
    check_oracle(a, ops)
    f = run_on("fastloop", ops)
    check_oracle(f, ops)
    assert f == a, f"fastloop {f!r}\nstdlib   {a!r}"


@settings(max_examples=MAX_EXAMPLES, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(scenario)
def test_datagram_chaos_matches_stdlib(ops):
    differential(ops)


FIXED = {
    "echo_then_close": [("send", "client", 1024, "bytes", "none"), ("run", 2),
                        ("send", "server", 1024, "bytes", "known"), ("run", 3),
                        ("close", "server"), ("send", "client", 1, "bytes", "none"),
                        ("run", 4), ("send", "client", 1, "bytes", "none")],
    "oversized_and_bad": [("send", "server", 70000, "bytes", "fresh"),
                          ("send", "client", 70000, "memoryview", "none"),
                          ("send", "client", 70000, "bytes", "none"),
                          ("send", "client", 10, "bytes", "none"), ("run", 2),
                          ("send", "server", 70000, "bytes", "known"),
                          ("send", "server", 1, "bytes", "bad_port"),
                          ("send", "client", 1, "bytes", "wrong"),
                          ("send", "server", 1, "bytearray", "none")],
    "after_abort": [("abort", "client"), ("send", "client", 5, "bytes", "none"), ("run", 2),
                    ("send", "client", 5, "bytes", "none"), ("close", "server"),
                    ("send", "server", 5, "bytes", "fresh"), ("run", 2),
                    ("send", "server", 5, "bytes", "fresh")],
    "paused_reader": [("pause", "server"), ("send", "client", 10, "bytes", "none"),
                      ("run", 3), ("resume", "server"), ("run", 3), ("high0", "client"),
                      ("send", "client", 0, "bytes", "none"), ("run", 2)],
}


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fixed_sequence_matches_stdlib(name):
    a = run_on("asyncio", FIXED[name])
    check_oracle(a, FIXED[name])
    f = run_on("fastloop", FIXED[name])
    assert f == a


def test_stdlib_is_deterministic_enough():
    # Runs after the property (file order): if most generated sequences were
    # rejected because the stdlib disagreed with itself, the comparison above
    # checked next to nothing.
    if STATS["examples"] == 0:
        pytest.skip("the chaos property did not run in this session")
    print(f"\ndatagram chaos: {STATS}")
    assert STATS["stdlib_nondeterministic"] * 2 <= STATS["examples"], STATS
