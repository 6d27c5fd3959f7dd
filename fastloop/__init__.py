"""fastloop: an asyncio event loop with a native core that behaves like the stdlib's.

Use it in one line::

    asyncio.run(main(), loop_factory=fastloop.new_event_loop)   # Python 3.12+
    fastloop.run(main())                                        # any Python
    asyncio.set_event_loop_policy(fastloop.Policy())            # policy style, 3.10-3.13

``Policy``/``EventLoopPolicy`` exist only where asyncio has policies (see
fastloop/policy.py); everything else imports on any Python.
"""

from fastloop import _compat, _watchdog
from fastloop import policy as _policy
from fastloop._handles import Handle
from fastloop._timers import TimerHandle
from fastloop._version import __version__
from fastloop._watchdog import WatchdogReport
from fastloop.loop import Loop
from fastloop.policy import install, new_event_loop
from fastloop.runner import run


def metrics(loop):
    """The loop's always-on counters (``loop.metrics()``), as a dict.

    iterations, callbacks run, seconds waiting in the poller vs running
    callbacks, the longest callback and its name, ready-queue length now and
    at most, timers pending/cancelled/fired, timer lag (how late timers ran),
    registered fds.
    """
    return loop.metrics()


def watchdog(threshold, *, callback=None, loop=None):
    """Report callbacks and task steps that block a loop longer than ``threshold`` s.

    With ``loop``: the same as ``loop.watchdog(threshold, callback=callback)``.
    Without: the watchdog every fastloop loop created from now on starts
    with (what ``python -m fastloop --watchdog`` and the ``FASTLOOP_WATCHDOG``
    environment variable set), also applied to the fastloop loop running in
    the calling thread, if any. ``None`` switches it off.
    """
    if loop is not None:
        if not isinstance(loop, Loop):
            raise TypeError(f"the watchdog needs a fastloop loop, not {type(loop).__name__}")
        loop.watchdog(threshold, callback=callback)
        return
    _watchdog.set_default(threshold, callback)
    running = _compat.get_running_loop()
    if isinstance(running, Loop):
        running.watchdog(threshold, callback=callback)


if hasattr(_policy, "Policy"):
    Policy = EventLoopPolicy = _policy.Policy


def __getattr__(name):
    # Where asyncio has no policies: the reason, instead of a bare AttributeError.
    _policy.module_getattr(__name__, name)


__all__ = [
    "Handle",
    "Loop",
    "TimerHandle",
    "WatchdogReport",
    "__version__",
    "install",
    "metrics",
    "new_event_loop",
    "run",
    "watchdog",
]
if hasattr(_policy, "Policy"):
    __all__ += ["EventLoopPolicy", "Policy"]
