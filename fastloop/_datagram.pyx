"""Where a datagram transport reads and sends: the native hot path of UDP/Unix datagrams.

``fastloop.datagram.DatagramTransport`` is the running Python's own
``_SelectorDatagramTransport`` (close, abort, flow control, ``_sendto_ready``,
``connection_lost`` are the stdlib's code), with the per-datagram state
(``_sock_fd``, ``_protocol``, ``_buffer``, ``_buffer_size``, ``_conn_lost``,
``_address``) held as C fields of one ``DatagramCore`` and two methods
replaced:

* ``_read_ready`` (the registered reader) is ``on_readable``: one
  ``recvfrom(2)`` per readiness event, as the stdlib (several per event would
  let a datagram overtake the callbacks the previous one scheduled), into a
  module buffer of the stdlib's ``max_size``, copied into a bytes object of
  the datagram's size. The sender's address becomes the tuple
  ``sock.recvfrom()`` returns; the tuples of the last few IP senders are kept
  (keyed by the raw sockaddr), so a datagram from a known peer costs no
  address conversion, and ``sendto(data, addr)`` with one of those tuples (an
  echo, a reply) sends to the cached sockaddr without parsing ``addr``.
* ``sendto``: when nothing is queued and the transport is open, the datagram
  goes out with one ``send(2)``/``sendto(2)`` in the call, as the stdlib;
  ``EAGAIN`` queues it (the stdlib's ``_sendto_ready`` flushes the queue),
  any other error goes to ``protocol.error_received``. Every case the fast
  path does not cover (an address it has not seen, a bytearray or memoryview,
  empty data, a closed or closing transport, a non-empty queue, a wrong
  address on a connected transport) is handed, before anything was sent, to
  the stdlib's own ``sendto``, so its checks, exceptions and messages are the
  running Python's.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport errno
from libc.stdint cimport uint32_t
from libc.string cimport memcmp, memcpy

from fastloop._corebase cimport ReaderCore, os_error, would_block
from fastloop._sockaddr cimport (
    AF_INET,
    AF_INET6,
    sockaddr,
    sockaddr_in,
    sockaddr_in6,
    sockaddr_storage,
    sockaddr_to_python,
    socklen_t,
)

import socket as _socket_module

from fastloop import _compat

cdef extern from "_sys.h" nogil:
    ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr, socklen_t* addrlen)
    ssize_t send(int fd, const void* buf, size_t n, int flags)
    ssize_t sendto(int fd, const void* buf, size_t n, int flags,
                   const sockaddr* addr, socklen_t addrlen)

# The stdlib's max_size (256 KiB): no datagram is longer (UDP stops at 64 KiB,
# AF_UNIX at the socket buffer), and a transport whose class asks for more
# keeps the stdlib's read.
cdef enum:
    READ_BUFFER_SIZE = 262144
# Senders whose address tuples are kept, direct-mapped by a hash of address
# and port: an echo server with a few dozen peers converts each address about
# once. Only IP addresses are kept, so an entry is a sockaddr_in6 at most.
cdef enum:
    ADDR_CACHE_BITS = 6
    ADDR_CACHE = 1 << ADDR_CACHE_BITS

# One receive buffer for every datagram transport: the GIL is held from the
# recvfrom into it until the bytes object is copied out (nothing in between
# can run Python code: a bytes object is not GC-tracked, so allocating it
# never starts a collection). A free-threaded build (not built today) would
# need one per core.
cdef char _read_buffer[READ_BUFFER_SIZE]

cdef object _stdlib_read_ready = _compat.SelectorDatagramTransport._read_ready
cdef object _stdlib_sendto = _compat.SelectorDatagramTransport.sendto
cdef object _PlainSocket = _socket_module.socket
# What a queued datagram adds to get_write_buffer_size() (-1: the running
# Python does not track the size, 3.10 sums the queue instead).
cdef Py_ssize_t HEADER_SIZE = _compat.DATAGRAM_HEADER_SIZE
cdef bint WRITER_ON_TRANSPORT = _compat.TRANSPORT_ADDS_WRITER


cdef inline unsigned int _slot_of(sockaddr_storage* sa) noexcept nogil:
    # Mixes the whole port and the address's last four bytes: peers on one
    # host differ only in the port, and consecutive ephemeral ports share
    # their high byte (the low bits of sin_port, which is big-endian).
    cdef sockaddr_in* v4
    cdef sockaddr_in6* v6
    cdef uint32_t tail, x
    if sa.ss_family == AF_INET:
        v4 = <sockaddr_in*>sa
        memcpy(&tail, &v4.sin_addr, 4)
        x = tail ^ (<uint32_t>v4.sin_port * 0x10001u)
    else:
        v6 = <sockaddr_in6*>sa
        memcpy(&tail, (<const char*>&v6.sin6_addr) + 12, 4)
        x = tail ^ (<uint32_t>v6.sin6_port * 0x10001u)
    x *= 0x9E3779B1u
    return x >> (32 - ADDR_CACHE_BITS)


cdef inline bint _same_address(object cached, object addr):
    # True when sock.sendto(addr) would build the sockaddr `cached` came from:
    # the same tuple shape with the same exact element types and values (a
    # float port, a str subclass... are left to the socket module's parser).
    cdef Py_ssize_t i, n
    if type(addr) is not tuple:
        return False
    n = len(<tuple>cached)
    if len(<tuple>addr) != n:
        return False
    for i in range(n):
        a = (<tuple>addr)[i]
        c = (<tuple>cached)[i]
        if type(a) is not type(c) or a != c:
            return False
    return True


@cython.final
@cython.auto_pickle(False)
cdef class DatagramCore(ReaderCore):
    """The per-datagram state of one DatagramTransport, as C fields."""
    # What DatagramTransport's properties of the same names (with a leading
    # underscore; _sock_fd for fd) read and assign.
    cdef public object protocol
    cdef public object buffer
    cdef public object address
    cdef public Py_ssize_t buffer_size
    cdef public Py_ssize_t conn_lost
    cdef public int fd
    cdef bint native            # a plain IP/Unix socket: recvfrom/sendto here
    cdef bint connected         # _extra['peername'] was set: send(2), no address
    cdef size_t max_size
    # The address tuples of recent IP senders and the sockaddrs they came from.
    cdef list cached
    cdef sockaddr_in6 cached_raw[ADDR_CACHE]
    cdef socklen_t cached_len[ADDR_CACHE]
    cdef int last_slot

    def __cinit__(self, transport):
        self.transport = transport
        self.fd = -1
        self.reader_name = _stdlib_read_ready.__qualname__
        self.cached = [None] * ADDR_CACHE
        self.last_slot = 0

    def start(self, sock, peername, max_size):
        """Called once the stdlib's __init__ has set the state up."""
        self.connected = bool(peername)
        self.native = (type(sock) is _PlainSocket and 0 < max_size <= READ_BUFFER_SIZE
                       and sock.family in (AF_INET, AF_INET6, _socket_module.AF_UNIX))
        self.max_size = max_size

    cdef object on_readable(self):
        cdef ssize_t n
        cdef int err = 0
        cdef sockaddr_storage sa
        cdef socklen_t salen = sizeof(sa)
        if self.conn_lost or self.transport is None:
            return None         # what the stdlib's reader does once the connection is lost
        if not self.native:
            return _stdlib_read_ready(self.transport)
        n = recvfrom(self.fd, _read_buffer, self.max_size, 0, <sockaddr*>&sa, &salen)
        if n < 0:
            err = errno
            if not would_block(err):
                self.protocol.error_received(os_error(err))
            return None
        try:
            data = PyBytes_FromStringAndSize(_read_buffer, n)
            addr = self.address_of(&sa, salen)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.transport._fatal_error(exc, 'Fatal read error on datagram transport')
            return None
        self.protocol.datagram_received(data, addr)

    cdef object address_of(self, sockaddr_storage* sa, socklen_t salen):
        cdef unsigned int slot
        if (salen == 0 or salen > sizeof(sockaddr_in6)
                or (sa.ss_family != AF_INET and sa.ss_family != AF_INET6)):
            return sockaddr_to_python(sa, salen)
        slot = _slot_of(sa)
        self.last_slot = slot
        addr = self.cached[slot]
        if (addr is not None and self.cached_len[slot] == salen
                and memcmp(&self.cached_raw[slot], sa, salen) == 0):
            return addr
        addr = sockaddr_to_python(sa, salen)
        memcpy(&self.cached_raw[slot], sa, salen)
        self.cached_len[slot] = salen
        self.cached[slot] = addr
        return addr

    cdef int cached_slot(self, object addr):
        """The cache slot of a tuple recvfrom produced (or an equal one), else -1."""
        cdef int i
        if addr is None:
            return -1           # empty slots hold None; the stdlib rejects it
        if self.cached[self.last_slot] is addr:
            return self.last_slot
        for i in range(ADDR_CACHE):
            if self.cached[i] is addr:
                return i
        if type(addr) is not tuple:
            return -1
        for i in range(ADDR_CACHE):
            cached = self.cached[i]
            if cached is not None and _same_address(cached, addr):
                return i
        return -1

    cdef object send_datagram(self, object transport, object data, object addr):
        cdef ssize_t n
        cdef int err = 0
        cdef int slot = -1
        cdef Py_ssize_t size
        if (not self.native or type(data) is not bytes or self.conn_lost
                or self.buffer):
            return _stdlib_sendto(transport, data, addr)
        size = PyBytes_GET_SIZE(data)
        if size == 0:
            # Dropped before 3.13, an empty datagram since: the stdlib decides.
            return _stdlib_sendto(transport, data, addr)
        if self.address:
            if addr is not None and addr is not self.address:
                return _stdlib_sendto(transport, data, addr)   # compares, may raise
            addr = self.address
        if self.connected:
            n = send(self.fd, PyBytes_AS_STRING(data), size, 0)
        else:
            slot = self.cached_slot(addr)
            if slot < 0:
                return _stdlib_sendto(transport, data, addr)   # parses addr
            n = sendto(self.fd, PyBytes_AS_STRING(data), size, 0,
                       <sockaddr*>&self.cached_raw[slot], self.cached_len[slot])
        if n >= 0:
            return None
        err = errno
        if not would_block(err):
            self.protocol.error_received(os_error(err))
            return None
        # The socket buffer is full: queue it; _sendto_ready flushes the queue.
        if WRITER_ON_TRANSPORT:
            transport._add_writer(self.fd, transport._sendto_ready)
        else:
            transport._loop._add_writer(self.fd, transport._sendto_ready)
        self.buffer.append((data, addr))
        if HEADER_SIZE >= 0:
            self.buffer_size += size + HEADER_SIZE
        transport._maybe_pause_protocol()
        return None


def new_core(transport):
    return DatagramCore(transport)


def transport_sendto(self, data, addr=None):
    """Send ``data`` to ``addr`` (the stdlib's ``DatagramTransport.sendto``)."""
    return (<DatagramCore?>self._core).send_datagram(self, data, addr)


transport_sendto.__name__ = _stdlib_sendto.__name__
transport_sendto.__qualname__ = _stdlib_sendto.__qualname__
