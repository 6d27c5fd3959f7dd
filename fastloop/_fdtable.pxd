from fastloop._poller cimport Poller


cdef class FdTable:
    # The loop's fd registrations and the poller they go to; LoopCore
    # (_loop.pxd) derives from it, so its fields and methods are the loop's.
    cdef Poller poller

    # Per-fd registrations, indexed by fd number: the reader and writer
    # handles and the object the user registered (for selectors-style lookup
    # of a closed file object). Lists, not C arrays, so the GC sees them.
    cdef list fd_readers
    cdef list fd_writers
    cdef list fd_objects

    # Loop state the registrations obey: a closed loop takes none (the
    # stdlib's RuntimeError), and handles made in debug mode keep their
    # creation traceback.
    cdef bint closed
    cdef bint debug

    # Inline here (not in _fdtable.pyx) so the scheduling calls in _loop.pyx
    # compile to the field test, not a vtable call into another module.
    cdef inline int check_closed(self) except -1:
        if self.closed:
            raise RuntimeError('Event loop is closed')
        return 0

    cdef int fd_of(self, object fileobj) except -2
    cdef int fd_slots(self, int fd) except -1
    cdef object fd_add(self, object fileobj, int flag, object callback, tuple args,
                       object context)
    cdef bint fd_remove(self, object fileobj, int flag) except -1
    cdef object fd_add_oneshot(self, int fd, int flag, object callback)
    cdef int fd_rearm_oneshot(self, int fd, int flag) except -1
    cdef int fd_forget(self, int fd, int old_mask) except -1
    cdef int _close_fds(self) except -1
