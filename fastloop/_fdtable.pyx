# cython: binding=False
# (Plain method descriptors: docs/design.md, "Handles and timers".)
"""The loop's fd table: which handle runs when an fd is ready, and the poller.

``FdTable`` is ``LoopCore``'s base class (``_loop.pyx``): its fields and
methods are the loop's own, so the iteration reads the tables directly and
``_sockops``/``_accept`` reach them through ``LoopCore``'s C interface. It
holds, per fd number, the reader handle, the writer handle and the file
object the user registered, and keeps the poller's interest equal to what
those say (``Poller.set_interest``, one syscall at most). It answers what the
stdlib's code asks its selector (``_fd_key``, ``_fd_registered``: the view in
``loop.py``), with selectors' rules for file objects and its messages.

What happens when an fd is ready (the handles join the ready queue) is the
iteration's business: ``LoopCore.dispatch_events``.
"""

cimport cython
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from libc.limits cimport INT_MAX

from fastloop._handles cimport Handle, new_handle
from fastloop._poller cimport CONTROL_REREGISTERED, FL_READ, FL_WRITE, make_poller

import selectors

cdef object _SelectorKey = selectors.SelectorKey


cdef inline int _mask_of(object reader, object writer) noexcept:
    return (FL_READ if reader is not None else 0) | (FL_WRITE if writer is not None else 0)


@cython.auto_pickle(False)
cdef class FdTable:

    def __cinit__(self, *args, **kwargs):
        self.fd_readers = []
        self.fd_writers = []
        self.fd_objects = []
        self.poller = make_poller()

    def __dealloc__(self):
        self._close_fds()

    # -- file descriptors ---------------------------------------------------

    def add_reader(self, fd, callback, *args):
        """Start monitoring ``fd`` for read availability."""
        self._ensure_fd_no_transport(fd)
        self.fd_add(fd, FL_READ, callback, args, None)

    def remove_reader(self, fd):
        """Stop monitoring ``fd`` for read availability."""
        self._ensure_fd_no_transport(fd)
        return self.fd_remove(fd, FL_READ)

    def add_writer(self, fd, callback, *args):
        """Start monitoring ``fd`` for write availability."""
        self._ensure_fd_no_transport(fd)
        self.fd_add(fd, FL_WRITE, callback, args, None)

    def remove_writer(self, fd):
        """Stop monitoring ``fd`` for write availability."""
        self._ensure_fd_no_transport(fd)
        return self.fd_remove(fd, FL_WRITE)

    # The stdlib transports and sock_* methods call these directly (3.15+
    # with the transport's context, which the callback then runs in).
    def _add_reader(self, fd, callback, *args, context=None):
        return self.fd_add(fd, FL_READ, callback, args, context)

    def _remove_reader(self, fd):
        return self.fd_remove(fd, FL_READ)

    def _add_writer(self, fd, callback, *args, context=None):
        return self.fd_add(fd, FL_WRITE, callback, args, context)

    def _remove_writer(self, fd):
        return self.fd_remove(fd, FL_WRITE)

    cdef int fd_of(self, object fileobj) except -2:
        """The fd of ``fileobj``, with selectors' rules and messages.

        A file object that no longer has a valid fd (a closed socket) is
        found by identity among the registered ones, as selectors does, so
        ``remove_reader(sock)`` still works after ``sock.close()``.
        """
        cdef Py_ssize_t i
        if isinstance(fileobj, int):
            fd = fileobj
        else:
            try:
                fd = int(fileobj.fileno())
            except (AttributeError, TypeError, ValueError):
                fd = None
        if fd is None or fd < 0:
            for i in range(PyList_GET_SIZE(self.fd_objects)):
                if <object>PyList_GET_ITEM(self.fd_objects, i) is fileobj:
                    return i
            if fd is None:
                raise ValueError(f'Invalid file object: {fileobj!r}') from None
            raise ValueError(f'Invalid file descriptor: {fd}')
        if fd > INT_MAX:
            # What epoll.register() says; lookups treat it as not registered.
            raise OverflowError('Python int too large to convert to C int')
        return fd

    cdef int fd_slots(self, int fd) except -1:
        cdef Py_ssize_t have = PyList_GET_SIZE(self.fd_readers)
        cdef Py_ssize_t want
        if fd < have:
            return 0
        want = max(fd + 1, have * 2, 64)
        extra = [None] * (want - have)
        self.fd_readers.extend(extra)
        self.fd_writers.extend(extra)
        self.fd_objects.extend(extra)
        return 0

    cdef object fd_add(self, object fileobj, int flag, object callback, tuple args,
                       object context):
        cdef int fd, old_mask, rc
        cdef list slots = self.fd_readers if flag == FL_READ else self.fd_writers
        cdef list others = self.fd_writers if flag == FL_READ else self.fd_readers
        self.check_closed()
        fd = self.fd_of(fileobj)
        handle = new_handle(callback, args, self, context, self.debug)
        if fd < PyList_GET_SIZE(slots):
            previous = slots[fd]
            old_mask = _mask_of(self.fd_readers[fd], self.fd_writers[fd])
        else:
            previous = None
            old_mask = 0
        # Re-arm even when the mask is unchanged: if the fd was closed and
        # its number reused, this registers the new file with the kernel.
        try:
            rc = self.poller.set_interest(fd, old_mask, old_mask | flag, True)
        except OSError:
            self.fd_forget(fd, old_mask)
            raise
        if rc == CONTROL_REREGISTERED and old_mask & ~flag:
            # The other direction's handle was registered for the file that
            # was closed under it; keeping it would run it for the new file.
            self.poller.set_interest(fd, old_mask | flag, flag, False)
            stale = others[fd]
            others[fd] = None
            if not (<Handle>stale)._cancelled:
                (<Handle>stale)._cancel_native(self.debug)
            old_mask = 0        # a new registration: record the new file object
        # Size the tables only for an fd the kernel accepted: an arbitrary int
        # (add_reader(2**31 - 1)) must fail like the stdlib's, with EBADF,
        # not allocate (or, unchecked, index) a table that large.
        self.fd_slots(fd)
        if old_mask == 0:
            self.fd_objects[fd] = fileobj
        slots[fd] = handle
        if previous is not None and not (<Handle>previous)._cancelled:
            (<Handle>previous)._cancel_native(self.debug)
        return handle

    cdef object fd_add_oneshot(self, int fd, int flag, object callback):
        """fd_add() for a sock_* wait: one-shot kernel interest when the fd has
        no other registration (see _poller.pyx), plain interest otherwise."""
        cdef list slots = self.fd_readers if flag == FL_READ else self.fd_writers
        if fd < PyList_GET_SIZE(slots) and _mask_of(self.fd_readers[fd], self.fd_writers[fd]):
            return self.fd_add(fd, flag, callback, (), None)
        self.check_closed()
        handle = new_handle(callback, (), self, None, self.debug)
        self.poller.arm_oneshot(fd, flag)
        self.fd_slots(fd)
        self.fd_objects[fd] = fd
        slots[fd] = handle
        return handle

    cdef int fd_rearm_oneshot(self, int fd, int flag) except -1:
        # A waiter whose syscall would still block waits for the next event.
        return self.poller.rearm_oneshot(fd, flag)

    cdef bint fd_remove(self, object fileobj, int flag) except -1:
        cdef int fd, old_mask, new_mask
        cdef list slots = self.fd_readers if flag == FL_READ else self.fd_writers
        if self.closed:
            return False
        try:
            fd = self.fd_of(fileobj)
        except OverflowError:
            return False    # never registered: the selector's lookup misses
        if fd >= PyList_GET_SIZE(slots):
            return False
        old_mask = _mask_of(self.fd_readers[fd], self.fd_writers[fd])
        if old_mask == 0:
            return False
        new_mask = old_mask & ~flag
        try:
            self.poller.set_interest(fd, old_mask, new_mask, False)
        except OSError:
            self.fd_forget(fd, old_mask)
            raise
        if new_mask == 0:
            self.fd_objects[fd] = None
        handle = slots[fd]
        if handle is None:
            return False
        slots[fd] = None
        if not (<Handle>handle)._cancelled:
            (<Handle>handle)._cancel_native(self.debug)
        return True

    cdef int fd_forget(self, int fd, int old_mask) except -1:
        # Like selectors, whose failed modify() unregisters the key: the fd
        # is forgotten, and its handles are left as they are (not cancelled).
        if old_mask == 0:
            return 0
        self.poller.set_interest(fd, old_mask, 0, False)
        self.fd_readers[fd] = None
        self.fd_writers[fd] = None
        self.fd_objects[fd] = None
        return 0

    def _fd_key(self, fileobj):
        """A selectors.SelectorKey for ``fileobj``, or None (for loop._selector)."""
        cdef int fd
        if self.closed:
            return None
        try:
            fd = self.fd_of(fileobj)
        except OverflowError:
            return None
        if fd >= PyList_GET_SIZE(self.fd_readers):
            return None
        reader = self.fd_readers[fd]
        writer = self.fd_writers[fd]
        mask = _mask_of(reader, writer)
        if not mask:
            return None
        return _SelectorKey(self.fd_objects[fd], fd, mask, (reader, writer))

    def _fd_registered(self):
        """The fds with a reader or a writer, in fd order."""
        return [fd for fd in range(len(self.fd_readers))
                if self.fd_readers[fd] is not None or self.fd_writers[fd] is not None]

    def _poller_name(self):
        return self.poller.name

    cdef int _close_fds(self) except -1:
        # The poller closes its wake-up fd along with its own.
        if self.poller is not None:
            self.poller.close()
        return 0
