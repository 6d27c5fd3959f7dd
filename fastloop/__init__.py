"""fastloop: an asyncio event loop with a native core that behaves like the stdlib's.

Use it in one line::

    asyncio.run(main(), loop_factory=fastloop.new_event_loop)   # Python 3.12+
    fastloop.run(main())                                        # any Python
    asyncio.set_event_loop_policy(fastloop.Policy())            # policy style, 3.10-3.13

``Policy``/``EventLoopPolicy`` exist only where asyncio has policies (see
fastloop/policy.py); everything else imports on any Python.
"""

from fastloop import policy as _policy
from fastloop._handles import Handle
from fastloop._timers import TimerHandle
from fastloop._version import __version__
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


if hasattr(_policy, "Policy"):
    Policy = EventLoopPolicy = _policy.Policy


def __getattr__(name):
    # Where asyncio has no policies: the reason, instead of a bare AttributeError.
    _policy.module_getattr(__name__, name)


__all__ = [
    "Handle",
    "Loop",
    "TimerHandle",
    "__version__",
    "install",
    "metrics",
    "new_event_loop",
    "run",
]
if hasattr(_policy, "Policy"):
    __all__ += ["EventLoopPolicy", "Policy"]
