"""call_soon_threadsafe from other threads: nothing lost, prompt wake-up, closed loop."""

import socket
import threading
import time

import pytest
from conftest import LOOPS

THREADS = 4
PER_THREAD = 5000


def hammer(loop, busy):
    """THREADS threads post PER_THREAD callbacks each while ``loop`` runs."""
    got = []
    done = threading.Event()
    start = threading.Barrier(THREADS + 1)
    expected = THREADS * PER_THREAD

    def record(tid, i):
        got.append((tid, i))
        if len(got) == expected:
            loop.stop()

    def worker(tid):
        start.wait()
        for i in range(PER_THREAD):
            loop.call_soon_threadsafe(record, tid, i)
            if i % 500 == 0:
                time.sleep(0.001)  # let the loop block in poll meanwhile

    def spin():
        if not done.is_set():
            loop.call_soon(spin)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    if busy:
        loop.call_soon(spin)
    # No timer in the loop, so it really blocks in poll with no timeout; a
    # thread is the hang guard (only fires if callbacks were lost).
    guard = threading.Timer(30, lambda: loop.call_soon_threadsafe(loop.stop))
    guard.start()
    loop.call_soon(start.wait)
    try:
        loop.run_forever()
    finally:
        done.set()
        guard.cancel()
    for t in threads:
        t.join()
    return got


@pytest.mark.parametrize("busy", [False, True], ids=["blocked-in-poll", "busy"])
def test_no_lost_callbacks(any_loop, busy):
    got = hammer(any_loop, busy)
    assert len(got) == THREADS * PER_THREAD
    # Each thread's callbacks run in the order that thread posted them.
    for tid in range(THREADS):
        mine = [i for t, i in got if t == tid]
        assert mine == list(range(PER_THREAD))


def test_blocked_loop_is_woken_by_call_soon_threadsafe(any_loop):
    loop = any_loop
    stopped_by = []
    entered = threading.Event()

    def poster():
        entered.wait(5)
        time.sleep(0.05)  # the loop is blocked in poll with no timer by now
        loop.call_soon_threadsafe(lambda: (stopped_by.append("post"), loop.stop()))

    def guard():
        # Hang guard only: if the wake-up was lost, the loop would block
        # forever; this ends the test and is recorded as a failure below.
        stopped_by.append("guard")
        loop.stop()

    loop.call_soon(entered.set)
    t = threading.Thread(target=poster)
    t.start()
    # No timers at all: only the wake-up can end this poll. The guard wakes
    # the loop through a socket reader instead of call_soon_threadsafe, which
    # is what is under test.
    r, w = socket.socketpair()
    loop.add_reader(r, guard)
    timer = threading.Timer(10, w.send, (b"x",))
    timer.start()
    try:
        loop.run_forever()
    finally:
        timer.cancel()
        t.join()
        loop.remove_reader(r)
        r.close()
        w.close()
    assert stopped_by == ["post"]


def test_repeated_wakeups_while_blocked(any_loop):
    loop = any_loop
    count = 0

    def bump():
        nonlocal count
        count += 1
        if count == 20:
            loop.stop()

    def poster():
        for _ in range(20):
            time.sleep(0.002)
            loop.call_soon_threadsafe(bump)

    t = threading.Thread(target=poster)
    t.start()
    guard = loop.call_later(5, loop.stop)  # hang guard only
    loop.run_forever()
    guard.cancel()
    t.join()
    assert count == 20


def test_call_soon_threadsafe_on_closed_loop():
    errors = {}
    for name, factory in LOOPS.items():
        loop = factory()
        loop.close()
        out = []

        def post(loop=loop, out=out):
            try:
                loop.call_soon_threadsafe(print)
            except Exception as exc:  # noqa: BLE001 - compared across loops
                out.append((type(exc), str(exc)))

        post()
        t = threading.Thread(target=post)
        t.start()
        t.join()
        errors[name] = out
    assert errors["fastloop"] == errors["asyncio"]
    assert errors["fastloop"] == [(RuntimeError, "Event loop is closed")] * 2


def test_close_while_other_thread_posts_does_not_crash(loop):
    stop = threading.Event()
    outcomes = set()

    def poster():
        while not stop.is_set():
            try:
                loop.call_soon_threadsafe(lambda: None)
            except RuntimeError as exc:
                outcomes.add(str(exc))
                return

    t = threading.Thread(target=poster)
    t.start()
    loop.call_later(0.02, loop.stop)
    loop.run_forever()
    loop.close()
    t.join(5)
    stop.set()
    assert not t.is_alive()
    assert outcomes == {"Event loop is closed"}
