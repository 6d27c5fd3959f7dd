"""``fastloop.Loop``: the native core in front of the stdlib's selector loop."""

import asyncio
import collections.abc
import errno

from fastloop import _accept, _compat, _sockops
from fastloop._loop import LoopCore
from fastloop.transport import SocketTransport, native_capable

_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class _SelectorMap(collections.abc.Mapping):
    def __init__(self, loop):
        self._loop = loop

    def __getitem__(self, fileobj):
        key = self._loop._fd_key(fileobj)
        if key is None:
            raise KeyError(f"{fileobj!r} is not registered")
        return key

    def __iter__(self):
        return iter(self._loop._fd_registered())

    def __len__(self):
        return len(self._loop._fd_registered())


class _SelectorView:
    """What stdlib code reads as ``loop._selector``.

    The stdlib transports look up an fd's registration through the selector
    (``get_key``/``get_map``, e.g. in their repr) and the stdlib ``close()``
    closes it. fastloop's registrations live in the native core; this view
    answers those calls from there.
    """

    def __init__(self, loop):
        self._loop = loop

    def get_key(self, fileobj):
        return self.get_map()[fileobj]

    def get_map(self):
        return _SelectorMap(self._loop)

    def close(self):
        self._loop._close_native()

    def __repr__(self):
        return f"<fastloop selector view poller={self._loop._poller_name()}>"


class Loop(LoopCore, asyncio.SelectorEventLoop):
    """An asyncio event loop whose hot path is native.

    Scheduling, timers, polling and the iteration come from ``LoopCore``
    (Cython); transports, servers, SSL, subprocesses, signals, DNS and
    executors are the stdlib's own, inherited from ``SelectorEventLoop``.
    """

    # The low-level socket API: native, syscall first (fastloop/_sockops.pyx).
    sock_recv = _sockops.sock_recv
    sock_recv_into = _sockops.sock_recv_into
    sock_sendall = _sockops.sock_sendall
    sock_connect = _sockops.sock_connect
    sock_accept = _sockops.sock_accept
    if _sockops.HAS_DATAGRAM_OPS:
        sock_recvfrom = _sockops.sock_recvfrom
        sock_recvfrom_into = _sockops.sock_recvfrom_into
        sock_sendto = _sockops.sock_sendto

    def __init__(self):
        # The stdlib's own __init__ chain, with a view of the native fd table
        # as its selector; it also makes the self-pipe, which stays:
        # signal.set_wakeup_fd() writes signal numbers into it and
        # _read_from_self() dispatches them.
        _compat.init_loop(self, _SelectorView(self))
        self._set_quiet_fd(_compat.quiet_self_pipe_fd(self))

    def _close_self_pipe(self):
        self._set_quiet_fd(-1)
        super()._close_self_pipe()

    def add_signal_handler(self, sig, callback, *args):
        try:
            return super().add_signal_handler(sig, callback, *args)
        finally:
            self._set_quiet_fd(_compat.quiet_self_pipe_fd(self))

    def remove_signal_handler(self, sig):
        try:
            return super().remove_signal_handler(sig)
        finally:
            self._set_quiet_fd(_compat.quiet_self_pipe_fd(self))

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None,
                               **kwargs):
        # kwargs: what newer Pythons add (3.15: context), passed on as is.
        if not native_capable(sock):
            return super()._make_socket_transport(
                sock, protocol, waiter, extra=extra, server=server, **kwargs
            )
        self._ensure_fd_no_transport(sock)
        return SocketTransport(self, sock, protocol, waiter, extra, server, **kwargs)

    # The server accept loop: native, one accept4(2) per connection
    # (fastloop/_accept.pyx); it hands every listening socket it cannot serve
    # natively to _accept_connection_py below.
    _accept_connection = _accept.accept_connection

    def _accept_connection_py(self, protocol_factory, sock, sslcontext=None, server=None,
                              backlog=100, *timeouts, **timeout_kwargs):
        # The Python accept loop: the fallback of the native one, for sockets
        # that are not plain socket.socket objects, families other than
        # AF_INET/AF_INET6/AF_UNIX and platforms without accept4.
        # The stdlib's accept loop, with one difference: when accept() runs out
        # of fds (or memory) it reports once, pauses accepting for
        # ACCEPT_RETRY_DELAY and stops. The stdlib keeps looping up to
        # `backlog` times, each failure calling the exception handler and
        # scheduling yet another retry, so an fd shortage floods the handler
        # (tens of thousands of reports) and multiplies the retry timers.
        trailing = _compat.accept_trailing(timeouts, timeout_kwargs)
        for _ in range(backlog + _compat.ACCEPT_EXTRA_TRIES):
            try:
                conn, addr = sock.accept()
                if self._debug:
                    _compat.transport_logger.debug(
                        "%r got a new connection from %r: %r", server, addr, conn
                    )
                conn.setblocking(False)
            except ConnectionAbortedError:
                if _compat.ACCEPT_SKIPS_ABORTED:
                    continue
                return None
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise  # the loop's exception handling reports it
                self.call_exception_handler({
                    "message": "socket.accept() out of system resource",
                    "exception": exc,
                    "socket": _compat.TransportSocket(sock),
                })
                self._remove_reader(sock.fileno())
                self.call_later(_compat.ACCEPT_RETRY_DELAY, self._start_serving,
                                protocol_factory, sock, sslcontext, server, backlog,
                                *trailing)
                return None
            else:
                _compat.accept_one(self, protocol_factory, conn, addr, sslcontext, server,
                                   trailing)
        return None

    def close(self):
        super().close()
        # Idempotent; also covers a subclass whose close() skipped the view.
        self._close_native()
