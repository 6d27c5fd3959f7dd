"""fastloop's stream transport for TCP and Unix sockets.

The running Python's own ``_SelectorSocketTransport`` (so every behaviour the
stdlib has is the stdlib's), with its per-message state held in a native
``TransportCore`` and its per-message methods native (``_transport.pyx``).
The state attributes below are properties over the core's C fields: the
stdlib's code keeps reading and assigning them as attributes.
"""

import socket

from fastloop import _compat, _transport


def _field(name):
    getter = getattr(_transport, f"_get_{name}")
    setter = getattr(_transport, f"_set_{name}")
    return property(getter, setter)


class SocketTransport(_compat.SelectorSocketTransport):
    def __init__(self, *args, **kwargs):
        # Before the stdlib's __init__, which assigns the fields below.
        self._core = _transport.new_core(self)
        super().__init__(*args, **kwargs)

    _sock_fd = _field("sock_fd")
    _protocol = _field("protocol")
    _buffer = _field("buffer")
    _conn_lost = _field("conn_lost")
    _eof = _field("eof")
    _empty_waiter = _field("empty_waiter")
    _read_ready_cb = _field("read_ready_cb")
    # The reader callback the stdlib registers: the core's native method.
    _read_ready = property(_transport._get_read_ready)
    _read_ready__data_received = _transport._read_ready__data_received
    _read_ready__get_buffer = _transport._read_ready__get_buffer
    write = _transport.write


def native_capable(sock):
    """The native paths call recv(2)/send(2) on the fd: only for real sockets."""
    return type(sock) is socket.socket
