"""Native ``sock_*`` methods: the loop's low-level socket API.

``fastloop.Loop`` binds these module-level coroutine functions as its
``sock_recv``, ``sock_recv_into``, ``sock_recvfrom``, ``sock_recvfrom_into``,
``sock_sendall``, ``sock_sendto``, ``sock_connect`` and ``sock_accept`` (Cython
functions bind as methods, so ``self`` is the loop). They behave like the
stdlib's ``BaseSelectorEventLoop`` methods of the running Python version:

* the same checks in the same order: an SSL socket is a TypeError, a socket
  that is not non-blocking is a ValueError in debug mode only, an fd used by
  a transport is a RuntimeError and a closed loop a RuntimeError, both only
  when the operation has to wait;
* the syscall is tried first, through the socket object's own method (so
  socket subclasses and mocks see the calls the stdlib makes), and a result
  that is already there is returned at once: no future, no handle, no
  registration;
* only on ``BlockingIOError``/``InterruptedError`` a future is created and a
  reader (writer) registered in the native fd table. When the fd is ready the
  registered ``_Waiter`` retries the syscall; once it has a result or an
  error it removes the registration and resolves the future, in that one
  callback. The stdlib resolves the future and removes the reader from a
  done-callback one iteration later; here only the task's wake-up remains;
* when the waiting coroutine ends any other way (its task is cancelled, the
  coroutine is closed) the registration is removed in its ``finally``, unless
  it has been replaced meanwhile: as in the stdlib, a second operation on the
  same fd and direction replaces (cancels) the first one's handle, and the
  first one then leaves the fd alone.

Deliberate differences, all on paths where the stdlib misbehaves: a waiting
``sock_accept`` whose future is already cancelled does not accept (the stdlib
accepts the connection and then fails to set the result), and a spurious
wake-up of a waiting ``sock_accept`` keeps its registration instead of
registering again (the stdlib's re-registration leaves a stale reader behind
once the accept completes).
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.exc cimport PyErr_CheckSignals, PyErr_Clear
from libc.errno cimport EAGAIN, EINTR, errno

from fastloop._handles cimport Handle
from fastloop._loop cimport LoopCore
from fastloop._poller cimport FL_READ, FL_WRITE
from fastloop._readbytes cimport read_bytes

import asyncio
import os
import socket as _socket_module
import weakref

from fastloop import _compat

cdef extern from "<sys/socket.h>" nogil:
    ssize_t c_recv "recv"(int fd, void* buf, size_t n, int flags)
    ssize_t c_send "send"(int fd, const void* buf, size_t n, int flags)

cdef extern from "<errno.h>" nogil:
    int EWOULDBLOCK

cdef extern from "Python.h":
    # PyObject_GetBuffer without Cython's exception check: a failure only
    # means "let the socket method handle it" (and raise its own error).
    int try_get_buffer "PyObject_GetBuffer"(object obj, Py_buffer* view, int flags)

try:
    import ssl as _ssl
except ImportError:     # pragma: no cover - Python built without ssl
    _ssl = None

cdef object _SSLSocket = _ssl.SSLSocket if _ssl is not None else None
cdef object _PlainSocket = _socket_module.socket
# socket.socket inherits these from the C type _socket.socket; for an object whose type
# is exactly socket.socket, calling the descriptors skips the method lookup.
cdef object _sock_fileno = _socket_module.socket.fileno
cdef object _sock_gettimeout = _socket_module.socket.gettimeout
cdef object _WeakValueDictionary = weakref.WeakValueDictionary
cdef object _Future = asyncio.Future
cdef object _base_create_future = asyncio.BaseEventLoop.create_future
cdef object _native_create_future = LoopCore.create_future
cdef object _AF_INET = _socket_module.AF_INET
cdef object _AF_INET6 = getattr(_socket_module, 'AF_INET6', None)
cdef object _SOL_SOCKET = _socket_module.SOL_SOCKET
cdef object _SO_ERROR = _socket_module.SO_ERROR

#: The datagram methods (sock_recvfrom, sock_recvfrom_into, sock_sendto)
#: exist from 3.11 on; fastloop.Loop binds them only where the stdlib has them.
HAS_DATAGRAM_OPS = _compat.HAS_SOCK_DATAGRAM_OPS

# What a waiting operation does when its fd is ready.
cdef enum:
    OP_RECV
    OP_RECV_INTO
    OP_RECVFROM
    OP_RECVFROM_INTO
    OP_SENDALL
    OP_SENDTO
    OP_CONNECT
    OP_ACCEPT


# The syscalls. A plain ``socket.socket`` whose timeout is 0 (what the stdlib
# expects) is read and written with recv(2)/send(2) directly: exactly the one
# syscall its recv()/recv_into()/send() would make (they retry EINTR after
# running the signal handlers, and raise OSError from errno), but without
# their argument parsing and, above all, without raising BlockingIOError
# when the socket is not ready. Anything else (a subclass, a mock, a socket
# with a timeout, an argument the socket method would reject) goes through
# the socket's own method, so it sees the calls and raises the errors the
# stdlib's code would.

#: What the syscall helpers return instead of raising BlockingIOError.
cdef object WOULD_BLOCK = object()
cdef object _strerror = os.strerror

# recv() with the GIL held: the socket is non-blocking and the data is copied
# out into a bytes object of the right size before anything else runs.
cdef enum:
    RECV_BUFFER_SIZE = 262144
cdef char recv_buffer[RECV_BUFFER_SIZE]
# Up to this size a result is copied out of recv_buffer; larger reads are
# received into their own bytes object (_recv_direct).
cdef enum:
    RECV_COPY_MAX = 16384


cdef int _plain_fd(object sock) except -2:
    """The fd of a non-blocking plain socket, or -1: use the socket's method."""
    if type(sock) is not _PlainSocket:
        return -1
    timeout = _sock_gettimeout(sock)
    if timeout is None or timeout != 0.0:
        return -1
    return _sock_fileno(sock)


cdef object _syscall_failed(int err):
    # BlockingIOError is a sentinel, anything else raises the OSError
    # subclass socket methods raise: OSError(errno, strerror), which is what
    # their PyErr_SetFromErrno builds (the constructor picks the subclass).
    if err == EAGAIN or err == EWOULDBLOCK:
        return WOULD_BLOCK
    raise OSError(err, _strerror(err))


cdef ssize_t _transfer(int fd, void* buf, size_t n, bint sending) except -2:
    # recv(2) or send(2), retried on EINTR after the signal handlers ran (an
    # exception they raise propagates), as socket methods do: the count, or
    # -1 with errno set.
    cdef ssize_t done
    while True:
        done = c_send(fd, buf, n, 0) if sending else c_recv(fd, buf, n, 0)
        if done >= 0 or errno != EINTR:
            return done
        PyErr_CheckSignals()


cdef object _recv(object sock, object n):
    cdef int fd = -1
    cdef int err = 0
    cdef ssize_t got
    if type(n) is int and 0 <= n <= RECV_BUFFER_SIZE:
        fd = _plain_fd(sock)
    if fd >= 0:
        if n > RECV_COPY_MAX:
            # A large read goes straight into the bytes object it returns,
            # as socket.recv() does (_readbytes.pxd, shared with the transports).
            while True:
                data = read_bytes(fd, n, True, &got, &err)
                if got >= 0:
                    return b"" if data is None else data
                if err != EINTR:
                    return _syscall_failed(err)
                PyErr_CheckSignals()
        got = _transfer(fd, recv_buffer, <size_t>n, False)
        if got < 0:
            return _syscall_failed(errno)
        return PyBytes_FromStringAndSize(recv_buffer, got)
    try:
        return sock.recv(n)
    except (BlockingIOError, InterruptedError):
        return WOULD_BLOCK


cdef object _buffer_transfer(object sock, object buf, bint sending):
    # sock.send(buf) (sending) or sock.recv_into(buf): the byte count, or
    # WOULD_BLOCK instead of BlockingIOError.
    cdef Py_buffer view
    cdef ssize_t done
    cdef int fd = _plain_fd(sock)
    if fd >= 0:
        if try_get_buffer(buf, &view, PyBUF_SIMPLE if sending else PyBUF_WRITABLE) < 0:
            PyErr_Clear()
        else:
            try:
                done = _transfer(fd, view.buf, <size_t>view.len, sending)
                if done < 0:
                    return _syscall_failed(errno)
                return done
            finally:
                PyBuffer_Release(&view)
    try:
        return sock.send(buf) if sending else sock.recv_into(buf)
    except (BlockingIOError, InterruptedError):
        return WOULD_BLOCK


cdef inline object _recv_into(object sock, object buf):
    return _buffer_transfer(sock, buf, False)


cdef inline object _send(object sock, object data):
    return _buffer_transfer(sock, data, True)


cdef object _create_future(LoopCore loop):
    # loop.create_future() without a method call when it is fastloop's or the stdlib's.
    meth = type(loop).create_future
    if meth is _native_create_future or meth is _base_create_future:
        return _Future(loop=loop)
    return loop.create_future()


cdef int _ensure_fd_no_transport(LoopCore loop, object fd) except -1:
    # The stdlib's _ensure_fd_no_transport(fd) for the usual case, an fd that
    # no transport uses, looked up without its KeyError; any other case (a
    # transport, even a closing one, a replaced mapping, an fd that is not
    # an int) is the stdlib's.
    transports = loop._transports
    if type(fd) is int and type(transports) is _WeakValueDictionary:
        ref = (<dict?>transports.data).get(fd)
        if ref is None or ref() is None:
            return 0
    loop._ensure_fd_no_transport(fd)
    return 0


cdef inline int _check_socket(LoopCore loop, object sock) except -1:
    # base_events._check_ssl_socket(), then the debug-mode blocking check.
    if (type(sock) is not _PlainSocket and _SSLSocket is not None
            and isinstance(sock, _SSLSocket)):
        raise TypeError("Socket cannot be of type SSLSocket")
    if loop.debug and sock.gettimeout() != 0:
        raise ValueError("the socket must be non-blocking")
    return 0


@cython.final
@cython.freelist(16)
@cython.auto_pickle(False)
cdef class _Waiter:
    """The fd callback of one operation that had to wait.

    Registered as the reader (writer) handle's callback: each readiness
    retries the syscall; a result or an error ends the wait (registration
    removed, future resolved), ``BlockingIOError``/``InterruptedError`` keeps
    it. Its references are dropped when it ends.
    """
    cdef LoopCore loop
    cdef object fut
    cdef object sock
    cdef object arg         # n / buf / bufsize / memoryview / data / address
    cdef object arg2        # nbytes (recvfrom_into) / address (sendto)
    cdef Py_ssize_t pos     # bytes of the memoryview sent (sendall)
    cdef int fd
    cdef int flag
    cdef int op
    cdef Handle handle      # the registration, until _wait_done()

    def __call__(self):
        cdef object fut = self.fut
        cdef object sock = self.sock
        cdef object result = None
        # Cancelled (or otherwise ended) before this callback ran: the
        # waiting coroutine's ``finally`` removes the registration.
        if fut is None or fut.done():
            return
        try:
            if self.op == OP_RECV:
                result = _recv(sock, self.arg)
                if result is WOULD_BLOCK:
                    return self._keep_waiting()
            elif self.op == OP_RECV_INTO:
                result = _recv_into(sock, self.arg)
                if result is WOULD_BLOCK:
                    return self._keep_waiting()
            elif self.op == OP_SENDALL:
                sent = _send(sock, self.arg[self.pos:])
                if sent is WOULD_BLOCK:
                    return self._keep_waiting()
                self.pos += sent
                if self.pos != len(self.arg):
                    return self._keep_waiting()     # partly sent: room for the rest
            elif self.op == OP_ACCEPT:
                conn, address = sock.accept()
                conn.setblocking(False)
                result = (conn, address)
            elif self.op == OP_CONNECT:
                err = sock.getsockopt(_SOL_SOCKET, _SO_ERROR)
                if err != 0:
                    raise OSError(err, f'Connect call failed {self.arg}')
            elif self.op == OP_RECVFROM:
                result = sock.recvfrom(self.arg)
            elif self.op == OP_RECVFROM_INTO:
                result = sock.recvfrom_into(self.arg, self.arg2)
            else:   # OP_SENDTO
                result = sock.sendto(self.arg, 0, self.arg2)
        except (BlockingIOError, InterruptedError):
            return self._keep_waiting()     # not ready after all
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(result)
        self._finish()

    cdef object _keep_waiting(self):
        # A one-shot registration is disabled after the event that ran us.
        self.loop.fd_rearm_oneshot(self.fd, self.flag)
        return None

    cdef int _finish(self) except -1:
        # Only a registered (not cancelled) handle runs, so the fd's current
        # registration in this direction is this waiter's own. The future is
        # resolved first: should removing fail, the error is reported like
        # the stdlib's failing done-callback, and the waiting task still wakes.
        cdef LoopCore loop = self.loop
        self.loop = None
        self.fut = self.sock = self.arg = self.arg2 = None
        loop.fd_remove(self.fd, self.flag)
        return 0


cdef _Waiter _wait(LoopCore loop, object sock, int op, object arg, object arg2,
                   Py_ssize_t pos=0):
    """Create the future and register the waiter; the stdlib's slow path, in its order.

    The caller awaits ``waiter.fut`` and calls ``_wait_done`` in a ``finally``."""
    cdef _Waiter waiter = _Waiter.__new__(_Waiter)
    cdef int flag = FL_WRITE if op == OP_SENDALL or op == OP_SENDTO or op == OP_CONNECT else FL_READ
    fut = _create_future(loop)
    fd = sock.fileno()
    _ensure_fd_no_transport(loop, fd)
    waiter.loop = loop
    waiter.fut = fut
    waiter.sock = sock
    waiter.arg = arg
    waiter.arg2 = arg2
    waiter.pos = pos
    waiter.op = op
    waiter.flag = flag
    waiter.fd = fd
    if op == OP_SENDALL:
        waiter.arg = memoryview(arg)
    waiter.handle = <Handle>loop.fd_add_oneshot(fd, flag, waiter)
    return waiter


cdef inline int _wait_done(LoopCore loop, _Waiter waiter) except -1:
    # The ``finally`` of every wait: the stdlib's _sock_read_done /
    # _sock_write_done, which leave the fd alone when this waiter's handle was
    # replaced by a newer registration (or already removed). (The wait itself
    # is awaited in each sock_* coroutine: a shared coroutine around it costs
    # ~2,500 instructions per wait, +14 % on that path, measured with callgrind.)
    cdef Handle handle = waiter.handle
    waiter.handle = None
    if handle is not None and not handle._cancelled:
        loop.fd_remove(waiter.fd, waiter.flag)
    return 0


async def sock_recv(LoopCore self, sock, n):
    """Receive data from the socket.

    The return value is a bytes object representing the data received.
    The maximum amount of data to be received at once is specified by
    nbytes.
    """
    _check_socket(self, sock)
    result = _recv(sock, n)
    if result is not WOULD_BLOCK:
        return result
    cdef _Waiter waiter = _wait(self, sock, OP_RECV, n, None)
    try:
        return await waiter.fut
    finally:
        _wait_done(self, waiter)


async def sock_recv_into(LoopCore self, sock, buf):
    """Receive data from the socket.

    The received data is written into *buf* (a writable buffer).
    The return value is the number of bytes written.
    """
    _check_socket(self, sock)
    result = _recv_into(sock, buf)
    if result is not WOULD_BLOCK:
        return result
    cdef _Waiter waiter = _wait(self, sock, OP_RECV_INTO, buf, None)
    try:
        return await waiter.fut
    finally:
        _wait_done(self, waiter)


async def sock_recvfrom(LoopCore self, sock, bufsize):
    """Receive a datagram from a datagram socket.

    The return value is a tuple of (bytes, address) representing the
    datagram received and the address it came from.
    The maximum amount of data to be received at once is specified by
    nbytes.
    """
    _check_socket(self, sock)
    try:
        return sock.recvfrom(bufsize)
    except (BlockingIOError, InterruptedError):
        pass
    cdef _Waiter waiter = _wait(self, sock, OP_RECVFROM, bufsize, None)
    try:
        return await waiter.fut
    finally:
        _wait_done(self, waiter)


async def sock_recvfrom_into(LoopCore self, sock, buf, nbytes=0):
    """Receive data from the socket.

    The received data is written into *buf* (a writable buffer).
    The return value is a tuple of (number of bytes written, address).
    """
    _check_socket(self, sock)
    if not nbytes:
        nbytes = len(buf)
    try:
        return sock.recvfrom_into(buf, nbytes)
    except (BlockingIOError, InterruptedError):
        pass
    cdef _Waiter waiter = _wait(self, sock, OP_RECVFROM_INTO, buf, nbytes)
    try:
        return await waiter.fut
    finally:
        _wait_done(self, waiter)


async def sock_sendall(LoopCore self, sock, data):
    """Send data to the socket.

    The socket must be connected to a remote socket. This method continues
    to send data from data until either all data has been sent or an
    error occurs. None is returned on success. On error, an exception is
    raised, and there is no way to determine how much data, if any, was
    successfully processed by the receiving end of the connection.
    """
    cdef _Waiter waiter
    _check_socket(self, sock)
    n = _send(sock, data)
    if n is WOULD_BLOCK:
        n = 0
    if n == len(data):
        return None     # all sent
    waiter = _wait(self, sock, OP_SENDALL, data, None, n)
    try:
        return await waiter.fut
    finally:
        _wait_done(self, waiter)


async def sock_sendto(LoopCore self, sock, data, address):
    """Send data to the socket.

    The socket must be connected to a remote socket. This method continues
    to send data from data until either all data has been sent or an
    error occurs. None is returned on success. On error, an exception is
    raised, and there is no way to determine how much data, if any, was
    successfully processed by the receiving end of the connection.
    """
    _check_socket(self, sock)
    try:
        return sock.sendto(data, address)
    except (BlockingIOError, InterruptedError):
        pass
    cdef _Waiter waiter = _wait(self, sock, OP_SENDTO, data, address)
    try:
        return await waiter.fut
    finally:
        _wait_done(self, waiter)


async def sock_connect(LoopCore self, sock, address):
    """Connect to a remote socket at address.

    This method is a coroutine.
    """
    _check_socket(self, sock)
    family = sock.family
    if family == _AF_INET or (_AF_INET6 is not None and family == _AF_INET6):
        resolved = await _compat.ensure_resolved(
            self, address, family=sock.family, type=sock.type, proto=sock.proto)
        _, _, _, _, address = resolved[0]
    try:
        sock.connect(address)
    except (BlockingIOError, InterruptedError):
        # The connection goes on in the background (for EINTR too, issue
        # #23618): wait until the socket is writable, then read SO_ERROR.
        pass
    else:
        return None
    cdef _Waiter waiter = _wait(self, sock, OP_CONNECT, address, None)
    try:
        return await waiter.fut
    finally:
        _wait_done(self, waiter)


async def sock_accept(LoopCore self, sock):
    """Accept a connection.

    The socket must be bound to an address and listening for connections.
    The return value is a pair (conn, address) where conn is a new socket
    object usable to send and receive data on the connection, and address
    is the address bound to the socket on the other end of the connection.
    """
    _check_socket(self, sock)
    try:
        conn, address = sock.accept()
        conn.setblocking(False)
    except (BlockingIOError, InterruptedError):
        pass
    else:
        return conn, address
    cdef _Waiter waiter = _wait(self, sock, OP_ACCEPT, None, None)
    try:
        return await waiter.fut
    finally:
        _wait_done(self, waiter)
