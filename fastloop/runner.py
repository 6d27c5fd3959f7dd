"""``fastloop.run()``: ``asyncio.run()`` with a fastloop loop."""

import asyncio

from fastloop import _compat
from fastloop.policy import new_event_loop


def run(main, *, debug=None):
    """Run a coroutine on a new fastloop loop and return its result.

    The running Python's ``asyncio.run()`` contract: the loop is created, the
    coroutine run to completion, remaining tasks cancelled, async generators
    and the default executor shut down, and the loop closed. What ``main`` may
    be and which errors a bad one gets are the running stdlib's (3.14 also
    takes any awaitable).
    """
    if _compat.RUN_TAKES_LOOP_FACTORY:
        # 3.12+: the stdlib's own asyncio.run, so every check it makes (and
        # any a later release adds) is the same by construction.
        return asyncio.run(main, debug=debug, loop_factory=new_event_loop)
    # 3.10/3.11's asyncio.run checks this before it creates a loop; the
    # Runner alone would say "Runner.run() cannot be called ..." instead.
    if _compat.get_running_loop() is not None:
        raise RuntimeError("asyncio.run() cannot be called from a running event loop")
    if hasattr(asyncio, "Runner"):
        with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
            return runner.run(main)
    return _run_without_runner(main, debug)


def _run_without_runner(main, debug):
    # Python 3.10 has no asyncio.Runner: the same steps as its asyncio.run().
    if not asyncio.iscoroutine(main):
        raise ValueError(f"a coroutine was expected, got {main!r}")
    loop = new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop):
    to_cancel = asyncio.all_tasks(loop)
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*to_cancel, return_exceptions=True))
    for task in to_cancel:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler({
                "message": "unhandled exception during asyncio.run() shutdown",
                "exception": task.exception(),
                "task": task,
            })
