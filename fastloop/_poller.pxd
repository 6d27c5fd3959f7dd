# Interest and readiness flags; the same values as selectors.EVENT_READ/WRITE.
cdef enum:
    FL_READ = 1
    FL_WRITE = 2


# What control() and set_interest() report.
cdef enum:
    CONTROL_DONE = 0
    # The kernel had dropped the fd (its file was closed while registered and
    # the number reused): it is registered anew, so any other interest the
    # loop recorded on this fd belongs to the closed file.
    CONTROL_REREGISTERED = 1


cdef class Poller:
    # Results of the last poll(): fds and their FL_* readiness, in kernel
    # order; read them with ready_event().
    cdef int* ready_fds
    cdef int* ready_masks
    cdef int ready_capacity
    cdef int registered        # fds with a non-zero interest mask

    # The wake-up channel of call_soon_threadsafe() (an eventfd, or a pipe):
    # registered for reading and drained by poll(), never reported to the
    # loop. Written only while a blocking poll is under way (polling), at
    # most once until that poll drains it (wake_pending).
    cdef int wake_rfd
    cdef int wake_wfd
    cdef bint polling
    cdef bint wake_pending

    # The silent-poll rule (poll_is_silent): registrations a non-blocking
    # poll can report nothing a callback could observe through.
    cdef int quiet_fd          # the self-pipe while no signal handler writes to it, else -1
    cdef bint quiet_reading    # quiet_fd is registered for reading

    # What the loop calls: control() plus the silent-poll bookkeeping, the
    # poll itself, the wake-up, and close().
    cdef int set_interest(self, int fd, int old_mask, int new_mask, bint rearm) except -1
    cdef int set_quiet_fd(self, int fd, bint reading) except -1
    cdef bint poll_is_silent(self) noexcept
    cdef int poll(self, double timeout) except -1
    cdef int wakeup(self) noexcept
    cdef int close(self) except -1
    cdef int open_wakeup(self) except -1
    cdef int close_wakeup(self) noexcept
    cdef bint is_wakeup(self, int fd) noexcept
    # What each backend implements.
    cdef int control(self, int fd, int old_mask, int new_mask, bint rearm) except -1
    # One-shot interest for a sock_* wait on an fd with no other interest:
    # the kernel disables it after one event, so finishing the wait costs no
    # syscall and the next wait re-enables it with one (see _poller.pyx).
    cdef int arm_oneshot(self, int fd, int mask) except -1
    cdef int rearm_oneshot(self, int fd, int mask) except -1
    # wait(): one epoll_wait/select; it fills ready_fds/ready_masks with every
    # ready fd but the wake-up fd, which it drains, and returns their number.
    cdef int wait(self, double timeout) except -1
    cdef int release(self) except -1
    cdef int _reserve(self, int n) except -1


cdef Poller make_poller()


cdef inline int ready_event(Poller poller, int i, int* mask) noexcept:
    """The i-th event of the last poll(): its fd, and its FL_* readiness in mask."""
    mask[0] = poller.ready_masks[i]
    return poller.ready_fds[i]
