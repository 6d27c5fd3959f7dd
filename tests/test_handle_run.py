"""Running a handle: its arguments reach the callback as the stdlib's Handle passes them."""

import asyncio

import pytest

import fastloop

HANDLE_TYPES = [pytest.param(asyncio.Handle, id="stdlib"),
                pytest.param(fastloop.Handle, id="fastloop")]


@pytest.mark.parametrize("handle_type", HANDLE_TYPES)
@pytest.mark.parametrize("args", [(), (1,), (1, "two", None), [3, 4], range(2)],
                         ids=["empty", "one", "three", "list", "range"])
def test_arguments_as_given(loop, handle_type, args):
    # A tuple goes straight to the callback (vectorcall on fastloop); any other
    # iterable, which only a hand-built Handle can hold, is unpacked as the
    # stdlib unpacks it.
    seen = []
    handle_type(lambda *a: seen.append(a), args, loop)._run()
    assert seen == [tuple(args)]


@pytest.mark.parametrize("handle_type", HANDLE_TYPES)
def test_callback_cancelling_its_own_handle_keeps_its_arguments(loop, handle_type):
    # cancel() drops the handle's references to the callback and its
    # arguments while the callback still runs with them.
    seen = []

    def cb(marker, payload):
        handle.cancel()
        seen.append((marker, payload, handle.cancelled()))

    handle = handle_type(cb, ("m", [1, 2, 3]), loop)
    handle._run()
    assert seen == [("m", [1, 2, 3], True)]


def test_loop_runs_callbacks_with_their_arguments_in_order(any_loop):
    out = []
    any_loop.call_soon(out.append, 1)
    h = any_loop.call_soon(lambda *a: out.append(a), 2, 3)
    any_loop.call_later(0, out.extend, (4, 5))
    any_loop.call_soon(lambda: (h.cancel(), out.append("cancelled after run")))
    any_loop.call_soon(any_loop.stop)
    any_loop.run_forever()
    assert out == [1, (2, 3), "cancelled after run", 4, 5]
