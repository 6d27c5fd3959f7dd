# cython: binding=False
# (Plain method descriptors: docs/design.md, "Handles and timers".)
"""The base of the datagram and pipe cores: the registered reader itself.

The stdlib transports register ``self._read_ready``; fastloop's return their
core, a callable, so a readiness event goes from the loop's handle to the
core's ``on_readable`` with no bound method or attribute lookup. A handle
names its callback by ``__qualname__`` ("Exception in callback
_SelectorDatagramTransport._read_ready()"), so the core answers with the
stdlib reader's name and messages and reprs read as on the stdlib loop.
"""


cdef class ReaderCore:
    def __call__(self):
        self.on_readable()

    @property
    def __qualname__(self):
        return self.reader_name

    def detach(self):
        """Drop the back-reference to the transport once its connection is
        lost: the stdlib's transport leaves no reference cycle behind then
        (3.14 tests free transports with the cyclic GC disabled), so neither
        may the core. The transport's own methods pass themselves in, and
        the reader is unregistered before the connection is lost."""
        self.transport = None

    cdef object on_readable(self):
        # Overridden by each core; the base alone has nothing to read.
        raise TypeError(f"{type(self).__name__} defines no reader")
