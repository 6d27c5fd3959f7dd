"""``fastloop.Loop``: the native core in front of the stdlib's selector loop."""

import asyncio
import collections.abc

from fastloop import _accept, _compat, _sockops, _watchdog
from fastloop._loop import LoopCore
from fastloop.datagram import DatagramTransport
from fastloop.pipes import ReadPipeTransport, WritePipeTransport
from fastloop.transport import SocketTransport, native_capable


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
        _watchdog.on_new_loop(self)

    def watchdog(self, threshold, *, callback=None):
        """Report any callback or task step that blocks this loop longer than
        ``threshold`` seconds, with the stack of the loop's thread taken while
        it blocks (``None`` switches the watchdog off).

        Reports go to the ``fastloop.watchdog`` logger (WARNING), or to
        ``callback(report)``, a ``fastloop.WatchdogReport``: called from the
        watchdog's thread once when the block is seen and once more when the
        callback returns (``report.duration`` then set).
        """
        _watchdog.watch(self, threshold, callback)

    def last_watchdog_report(self):
        """The latest ``fastloop.WatchdogReport`` of this loop, or None."""
        return _watchdog.last_report(self)

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

    def _make_ssl_transport(self, rawsock, protocol, sslcontext, waiter=None, *,
                            server_side=False, server_hostname=None, extra=None, server=None,
                            **kwargs):
        # The stdlib's own SSLProtocol (so TLS behaves as the running version's
        # does, by construction) over the native socket transport. Measured
        # faster than a Cython port of SSLProtocol over the same transport
        # (bench/README.md, TLS). kwargs: the handshake/shutdown timeouts the
        # running version's SSLProtocol takes, and 3.15's context=, which is
        # the transport's.
        if not native_capable(rawsock):
            return super()._make_ssl_transport(
                rawsock, protocol, sslcontext, waiter, server_side=server_side,
                server_hostname=server_hostname, extra=extra, server=server, **kwargs)
        if _compat.MAKE_SSL_TRANSPORT_CHECKS_FD:
            self._ensure_fd_no_transport(rawsock)
        transport_kwargs = {"context": kwargs.pop("context")} if "context" in kwargs else {}
        ssl_protocol = _compat.StdSSLProtocol(self, protocol, sslcontext, waiter,
                                              server_side, server_hostname, **kwargs)
        SocketTransport(self, rawsock, ssl_protocol, None, extra, server, **transport_kwargs)
        return ssl_protocol._app_transport

    def _make_datagram_transport(self, sock, protocol, address=None, waiter=None, extra=None):
        if not native_capable(sock):
            return super()._make_datagram_transport(sock, protocol, address, waiter, extra)
        if _compat.DATAGRAM_CHECKS_FD_IN_USE:
            self._ensure_fd_no_transport(sock)
        return DatagramTransport(self, sock, protocol, address, waiter, extra)

    def _make_read_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        return ReadPipeTransport(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(self, pipe, protocol, waiter=None, extra=None):
        return WritePipeTransport(self, pipe, protocol, waiter, extra)

    # The server accept loop: native, one accept4(2) per connection, and its
    # Python fallback for the listening sockets the native one cannot serve;
    # both pause on EMFILE as fastloop/_accept.pyx describes.
    _accept_connection = _accept.accept_connection
    _accept_connection_py = _accept.accept_connection_py

    def close(self):
        super().close()
        # Idempotent; also covers a subclass whose close() skipped the view.
        self._close_native()
