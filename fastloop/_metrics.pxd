# Loop metrics: counters the iteration keeps at all times (not only in debug
# mode), cheap enough for production. What is counted where:
#   run_once      iterations, blocking-poll time, ready-queue high-water mark,
#                 timers fired and how late (lag)
#   run_ready     callbacks run, time in callbacks, the longest callback
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
