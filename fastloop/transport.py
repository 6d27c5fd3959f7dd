"""fastloop's stream transport for TCP and Unix sockets.

The running Python's own ``_SelectorSocketTransport`` (so every behaviour the
stdlib has is the stdlib's), with its per-message state held in a native
``TransportCore`` and its per-message methods native (``_transport.pyx``).
The state attributes below are properties over the core's C fields: the
stdlib's code keeps reading and assigning them as attributes.
"""

import operator
import socket

from fastloop import _compat, _transport


def core_field(name):
    """A property over ``self._core.<name>``, for a state attribute the stdlib assigns."""
    # The stdlib's code reads and assigns these rarely (close, abort, flow
    # control); the native read/write paths use the C fields directly.
    def set_field(self, value):
        setattr(self._core, name, value)

    return property(operator.attrgetter(f"_core.{name}"), set_field)


class ReleasesCore:
    """Mixed in before a stdlib transport class whose state lives in ``self._core``."""

    def _call_connection_lost(self, exc):
        try:
            super()._call_connection_lost(exc)
        finally:
            self._core.detach()


class SocketTransport(ReleasesCore, _compat.SelectorSocketTransport):
    # A slot, not a __dict__ entry: write() reads it on every call.
    __slots__ = ("_core",)

    def __init__(self, *args, **kwargs):
        # Before the stdlib's __init__, which assigns the fields below.
        self._core = _transport.new_core(self)
        super().__init__(*args, **kwargs)

    _sock_fd = core_field("fd")
    _protocol = core_field("protocol")
    _buffer = core_field("buffer")
    _conn_lost = core_field("conn_lost")
    _eof = core_field("eof")
    _empty_waiter = core_field("empty_waiter")
    if _compat.TRANSPORT_TRACKS_BUFFER_SIZE:
        # 3.15+: the write buffer's size, kept as writes queue and drain.
        _buffer_size = core_field("buffer_size")
    # Setting it also picks the core's native read path.
    _read_ready_cb = property(operator.attrgetter("_core.read_cb"), _transport._set_read_ready_cb)
    # The reader the stdlib registers: the native core (callable, named as
    # the stdlib's _read_ready).
    _read_ready = property(operator.attrgetter("_core"))
    _read_ready__data_received = _transport._read_ready__data_received
    _read_ready__get_buffer = _transport._read_ready__get_buffer
    write = _transport.write


def native_capable(sock):
    """The native paths call recv(2)/send(2) on the fd: only for real sockets."""
    return type(sock) is socket.socket
