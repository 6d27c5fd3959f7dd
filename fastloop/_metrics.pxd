# Loop metrics: counters the iteration keeps at all times (not only in debug
# mode), cheap enough for production. Every update is one of the hooks below,
# called by one line of the loop's iteration (_loop.pyx), as libuv's
# uv__metrics_* hooks are; with FL_METRICS=0 they compile to nothing.
#   metrics_iteration     an iteration starts
#   metrics_polled        after the poll: blocking-poll time
#   metrics_timer_fired   per due timer: timers fired and how late (lag)
#   metrics_ready         before running: the ready queue's high-water mark
# After each callback, LoopCore.note_callback (_loop.pyx) closes its interval:
# count, time, the longest one, and the blocking-callback watchdog's hook.
# Time is read from a coarse clock (a few ns per read) and chained, each
# reading closing one interval and opening the next, so the totals telescope to
# the true elapsed time; single intervals are only as precise as the coarse
# clock's resolution, which is why only callbacks longer than two of its ticks
# are named as the longest.

cdef extern from "_sys.h" nogil:
    int FL_METRICS
    double fl_coarse_monotonic()
    double fl_coarse_resolution()

cdef struct LoopMetrics:
    unsigned long long iterations
    unsigned long long callbacks
    unsigned long long timers_fired
    double poll_seconds
    double callback_seconds
    double longest_callback
    double lag_max
    double lag_total
    double mark                 # the last coarse timestamp taken
    Py_ssize_t ready_max


cdef inline void metrics_iteration(LoopMetrics* m) noexcept nogil:
    if FL_METRICS:
        m.iterations += 1


cdef inline void metrics_polled(LoopMetrics* m, double timeout) noexcept nogil:
    # Waiting time; a non-blocking poll counts with the callbacks.
    cdef double mark
    if FL_METRICS and timeout != 0:
        mark = fl_coarse_monotonic()
        m.poll_seconds += mark - m.mark
        m.mark = mark


cdef inline void metrics_timer_fired(LoopMetrics* m, double lag) noexcept nogil:
    if FL_METRICS:
        m.timers_fired += 1
        m.lag_total += lag
        if lag > m.lag_max:
            m.lag_max = lag


cdef inline void metrics_ready(LoopMetrics* m, Py_ssize_t count) noexcept nogil:
    if FL_METRICS and count > m.ready_max:
        m.ready_max = count
