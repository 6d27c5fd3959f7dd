from fastloop._metrics cimport LoopMetrics
from fastloop._poller cimport Poller
from fastloop._queue cimport ReadyQueue
from fastloop._timers cimport TimerHeap


cdef class LoopCore:
    cdef ReadyQueue ready
    cdef TimerHeap timers
    cdef Poller poller

    # Per-fd registrations, indexed by fd number: the reader and writer
    # handles and the object the user registered (for selectors-style lookup
    # of a closed file object). Lists, not C arrays, so the GC sees them.
    cdef list fd_readers
    cdef list fd_writers
    cdef list fd_objects

    # Wake-up channel for call_soon_threadsafe(); written only while the loop
    # is (about to be) blocked in poll, at most once per blocking poll.
    cdef int wake_rfd
    cdef int wake_wfd
    cdef bint polling
    cdef bint wake_pending
    # The stdlib self-pipe's fd while no signal handler can write into it
    # (else -1). With only it and wake_rfd registered, a non-blocking poll
    # can report nothing a callback could observe, so it is skipped.
    cdef int quiet_fd

    cdef bint closed
    cdef bint stopping
    cdef bint debug
    cdef object thread_id
    cdef double clock_resolution
    cdef double slow_callback
    cdef object current_handle
    # True when time() is overridden (a subclass, or an instance attribute such
    # as mock.patch.object(loop, "time")): scheduling then reads that clock, as
    # the stdlib's call_later/_run_once do through self.time().
    cdef bint custom_time

    cdef LoopMetrics m
    cdef double coarse_tick
    cdef object longest_name

    cdef double now(self) except? -1.0
    cdef int run_once(self) except -1
    cdef bint poll_is_silent(self) noexcept
    cdef int dispatch_events(self, int n) except -1
    cdef int run_ready(self) except -1
    cdef int run_debug(self, object handle) except -1
    cdef int note_callback(self, object handle) except -1
    cdef int wakeup(self) noexcept
    cdef int check_closed(self) except -1
    cdef object call_at_checked(self, double when, object callback, tuple args,
                                object context)
    cdef object schedule_at(self, double when, object callback, tuple args, object context)
    cdef int fd_of(self, object fileobj) except -2
    cdef int fd_slots(self, int fd) except -1
    cdef object fd_add(self, object fileobj, int flag, object callback, tuple args,
                       object context)
    cdef bint fd_remove(self, object fileobj, int flag) except -1
    cdef object fd_add_oneshot(self, int fd, int flag, object callback)
    cdef int fd_rearm_oneshot(self, int fd, int flag) except -1
    cdef int fd_forget(self, int fd, int old_mask) except -1
    cdef int _close_fds(self) except -1
