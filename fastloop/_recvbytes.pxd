# Receiving straight into the bytes object that is handed on, shared by the
# transport read path (_transport.pyx) and large sock_recv() (_sockops.pyx).
#
# Copying a large read out of a separate buffer costs more than allocating
# the bytes object first and shrinking it afterwards (100 KiB streams echo:
# ~10 % of the server's CPU); a small result is copied into an object of its
# size instead, so the large block goes back to the allocator at once.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, _PyBytes_Resize
from cpython.ref cimport Py_DECREF, Py_INCREF, PyObject
from libc.errno cimport errno

cdef extern from "<sys/socket.h>" nogil:
    ssize_t _rb_recv "recv"(int fd, void* buf, size_t n, int flags)


cdef inline object recv_bytes(int fd, Py_ssize_t size, Py_ssize_t copy_max,
                              ssize_t* got, int* err):
    """One recv(2) of up to ``size`` bytes on non-blocking ``fd`` (the GIL is
    kept: it never waits). Sets ``got`` to its result; on failure returns
    None with ``err`` set to its errno, else a bytes object of ``got`` bytes
    (copied when ``got <= copy_max``, else the receiving object shrunk)."""
    cdef PyObject* raw
    cdef ssize_t n
    data = PyBytes_FromStringAndSize(NULL, size)
    n = _rb_recv(fd, PyBytes_AS_STRING(data), <size_t>size, 0)
    got[0] = n
    if n < 0:
        err[0] = errno
        return None
    if n == size:
        return data
    if n <= copy_max:
        return PyBytes_FromStringAndSize(PyBytes_AS_STRING(data), n)
    raw = <PyObject*>data
    Py_INCREF(data)         # _PyBytes_Resize takes over this reference
    data = None             # ... and must see the object's only one
    _PyBytes_Resize(&raw, n)
    data = <object>raw
    Py_DECREF(data)
    return data
