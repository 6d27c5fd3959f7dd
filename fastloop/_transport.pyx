"""Where a transport reads and writes: the native hot path of stream transports.

``fastloop.transport.SocketTransport`` is the running Python's own
``_SelectorSocketTransport`` with the per-message methods replaced by the
functions below, so every other behaviour (close, abort, flow control,
sendfile, start_tls, half-close, connection_lost) stays the stdlib's, and the
transport's state stays in the attributes the stdlib's code reads.

What the native versions save per message: the read goes straight to
``recv(2)`` into one reusable 256 KiB buffer (the stdlib allocates a 256 KiB
bytes object for every ``sock.recv(max_size)`` and shrinks it), the write goes
straight to ``send(2)``, and no Python frame is created on the way.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.errno cimport EAGAIN, EINTR, errno
from libc.string cimport strerror

from fastloop import _compat

cdef extern from "_sys.h" nogil:
    ssize_t recv(int fd, void* buf, size_t n, int flags)
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    int MSG_NOSIGNAL

cdef extern from "errno.h" nogil:
    int EWOULDBLOCK

# The stdlib reads at most max_size (256 KiB) per readiness event; so do we,
# so that protocols see the same data_received() chunks.
cdef enum:
    READ_BUFFER_SIZE = 262144
cdef char read_buffer[READ_BUFFER_SIZE]

cdef bint BUFFER_IS_DEQUE = _compat.TRANSPORT_BUFFER_IS_DEQUE
cdef object LOG_THRESHOLD = _compat.LOG_THRESHOLD_FOR_CONNLOST_WRITES
cdef object _logger = _compat.transport_logger


cdef inline bint _would_block(int err) noexcept nogil:
    return err == EAGAIN or err == EWOULDBLOCK or err == EINTR


cdef object _os_error(int err):
    # OSError(errno, strerror) picks the subclass (ConnectionResetError,
    # BrokenPipeError, ...) exactly as socket.recv/send would raise it.
    return OSError(err, strerror(err).decode())


cdef bint _no_data(object transport, ssize_t n, int err) except -1:
    """Deal with a recv() that brought no data (error, would-block, EOF), as
    the stdlib transport does; False means there are n bytes to deliver."""
    if n < 0:
        if not _would_block(err):
            transport._fatal_error(_os_error(err), 'Fatal read error on socket transport')
        return True
    if n == 0:
        transport._read_ready__on_eof()
        return True
    return False


def _read_ready(self):
    self._read_ready_cb()


def _read_ready__data_received(self):
    cdef ssize_t n
    cdef int fd, err = 0
    if self._conn_lost:
        return
    fd = self._sock_fd
    # The GIL stays held: read_buffer is shared by every loop of the process,
    # and loops in other threads must not fill it while this one copies out
    # of it. (The socket is non-blocking, so recv() never waits.)
    n = recv(fd, read_buffer, READ_BUFFER_SIZE, 0)
    if n < 0:
        err = errno
    if _no_data(self, n, err):
        return
    data = PyBytes_FromStringAndSize(read_buffer, n)
    try:
        self._protocol.data_received(data)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        self._fatal_error(exc, 'Fatal error: protocol.data_received() call failed.')


def _read_ready__get_buffer(self):
    cdef Py_buffer view
    cdef ssize_t n
    cdef int fd, err = 0
    if self._conn_lost:
        return
    try:
        buf = self._protocol.get_buffer(-1)
        if not len(buf):
            raise RuntimeError('get_buffer() returned an empty buffer')
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        self._fatal_error(exc, 'Fatal error: protocol.get_buffer() call failed.')
        return
    fd = self._sock_fd
    try:
        PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE)
    except BaseException as exc:
        # What sock.recv_into() raises for a read-only buffer.
        self._fatal_error(exc, 'Fatal read error on socket transport')
        return
    try:
        with nogil:
            n = recv(fd, view.buf, view.len, 0)
            if n < 0:
                err = errno
    finally:
        PyBuffer_Release(&view)
    if _no_data(self, n, err):
        return
    try:
        self._protocol.buffer_updated(n)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        self._fatal_error(exc, 'Fatal error: protocol.buffer_updated() call failed.')


def write(self, data):
    cdef Py_buffer view
    cdef ssize_t n
    cdef Py_ssize_t size
    cdef int fd, err = 0
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f'data argument must be a bytes-like object, '
                        f'not {type(data).__name__!r}')
    if self._eof:
        raise RuntimeError('Cannot call write() after write_eof()')
    if self._empty_waiter is not None:
        raise RuntimeError('unable to write; sendfile is in progress')
    if not data:
        return
    if self._conn_lost:
        if self._conn_lost >= LOG_THRESHOLD:
            _logger.warning('socket.send() raised exception.')
        self._conn_lost += 1
        return
    buffer = self._buffer
    if not buffer:
        # Nothing queued: send now, in this call, as the stdlib does.
        fd = self._sock_fd
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        size = view.len
        with nogil:
            n = send(fd, view.buf, size, MSG_NOSIGNAL)
            if n < 0:
                err = errno
        PyBuffer_Release(&view)
        if n < 0:
            if not _would_block(err):
                self._fatal_error(_os_error(err), 'Fatal write error on socket transport')
                return
            n = 0
        if n == size:
            return
        if n:
            data = memoryview(data)[n:] if BUFFER_IS_DEQUE else data[n:]
        # Not everything went out: the writer flushes the rest.
        self._loop._add_writer(self._sock_fd, self._write_ready)
    if BUFFER_IS_DEQUE:
        buffer.append(data)
    else:
        buffer.extend(data)
    self._maybe_pause_protocol()
