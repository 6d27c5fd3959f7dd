# Interest and readiness flags; the same values as selectors.EVENT_READ/WRITE.
cdef enum:
    FL_READ = 1
    FL_WRITE = 2


cdef class Poller:
    # Results of the last poll(): fds and their FL_* readiness, in kernel order.
    cdef int* ready_fds
    cdef int* ready_masks
    cdef int ready_capacity
    cdef int registered        # fds with a non-zero interest mask

    cdef int control(self, int fd, int old_mask, int new_mask, bint rearm) except -1
    # One-shot interest for a sock_* wait on an fd with no other interest:
    # the kernel disables it after one event, so finishing the wait costs no
    # syscall and the next wait re-enables it with one (see _poller.pyx).
    cdef int arm_oneshot(self, int fd, int mask) except -1
    cdef int rearm_oneshot(self, int fd, int mask) except -1
    cdef int poll(self, double timeout) except -1
    cdef int close(self) except -1
    cdef int _reserve(self, int n) except -1


cdef Poller make_poller()
