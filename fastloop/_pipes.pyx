"""Where a pipe transport reads and writes: the native hot path of pipes.

``fastloop.pipes.ReadPipeTransport`` and ``WritePipeTransport`` are the
running Python's own ``_UnixReadPipeTransport`` / ``_UnixWritePipeTransport``
(``connect_read_pipe``, ``connect_write_pipe`` and a subprocess's stdin,
stdout and stderr), so EOF, pause/resume, close, abort, ``BrokenPipeError``
and ``connection_lost`` are the stdlib's code. Their hot state (``_fileno``,
``_protocol``, ``_buffer``, ``_conn_lost``, ``_closing``) is C fields of one
``PipeCore``, and two methods are native:

* the read transport's ``_read_ready`` (the registered reader) is
  ``on_readable``: one read of up to ``max_size`` bytes per readiness
  event, as the stdlib, straight into the bytes object ``data_received``
  gets (sized after the previous read; see ``_scratch``). End of file is
  handed to the stdlib's ``_read_ready``, which reads again and takes its
  own EOF path: end of file is sticky on pipes and
  sockets (the only fds this runs on; a tty's is not, so character devices
  keep the stdlib's read). An error goes to the stdlib's ``_fatal_error``
  here (a socket reports an error only once).
* the write transport's ``write``: with nothing queued, write(2) in the call;
  only the rest is queued (the stdlib's ``_write_ready`` flushes it). Every
  other case (a bytearray or memoryview, empty data, a closing or broken
  pipe, a non-empty queue) goes, before anything was written, to the
  stdlib's ``write``, so its checks and messages are the running Python's.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.errno cimport errno

from fastloop._corebase cimport ReaderCore, os_error, would_block
from fastloop._readbytes cimport read_bytes, read_guessed

from fastloop import _compat

cdef extern from "_sys.h" nogil:
    ssize_t write(int fd, const void* buf, size_t n)

# The part of a read beyond the size guessed from the previous read lands
# here. A pipe delivers at most its capacity (64 KiB by default) per read, so
# after the first read the guess is usually exact and the chunk is read
# straight into a bytes object of its size, which malloc serves from the heap:
# reading every chunk into a fresh 256 KiB object instead (mmap'd, then shrunk
# with mremap and unmapped) cost three syscalls and a page fault per 4 KiB
# written, per chunk. Used with the GIL held from readv() to the copy out, so
# one buffer serves every pipe (a free-threaded build would need one per loop).
cdef enum:
    SCRATCH_SIZE = 256 * 1024
cdef char _scratch[SCRATCH_SIZE]

cdef object _stdlib_read_ready = _compat.UnixReadPipeTransport._read_ready
cdef object _stdlib_write = _compat.UnixWritePipeTransport.write


@cython.final
@cython.auto_pickle(False)
cdef class PipeCore(ReaderCore):
    """The per-chunk state of one pipe transport, as C fields."""
    # What the transports' properties of the same names (with a leading
    # underscore) read and assign; fileno is None once the stdlib refused
    # the fd (not a pipe), so it is an object.
    cdef public object fileno
    cdef public object protocol
    cdef public object buffer
    cdef public Py_ssize_t conn_lost
    cdef public bint closing
    cdef bint native
    cdef int fd
    cdef Py_ssize_t max_size
    cdef Py_ssize_t last_read       # bytes the previous read returned (0: none yet)

    def __cinit__(self, transport):
        self.transport = transport
        self.fd = -1
        self.reader_name = _stdlib_read_ready.__qualname__

    def start(self, bint native, max_size=0):
        """Called once the stdlib's __init__ has set the state up."""
        self.native = native and self.fileno is not None
        if self.native:
            self.fd = self.fileno
            self.max_size = max_size

    cdef object on_readable(self):
        cdef ssize_t n
        cdef int err = 0
        if self.transport is None:
            return None         # connection lost: the reader was unregistered before
        if not self.native:
            return _stdlib_read_ready(self.transport)
        if 0 < self.last_read < self.max_size and self.max_size - self.last_read <= SCRATCH_SIZE:
            data = read_guessed(self.fd, self.max_size, self.last_read, _scratch, &n, &err)
        else:
            data = read_bytes(self.fd, self.max_size, False, &n, &err)
        if data is not None:
            self.last_read = n
            self.protocol.data_received(data)
        elif n == 0:
            # End of file: the stdlib's read meets it again and takes its path.
            return _stdlib_read_ready(self.transport)
        elif not would_block(err):
            # Not handed on: a socket reports an error once (the next read
            # would see end of file). The stdlib's _read_ready message.
            self.transport._fatal_error(os_error(err),
                                        'Fatal read error on pipe transport')

    cdef object write_data(self, object transport, object data):
        cdef ssize_t n
        cdef Py_ssize_t size
        cdef int err
        if (not self.native or type(data) is not bytes or self.conn_lost or self.closing
                or self.buffer):
            return _stdlib_write(transport, data)
        size = PyBytes_GET_SIZE(data)
        if size == 0:
            return None         # what the stdlib does with empty data
        n = write(self.fd, PyBytes_AS_STRING(data), size)
        if n == size:
            return None
        if n < 0:
            err = errno
            if not would_block(err):
                self.conn_lost += 1
                transport._fatal_error(os_error(err),
                                       'Fatal write error on pipe transport')
                return None
            n = 0
        if n > 0:
            data = memoryview(data)[n:]
        transport._loop._add_writer(self.fd, transport._write_ready)
        self.buffer += data
        transport._maybe_pause_protocol()
        return None


def new_core(transport):
    return PipeCore(transport)


def transport_write(self, data):
    """Write ``data`` to the pipe (the stdlib's ``WriteTransport.write``)."""
    return (<PipeCore?>self._core).write_data(self, data)


transport_write.__name__ = _stdlib_write.__name__
transport_write.__qualname__ = _stdlib_write.__qualname__
