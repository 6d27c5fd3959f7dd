"""Cycles through handles are collected as on the stdlib loop.

fastloop keeps the handles only the loop references out of the cyclic GC
(fastloop/_owned.h): the ready queue and the timer heap report such a handle's
references as their own, and a handle the loop lets go of while someone else
still holds it becomes an ordinary GC object again. Each scenario here runs
on both loops and must end the same way: whether the user object caught in a
cycle with a handle (``obj.h = loop.call_soon(obj.cb)``) is collected after
``gc.collect()``, and that a handle still held from outside keeps working.
"""

import contextvars
import gc
import warnings
import weakref

import pytest
from conftest import LOOPS


class Holder:
    """obj -> handle -> obj.cb -> obj: a cycle through a handle."""

    def __init__(self, loop):
        self.loop = loop
        self.calls = 0
        self.h = None

    def cb(self):
        self.calls += 1


def _spin(loop):
    loop.call_soon(loop.stop)
    loop.run_forever()


def _collected(ref, collections=1):
    for _ in range(collections):
        gc.collect()
    return ref() is None


FILL = 100   # more than fastloop's OWN_AFTER: the handles after these are loop-owned


def _filled(factory):
    """A loop whose queue and heap already hold FILL handles each, so that
    fastloop keeps the scenario's handles out of the GC (_owned.h)."""
    def make():
        loop = factory()
        for _ in range(FILL):
            loop.call_soon(_noop)
            loop.call_later(3600, _noop)
        return loop
    return make


def _noop():
    pass


def _each_loop(scenario, **kwargs):
    """The scenario's result on both loops, with and without filled queues."""
    results = {}
    for name, factory in LOOPS.items():
        results[name] = scenario(factory, **kwargs)
        results[name + " filled"] = scenario(_filled(factory), **kwargs)
    assert len({repr(r) for r in results.values()}) == 1, results
    return results["fastloop"]


def _call_soon_ran(factory, post="call_soon"):
    loop = factory()
    try:
        obj = Holder(loop)
        obj.h = getattr(loop, post)(obj.cb)
        ref = weakref.ref(obj)
        _spin(loop)
        calls = obj.calls
        del obj
        return calls, _collected(ref)
    finally:
        loop.close()


def _call_soon_cancelled(factory, post="call_soon"):
    loop = factory()
    try:
        obj = Holder(loop)
        obj.h = getattr(loop, post)(obj.cb)
        obj.h.cancel()
        ref = weakref.ref(obj)
        del obj
        _spin(loop)
        return _collected(ref)
    finally:
        loop.close()


def _timer(factory, outcome, others):
    loop = factory()
    try:
        # Other live timers, so the holder's timer is not at the heap's top.
        keep = [loop.call_later(3600 + i, lambda: None) for i in range(others)]
        obj = Holder(loop)
        obj.h = loop.call_later(0 if outcome == "fired" else 1800, obj.cb)
        ref = weakref.ref(obj)
        if outcome == "cancelled":
            obj.h.cancel()
        del obj
        if outcome == "fired":
            loop.run_until_complete(_sleep(0.01))
        _spin(loop)
        result = [_collected(ref)]
        if outcome == "pending":
            # Still scheduled: the loop keeps it alive, on both loops, until
            # close() lets the scheduled handles go.
            loop.close()
            result.append(_collected(ref))
        for h in keep:
            h.cancel()
        return result
    finally:
        loop.close()


async def _sleep(delay):
    import asyncio

    await asyncio.sleep(delay)


# call_soon_threadsafe: on 3.14+ the stdlib's _ThreadSafeHandle, which the
# loop owns like its own handles (the handle only, not its context or lock).
POSTS = ["call_soon", "call_soon_threadsafe"]


@pytest.mark.parametrize("post", POSTS)
def test_cycle_through_a_handle_that_ran_is_collected(post):
    assert _each_loop(_call_soon_ran, post=post) == (1, True)


@pytest.mark.parametrize("post", POSTS)
def test_cycle_through_a_cancelled_handle_is_collected(post):
    assert _each_loop(_call_soon_cancelled, post=post) is True


@pytest.mark.parametrize("others", [0, 300])
@pytest.mark.parametrize("outcome", ["fired", "cancelled", "pending"])
def test_cycle_through_a_timer_handle(outcome, others):
    expected = [False, True] if outcome == "pending" else [True]
    assert _each_loop(_timer, outcome=outcome, others=others) == expected


def _dropped_unclosed_loop(factory, keep_handles):
    """A loop dropped without close() while handles are pending, each in a
    cycle through the loop (obj.loop) and, with keep_handles, through obj."""
    loop = factory()
    objs = [Holder(loop) for _ in range(4)]
    handles = [
        loop.call_soon(objs[0].cb),
        loop.call_later(3600, objs[1].cb),
        loop.call_at(loop.time() + 7200, objs[2].cb),
        loop.call_soon_threadsafe(objs[3].cb),
    ]
    if keep_handles:
        for i, obj in enumerate(objs):
            obj.h = handles[i]
        del obj
    refs = [weakref.ref(o) for o in objs] + [weakref.ref(loop)]
    del objs, handles, loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        # The stdlib frees all in one collection. fastloop may need a second
        # one when handles held from outside sat in the queue/heap: the
        # loop's finalizer (close()) hands them back to the GC first.
        for _ in range(3):
            gc.collect()
    return [r() is None for r in refs]


@pytest.mark.parametrize("keep_handles", [False, True])
def test_cycles_through_a_dropped_unclosed_loop_are_collected(keep_handles):
    assert _each_loop(_dropped_unclosed_loop, keep_handles=keep_handles) == [True] * 5


def _held_handle_outlives_dropped_loop(factory):
    """A handle held by a live list while its unclosed loop is collected must
    keep its callback and arguments intact (nothing it references is cleared)."""
    loop = factory()
    box = {"value": 41}

    def cb(d):
        return d["value"] + 1

    held = [loop.call_soon(cb, box), loop.call_later(3600, cb, box)]
    del loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(3):
            gc.collect()
    return [h._callback(*h._args) for h in held], box


def test_handle_held_from_outside_survives_collection_of_its_loop():
    assert _each_loop(_held_handle_outlives_dropped_loop) == ([42, 42], {"value": 41})


def test_queued_handles_are_not_gc_objects_until_they_escape():
    import fastloop

    def tracked_handles():
        return sum(isinstance(o, fastloop.Handle) for o in gc.get_objects())

    loop = fastloop.new_event_loop()
    try:
        before = tracked_handles()     # the self-pipe's reader, ...
        for _ in range(1000):
            loop.call_later(3600, lambda: None)
        for _ in range(1000):
            loop.call_soon(lambda: None)
        gc.collect()
        # Timers stay GC objects (owning them cost more on schedule than it
        # saved); of the ready queue's handles only the first few are (a short
        # queue is not worth it).
        assert 1000 <= tracked_handles() - before <= 1000 + FILL
        kept = loop.call_soon(lambda: None)
        _spin(loop)
        # It ran and someone still holds it: an ordinary GC object again.
        assert gc.is_tracked(kept)
    finally:
        loop.close()


_var = contextvars.ContextVar("test_gc_handles")


def _cycle_through_context(factory, timer, post="call_soon"):
    """obj -> loop -> queue/heap -> handle -> its context -> _var's value -> obj:
    the only path back to obj runs through the context the loop copied."""
    loop = factory()
    obj = Holder(loop)

    def schedule(obj, loop):
        _var.set(obj)
        if timer:
            loop.call_later(3600, lambda: None)
        else:
            getattr(loop, post)(lambda: None)

    contextvars.copy_context().run(schedule, obj, loop)
    refs = [weakref.ref(obj), weakref.ref(loop)]
    del obj, loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(3):
            gc.collect()
    return [r() is None for r in refs]


@pytest.mark.parametrize("timer", [False, True])
def test_cycle_through_a_copied_context_is_collected(timer):
    assert _each_loop(_cycle_through_context, timer=timer) == [True, True]


def test_cycle_through_a_threadsafe_handles_context_is_collected():
    assert _each_loop(_cycle_through_context, timer=False,
                      post="call_soon_threadsafe") == [True, True]


def test_queued_threadsafe_handles_are_not_gc_objects_until_they_escape():
    import fastloop
    from fastloop import _compat

    cls = _compat.ThreadSafeHandle or fastloop.Handle

    def tracked():
        return sum(type(o) is cls for o in gc.get_objects())

    loop = fastloop.new_event_loop()
    try:
        before = tracked()
        for _ in range(1000):
            loop.call_soon_threadsafe(lambda: None)
        gc.collect()
        # Only the first few (a short queue is not worth owning) stay tracked.
        assert 0 <= tracked() - before <= FILL
        kept = loop.call_soon_threadsafe(lambda: None)
        _spin(loop)
        # It ran and someone still holds it: an ordinary GC object again.
        assert gc.is_tracked(kept)
        assert tracked() - before == 1
    finally:
        loop.close()


@pytest.mark.parametrize("how", ["get_context", "_context"])
@pytest.mark.parametrize("kind", ["soon", "later", "cancelled"])
def test_context_handed_out_outlives_its_handle(how, kind):
    import asyncio

    if not hasattr(asyncio.Handle, how):
        pytest.skip(f"the stdlib's Handle has no {how}() before Python 3.12")
    # The loop keeps the contexts it copies for its own handles out of the
    # GC while they are loop-owned; one handed out must stay a sound object
    # after the handle, the loop and a collection are gone.
    def scenario(factory):
        loop = factory()
        seen = []
        h = (loop.call_soon(seen.append, 1) if kind == "soon"
             else loop.call_later(0, seen.append, 1))
        if kind == "cancelled":
            h.cancel()
        ctx = getattr(h, how)() if how == "get_context" else getattr(h, how)
        del h
        loop.run_until_complete(_sleep(0.01))
        loop.close()
        del loop
        gc.collect()
        result = ctx.run(lambda: _var.get("unset"))
        del ctx
        gc.collect()
        return seen, result

    expected = ([] if kind == "cancelled" else [1], "unset")
    assert _each_loop(scenario) == expected


def test_handle_reinitialised_while_queued_keeps_gc_sound():
    import fastloop

    loop = fastloop.new_event_loop()
    try:
        h = loop.call_soon(lambda: None)
        h.__init__(lambda: None, (), loop)      # replaces the loop-copied context
        gc.collect()
        _spin(loop)
        del h
        gc.collect()
    finally:
        loop.close()


def _timer_cycle_through_context(factory, outcome):
    """obj -> its pending timer -> the context the loop copied for it ->
    _var's value -> obj, the handle held by obj: collected once the timer has
    left the heap (fired, cancelled and compacted away, or the loop closed),
    and kept while it is pending, on both loops."""
    loop = factory()
    try:
        keep = [loop.call_later(3600 + i, _noop) for i in range(200)]
        obj = Holder(loop)

        def schedule(obj):
            _var.set(obj)
            obj.h = loop.call_later(0 if outcome == "fired" else 1800, obj.cb)

        contextvars.copy_context().run(schedule, obj)
        ref = weakref.ref(obj)
        del obj
        result = [_collected(ref)]
        if outcome == "fired":
            loop.run_until_complete(_sleep(0.01))
        elif outcome == "cancelled":
            ref().h.cancel()
            for h in keep:      # cancelled timers dominate: the heap compacts
                h.cancel()
            _spin(loop)
        else:
            loop.close()
        result.append(_collected(ref))
        return result
    finally:
        loop.close()


@pytest.mark.parametrize("outcome", ["fired", "cancelled", "closed"])
def test_cycle_through_a_held_timers_copied_context(outcome):
    assert _each_loop(_timer_cycle_through_context, outcome=outcome) == [False, True]
