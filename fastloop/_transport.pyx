"""Where a transport reads and writes: the native hot path of stream transports.

``fastloop.transport.SocketTransport`` is the running Python's own
``_SelectorSocketTransport``, so every behaviour (close, abort, flow control,
sendfile, start_tls, half-close, connection_lost) stays the stdlib's. What
changes is where the per-message state lives: the attributes the hot path
reads (``_sock_fd``, ``_protocol``, ``_buffer``, ``_conn_lost``, ``_eof``,
``_empty_waiter``, ``_read_ready_cb``) are properties over the C fields of
one ``TransportCore`` per transport. The stdlib's own (cold) code reads and
writes them as before, through the properties; the read and write paths
below use the fields directly, without a Python attribute lookup.

The reader the stdlib registers is ``self._read_ready``, which here is the
core itself (a ``ReaderCore``, callable, named as the stdlib's reader in
handle reprs and "Exception in callback" messages): a readiness event goes
from the loop's handle straight to recv(2) and to the protocol, with no
Python frame on the way.
``write()`` sends at once with send(2) when nothing is queued.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport errno

from fastloop._corebase cimport ReaderCore, os_error, would_block
from fastloop._readbytes cimport read_guessed, recv


from fastloop import _compat

cdef extern from "_sys.h" nogil:
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    int MSG_NOSIGNAL

# The stdlib reads at most max_size (256 KiB) per readiness event; so do we,
# so that protocols see the same data_received() chunks.
cdef enum:
    READ_BUFFER_SIZE = 262144
# Up to this size a non-blocking send or recv only copies to or from the
# socket buffer: cheaper than handing the GIL to another thread and back.
cdef enum:
    KEEP_GIL_MAX = 65536

# What on_readable() does; follows _read_ready_cb (the stdlib's set_protocol
# picks the get_buffer path for a BufferedProtocol).
cdef enum:
    READ_DATA = 0
    READ_GET_BUFFER = 1
    READ_OTHER = 2

# A connection's first read lands here, and the part of a read beyond the
# size guessed from the last one; both are copied into the bytes object
# data_received() gets. (Allocating and shrinking a 256 KiB bytes object per
# read instead cost ~700 instructions of malloc work per 1 KiB message, and
# an mmap plus a page fault per 4 KiB at 100 KiB: read_guessed's docstring.)
# One buffer for every transport: the GIL is held from the recv() into it
# until the bytes object is made or grown (a bytes object is not GC-tracked,
# so neither runs Python code). A free-threaded build would need one per loop.
cdef char _scratch[READ_BUFFER_SIZE]

cdef str _stdlib_read_ready_name = _compat.SelectorSocketTransport._read_ready.__qualname__
cdef bint BUFFER_IS_DEQUE = _compat.TRANSPORT_BUFFER_IS_DEQUE
cdef bint TRACKS_BUFFER_SIZE = _compat.TRANSPORT_TRACKS_BUFFER_SIZE
cdef bint ADDS_WRITER = _compat.TRANSPORT_ADDS_WRITER
cdef object _write_type_error = _compat.write_type_error
cdef object LOG_THRESHOLD = _compat.LOG_THRESHOLD_FOR_CONNLOST_WRITES
cdef object _logger = _compat.transport_logger


@cython.final
@cython.auto_pickle(False)
cdef class TransportCore(ReaderCore):
    """The per-message state of one SocketTransport, as C fields; the
    transport's registered reader itself (``_read_ready``, a callable)."""
    # What SocketTransport's properties of the same names (with a leading
    # underscore; _sock_fd for fd) read and assign.
    cdef public object protocol
    cdef public object buffer
    cdef public object empty_waiter
    cdef public Py_ssize_t conn_lost
    cdef public Py_ssize_t buffer_size     # 3.15+: _buffer_size
    cdef public int fd
    cdef public bint eof
    cdef readonly object read_cb    # _read_ready_cb; set by _set_read_ready_cb()
    cdef int read_mode
    # The size of the last read (0: none yet): the next read likely brings
    # the same size (a request, a reply, an echo), so it receives that much
    # straight into the bytes object data_received() gets (see read_data).
    cdef Py_ssize_t last_read

    def __cinit__(self, transport):
        self.transport = transport
        self.fd = -1
        self.buffer_size = 0
        self.read_mode = READ_OTHER
        self.reader_name = _stdlib_read_ready_name

    # detach() (ReaderCore's) drops the transport once the connection is
    # lost; nothing reaches it through the core afterwards: every path checks
    # conn_lost, which is set before the connection is reported lost.

    cdef object on_readable(self):
        # What a readiness event runs (ReaderCore.__call__).
        if self.read_mode == READ_DATA:
            self.read_data()
        elif self.read_mode == READ_GET_BUFFER:
            self.read_get_buffer()
        else:
            self.read_cb()

    cdef bint no_data(self, ssize_t n, int err) except -1:
        # A recv() that brought no data (error, would-block, EOF), handled as
        # the stdlib transport does; False means there are n bytes to deliver.
        if n < 0:
            if not would_block(err):
                self.transport._fatal_error(os_error(err), 'Fatal read error on socket transport')
            return True
        if n == 0:
            self.transport._read_ready__on_eof()
            return True
        return False

    cdef int read_data(self) except -1:
        cdef ssize_t n
        cdef int err = 0
        if self.conn_lost:
            return 0
        if self.last_read:
            # One read of up to 256 KiB, as always, its first part straight
            # into an object of the last read's size (_readbytes.pxd), large
            # or small: a repeated size is never copied, and no read
            # allocates 256 KiB to shrink it after (which glibc serves with
            # mmap, page faults and munmap: read_guessed's docstring).
            data = read_guessed(self.fd, READ_BUFFER_SIZE, self.last_read, _scratch, &n, &err)
            if self.no_data(n, err):
                return 0
        else:
            n = recv(self.fd, _scratch, READ_BUFFER_SIZE, 0)
            if n <= 0:
                err = errno if n < 0 else 0
                self.no_data(n, err)
                return 0
            data = PyBytes_FromStringAndSize(_scratch, n)
        self.last_read = n
        try:
            self.protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.transport._fatal_error(exc, 'Fatal error: protocol.data_received() call failed.')
        return 0

    cdef int read_get_buffer(self) except -1:
        cdef Py_buffer view
        cdef ssize_t n
        cdef int err = 0
        if self.conn_lost:
            return 0
        try:
            buf = self.protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError('get_buffer() returned an empty buffer')
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.transport._fatal_error(exc, 'Fatal error: protocol.get_buffer() call failed.')
            return 0
        try:
            PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
        except BaseException as exc:
            # What sock.recv_into() raises for a read-only buffer.
            self.transport._fatal_error(exc, 'Fatal read error on socket transport')
            return 0
        try:
            if view.len <= KEEP_GIL_MAX:
                n = recv(self.fd, view.buf, view.len, 0)
                if n < 0:
                    err = errno
            else:
                with nogil:
                    n = recv(self.fd, view.buf, view.len, 0)
                    if n < 0:
                        err = errno
        finally:
            PyBuffer_Release(&view)
        if self.no_data(n, err):
            return 0
        try:
            self.protocol.buffer_updated(n)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.transport._fatal_error(exc, 'Fatal error: protocol.buffer_updated() call failed.')
        return 0

    cdef int write(self, object data) except -1:
        cdef Py_buffer view
        cdef ssize_t n
        cdef Py_ssize_t size
        cdef int err = 0
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise _write_type_error(data)
        if self.eof:
            raise RuntimeError('Cannot call write() after write_eof()')
        if self.empty_waiter is not None:
            raise RuntimeError('unable to write; sendfile is in progress')
        if (PyBytes_GET_SIZE(data) == 0) if type(data) is bytes else not data:
            return 0
        if self.conn_lost:
            if self.conn_lost >= LOG_THRESHOLD:
                _logger.warning('socket.send() raised exception.')
            self.conn_lost += 1
            return 0
        buffer = self.buffer
        if not buffer:
            # Nothing queued: send now, in this call, as the stdlib does.
            if type(data) is bytes and PyBytes_GET_SIZE(data) <= KEEP_GIL_MAX:
                # What data_received() usually hands on: no buffer export.
                size = PyBytes_GET_SIZE(data)
                n = send(self.fd, PyBytes_AS_STRING(data), size, MSG_NOSIGNAL)
                if n < 0:
                    err = errno
            else:
                PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
                size = view.len
                if size <= KEEP_GIL_MAX:
                    n = send(self.fd, view.buf, size, MSG_NOSIGNAL)
                    if n < 0:
                        err = errno
                else:
                    with nogil:
                        n = send(self.fd, view.buf, size, MSG_NOSIGNAL)
                        if n < 0:
                            err = errno
                PyBuffer_Release(&view)
            if n < 0:
                if not would_block(err):
                    self.transport._fatal_error(os_error(err),
                                                'Fatal write error on socket transport')
                    return 0
                n = 0
            if n == size:
                return 0
            if n:
                data = memoryview(data)[n:] if BUFFER_IS_DEQUE else data[n:]
            # Not everything went out: the writer flushes the rest.
            transport = self.transport
            if ADDS_WRITER:
                transport._add_writer(self.fd, transport._write_ready)
            else:
                transport._loop._add_writer(self.fd, transport._write_ready)
        if BUFFER_IS_DEQUE:
            buffer.append(data)
        else:
            buffer.extend(data)
        if TRACKS_BUFFER_SIZE:
            self.buffer_size += len(data)
        self.transport._maybe_pause_protocol()
        return 0


# -- what SocketTransport's class body binds ---------------------------------

cdef object _native_data_received
cdef object _native_get_buffer


def new_core(transport):
    return TransportCore(transport)


def _read_ready__data_received(self):
    (<TransportCore?>self._core).read_data()


def _read_ready__get_buffer(self):
    (<TransportCore?>self._core).read_get_buffer()


_native_data_received = _read_ready__data_received
_native_get_buffer = _read_ready__get_buffer


def write(self, data):
    (<TransportCore?>self._core).write(data)


def _set_read_ready_cb(self, cb):
    cdef TransportCore core = self._core
    func = getattr(cb, '__func__', None)
    if func is _native_data_received and getattr(cb, '__self__', None) is self:
        core.read_mode = READ_DATA
    elif func is _native_get_buffer and getattr(cb, '__self__', None) is self:
        core.read_mode = READ_GET_BUFFER
    else:
        core.read_mode = READ_OTHER
    core.read_cb = cb
