"""fastloop: an asyncio event loop with a native core that behaves like the stdlib's.

Use it in one line::

    asyncio.run(main(), loop_factory=fastloop.new_event_loop)   # Python 3.12+
    fastloop.run(main())                                        # any Python
    asyncio.set_event_loop_policy(fastloop.Policy())            # policy style
"""

from fastloop._handles import Handle
from fastloop._timers import TimerHandle
from fastloop._version import __version__
from fastloop.loop import Loop
from fastloop.policy import EventLoopPolicy, Policy, install, new_event_loop
from fastloop.runner import run


def metrics(loop):
    """The loop's always-on counters (``loop.metrics()``), as a dict.

    iterations, callbacks run, seconds waiting in the poller vs running
    callbacks, the longest callback and its name, ready-queue length now and
    at most, timers pending/cancelled/fired, timer lag (how late timers ran),
    registered fds.
    """
    return loop.metrics()

__all__ = [
    "EventLoopPolicy",
    "Handle",
    "Loop",
    "Policy",
    "TimerHandle",
    "__version__",
    "install",
    "metrics",
    "new_event_loop",
    "run",
]
