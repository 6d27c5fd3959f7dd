"""The watchdog's window on a loop's C fields; fastloop/_watchdog.py does the rest.

The loop core already stamps, for its metrics, when the running callback
began (``counters.mark``: the end of the previous callback or of the blocking poll).
The watchdog only reads that stamp, from its own thread, and asks the core to
call it back when a long callback returns (``watch_hook``); it adds nothing
to the per-callback path.
"""

from fastloop._loop cimport LoopCore
from fastloop._metrics cimport FL_METRICS, fl_coarse_monotonic

#: False in a build with the loop metrics compiled out (FASTLOOP_NO_METRICS):
#: without the callback stamps there is nothing to watch.
AVAILABLE = bool(FL_METRICS)


def coarse_now():
    """The clock the loop stamps callbacks with (seconds)."""
    return fl_coarse_monotonic()


def sample(LoopCore loop):
    """``(thread_id, polling, mark, callbacks)`` of ``loop``, read at one instant.

    thread_id is None while the loop is not running; polling is true while it
    waits in a blocking poll. Otherwise it has been running one callback (or
    the few C steps between two) since ``mark``, and ``(mark, callbacks)``
    names that stretch: both change when the callback returns.
    """
    polling = loop.poller is not None and loop.poller.polling
    return loop.thread_id, polling, loop.counters.mark, loop.counters.callbacks


def arm(LoopCore loop, double threshold, hook):
    """Call ``hook(handle, seconds)`` for every callback longer than
    ``threshold`` (before the loop counts it); ``hook=None`` stops that."""
    loop.watch_threshold = threshold
    loop.watch_hook = hook
    loop.renote()
