"""fastloop's datagram transport for UDP and Unix datagram sockets.

The running Python's own ``_SelectorDatagramTransport`` (so close, abort,
flow control, the queue flush and ``connection_lost`` are the stdlib's code),
with its per-datagram state in a native ``DatagramCore`` and its reader and
``sendto`` native (``_datagram.pyx``).
"""

import operator

from fastloop import _compat, _datagram
from fastloop.transport import ReleasesCore, core_field


class DatagramTransport(ReleasesCore, _compat.SelectorDatagramTransport):
    def __init__(self, loop, sock, protocol, address=None, waiter=None, extra=None):
        # Before the stdlib's __init__, which assigns the fields below.
        self._core = _datagram.new_core(self)
        super().__init__(loop, sock, protocol, address, waiter, extra)
        self._core.start(sock, self._extra["peername"], self.max_size)

    _sock_fd = core_field("fd")
    _protocol = core_field("protocol")
    _buffer = core_field("buffer")
    _buffer_size = core_field("buffer_size")
    _conn_lost = core_field("conn_lost")
    _address = core_field("address")
    # The reader callback the stdlib registers: the native core (callable).
    _read_ready = property(operator.attrgetter("_core"))
    sendto = _datagram.transport_sendto
