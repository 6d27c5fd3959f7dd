"""fastloop's pipe transports (``connect_read_pipe``, ``connect_write_pipe``, subprocess pipes).

The running Python's own ``_UnixReadPipeTransport`` and
``_UnixWritePipeTransport`` with their hot state in a native ``PipeCore`` and
their read and write native (``_pipes.pyx``).
"""

import operator
import os
import stat

from fastloop import _compat, _pipes
from fastloop.transport import ReleasesCore, core_field


class ReadPipeTransport(ReleasesCore, _compat.UnixReadPipeTransport):
    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        # Before the stdlib's __init__, which assigns the fields below.
        self._core = _pipes.new_core(self)
        super().__init__(loop, pipe, protocol, waiter, extra)
        # Only where end of file is sticky (see _pipes.pyx): pipes and sockets.
        mode = os.fstat(self._fileno).st_mode
        self._core.start(stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode), self.max_size)

    _fileno = core_field("fileno")
    _protocol = core_field("protocol")
    # The reader callback the stdlib registers: the native core (callable).
    _read_ready = property(operator.attrgetter("_core"))


class WritePipeTransport(ReleasesCore, _compat.UnixWritePipeTransport):
    def __init__(self, loop, pipe, protocol, waiter=None, extra=None):
        self._core = _pipes.new_core(self)
        super().__init__(loop, pipe, protocol, waiter, extra)
        self._core.start(True)

    _fileno = core_field("fileno")
    _protocol = core_field("protocol")
    _buffer = core_field("buffer")
    _conn_lost = core_field("conn_lost")
    _closing = core_field("closing")
    write = _pipes.transport_write
