# Reading from an fd straight into the bytes object a protocol receives,
# shared by the stream transport (recv) and the read pipe transport (read).

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, _PyBytes_Resize
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from libc.errno cimport errno

cdef extern from "_sys.h" nogil:
    ssize_t recv(int fd, void* buf, size_t n, int flags)
    ssize_t read(int fd, void* buf, size_t n)

# A result up to this size is copied into an object of its own size, so the
# large block goes back at once; a larger one is shrunk in place.
cdef enum:
    COPY_MAX = 16384


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
        data = None
        _PyBytes_Resize(&raw, n[0])
        data = <object>raw
        Py_DECREF(data)
    return data
