# What the native transport cores share: errno handling and the reader
# callable that a loop handle calls and names as the stdlib's reader.

from libc.errno cimport EAGAIN, EINTR
from libc.string cimport strerror

cdef extern from "errno.h" nogil:
    int EWOULDBLOCK


cdef inline bint would_block(int err) noexcept nogil:
    return err == EAGAIN or err == EWOULDBLOCK or err == EINTR


cdef inline object os_error(int err):
    # OSError(errno, strerror) picks the subclass (ConnectionResetError,
    # BrokenPipeError, ConnectionRefusedError, ...) exactly as the socket
    # and os functions raise it.
    return OSError(err, strerror(err).decode())


cdef class ReaderCore:
    # The owner; the registered reader keeps it alive, as the stdlib's does.
    # None once its connection is lost (detach()).
    cdef object transport
    # The stdlib reader's __qualname__, which handles show for this callable.
    cdef str reader_name
    cdef object on_readable(self)
