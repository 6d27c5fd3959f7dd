"""fastloop's TLS protocol: the stdlib's SSLProtocol with a native per-record path.

``SSLProtocol`` is the running Python's ``asyncio.sslproto.SSLProtocol``
(3.11+): handshake, shutdown, timeouts, ``start_tls`` compatibility and every
error path are the stdlib's methods. The methods that run for every record are
native (``_sslproto.pyx``), and the attributes they touch are properties over
the C fields of the protocol's ``SSLCore``, so the stdlib's code keeps reading
and assigning them as attributes. The app-facing transport is the stdlib's
``_SSLProtocolTransport`` with a native ``write``/``writelines``.

``make_ssl_transport`` is what ``Loop._make_ssl_transport`` builds for
``create_connection(ssl=...)``, ``create_server(ssl=...)`` and the
``create_unix_*`` variants: this protocol over fastloop's native socket
transport (``fastloop.transport.SocketTransport``). On 3.10, whose sslproto is
the older data_received-based design, the stdlib's SSLProtocol runs over the
native socket transport.
"""

import operator

from fastloop import _compat
from fastloop.transport import SocketTransport, core_field

if _compat.NATIVE_SSLPROTO:
    from fastloop import _sslproto, _transport

    _sslproto.set_native_transport(SocketTransport, _transport.write)

    class SSLProtocolTransport(_compat.StdSSLProtocolTransport):
        write = _sslproto.transport_write
        writelines = _sslproto.transport_writelines

    def _core_fields(cls):
        for name in _compat.SSL_PROTOCOL_STATE_ATTRIBUTES:
            if name != "_sslobj":
                setattr(cls, name, core_field(name[1:]))
        return cls

    @_core_fields
    class SSLProtocol(_compat.StdSSLProtocol):
        def __init__(self, *args, **kwargs):
            # Before the stdlib's __init__, which assigns the fields.
            self._core = _sslproto.new_core(self)
            super().__init__(*args, **kwargs)

        # Setting it also picks the C methods of a plain ssl.SSLObject.
        _sslobj = property(operator.attrgetter("_core.sslobj"),
                           lambda self, value: setattr(self._core, "sslobj", value))

        def _get_app_transport(self):
            # The stdlib's method builds its own _SSLProtocolTransport by
            # name; this builds the subclass first and lets the stdlib's
            # answer (and raise 'Creating _SSLProtocolTransport twice').
            if self._app_transport is None and not self._app_transport_created:
                self._app_transport = SSLProtocolTransport(self._loop, self)
                self._app_transport_created = True
            return super()._get_app_transport()

        get_buffer = _sslproto.get_buffer
        buffer_updated = _sslproto.buffer_updated
        _do_read = _sslproto._do_read
        _do_read__copied = _sslproto._do_read__copied
        _do_read__buffered = _sslproto._do_read__buffered
        _write_appdata = _sslproto._write_appdata
        _do_write = _sslproto._do_write
        _process_outgoing = _sslproto._process_outgoing
        _control_app_writing = _sslproto._control_app_writing
        _control_ssl_reading = _sslproto._control_ssl_reading
        _get_write_buffer_size = _sslproto._get_write_buffer_size
        _get_read_buffer_size = _sslproto._get_read_buffer_size
else:
    SSLProtocol = _compat.StdSSLProtocol


def make_ssl_transport(loop, rawsock, protocol, sslcontext, waiter=None, *,
                       server_side=False, server_hostname=None, extra=None,
                       server=None, context=None, **timeouts):
    """``_make_ssl_transport`` for a plain socket: SSLProtocol over SocketTransport.

    ``timeouts`` are ssl_handshake_timeout (and on 3.11+ ssl_shutdown_timeout)
    as the stdlib's callers pass them; SSLProtocol applies the stdlib's
    defaults and checks.
    """
    if _compat.MAKE_SSL_TRANSPORT_CHECKS_FD:
        loop._ensure_fd_no_transport(rawsock)
    ssl_protocol = SSLProtocol(loop, protocol, sslcontext, waiter, server_side,
                               server_hostname, **timeouts)
    transport_kwargs = {"extra": extra, "server": server}
    if context is not None:
        transport_kwargs["context"] = context
    SocketTransport(loop, rawsock, ssl_protocol, **transport_kwargs)
    return ssl_protocol._app_transport


__all__ = ["SSLProtocol", "make_ssl_transport"]
