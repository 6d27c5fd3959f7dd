# Reading from an fd straight into the bytes object a protocol receives,
# shared by the stream transport and the read pipe transport.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, _PyBytes_Resize
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from libc.errno cimport errno
from libc.string cimport memcpy

cdef extern from "_sys.h" nogil:
    ssize_t recv(int fd, void* buf, size_t n, int flags)
    ssize_t read(int fd, void* buf, size_t n)
    void fl_settle_heap()

cdef extern from "sys/uio.h" nogil:
    struct iovec:
        void* iov_base
        size_t iov_len
    ssize_t readv(int fd, const iovec* iov, int iovcnt)

# A result up to this size is copied into an object of its own size, so the
# large block goes back at once; a larger one is shrunk in place.
cdef enum:
    COPY_MAX = 16384
    # From this size on a read's object is worth keeping out of glibc's
    # trim-and-refault cycle (fl_settle_heap in _sys.h).
    LARGE_READ = 65536


cdef inline object resized(PyObject* raw, Py_ssize_t size):
    """The bytes object ``raw`` at ``size`` bytes, shrunk or grown (realloc:
    in place where the heap allows). Steals ``raw``, which must be the only
    reference to an object nothing else has seen; on failure (MemoryError)
    it is freed."""
    _PyBytes_Resize(&raw, size)
    data = <object>raw
    Py_DECREF(data)
    return data


cdef inline object read_bytes(int fd, Py_ssize_t size, bint use_recv, ssize_t* n, int* err):
    """Up to ``size`` bytes from ``fd`` as a bytes object of the received size.

    ``n`` gets what the syscall returned and ``err`` its errno; the result is
    None when it brought no data (n <= 0). A non-blocking fd: the call never
    waits, so the GIL stays held.
    """
    cdef PyObject* raw
    data = PyBytes_FromStringAndSize(NULL, size)
    if use_recv:
        n[0] = recv(fd, PyBytes_AS_STRING(data), size, 0)
    else:
        n[0] = read(fd, PyBytes_AS_STRING(data), size)
    if n[0] <= 0:
        err[0] = errno if n[0] < 0 else 0
        return None
    if n[0] <= COPY_MAX:
        return PyBytes_FromStringAndSize(PyBytes_AS_STRING(data), n[0])
    if n[0] != size:
        raw = <PyObject*>data
        Py_INCREF(data)
        data = None             # raw holds the only reference
        return resized(raw, n[0])
    return data


cdef inline object read_guessed(int fd, Py_ssize_t size, Py_ssize_t guess, char* scratch,
                                ssize_t* n, int* err):
    """Up to ``size`` bytes from ``fd`` in one readv(): the first ``guess``
    (the previous read's size) into the bytes object returned, the rest into
    ``scratch`` (at least size - guess bytes, used with the GIL held). When
    the size repeats, the data is never copied; a smaller read shrinks the
    object in place, a larger one grows it (realloc: in place when the heap
    has room behind it) and copies in only what landed in ``scratch``.
    ``n``/``err`` and a None result as read_bytes().

    The object is never larger than the data it will hold (or held last
    time): allocating the whole ``size`` and shrinking it, as read_bytes()
    does, puts every large read above glibc's mmap threshold (128 KiB until
    a large block is freed at its full size, which a shrunk block never is):
    an mmap, a page fault per 4 KiB received, an mremap and an munmap per
    read (100 KiB streams echo at 100 connections: 48 faults and 194 us of
    kernel time per message against 2 and 57)."""
    cdef iovec iov[2]
    cdef PyObject* raw
    if guess >= LARGE_READ:
        fl_settle_heap()
    data = PyBytes_FromStringAndSize(NULL, guess)
    iov[0].iov_base = PyBytes_AS_STRING(data)
    iov[0].iov_len = guess
    iov[1].iov_base = scratch
    iov[1].iov_len = size - guess
    n[0] = readv(fd, iov, 2)
    if n[0] <= 0:
        err[0] = errno if n[0] < 0 else 0
        return None
    if n[0] == guess:
        return data
    raw = <PyObject*>data
    Py_INCREF(data)
    data = None                 # raw holds the only reference
    data = resized(raw, n[0])
    if n[0] > guess:
        memcpy(PyBytes_AS_STRING(data) + guess, scratch, n[0] - guess)
    return data
