"""A C socket address as the ``socket`` module returns it.

``(host, port)`` for AF_INET, ``(host, port, flowinfo, scope_id)`` for
AF_INET6, and for AF_UNIX the path as ``str`` (``''`` for an unnamed peer
that still reported a family), a Linux abstract name as the raw ``bytes``;
``None`` when the kernel reported no address at all (an unbound datagram
sender). Used by the accept loop (``accept4``) and the datagram transport
(``recvfrom``), which tests compare with ``sock.accept()`` and
``sock.recvfrom()``.
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_SetFromErrno
from cpython.unicode cimport PyUnicode_FromString

cdef extern from "_sys.h" nogil:
    enum:
        INET6_ADDRSTRLEN
    const char* inet_ntop(int af, const void* src, char* dst, socklen_t size)
    unsigned short ntohs(unsigned short n)
    unsigned int ntohl(unsigned int n)
    size_t strnlen(const char* s, size_t maxlen)

cdef extern from "Python.h":
    object PyUnicode_DecodeFSDefaultAndSize(const char* s, Py_ssize_t size)


cdef object _ip_text(int family, const void* packed):
    cdef char text[INET6_ADDRSTRLEN]
    if inet_ntop(family, packed, text, sizeof(text)) == NULL:
        PyErr_SetFromErrno(OSError)
    return PyUnicode_FromString(text)


cdef object sockaddr_to_python(sockaddr_storage* addr, socklen_t size):
    cdef sockaddr* sa = <sockaddr*>addr
    cdef sockaddr_in* v4
    cdef sockaddr_in6* v6
    cdef sockaddr_un* un
    cdef size_t path_room
    if size == 0:
        return None
    if size > sizeof(sockaddr_storage):
        size = sizeof(sockaddr_storage)     # the kernel truncated it
    if sa.sa_family == AF_INET:
        v4 = <sockaddr_in*>addr
        return (_ip_text(AF_INET, &v4.sin_addr), ntohs(v4.sin_port))
    if sa.sa_family == AF_INET6:
        v6 = <sockaddr_in6*>addr
        return (_ip_text(AF_INET6, &v6.sin6_addr), ntohs(v6.sin6_port),
                ntohl(v6.sin6_flowinfo), v6.sin6_scope_id)
    if sa.sa_family == AF_UNIX:
        un = <sockaddr_un*>addr
        path_room = size - FL_SUN_PATH_OFFSET if size > FL_SUN_PATH_OFFSET else 0
        if path_room > 0 and un.sun_path[0] == 0:
            # A Linux abstract name: every byte counts, the leading NUL too.
            return PyBytes_FromStringAndSize(un.sun_path, path_room)
        # A path (decoded as os.fsdecode would), or '' for an unnamed peer.
        return PyUnicode_DecodeFSDefaultAndSize(
            un.sun_path, strnlen(un.sun_path, path_room))
    # Other families are not served natively (their callers check first).
    return (sa.sa_family, PyBytes_FromStringAndSize(sa.sa_data, sizeof(sa.sa_data)))
