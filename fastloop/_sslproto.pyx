"""The per-record path of TLS: ciphertext in, plaintext to the app, and back.

``fastloop.sslproto.SSLProtocol`` is the running Python's own
``asyncio.sslproto.SSLProtocol`` (3.11+), so the handshake, shutdown, timeouts,
half-close refusal and every error message stay the stdlib's code. What moves
here is what runs for every record once the connection is up: ``get_buffer`` /
``buffer_updated`` (ciphertext from the socket into the incoming MemoryBIO),
``_do_read`` (SSLObject.read to the app protocol), ``_write_appdata`` /
``_do_write`` / ``_process_outgoing`` (app data through SSLObject.write and the
outgoing MemoryBIO to the socket transport) and the flow-control checks.

The attributes those methods touch are properties over the C fields of one
``SSLCore`` per protocol (the pattern of ``_transport.TransportCore``): the
stdlib's (cold) methods read and assign them as before, the code below uses
the fields without a Python attribute lookup.

Two things differ in how, never in what:
- ``SSLObject.read``/``write``/``pending`` are ssl.py wrappers around the C
  object in ``SSLObject._sslobj``; for a plain ``ssl.SSLObject`` the core calls
  the C methods (a Python frame less per call). A context whose
  ``sslobject_class`` is a subclass keeps the wrappers.
- The stdlib reads until ``SSLObject.read`` raises ``SSLWantReadError``. A
  read with no ciphertext left in the incoming BIO and no decrypted bytes
  pending in the SSL object can only raise that, so the core stops there
  instead of paying for the exception.
"""

cimport cython

from fastloop import _compat

cdef object _STATE = _compat.SSLProtocolState
cdef object UNWRAPPED = _STATE.UNWRAPPED
cdef object DO_HANDSHAKE = _STATE.DO_HANDSHAKE
cdef object WRAPPED = _STATE.WRAPPED
cdef object FLUSHING = _STATE.FLUSHING
cdef object SHUTDOWN = _STATE.SHUTDOWN
cdef object SSL_AGAIN_ERRORS = _compat.SSL_AGAIN_ERRORS
cdef object PLAIN_SSLOBJECT = _compat.SSLObject
cdef str SSLOBJECT_INNER = _compat.SSLOBJECT_INNER
cdef object LOG_THRESHOLD = _compat.LOG_THRESHOLD_FOR_CONNLOST_WRITES
cdef object _logger = _compat.sslproto_logger
cdef object _native_transport_write = None   # set by fastloop.sslproto


@cython.final
@cython.auto_pickle(False)
cdef class SSLCore:
    """The per-record state of one SSLProtocol, as C fields."""
    # What SSLProtocol's properties of the same names (with a leading
    # underscore) read and assign.
    cdef public object state
    cdef public object transport
    cdef public object app_protocol
    cdef public object app_transport
    cdef public object incoming
    cdef public object outgoing
    cdef public object write_backlog
    cdef public object ssl_buffer
    cdef public object ssl_buffer_view
    cdef public object incoming_high_water
    cdef public object incoming_low_water
    cdef public object outgoing_high_water
    cdef public object outgoing_low_water
    cdef public Py_ssize_t write_buffer_size
    cdef public Py_ssize_t conn_lost
    cdef public bint app_protocol_is_buffer
    cdef public bint app_reading_paused
    cdef public bint app_writing_paused
    cdef public bint ssl_reading_paused
    cdef public bint ssl_writing_paused
    cdef object _sslobj
    cdef object sslobj_read     # the C methods for a plain SSLObject, else its own
    cdef object sslobj_write
    cdef object sslobj_pending
    cdef Py_ssize_t max_size

    def __cinit__(self, owner):
        # No reference back to the owner (the SSLProtocol, whose cold methods
        # the core calls by name): every entry point passes it in. A cycle
        # would keep the protocol, its SSLContext and its socket alive until
        # the cyclic GC runs; the stdlib's protocol is freed by refcount
        # (CPython's test_ssl checks it).
        self.max_size = owner.max_size
        self.state = None

    @property
    def sslobj(self):
        return self._sslobj

    @sslobj.setter
    def sslobj(self, value):
        self._sslobj = value
        target = getattr(value, SSLOBJECT_INNER) if type(value) is PLAIN_SSLOBJECT else value
        self.sslobj_read = getattr(target, 'read', None)
        self.sslobj_write = getattr(target, 'write', None)
        self.sslobj_pending = getattr(target, 'pending', None)

    # -- incoming flow --------------------------------------------------------

    cdef object get_buffer(self, Py_ssize_t n):
        cdef Py_ssize_t want = n
        if want <= 0 or want > self.max_size:
            want = self.max_size
        if len(self.ssl_buffer) < want:
            self.ssl_buffer = bytearray(want)
            self.ssl_buffer_view = memoryview(self.ssl_buffer)
        return self.ssl_buffer_view

    cdef int buffer_updated(self, object owner, object nbytes) except -1:
        self.incoming.write(self.ssl_buffer_view[:nbytes])
        state = self.state
        if state is DO_HANDSHAKE:
            owner._do_handshake()
        elif state is WRAPPED:
            self.do_read(owner)
        elif state is FLUSHING:
            owner._do_flush()
        elif state is SHUTDOWN:
            owner._do_shutdown()
        return 0

    cdef inline bint nothing_to_read(self) except -1:
        # SSLObject.read() would raise SSLWantReadError: no ciphertext left
        # and no plaintext buffered in the SSL object.
        if self.sslobj_pending is None:
            return False
        return not self.incoming.pending and not self.sslobj_pending()

    cdef int do_read(self, object owner) except -1:
        state = self.state
        if state is not WRAPPED and state is not FLUSHING:
            return 0
        try:
            if not self.app_reading_paused:
                if self.app_protocol_is_buffer:
                    self.read_buffered(owner)
                else:
                    self.read_copied(owner)
                if self.write_backlog:
                    self.do_write(owner)
                else:
                    self.process_outgoing(owner)
            self.control_ssl_reading()
        except Exception as ex:
            owner._fatal_error(ex, 'Fatal error on SSL protocol')
        return 0

    cdef int read_copied(self, object owner) except -1:
        cdef bint zero = True
        cdef bint one = False
        cdef list data = None
        first = None
        chunk = b'1'
        try:
            while not self.nothing_to_read():
                chunk = self.sslobj_read(self.max_size)
                if not chunk:
                    break
                if zero:
                    zero = False
                    one = True
                    first = chunk
                elif one:
                    one = False
                    data = [first, chunk]
                else:
                    data.append(chunk)
        except SSL_AGAIN_ERRORS:
            pass
        if one:
            self.app_protocol.data_received(first)
        elif not zero:
            self.app_protocol.data_received(b''.join(data))
        if not chunk:
            # close_notify
            owner._call_eof_received()
            owner._start_shutdown()
        return 0

    cdef int read_buffered(self, object owner) except -1:
        offset = 0
        count = 1
        buf = owner._app_protocol_get_buffer(self.incoming.pending)
        wants = len(buf)
        try:
            # (A zero-length read returns 0 at once, which the stdlib takes
            # for close_notify: that one is always made.)
            if not wants or not self.nothing_to_read():
                count = self.sslobj_read(wants, buf)
                if count > 0:
                    offset = count
                    while offset < wants:
                        if self.nothing_to_read():
                            break   # where the stdlib's read raises: no call_soon
                        count = self.sslobj_read(wants - offset, buf[offset:])
                        if count > 0:
                            offset += count
                        else:
                            break
                    else:
                        owner._loop.call_soon(owner._do_read)
        except SSL_AGAIN_ERRORS:
            pass
        if offset > 0:
            owner._app_protocol_buffer_updated(offset)
        if not count:
            # close_notify
            owner._call_eof_received()
            owner._start_shutdown()
        return 0

    cdef int control_ssl_reading(self) except -1:
        size = self.incoming.pending
        if size >= self.incoming_high_water and not self.ssl_reading_paused:
            self.ssl_reading_paused = True
            self.transport.pause_reading()
        elif size <= self.incoming_low_water and self.ssl_reading_paused:
            self.ssl_reading_paused = False
            self.transport.resume_reading()
        return 0

    # -- outgoing flow --------------------------------------------------------

    cdef int write_appdata(self, object owner, object list_of_data) except -1:
        state = self.state
        if state is FLUSHING or state is SHUTDOWN or state is UNWRAPPED:
            if self.conn_lost >= LOG_THRESHOLD:
                _logger.warning('SSL connection is closed')
            self.conn_lost += 1
            return 0
        backlog = self.write_backlog
        for data in list_of_data:
            backlog.append(data)
            self.write_buffer_size += len(data)
        try:
            if self.state is WRAPPED:
                self.do_write(owner)
        except Exception as ex:
            owner._fatal_error(ex, 'Fatal error on SSL protocol')
        return 0

    cdef int do_write(self, object owner) except -1:
        cdef Py_ssize_t count, data_len
        backlog = self.write_backlog
        try:
            while backlog:
                data = backlog[0]
                count = self.sslobj_write(data)
                data_len = len(data)
                if count < data_len:
                    backlog[0] = data[count:]
                    self.write_buffer_size -= count
                else:
                    del backlog[0]
                    self.write_buffer_size -= data_len
        except SSL_AGAIN_ERRORS:
            pass
        self.process_outgoing(owner)
        return 0

    cdef int process_outgoing(self, object owner) except -1:
        # outgoing.read() of an empty BIO is b'', which the stdlib does not
        # write: checking pending first skips the call.
        if not self.ssl_writing_paused and self.outgoing.pending:
            data = self.outgoing.read()
            transport = self.transport
            if _native_transport_write is not None and type(transport) is _native_transport_type:
                _native_transport_write(transport, data)
            else:
                transport.write(data)
        self.control_app_writing(owner)
        return 0

    cdef object write_buffer_size_obj(self):
        return self.outgoing.pending + self.write_buffer_size

    cdef int control_app_writing(self, object owner) except -1:
        size = self.write_buffer_size_obj()
        if size >= self.outgoing_high_water and not self.app_writing_paused:
            self.app_writing_paused = True
            self.call_app_flow(owner, 'pause_writing')
        elif size <= self.outgoing_low_water and self.app_writing_paused:
            self.app_writing_paused = False
            self.call_app_flow(owner, 'resume_writing')
        return 0

    cdef int call_app_flow(self, object owner, str name) except -1:
        try:
            getattr(self.app_protocol, name)()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            owner._loop.call_exception_handler({
                'message': f'protocol.{name}() failed',
                'exception': exc,
                'transport': self.app_transport,
                'protocol': owner,
            })
        return 0


cdef object _native_transport_type = None


def set_native_transport(cls, write):
    """The raw transport class whose ``write`` the core may call unbound."""
    global _native_transport_type, _native_transport_write
    _native_transport_type = cls
    _native_transport_write = write


def new_core(owner):
    return SSLCore(owner)


# -- what SSLProtocol's class body binds ---------------------------------------

def get_buffer(self, n):
    return (<SSLCore?>self._core).get_buffer(n)


def buffer_updated(self, nbytes):
    (<SSLCore?>self._core).buffer_updated(self, nbytes)


def _do_read(self):
    (<SSLCore?>self._core).do_read(self)


def _do_read__copied(self):
    (<SSLCore?>self._core).read_copied(self)


def _do_read__buffered(self):
    (<SSLCore?>self._core).read_buffered(self)


def _write_appdata(self, list_of_data):
    (<SSLCore?>self._core).write_appdata(self, list_of_data)


def _do_write(self):
    (<SSLCore?>self._core).do_write(self)


def _process_outgoing(self):
    (<SSLCore?>self._core).process_outgoing(self)


def _control_app_writing(self):
    (<SSLCore?>self._core).control_app_writing(self)


def _control_ssl_reading(self):
    (<SSLCore?>self._core).control_ssl_reading()


def _get_write_buffer_size(self):
    return (<SSLCore?>self._core).write_buffer_size_obj()


def _get_read_buffer_size(self):
    return (<SSLCore?>self._core).incoming.pending


# -- what the app transport's class body binds ---------------------------------

def transport_write(self, data):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _compat.ssl_write_type_error(data)
    if not data:
        return
    proto = self._ssl_protocol
    core = getattr(proto, '_core', None)
    if type(core) is SSLCore:
        (<SSLCore>core).write_appdata(proto, (data,))
    else:
        proto._write_appdata((data,))


def transport_writelines(self, list_of_data):
    proto = self._ssl_protocol
    core = getattr(proto, '_core', None)
    if type(core) is SSLCore:
        (<SSLCore>core).write_appdata(proto, list_of_data)
    else:
        proto._write_appdata(list_of_data)
