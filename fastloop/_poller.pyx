"""Where an iteration polls: the kernel readiness interface behind one small API.

The contract the loop (``_loop.pyx``) uses, and nothing else:

* ``set_interest(fd, old, new, rearm)`` moves an fd's interest from one FL_*
  mask to another (the backend's ``control()``, at most one syscall on
  epoll); it returns ``CONTROL_DONE`` or ``CONTROL_REREGISTERED`` (the fd's
  file was closed while registered and the number reused: whatever else the
  loop had registered on it is stale);
* ``arm_oneshot``/``rearm_oneshot`` for ``sock_*`` waits (below);
* ``poll(timeout)`` returns the number of events, read with
  ``ready_event(poller, i, &mask)``. A non-blocking poll that could report
  nothing is skipped (``poll_is_silent``: only the wake-up fd is registered,
  and the self-pipe while no signal handler writes into it, ``set_quiet_fd``);
* ``wakeup()``, from any thread holding the GIL: make a blocking ``poll()``
  return. The poller owns the wake-up fd (an eventfd, or a pipe): it opens
  and registers it, drains it inside ``poll()`` (its events never reach the
  loop), writes it only while a blocking poll is under way, and closes it;
* ``registered``, ``close()``.

``EpollPoller`` calls epoll directly (Linux); ``SelectorPoller`` wraps
``selectors.DefaultSelector`` for every other platform (and on Linux when
``FASTLOOP_POLLER=selectors``, which is how the fallback is tested here:
``make test`` reruns the fd, sock_*, transport and accept tests with
``--poller selectors``). The loop above never knows which one it has.

One-shot registrations (``arm_oneshot``) serve ``sock_*`` waits. A wait
that ends normally leaves the fd in the epoll set, disabled by the kernel
after its one event ("parked"), so the next wait on that socket re-enables it
with one EPOLL_CTL_MOD instead of an ADD and a DEL per wait. A parked
registration can never report anything, so one left behind by a closed fd
whose open file lives on elsewhere (dup, fork) stays silent: never a spin,
never an event for whatever reuses the fd number.

What the kernel holds for an fd beyond the loop's masks (``EpollPoller.kstate``):

=========  ==========================================  =========================
state      meaning                                     left by
=========  ==========================================  =========================
KS_PLAIN   level-triggered interest as the masks say   control(); the default
           (or none)
KS_ARMED   one-shot interest, enabled                  arm_oneshot(),
                                                       rearm_oneshot()
KS_FIRED   one-shot interest that reported once; the   poll() reporting an
           kernel disabled it                          ARMED fd
KS_PARKED  disabled one-shot interest the loop no      control(fd, m, 0) on a
           longer wants; still in the epoll set and    FIRED/PARKED fd
           counted in ``registered``; re-enabled by
           the next arm_oneshot() (one EPOLL_CTL_MOD)
=========  ==========================================  =========================

Any non-zero control() on a one-shot fd makes it KS_PLAIN again; removing an
ARMED one (a cancelled wait) deletes it from the set.
"""

cimport cython
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.errno cimport EEXIST, EINTR, ENOENT, errno
from libc.math cimport ceil
from libc.string cimport memset

import os
import selectors

cdef extern from "_sys.h" nogil:
    int FL_HAVE_EPOLL
    struct epoll_data_t "epoll_data":
        int fd
    struct epoll_event:
        unsigned int events
        epoll_data_t data
    int EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP
    unsigned int EPOLLONESHOT
    int EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EPOLL_CLOEXEC
    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event* event)
    int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout)
    int close(int fd)
    int fl_wakeup_open(int* rfd, int* wfd)
    int fl_wakeup_write(int wfd)
    void fl_wakeup_drain(int rfd)


@cython.auto_pickle(False)
cdef class Poller:

    def __cinit__(self):
        self.ready_fds = NULL
        self.ready_masks = NULL
        self.ready_capacity = 0
        self.registered = 0
        self.wake_rfd = -1
        self.wake_wfd = -1
        self.quiet_fd = -1
        self.quiet_reading = False

    def __dealloc__(self):
        self.close_wakeup()
        PyMem_Free(self.ready_fds)
        PyMem_Free(self.ready_masks)

    cdef int _reserve(self, int n) except -1:
        cdef int* fds
        cdef int* masks
        if n <= self.ready_capacity:
            return 0
        fds = <int*>PyMem_Realloc(self.ready_fds, n * sizeof(int))
        if fds == NULL:
            raise MemoryError()
        self.ready_fds = fds
        masks = <int*>PyMem_Realloc(self.ready_masks, n * sizeof(int))
        if masks == NULL:
            raise MemoryError()
        self.ready_masks = masks
        self.ready_capacity = n
        return 0

    @cython.final
    cdef int set_interest(self, int fd, int old_mask, int new_mask, bint rearm) except -1:
        cdef int rc = self.control(fd, old_mask, new_mask, rearm)
        if fd == self.quiet_fd:
            self.quiet_reading = (new_mask & FL_READ) != 0
        return rc

    @cython.final
    cdef int set_quiet_fd(self, int fd, bint reading) except -1:
        self.quiet_fd = fd
        self.quiet_reading = fd >= 0 and reading
        return 0

    @cython.final
    cdef bint poll_is_silent(self) noexcept:
        # A non-blocking poll of the wake-up fd alone (or with the quiet fd)
        # can only drain the wake-up counter: call_soon_threadsafe() has
        # already queued its callback, and a pending wake-up is drained by the
        # next blocking poll; nothing writes into the quiet fd. So a busy loop
        # without I/O makes no syscall per iteration. Any other registration
        # (a parked one-shot one included) makes the poll real.
        return self.registered <= (self.wake_rfd >= 0) + self.quiet_reading

    @cython.final
    cdef int poll(self, double timeout) except -1:
        cdef int n
        if timeout == 0 and self.poll_is_silent():
            return 0
        self.polling = timeout != 0
        try:
            n = self.wait(timeout)
        finally:
            self.polling = False
        return n

    @cython.final
    cdef int wakeup(self) noexcept:
        # Called with the GIL held (possibly from another thread). Only a loop
        # blocked in poll needs the syscall; one pending write is enough until
        # the poll drains it, so a burst of posts costs a single write.
        if self.polling and not self.wake_pending and self.wake_wfd >= 0:
            self.wake_pending = True
            fl_wakeup_write(self.wake_wfd)
        return 0

    @cython.final
    cdef inline bint is_wakeup(self, int fd) noexcept:
        # For wait(): an event of the wake-up fd is drained here, not reported.
        if fd != self.wake_rfd:
            return False
        fl_wakeup_drain(fd)
        self.wake_pending = False
        return True

    @cython.final
    cdef int open_wakeup(self) except -1:
        if fl_wakeup_open(&self.wake_rfd, &self.wake_wfd) < 0:
            PyErr_SetFromErrno(OSError)
        self.set_interest(self.wake_rfd, 0, FL_READ, False)
        return 0

    @cython.final
    cdef int close_wakeup(self) noexcept:
        # Forget the fd numbers before closing them, so a racing wakeup()
        # cannot write into a reused fd.
        cdef int rfd = self.wake_rfd
        cdef int wfd = self.wake_wfd
        self.wake_rfd = self.wake_wfd = -1
        if wfd >= 0 and wfd != rfd:
            close(wfd)
        if rfd >= 0:
            close(rfd)
        return 0

    @cython.final
    cdef int close(self) except -1:
        self.close_wakeup()
        return self.release()

    # What every concrete poller implements.
    cdef int control(self, int fd, int old_mask, int new_mask, bint rearm) except -1:
        raise TypeError(f'{type(self).__name__} cannot control fds')

    # Pollers without one-shot interest register level-triggered interest and
    # keep it until control() removes it: nothing to re-enable.
    cdef int arm_oneshot(self, int fd, int mask) except -1:
        return self.control(fd, 0, mask, True)

    cdef int rearm_oneshot(self, int fd, int mask) except -1:
        return 0

    cdef int wait(self, double timeout) except -1:
        raise TypeError(f'{type(self).__name__} cannot poll')

    cdef int release(self) except -1:
        return 0

    @property
    def name(self):
        return type(self).__name__


cdef inline unsigned int _epoll_bits(int mask) noexcept nogil:
    cdef unsigned int bits = 0
    if mask & FL_READ:
        bits |= EPOLLIN
    if mask & FL_WRITE:
        bits |= EPOLLOUT
    return bits


# What the kernel holds for an fd beyond what the loop's masks say.
cdef enum:
    KS_PLAIN = 0        # level-triggered interest as the masks say (or none)
    KS_ARMED = 1        # one-shot interest, enabled
    KS_FIRED = 2        # one-shot interest that reported once: disabled
    KS_PARKED = 3       # disabled one-shot interest the loop no longer wants


@cython.final
@cython.auto_pickle(False)
cdef class EpollPoller(Poller):
    cdef int epfd
    cdef epoll_event* events
    cdef unsigned char* kstate      # per fd, KS_*
    cdef int kstate_size
    cdef bint waiting               # in epoll_wait without the GIL: self.events is the kernel's

    def __cinit__(self):
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            PyErr_SetFromErrno(OSError)
        self.events = NULL
        self.kstate = NULL
        self.kstate_size = 0
        self._grow_events(64)

    def __dealloc__(self):
        if self.epfd >= 0:
            close(self.epfd)
            self.epfd = -1
        PyMem_Free(self.events)
        PyMem_Free(self.kstate)

    cdef inline int state(self, int fd) noexcept:
        return self.kstate[fd] if fd < self.kstate_size else KS_PLAIN

    cdef int set_state(self, int fd, int state) except -1:
        cdef int size
        cdef unsigned char* grown
        if fd >= self.kstate_size:
            if state == KS_PLAIN:
                return 0
            size = max(fd + 1, self.kstate_size * 2, 64)
            grown = <unsigned char*>PyMem_Realloc(self.kstate, size)
            if grown == NULL:
                raise MemoryError()
            memset(grown + self.kstate_size, KS_PLAIN, size - self.kstate_size)
            self.kstate = grown
            self.kstate_size = size
        self.kstate[fd] = state
        return 0

    cdef int _grow_events(self, int n) except -1:
        cdef epoll_event* ev
        if self.waiting:
            # Another thread registered an fd while this loop waits in
            # epoll_wait without the GIL (against asyncio's one-thread rule,
            # but it must not corrupt memory): the kernel may be writing into
            # the array now, so it is not moved; poll() grows it next time.
            return 0
        ev = <epoll_event*>PyMem_Realloc(self.events, n * sizeof(epoll_event))
        if ev == NULL:
            raise MemoryError()
        self.events = ev
        self._reserve(n)
        return 0

    cdef int release(self) except -1:
        if self.epfd >= 0:
            close(self.epfd)
            self.epfd = -1
        return 0

    cdef int control(self, int fd, int old_mask, int new_mask, bint rearm) except -1:
        # CONTROL_REREGISTERED: the kernel had forgotten the fd and it was
        # registered anew (the old interest belonged to a closed file).
        cdef epoll_event ev
        cdef int rc
        cdef int state = self.state(fd)
        if state != KS_PLAIN:
            return self._control_oneshot(fd, old_mask, new_mask, state)
        if old_mask == new_mask and not rearm:
            return 0
        ev.events = _epoll_bits(new_mask)
        ev.data.fd = fd
        if new_mask == 0:
            # Like selectors: the fd may already be closed (and so dropped by
            # the kernel); forgetting it is all that is left to do.
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, fd, &ev)
            self.registered -= 1
            return 0
        if old_mask == 0:
            return self._add_new(fd, &ev)
        rc = epoll_ctl(self.epfd, EPOLL_CTL_MOD, fd, &ev)
        if rc < 0 and errno == ENOENT:
            # The fd was closed while registered and its number reused: the
            # kernel dropped the old registration, so register the new file.
            # (The stdlib's selector keeps the stale key and never polls the
            # new file; see docs/design.md.)
            rc = epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev)
            if rc == 0:
                return CONTROL_REREGISTERED
        if rc < 0:
            if old_mask == new_mask:
                # A re-arm only: the stdlib's selector makes no syscall when
                # the mask is unchanged, so it cannot fail (e.g. with EBADF
                # for an fd closed while registered). Neither may we.
                return 0
            PyErr_SetFromErrno(OSError)
        return 0

    cdef int _add_new(self, int fd, epoll_event* ev) except -1:
        # An fd the loop had no interest in joins the epoll set.
        cdef int rc = epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, ev)
        if rc < 0 and errno == EEXIST:
            # Still registered through another descriptor of the same open
            # file (dup, fork) after the old fd number was closed.
            rc = epoll_ctl(self.epfd, EPOLL_CTL_MOD, fd, ev)
        if rc < 0:
            PyErr_SetFromErrno(OSError)
        self.registered += 1
        if self.registered > self.ready_capacity:
            self._grow_events(self.ready_capacity * 2)
        return 0

    cdef int _control_oneshot(self, int fd, int old_mask, int new_mask, int state) except -1:
        # control() for an fd that has (or had) one-shot interest.
        cdef epoll_event ev
        cdef int rc
        if new_mask == 0:
            if state == KS_FIRED or state == KS_PARKED:
                # Disabled by the kernel already: keep it for the next wait.
                self.set_state(fd, KS_PARKED)
                return 0
            # Still enabled (a wait that was cancelled): really remove it.
            epoll_ctl(self.epfd, EPOLL_CTL_DEL, fd, &ev)
            self.set_state(fd, KS_PLAIN)
            self.registered -= 1
            return 0
        # Anything else becomes plain level-triggered interest. A parked
        # registration is still in the set (and counted): modify it, or
        # register anew if its file was closed meanwhile.
        ev.events = _epoll_bits(new_mask)
        ev.data.fd = fd
        self.set_state(fd, KS_PLAIN)
        rc = epoll_ctl(self.epfd, EPOLL_CTL_MOD, fd, &ev)
        if rc < 0 and errno == ENOENT:
            rc = epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev)
            if rc == 0 and old_mask != 0:
                return CONTROL_REREGISTERED
        if rc < 0:
            if old_mask == 0:
                # Nobody will fd_forget() it: the parked count goes here.
                self.registered -= 1
            PyErr_SetFromErrno(OSError)
        return 0

    cdef int arm_oneshot(self, int fd, int mask) except -1:
        # The loop has no interest in fd (old mask 0).
        cdef epoll_event ev
        cdef int rc
        cdef int state = self.state(fd)
        ev.events = _epoll_bits(mask) | EPOLLONESHOT
        ev.data.fd = fd
        if state == KS_PLAIN:
            self._add_new(fd, &ev)
        else:
            rc = epoll_ctl(self.epfd, EPOLL_CTL_MOD, fd, &ev)
            if rc < 0 and errno == ENOENT:
                # The parked registration went with its closed file.
                rc = epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev)
            if rc < 0:
                self.set_state(fd, KS_PLAIN)
                self.registered -= 1
                PyErr_SetFromErrno(OSError)
        self.set_state(fd, KS_ARMED)
        return 0

    cdef int rearm_oneshot(self, int fd, int mask) except -1:
        # A waiter woke up but its syscall would still block: enable again.
        cdef epoll_event ev
        if self.state(fd) != KS_FIRED:
            return 0
        ev.events = _epoll_bits(mask) | EPOLLONESHOT
        ev.data.fd = fd
        if epoll_ctl(self.epfd, EPOLL_CTL_MOD, fd, &ev) < 0:
            PyErr_SetFromErrno(OSError)
        self.set_state(fd, KS_ARMED)
        return 0

    cdef int wait(self, double timeout) except -1:
        cdef int ms, n, i, fd, j = 0
        cdef unsigned int bits
        cdef int mask
        if timeout < 0:
            ms = -1
        elif timeout == 0:
            ms = 0
        else:
            # Round up, as the stdlib's selector does: a timer never fires early.
            ms = <int>ceil(timeout * 1e3)
        # As many slots as registered fds, like selectors.EpollSelector, so one
        # poll reports every ready fd and iterations match the stdlib's.
        if self.registered > self.ready_capacity:
            # Registrations made while the last wait was under way.
            self._grow_events(max(self.registered, self.ready_capacity * 2))
        if ms == 0:
            # A zero timeout never blocks: releasing and re-taking the GIL
            # would cost more than the syscall and hand the GIL to another
            # thread once per iteration of a busy loop.
            n = epoll_wait(self.epfd, self.events, self.ready_capacity, 0)
        else:
            self.waiting = True
            with nogil:
                n = epoll_wait(self.epfd, self.events, self.ready_capacity, ms)
            self.waiting = False
        if n < 0:
            if errno == EINTR:
                # Run Python signal handlers now (KeyboardInterrupt propagates);
                # the next iteration recomputes the timeout.
                PyErr_CheckSignals()
                return 0
            PyErr_SetFromErrno(OSError)
        for i in range(n):
            bits = self.events[i].events
            mask = 0
            # Same mapping as selectors.EpollSelector: an error or hang-up
            # wakes both the reader and the writer.
            if bits & ~EPOLLIN:
                mask |= FL_WRITE
            if bits & ~EPOLLOUT:
                mask |= FL_READ
            fd = self.events[i].data.fd
            if self.is_wakeup(fd):
                continue
            if fd < self.kstate_size and self.kstate[fd] == KS_ARMED:
                self.kstate[fd] = KS_FIRED
            self.ready_fds[j] = fd
            self.ready_masks[j] = mask
            j += 1
        return j


@cython.final
@cython.auto_pickle(False)
cdef class SelectorPoller(Poller):
    """Portable fallback over the stdlib's ``selectors``: same API, same loop."""
    cdef object selector

    def __cinit__(self):
        self.selector = selectors.DefaultSelector()
        self._reserve(64)

    cdef int release(self) except -1:
        if self.selector is not None:
            self.selector.close()
            self.selector = None
        return 0

    cdef int control(self, int fd, int old_mask, int new_mask, bint rearm) except -1:
        if new_mask == 0:
            if old_mask:
                self.registered -= 1
                try:
                    self.selector.unregister(fd)
                except KeyError:
                    pass    # a failed modify() already unregistered it
        elif old_mask == 0:
            self.selector.register(fd, new_mask)
            self.registered += 1
        elif old_mask != new_mask:
            self.selector.modify(fd, new_mask)
        elif rearm:
            # The same interest again: register anew, as EpollPoller does, so
            # that a file whose fd number was reused after a close while
            # registered is polled (selectors would keep the stale key).
            # Which other interest is stale cannot be told here: CONTROL_DONE.
            self.selector.unregister(fd)
            try:
                self.selector.register(fd, new_mask)
            except OSError:
                # A closed fd: the stdlib makes no syscall for an unchanged
                # mask, so it cannot fail here; neither may we. (remove_*
                # later finds it unregistered, as after a failed modify().)
                pass
        return 0

    cdef int wait(self, double timeout) except -1:
        cdef int i = 0
        events = self.selector.select(None if timeout < 0 else timeout)
        self._reserve(len(events))
        for key, mask in events:
            if self.is_wakeup(key.fd):
                continue
            self.ready_fds[i] = key.fd
            self.ready_masks[i] = mask
            i += 1
        return i


cdef Poller make_poller():
    choice = os.environ.get('FASTLOOP_POLLER', '')
    if choice not in ('', 'epoll', 'selectors'):
        raise ValueError(f"FASTLOOP_POLLER must be 'epoll' or 'selectors', not {choice!r}")
    cdef Poller poller
    if FL_HAVE_EPOLL and choice != 'selectors':
        poller = EpollPoller()
    else:
        poller = SelectorPoller()
    poller.open_wakeup()
    return poller
