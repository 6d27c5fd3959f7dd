from fastloop._fdtable cimport FdTable
from fastloop._metrics cimport LoopMetrics
from fastloop._queue cimport ReadyQueue
from fastloop._timers cimport TimerHeap


# The fd table, the poller (with the wake-up fd) and the closed/debug flags
# come from the base class, FdTable (_fdtable.pxd).
cdef class LoopCore(FdTable):
    cdef ReadyQueue ready
    cdef TimerHeap timers

    cdef bint stopping
    cdef object thread_id
    cdef double clock_resolution
    cdef double slow_callback
    cdef object current_handle
    # True when time() is overridden (a subclass, or an instance attribute such
    # as mock.patch.object(loop, "time")): scheduling then reads that clock, as
    # the stdlib's call_later/_run_once do through self.time().
    cdef bint custom_time

    cdef LoopMetrics counters   # the always-on metrics (_metrics.pxd)
    cdef double coarse_tick
    cdef object longest_name
    # A callback that runs longer than note_above takes note_slow(): the
    # smaller of what would be a new longest callback and, while the watchdog
    # (fastloop/_watchdog.py) is on, watch_threshold. So a healthy callback
    # costs one compare, watchdog or not. watch_hook(handle, seconds) hears of
    # every callback longer than watch_threshold.
    cdef double note_above
    cdef double watch_threshold
    cdef object watch_hook

    cdef double now(self) except? -1.0
    cdef int run_once(self) except -1
    cdef int dispatch_events(self, int n) except -1
    cdef int run_ready(self) except -1
    cdef int run_debug(self, object handle) except -1
    cdef int note_callback(self, object handle) except -1
    cdef int note_slow(self, object handle, double took) except -1
    cdef int renote(self) noexcept
    cdef int wakeup(self) noexcept
    cdef object call_at_checked(self, double when, object callback, tuple args,
                                object context)
    cdef object schedule_at(self, double when, object callback, tuple args, object context)
