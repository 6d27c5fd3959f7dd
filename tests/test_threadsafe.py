"""call_soon_threadsafe's handles run as the stdlib runs them; a post wakes a sleeping loop.

On 3.14+ the handle is the stdlib's ``_ThreadSafeHandle``, which fastloop makes
and runs from C (fastloop/_threadsafe.pyx) instead of through its Python
``__init__`` and ``_run``. Each scenario runs on fastloop and on the stdlib's
loop and must give the same result: what an exception handler is told, which
context a callback sees, how SystemExit leaves the lock, what a cancel from
another thread does, that a patched ``_run`` is still called.
"""

import asyncio
import contextvars
import os
import select
import socket
import threading

import pytest
from conftest import LOOPS, same_on_both_loops

from fastloop import _compat, _threadsafe

var = contextvars.ContextVar("test_threadsafe", default="unset")


def _run_posts(loop, post):
    """``post(loop)`` in another thread, then ``loop`` runs until it stops:
    every handle is posted (and, where a scenario says so, cancelled) from
    that thread before the loop runs any of them."""
    t = threading.Thread(target=post, args=(loop,))
    t.start()
    t.join(10)
    loop.run_forever()


def test_native_path_where_the_class_allows_it():
    # Not silently off on 3.14/3.15 (whose class it mirrors); off before.
    assert _threadsafe.NATIVE == _compat.THREADSAFE_HANDLE_BY_SLOTS
    assert _threadsafe.NATIVE == (_compat.ThreadSafeHandle is not None)


@pytest.mark.parametrize("debug", [False, True])
def test_exception_in_a_callback_is_reported_alike(debug):
    def scenario(loop):
        loop.set_debug(debug)
        seen = []
        handles = []

        def handler(loop, context):
            seen.append((sorted(context), context["message"].split(" at ")[0],
                         type(context["exception"]).__name__,
                         context["handle"] is handles[len(seen)]))

        loop.set_exception_handler(handler)

        def boom(x):
            raise ValueError(x)

        def cancels_itself_then_fails():
            handles[1].cancel()
            raise KeyError("after cancel")

        def post(loop):
            handles.append(loop.call_soon_threadsafe(boom, 1))
            handles.append(loop.call_soon_threadsafe(cancels_itself_then_fails))
            loop.call_soon_threadsafe(loop.stop)

        _run_posts(loop, post)
        return seen, [h.cancelled() for h in handles]

    seen, cancelled = same_on_both_loops(scenario)
    assert [s[2] for s in seen] == ["ValueError", "KeyError"]
    assert cancelled == [False, True]


def test_callback_context_alike():
    entered = contextvars.copy_context()

    def scenario(loop):
        seen = []

        def read_and_set(tag):
            seen.append((tag, var.get()))
            var.set("changed by " + tag)

        def post(loop):
            var.set("poster")
            loop.call_soon_threadsafe(read_and_set, "copied")
            loop.call_soon_threadsafe(read_and_set, "again")     # its own copy
            explicit = contextvars.copy_context()
            explicit.run(var.set, "explicit")
            loop.call_soon_threadsafe(read_and_set, "explicit", context=explicit)
            seen.append(("explicit after", explicit.run(var.get)))
            # A context the loop's thread has entered already: Context.run
            # refuses it, and the refusal is reported like any exception.
            loop.call_soon_threadsafe(read_and_set, "entered", context=entered)
            loop.call_soon_threadsafe(loop.stop)
            seen.append(("poster keeps", var.get()))

        errors = []
        loop.set_exception_handler(
            lambda loop, c: errors.append(type(c["exception"]).__name__))
        entered.run(_run_posts, loop, post)
        return seen, errors

    seen, errors = same_on_both_loops(scenario)
    assert ("copied", "poster") in seen and ("again", "poster") in seen
    # Refused: the callback never ran (3.15 runs the exception handler in
    # the handle's context too, so it is refused as well: errors may be []).
    assert not [tag for tag, _ in seen if tag == "entered"]


@pytest.mark.parametrize("exc", [SystemExit, KeyboardInterrupt])
def test_systemexit_propagates_and_releases_the_lock(exc):
    def scenario(loop):
        def fail():
            raise exc(3)

        h = loop.call_soon_threadsafe(fail)
        try:
            loop.run_forever()
        except exc as e:
            raised = e.args
        # Another thread can take the handle's lock (3.14+), so cancel() from
        # there would not hang.
        lock = getattr(h, "_lock", None)
        free = []
        if lock is not None:
            t = threading.Thread(target=lambda: free.append(lock.acquire(timeout=10)))
            t.start()
            t.join(20)
        return raised, free

    raised, free = same_on_both_loops(scenario)
    assert raised == (3,)
    assert free == ([True] if _compat.ThreadSafeHandle is not None else [])


def test_cancel_from_the_posting_thread_before_the_run():
    def scenario(loop):
        ran = []

        def post(loop):
            handles = [loop.call_soon_threadsafe(ran.append, i) for i in range(200)]
            for h in handles[::3]:
                h.cancel()
            loop.call_soon_threadsafe(loop.stop)

        _run_posts(loop, post)
        return ran

    ran = same_on_both_loops(scenario)
    assert ran == [i for i in range(200) if i % 3]


def test_fifo_with_call_soon_from_the_loop_thread():
    def scenario(loop):
        order = []

        def first():
            for i in range(5):
                loop.call_soon(order.append, ("soon", i))
                loop.call_soon_threadsafe(order.append, ("threadsafe", i))
            loop.call_soon(loop.stop)

        loop.call_soon(first)
        loop.run_forever()
        return order

    order = same_on_both_loops(scenario)
    assert order[:2] == [("soon", 0), ("threadsafe", 0)]


@pytest.mark.skipif(_compat.ThreadSafeHandle is None,
                    reason="the stdlib has no _ThreadSafeHandle before Python 3.14")
@pytest.mark.parametrize("cls", ["_ThreadSafeHandle", "Handle"])
def test_a_patched_run_is_called(monkeypatch, cls):
    target = getattr(asyncio.events, cls)
    original = target.__dict__["_run"]
    calls = []

    def patched(self):
        # Only this test's callbacks: the stdlib loop also runs its self-pipe
        # reader through Handle._run.
        if self._args and self._args[0] in ("before", "patched", "after"):
            calls.append(self._args)
        return original(self)

    def scenario(loop):
        del calls[:]
        loop.call_soon_threadsafe(lambda x: None, "before")
        loop.call_soon_threadsafe(loop.stop)
        loop.run_forever()
        monkeypatch.setattr(target, "_run", patched)
        try:
            loop.call_soon_threadsafe(lambda x: None, "patched")
            loop.call_soon_threadsafe(loop.stop)
            loop.run_forever()
        finally:
            monkeypatch.undo()
        loop.call_soon_threadsafe(lambda x: None, "after")
        loop.call_soon_threadsafe(loop.stop)
        loop.run_forever()
        return list(calls)

    calls_seen = same_on_both_loops(scenario)
    assert calls_seen == [("patched",)]


def test_odd_context_and_args_behave_as_in_the_stdlib():
    def scenario(loop):
        errors = []
        ran = []
        loop.set_exception_handler(
            lambda loop, c: errors.append((type(c["exception"]).__name__,
                                           str(c["exception"]))))
        loop.call_soon_threadsafe(ran.append, "odd context", context=42)
        loop.call_soon(ran.append, "odd context too", context=42)
        h = loop.call_soon_threadsafe(ran.append, "args as a list")
        if _compat.ThreadSafeHandle is not None:
            # The stdlib's class (3.14+) lets anyone replace its slots;
            # fastloop's own Handle (before) keeps _args read-only.
            h._args = ["args as a list"]
        loop.call_soon_threadsafe(loop.stop)
        loop.run_forever()
        return errors, ran

    errors, ran = same_on_both_loops(scenario)
    assert ran == ["args as a list"]
    assert [e[0] for e in errors] == ["AttributeError", "AttributeError"]


def _sleeping_in_poll(tid):
    """Is thread ``tid`` asleep in epoll_wait (Linux's /proc)? None if /proc
    does not say."""
    base = f"/proc/self/task/{tid}/"
    try:
        with open(base + "wchan") as f:
            wchan = f.read()
        with open(base + "stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None
    if wchan in ("", "0"):
        return None
    return state == "S" and "poll" in wchan


def _wchan_works():
    # A helper thread asleep in epoll_wait on a socketpair: does /proc say so?
    if not hasattr(select, "epoll") or not os.path.exists("/proc/self/task"):
        return False
    r, w = socket.socketpair()
    ep = select.epoll()
    ep.register(r, select.EPOLLIN)
    tid = []
    t = threading.Thread(target=lambda: (tid.append(threading.get_native_id()), ep.poll(10)))
    t.start()
    try:
        for _ in range(2000):
            if tid and _sleeping_in_poll(tid[0]):
                return True
            threading.Event().wait(0.001)
        return False
    finally:
        w.send(b"x")
        t.join()
        ep.close()
        r.close()
        w.close()


@pytest.mark.skipif(not _wchan_works(),
                    reason="needs Linux /proc/<pid>/task/<tid>/wchan to see a thread in poll")
def test_a_post_wakes_a_loop_asleep_in_a_long_poll():
    # Each round the poster waits until the loop's thread is asleep inside
    # epoll_wait (the only timer is an hour away), then posts: only the
    # wake-up can end that poll. Counts only; the hour-long timer is the hang
    # guard and must never have fired.
    rounds = 10

    def scenario(loop):
        ran = []
        asleep = []
        loop_tid = []
        loop.call_later(3600, lambda: (ran.append("guard"), loop.stop()))
        proceed = threading.Semaphore(0)

        def callback(i):
            ran.append(i)
            if i == rounds - 1:
                loop.stop()
            proceed.release()

        def poster():
            for i in range(rounds):
                # Wait (at most ~10 s, then post anyway and fail the count
                # below) until the loop's thread is asleep in its poll.
                for _ in range(10_000):
                    if _sleeping_in_poll(loop_tid[0]):
                        asleep.append(i)
                        break
                    threading.Event().wait(0.001)
                loop.call_soon_threadsafe(callback, i)
                proceed.acquire(timeout=30)

        def start():
            loop_tid.append(threading.get_native_id())
            threading.Thread(target=poster, daemon=True).start()

        loop.call_soon(start)
        loop.run_forever()
        return ran, asleep

    ran, asleep = same_on_both_loops(scenario)
    # Every post was made to a loop asleep in poll, and woke it: no guard.
    assert asleep == list(range(rounds))
    assert ran == list(range(rounds))


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_closed_loop_refuses_posts(name):
    loop = LOOPS[name]()
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon_threadsafe(lambda: None)
