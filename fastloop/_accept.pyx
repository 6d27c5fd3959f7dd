"""The server accept loop: ``Loop._accept_connection``, with accept4(2).

``fastloop.Loop`` binds ``accept_connection`` as its ``_accept_connection``,
the reader callback ``_start_serving`` registers on a listening socket. Each
wake-up accepts up to ``backlog`` connections, as the stdlib's loop does, but
with one ``accept4(fd, ..., SOCK_NONBLOCK | SOCK_CLOEXEC)`` each (the GIL is
released around it; the listening socket is non-blocking) instead of
``sock.accept()`` and ``conn.setblocking(False)``:

* the connection is non-blocking and close-on-exec from the start, and the
  socket object is built with ``SOCK_NONBLOCK`` in its type, which makes
  CPython record a timeout of 0 without the ``ioctl(FIONBIO)`` that
  ``setblocking(False)`` costs (the type it reports is the plain one, and
  ``getblocking()`` is False);
* the peer address is converted here, to what ``sock.accept()`` returns:
  ``(host, port)`` for AF_INET, ``(host, port, flowinfo, scope_id)`` for
  AF_INET6, and for AF_UNIX the path as ``str`` (``''`` for an unnamed peer)
  or, for a Linux abstract name, the raw ``bytes``;
* ``EAGAIN``, ``EINTR`` and ``ECONNABORTED`` end this wake-up (the stdlib's
  ``BlockingIOError``/``InterruptedError``/``ConnectionAbortedError``
  branch); ``EMFILE``/``ENFILE``/``ENOBUFS``/``ENOMEM`` are reported once and
  pause accepting for ``ACCEPT_RETRY_DELAY`` (fastloop's fix of the stdlib's
  flood, see ``Loop._accept_connection_py``); any other error propagates as
  the ``OSError`` subclass ``sock.accept()`` would raise.

Everything else goes through ``Loop._accept_connection_py``, the same loop in
Python: a listening socket that is not exactly ``socket.socket`` (a subclass,
a wrapper), one with a timeout, a family other than those three, and every
platform without accept4 (only Linux uses it here).
"""

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals, PyErr_SetFromErrno
from cpython.unicode cimport PyUnicode_FromString

from fastloop._loop cimport LoopCore

import _socket
import os
import socket as _socket_module

from fastloop import _compat

cdef extern from "_sys.h" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
        char sa_data[14]
    struct sockaddr_storage:
        sa_family_t ss_family
    struct in_addr:
        pass
    struct in6_addr:
        pass
    struct sockaddr_in:
        unsigned short sin_port
        in_addr sin_addr
    struct sockaddr_in6:
        unsigned short sin6_port
        unsigned int sin6_flowinfo
        in6_addr sin6_addr
        unsigned int sin6_scope_id
    struct sockaddr_un:
        char sun_path[108]
    enum:
        INET6_ADDRSTRLEN
    int AF_INET, AF_INET6, AF_UNIX
    int EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED
    int EMFILE, ENFILE, ENOBUFS, ENOMEM
    const char* inet_ntop(int af, const void* src, char* dst, socklen_t size)
    unsigned short ntohs(unsigned short n)
    unsigned int ntohl(unsigned int n)
    size_t strnlen(const char* s, size_t maxlen)
    int close(int fd)

    int FL_HAVE_ACCEPT4
    int FL_SOCK_NONBLOCK
    size_t FL_SUN_PATH_OFFSET
    int fl_accept4(int fd, sockaddr* addr, socklen_t* addrlen)

cdef extern from "Python.h":
    object PyUnicode_DecodeFSDefaultAndSize(const char* s, Py_ssize_t size)

#: True where the native loop can run at all (Linux: accept4 exists).
HAVE_ACCEPT4 = bool(FL_HAVE_ACCEPT4)

cdef object _PlainSocket = _socket_module.socket
# The C-level accessors of _socket.socket: the family/type/proto ints without
# socket.socket's IntEnum conversion, fileno/gettimeout without a method
# lookup, and close() of the C object alone (it closes the fd it holds).
cdef object _sock_family = _socket.socket.family.__get__
cdef object _sock_type = _socket.socket.type.__get__
cdef object _sock_proto = _socket.socket.proto.__get__
cdef object _sock_fileno = _socket.socket.fileno
cdef object _sock_gettimeout = _socket.socket.gettimeout
cdef object _sock_close = _socket.socket.close
# socket.socket(...) in its two steps, so that a failure after the object
# took the fd can be told from one before (see _wrap_fd).
cdef object _socket_new = _PlainSocket.__new__
cdef object _socket_init = _PlainSocket.__init__
cdef object _strerror = os.strerror

cdef object _accept_one = _compat.accept_one
# The running stdlib's accept-loop rules (probed in _compat): one extra try
# per wake-up and skipping a connection aborted before accept(), from 3.14.
cdef Py_ssize_t ACCEPT_EXTRA_TRIES = _compat.ACCEPT_EXTRA_TRIES
cdef bint ACCEPT_SKIPS_ABORTED = _compat.ACCEPT_SKIPS_ABORTED
cdef str _OUT_OF_RESOURCES_MESSAGE = "socket.accept() out of system resource"


cdef int _native_family(object sock) except -2:
    """The listening socket's family if this module can serve it, else -1."""
    cdef int family
    if not FL_HAVE_ACCEPT4 or type(sock) is not _PlainSocket:
        return -1
    timeout = _sock_gettimeout(sock)
    if timeout is None or timeout != 0.0:
        return -1
    family = _sock_family(sock)
    if family == AF_INET or family == AF_INET6 or family == AF_UNIX:
        return family
    return -1


cdef object _ip_text(int family, const void* packed):
    cdef char text[INET6_ADDRSTRLEN]
    if inet_ntop(family, packed, text, sizeof(text)) == NULL:
        PyErr_SetFromErrno(OSError)
    return PyUnicode_FromString(text)


cdef object _peer_address(sockaddr_storage* peer, socklen_t size):
    """The address as sock.accept() returns it, from what accept4 wrote."""
    cdef sockaddr* sa = <sockaddr*>peer
    cdef sockaddr_in* v4
    cdef sockaddr_in6* v6
    cdef sockaddr_un* un
    cdef size_t path_room
    if size == 0:
        return None
    if size > sizeof(sockaddr_storage):
        size = sizeof(sockaddr_storage)     # the kernel truncated it
    if sa.sa_family == AF_INET:
        v4 = <sockaddr_in*>peer
        return (_ip_text(AF_INET, &v4.sin_addr), ntohs(v4.sin_port))
    if sa.sa_family == AF_INET6:
        v6 = <sockaddr_in6*>peer
        return (_ip_text(AF_INET6, &v6.sin6_addr), ntohs(v6.sin6_port),
                ntohl(v6.sin6_flowinfo), v6.sin6_scope_id)
    if sa.sa_family == AF_UNIX:
        un = <sockaddr_un*>peer
        path_room = size - FL_SUN_PATH_OFFSET if size > FL_SUN_PATH_OFFSET else 0
        if path_room > 0 and un.sun_path[0] == 0:
            # A Linux abstract name: every byte counts, the leading NUL too.
            return PyBytes_FromStringAndSize(un.sun_path, path_room)
        # A path (decoded as os.fsdecode would), or '' for an unnamed peer.
        return PyUnicode_DecodeFSDefaultAndSize(
            un.sun_path, strnlen(un.sun_path, path_room))
    # Not reached: only the three families above take this path.
    return (sa.sa_family, PyBytes_FromStringAndSize(sa.sa_data, sizeof(sa.sa_data)))


cdef object _wrap_fd(int fd, object family, object stype, object proto):
    """A socket.socket owning ``fd``; whatever fails, ``fd`` is closed once.

    ``stype`` carries SOCK_NONBLOCK, so CPython sets the timeout to 0 without
    a syscall (and strips the flag from ``type``).
    """
    conn = None
    try:
        conn = _socket_new(_PlainSocket)
        _socket_init(conn, family, stype, proto, fd)
    except BaseException:
        if conn is not None and _sock_fileno(conn) == fd:
            _sock_close(conn)       # the object holds the fd: it closes it
        else:
            close(fd)
        raise
    return conn


def accept_connection(LoopCore self, protocol_factory, sock, sslcontext=None, server=None,
                      backlog=100, *timeouts, **timeout_kwargs):
    """Accept up to ``backlog`` connections and start serving each.

    The reader callback of a listening socket (``_start_serving``); the
    stdlib's ``_accept_connection`` with accept4(2), see the module docstring.
    """
    cdef int family = _native_family(sock)
    cdef int listen_fd, fd, err
    cdef Py_ssize_t _i, n
    cdef sockaddr_storage peer
    cdef socklen_t peer_size
    if family < 0:
        return self._accept_connection_py(protocol_factory, sock, sslcontext, server,
                                          backlog, *timeouts, **timeout_kwargs)
    # The timeouts (3.15+: and the context) _start_serving passed, completed
    # with their defaults: what a pause re-arms _start_serving with.
    trailing = _compat.accept_trailing(timeouts, timeout_kwargs)
    py_family = family
    stype = _sock_type(sock) | FL_SOCK_NONBLOCK
    proto = _sock_proto(sock)
    listen_fd = _sock_fileno(sock)
    n = backlog + ACCEPT_EXTRA_TRIES
    for _i in range(n):
        peer_size = sizeof(peer)
        with nogil:
            fd = fl_accept4(listen_fd, <sockaddr*>&peer, &peer_size)
        if fd < 0:
            err = -fd
            if err == ECONNABORTED and ACCEPT_SKIPS_ABORTED:
                continue
            if err == EAGAIN or err == EWOULDBLOCK or err == ECONNABORTED:
                return None
            if err == EINTR:
                # Python-level signal handlers run now (what socket methods
                # do on EINTR); then, as the stdlib, stop for this wake-up.
                PyErr_CheckSignals()
                return None
            if (err != EMFILE and err != ENFILE and err != ENOBUFS
                    and err != ENOMEM):
                raise OSError(err, _strerror(err))
            try:
                raise OSError(err, _strerror(err))
            except OSError as exc:
                self.call_exception_handler({
                    "message": _OUT_OF_RESOURCES_MESSAGE,
                    "exception": exc,
                    "socket": _compat.TransportSocket(sock),
                })
            self._remove_reader(listen_fd)
            self.call_later(_compat.ACCEPT_RETRY_DELAY, self._start_serving,
                            protocol_factory, sock, sslcontext, server, backlog,
                            *trailing)
            return None
        try:
            addr = _peer_address(&peer, peer_size)
        except BaseException:
            close(fd)
            raise
        conn = _wrap_fd(fd, py_family, stype, proto)
        if self.debug:
            _compat.transport_logger.debug(
                "%r got a new connection from %r: %r", server, addr, conn)
        _accept_one(self, protocol_factory, conn, addr, sslcontext, server, trailing)
    return None
