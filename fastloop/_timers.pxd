from cpython.ref cimport PyObject

from fastloop._handles cimport Handle


cdef struct TimerEntry:
    double when
    PyObject* handle            # owned reference to a TimerHandle


cdef class TimerHandle(Handle):
    cdef double deadline
    cdef object when_given      # call_at's ``when`` when not a float (int, ...), for when()
    cdef readonly bint _scheduled
    cdef TimerHeap heap         # set while the handle sits in a heap


cdef class TimerHeap:
    cdef TimerEntry* entries
    cdef Py_ssize_t size
    cdef Py_ssize_t capacity
    # Cancelled handles still in the heap; the loop compacts when they dominate.
    cdef public Py_ssize_t cancelled
    # Mirror of the owning loop's debug flag, so TimerHandle.cancel() needs no
    # Python call to learn it.
    cdef public bint debug
    # Never set: one Python-object field makes Cython give the type GC
    # support (tp_traverse/tp_clear), which _timers.pyx then extends to the
    # handles in ``entries``.
    cdef object _gc_support

    cdef int push(self, TimerHandle h) except -1
    cdef TimerHandle pop(self)
    cdef int drop_cancelled_head(self) except -1
    cdef int compact(self) except -1
    cdef int clear(self) except -1
    cdef list handles(self)


# The compaction rule, the stdlib's (_run_once): rebuild the heap without its
# cancelled entries once there are more than COMPACT_MIN_TIMERS of them all
# and cancelled ones are the majority (its _MIN_SCHEDULED_TIMER_HANDLES and
# _MIN_CANCELLED_TIMER_HANDLES_FRACTION).
cdef enum:
    COMPACT_MIN_TIMERS = 100

cdef inline bint cancelled_dominate(TimerHeap heap) noexcept:
    return heap.size > COMPACT_MIN_TIMERS and heap.cancelled * 2 > heap.size


cdef TimerHandle new_timer(double when, object callback, object args, object loop,
                           object context, bint debug)
