"""fastloop's stream transport for TCP and Unix sockets.

The running Python's own ``_SelectorSocketTransport`` (so every behaviour and
every private attribute the stdlib relies on is the stdlib's), with the
per-message methods replaced by native ones from ``_transport.pyx``.
"""

import socket

from fastloop import _compat, _transport


class SocketTransport(_compat.SelectorSocketTransport):
    _read_ready = _transport._read_ready
    _read_ready__data_received = _transport._read_ready__data_received
    _read_ready__get_buffer = _transport._read_ready__get_buffer
    write = _transport.write


def native_capable(sock):
    """The native paths call recv(2)/send(2) on the fd: only for real sockets."""
    return type(sock) is socket.socket
