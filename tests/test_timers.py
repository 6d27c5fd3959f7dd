"""Timers: never early, cancellation accounting, compaction, odd delays, TimerHandle."""

import asyncio
import fractions
import math

import pytest
from conftest import LOOPS

import fastloop


def outcome(fn):
    """The result of ``fn()`` or the type of exception it raised."""
    try:
        return ("ok", fn())
    except Exception as exc:  # noqa: BLE001 - compared across loops
        return ("raise", type(exc))


def test_timer_callback_sees_time_at_or_after_when(any_loop):
    loop = any_loop
    seen = []
    for delay in (0.001, 0.002, 0.0055, 0.01, 0.0131, 0.02):
        when = loop.time() + delay
        loop.call_at(when, lambda w=when: seen.append(loop.time() - w))
    loop.call_later(0.03, loop.stop)
    loop.run_forever()
    assert len(seen) == 6
    assert min(seen) >= 0


def test_cancelled_timer_does_not_run(any_loop):
    loop = any_loop
    out = []
    h = loop.call_later(0.001, out.append, "cancelled")
    loop.call_later(0.002, out.append, "kept")
    h.cancel()
    assert h.cancelled()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert out == ["kept"]


def test_cancelled_count_accounting(any_loop):
    loop = any_loop
    handles = [loop.call_later(100 + i, lambda: None) for i in range(10)]
    assert loop._timer_cancelled_count == 0
    for h in handles[3:6]:
        h.cancel()
        h.cancel()  # idempotent
    assert loop._timer_cancelled_count == 3
    assert len(loop._scheduled) == 10
    handles[0].cancel()
    assert loop._timer_cancelled_count == 4
    # One iteration drops the cancelled head only (10 timers: no compaction).
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert loop._timer_cancelled_count == 3
    assert len(loop._scheduled) == 9
    # A timer that already ran does not count when cancelled afterwards.
    ran = loop.call_later(-1, lambda: None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    ran.cancel()
    assert loop._timer_cancelled_count == 3


def test_compaction_when_cancelled_dominate(any_loop):
    loop = any_loop
    handles = [loop.call_later(100 + i, lambda: None) for i in range(300)]
    for h in handles[1::2]:
        h.cancel()
    for h in handles[:10:2]:
        h.cancel()
    assert loop._timer_cancelled_count == 155
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert loop._timer_cancelled_count == 0
    assert len(loop._scheduled) == 145
    assert all(not h.cancelled() for h in loop._scheduled)


def test_million_call_later_cancel_stays_bounded(loop):
    sizes = []
    rounds = 0

    def churn():
        nonlocal rounds
        for _ in range(10_000):
            loop.call_later(10, lambda: None).cancel()
        sizes.append(len(loop._scheduled))
        rounds += 1
        if rounds < 100:
            loop.call_soon(churn)
        else:
            loop.stop()

    loop.call_soon(churn)
    loop.run_forever()
    assert rounds == 100
    # Compaction runs every iteration in which cancelled timers dominate.
    assert max(sizes) <= 10_001
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(loop._scheduled) == 0
    assert loop._timer_cancelled_count == 0


DELAYS = [10**6, 1e300, float("inf"), -float("inf"), -1, -1e300, float("nan"), 0,
          True, fractions.Fraction(1, 4), None, "1", b"1", [], 10**400]


@pytest.mark.parametrize("delay", DELAYS, ids=repr)
def test_call_later_odd_delays_like_stdlib(delay):
    results = {}
    for name, factory in LOOPS.items():
        loop = factory()
        try:
            res = outcome(lambda loop=loop: loop.call_later(delay, lambda: None))
            if res[0] == "ok":
                h = res[1]
                res = ("ok", type(h.when()), math.isnan(h.when()) or h.when() - loop.time() > 1)
            results[name] = res
        finally:
            loop.close()
    assert results["fastloop"] == results["asyncio"]


@pytest.mark.parametrize("when", [None, "1", 0, 7, True, -1.5, float("inf"), float("nan"),
                                  fractions.Fraction(3, 2)], ids=repr)
def test_call_at_odd_deadlines_like_stdlib(when):
    results = {}
    for name, factory in LOOPS.items():
        loop = factory()
        try:
            loop.call_later(1000, lambda: None)  # so the heap compares deadlines
            results[name] = outcome(lambda loop=loop: loop.call_at(when, lambda: None).when())
        finally:
            loop.close()
    r_fast, r_std = results["fastloop"], results["asyncio"]
    if r_std[0] == "ok" and r_fast[0] == "ok":
        assert r_fast[1] == r_std[1] or (math.isnan(r_fast[1]) and math.isnan(r_std[1]))
        # call_at(5).when() is the int 5 on the stdlib loop, and its repr says when=5.
        assert type(r_fast[1]) is type(r_std[1])
    else:
        assert r_fast == r_std


@pytest.mark.parametrize("delay", [float("nan"), -float("inf")], ids=repr)
def test_odd_delay_runs_like_stdlib(delay):
    results = {}
    for name, factory in LOOPS.items():
        loop = factory()
        out = []
        try:
            loop.call_later(delay, out.append, "odd")
            loop.call_later(0.01, loop.stop)
            results[name] = outcome(loop.run_forever), out
        finally:
            loop.close()
    assert results["fastloop"] == results["asyncio"]


def test_timer_handle_like_stdlib(any_loop):
    loop = any_loop

    def cb(*args):
        pass

    when = loop.time() + 10
    h1 = loop.call_at(when, cb, 1, 2)
    h2 = loop.call_at(when + 1, cb, 1, 2)
    h3 = loop.call_at(when, cb, 1, 2)
    # fastloop's TimerHandle is its own native type (not a subclass of the
    # stdlib's); each loop must return its own timer type.
    expected = fastloop.TimerHandle if isinstance(loop, fastloop.Loop) else asyncio.TimerHandle
    assert type(h1) is expected
    assert h1.when() == when
    assert not h1.cancelled()
    assert h1 < h2 and h2 > h1 and h1 <= h3 and h1 >= h3 and h1 <= h2
    assert not (h2 < h1) and not (h2 <= h1)
    assert h1 == h3 and h1 != h2
    assert hash(h1) == hash(when) == hash(h3)
    assert h1.__lt__(object()) is NotImplemented
    r = repr(h1)
    assert r.startswith(f"<TimerHandle when={when} ")
    assert "test_timer_handle_like_stdlib.<locals>.cb(" in r
    h3.cancel()
    assert h1 != h3
    assert repr(h3) == f"<TimerHandle cancelled when={when}>"
    h1.cancel()
    assert h1 == h3


def test_timer_handle_repr_matches_stdlib():
    reprs = {}
    for name, factory in LOOPS.items():
        loop = factory()
        try:
            h = loop.call_at(12345.5, print, "x")
            c = loop.call_at(12346.0, print)
            c.cancel()
            reprs[name] = (repr(h).replace(" at " + hex(id(print)), ""), repr(c))
        finally:
            loop.close()
    assert reprs["fastloop"] == reprs["asyncio"]


def test_million_call_later_cancel_without_yielding_is_bounded(loop):
    # fastloop also compacts when the heap would grow (not observable in order).
    for _ in range(1_000_000):
        loop.call_later(10, lambda: None).cancel()
    assert len(loop._scheduled) <= 1000
    assert loop._timer_cancelled_count == len(loop._scheduled)
    out = []
    loop.call_later(-1, out.append, "kept")
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.call_soon(loop.stop)
    loop.run_forever()  # the second iteration drops the cancelled rest
    assert out == ["kept"]
    assert len(loop._scheduled) == 0 and loop._timer_cancelled_count == 0


def test_loop_time_is_the_monotonic_clock(loop):
    import time

    before = time.monotonic()
    t = loop.time()
    after = time.monotonic()
    assert before <= t <= after


def test_overridden_time_drives_scheduling_like_the_stdlib():
    # aiohttp's tests patch loop.time; the stdlib schedules and fires timers
    # by self.time(), so must fastloop (instance patch and subclass override).
    import asyncio
    from unittest import mock

    import fastloop

    def run(factory):
        loop = factory()
        fired = []

        async def main():
            now = loop.time()
            with mock.patch.object(loop, "time", return_value=now):
                loop.call_at(now + 100, fired.append, "call_at")
                loop.call_later(100, fired.append, "call_later")
                loop.time.return_value = now + 100
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            return list(fired), loop.time() < now + 50

        try:
            return loop.run_until_complete(main())
        finally:
            loop.close()

    class Shifted(fastloop.Loop):
        def time(self):
            return super().time() + 1000.0

    assert run(fastloop.new_event_loop) == run(asyncio.SelectorEventLoop) == (
        ["call_at", "call_later"], True)
    shifted = Shifted()
    try:
        assert shifted.time() > fastloop.Loop.time(shifted) + 999
        when = shifted.call_later(0.01, lambda: None).when()
        assert when > fastloop.Loop.time(shifted) + 999
    finally:
        shifted.close()


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_dropped_loop_with_pending_timers_is_collected():
    # timer -> callback (a bound method of the loop) -> loop -> heap -> timer:
    # the heap holds its timers in a C array, so only _timers.pyx's extended
    # tp_traverse/tp_clear let the cyclic GC see and break this cycle when
    # the loop is dropped without close().
    import gc
    import weakref

    loop = fastloop.new_event_loop()
    for delay in (10, 20, 30):
        loop.call_later(delay, loop.stop)
    loop.call_at(loop.time() + 40, loop.call_soon, loop.stop)
    ref = weakref.ref(loop)
    timer_ref = weakref.ref(loop._scheduled[0])
    del loop
    gc.collect()
    assert ref() is None, "a dropped loop with pending timers was never collected"
    assert timer_ref() is None


def test_already_due_timers_run_in_deadline_order(any_loop):
    # The stdlib pops due timers off its heap: deadline order, whatever order
    # they were scheduled in (uvloop and rloop run them in scheduling order;
    # bench/micro.py's "fire" shape therefore does more work on fastloop).
    loop = any_loop
    out = []
    now = loop.time()
    offsets = [0.5, 0.9, 0.1, 0.7, 0.3]
    for i, off in enumerate(offsets):
        loop.call_at(now - off, out.append, i)
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert out == sorted(range(len(offsets)), key=lambda i: -offsets[i])
