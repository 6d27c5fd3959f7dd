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
  branch); ``EMFILE``/``ENFILE``/``ENOBUFS``/``ENOMEM`` pause accepting (see
  "Out of fds" below); any other error propagates as the ``OSError``
  subclass ``sock.accept()`` would raise.

Everything else goes through ``accept_connection_py`` (bound as
``Loop._accept_connection_py``), the same loop in Python: a listening socket
that is not exactly ``socket.socket`` (a subclass, a wrapper), one with a
timeout, a family other than those three, and every platform without accept4
(only Linux uses it here). Both share the out-of-fds pause.

Out of fds (or memory)
----------------------
The stdlib keeps looping up to ``backlog`` times after accept() fails with
EMFILE, each failure calling the exception handler and scheduling one more
``_start_serving`` after ``ACCEPT_RETRY_DELAY`` (1 s): an fd shortage floods
the handler, and every batch of the backlog that meets the limit again waits
a full second. Here an *episode* starts at the first such failure on a
listening socket and ends when a wake-up drains its backlog (EAGAIN):

* the exception handler hears of it once per episode;
* accepting pauses (the reader is removed) and ``_start_serving`` re-arms it
  after a delay that starts at ``FIRST_RETRY_DELAY`` and doubles on every
  retry that accepted nothing, up to ``ACCEPT_RETRY_DELAY``; a retry that
  accepted something means fds are being freed, so the delay starts over.

So a server whose connections are closing drains its backlog in a few short
pauses instead of one second per batch, and a server that stays out of fds
retries no more often than the stdlib's once a second after about a second.
Pending connections are never dropped (libuv's reserve-fd trick would
accept and close them): they wait in the backlog, as on the stdlib loop.
"""

from cpython.exc cimport PyErr_CheckSignals

from fastloop._loop cimport LoopCore
from fastloop._sockaddr cimport (
    AF_INET,
    AF_INET6,
    AF_UNIX,
    sockaddr,
    sockaddr_storage,
    sockaddr_to_python,
    socklen_t,
)

import _socket
import errno
import os
import socket as _socket_module
import weakref

from fastloop import _compat

cdef extern from "_sys.h" nogil:
    int EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED
    int EMFILE, ENFILE, ENOBUFS, ENOMEM
    int close(int fd)

    int FL_HAVE_ACCEPT4
    int FL_SOCK_NONBLOCK
    int fl_accept4(int fd, sockaddr* addr, socklen_t* addrlen)

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
cdef Py_ssize_t ACCEPT_TRAILING_COUNT = len(_compat.ACCEPT_TIMEOUT_DEFAULTS)
cdef Py_ssize_t ACCEPT_EXTRA_TRIES = _compat.ACCEPT_EXTRA_TRIES
cdef bint ACCEPT_SKIPS_ABORTED = _compat.ACCEPT_SKIPS_ABORTED
cdef str _OUT_OF_RESOURCES_MESSAGE = "socket.accept() out of system resource"
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

#: The first pause of an out-of-fds episode, in seconds (see the module docstring).
FIRST_RETRY_DELAY = 0.01

# Listening socket -> the retry delay of its current out-of-fds episode. Weak
# keys: a socket closed and dropped while paused takes its episode with it.
cdef object _episodes = weakref.WeakKeyDictionary()


cdef int _pause_accepting(LoopCore loop, object sock, object exc, bint accepted_some,
                          tuple start_args) except -1:
    """Out of fds (or memory): report once per episode, stop accepting on
    ``sock`` and re-arm ``_start_serving(*start_args)`` after the episode's
    next delay."""
    delay = _episodes.get(sock)
    if delay is None:
        loop.call_exception_handler({
            "message": _OUT_OF_RESOURCES_MESSAGE,
            "exception": exc,
            "socket": _compat.TransportSocket(sock),
        })
        delay = FIRST_RETRY_DELAY
    elif accepted_some:
        delay = FIRST_RETRY_DELAY
    else:
        delay = min(delay * 2, _compat.ACCEPT_RETRY_DELAY)
    _episodes[sock] = delay
    loop._remove_reader(sock.fileno())
    loop.call_later(delay, loop._start_serving, *start_args)
    return 0


cdef inline int _caught_up(object sock) except -1:
    """The backlog is drained: any out-of-fds episode on ``sock`` is over."""
    if _episodes:
        _episodes.pop(sock, None)
    return 0


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
    # with their defaults: what a pause re-arms _start_serving with. The
    # stdlib's _start_serving passes them all positionally: that tuple is it.
    if not timeout_kwargs and len(timeouts) == ACCEPT_TRAILING_COUNT:
        trailing = timeouts
    else:
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
            if err == EAGAIN or err == EWOULDBLOCK:
                _caught_up(sock)
                return None
            if err == ECONNABORTED:
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
                raise OSError(err, _strerror(err))   # a traceback, as the stdlib's has
            except OSError as exc:
                _pause_accepting(self, sock, exc, _i > 0,
                                 (protocol_factory, sock, sslcontext, server, backlog,
                                  *trailing))
            return None
        try:
            addr = sockaddr_to_python(&peer, peer_size)
        except BaseException:
            close(fd)
            raise
        conn = _wrap_fd(fd, py_family, stype, proto)
        if self.debug:
            _compat.transport_logger.debug(
                "%r got a new connection from %r: %r", server, addr, conn)
        _accept_one(self, protocol_factory, conn, addr, sslcontext, server, trailing)
    return None


def accept_connection_py(LoopCore self, protocol_factory, sock, sslcontext=None, server=None,
                         backlog=100, *timeouts, **timeout_kwargs):
    """The Python accept loop, for the sockets ``accept_connection`` cannot
    serve natively: the stdlib's loop, with the shared out-of-fds pause."""
    trailing = _compat.accept_trailing(timeouts, timeout_kwargs)
    for i in range(backlog + ACCEPT_EXTRA_TRIES):
        try:
            conn, addr = sock.accept()
            if self.debug:
                _compat.transport_logger.debug(
                    "%r got a new connection from %r: %r", server, addr, conn)
            conn.setblocking(False)
        except ConnectionAbortedError:
            if ACCEPT_SKIPS_ABORTED:
                continue
            return None
        except BlockingIOError:
            _caught_up(sock)
            return None
        except InterruptedError:
            return None
        except OSError as exc:
            if exc.errno not in _OUT_OF_RESOURCES:
                raise  # the loop's exception handling reports it
            _pause_accepting(self, sock, exc, i > 0,
                             (protocol_factory, sock, sslcontext, server, backlog, *trailing))
            return None
        else:
            _accept_one(self, protocol_factory, conn, addr, sslcontext, server, trailing)
    return None
