"""Every use of CPython's private asyncio names lives here.

fastloop keeps the stdlib's non-hot machinery (transports for SSL/UDP/pipes,
subprocesses, signals, DNS, executors) by inheriting from
``asyncio.SelectorEventLoop``. That machinery talks to its loop through private
methods and attributes whose names and signatures drift between 3.10 and 3.15.
``REGISTRY`` lists each one fastloop calls, overrides, shadows or reads, with
the signatures known on every supported Python; ``test_stdlib_private_names_exist``
(tests/test_api.py) checks them on each Python, so a CPython rename or a new
parameter fails one test instead of silently dropping a native path.

Where behaviour differs between versions, the value below is read from the
running stdlib itself wherever it can be (a probe of the stdlib's own method,
e.g. the accept loop's rules or write()'s TypeError text), and taken from the
version number only where it cannot.
"""

import asyncio
import inspect
import sys
import threading
from asyncio import (
    base_events,
    constants,
    coroutines,
    events,
    format_helpers,
    futures,
    selector_events,
    sslproto,
    tasks,
    trsock,
    unix_events,
)
from typing import NamedTuple

try:
    import ssl
except ImportError:  # pragma: no cover - Python built without OpenSSL
    ssl = None

PY_VERSION = sys.version_info[:2]

# The module base_events.create_future() reads Future from (public module,
# imported here so the native core finds it in one place).
futures_module = futures

class Private(NamedTuple):
    """One private stdlib name fastloop relies on."""

    owner: object           # the class or module that defines it
    name: str
    use: str                # what fastloop does with it
    #: The parameter lists (``str()`` of each ``inspect.Parameter``) of every
    #: supported Python; None for names that are not called with arguments.
    signatures: tuple = None
    since: tuple = (3, 10)  # first Python that has it (older ones are not checked)


def _sig(*params):
    return params


_UNIX_LOOP = unix_events._UnixSelectorEventLoop
_TRANSPORT = selector_events._SelectorSocketTransport
_DATAGRAM = selector_events._SelectorDatagramTransport
_READ_PIPE = unix_events._UnixReadPipeTransport
_WRITE_PIPE = unix_events._UnixWritePipeTransport
_SSL_TIMEOUTS = ("ssl_handshake_timeout=60.0", "ssl_shutdown_timeout=30.0")
_ACCEPT_HEAD = ("self", "protocol_factory", "sock", "sslcontext=None", "server=None",
                "backlog=100")
_CONN2_HEAD = ("self", "protocol_factory", "conn", "extra", "sslcontext=None", "server=None")
# Per signature: 3.10, then 3.11-3.14 (ssl_shutdown_timeout), then 3.15 (context).
_WITH_TIMEOUTS = (_SSL_TIMEOUTS[:1], _SSL_TIMEOUTS, _SSL_TIMEOUTS + ("context=None",))

#: Every private stdlib name fastloop calls, overrides, shadows or reads.
#: ``tests/test_compat.py`` checks on each Python that every entry exists and
#: that its signature is one of those listed, so a CPython rename or a new
#: parameter fails one test instead of silently dropping a native path.
REGISTRY = (
    # Loop methods LoopCore/Loop replace with native code (same signature).
    Private(base_events.BaseEventLoop, "_run_once", "overridden: LoopCore.run_once",
            (_sig("self"),)),
    # No stdlib code calls _call_soon on a fastloop loop (its callers are
    # call_soon and call_soon_threadsafe, native too, on 3.10-3.15), but the
    # inherited one would append to _ready, a snapshot here, and lose the
    # callback: overridden for third-party callers (tests/test_api.py).
    Private(base_events.BaseEventLoop, "_call_soon", "overridden: native call_soon",
            (_sig("self", "callback", "args", "context"),)),
    Private(base_events.BaseEventLoop, "_timer_handle_cancelled",
            "overridden: counts cancelled timers in the native heap",
            (_sig("self", "handle"),)),
    Private(base_events.BaseEventLoop, "_add_callback",
            "overridden: the signal path queues the stdlib's handles natively",
            (_sig("self", "handle"),)),
    Private(base_events.BaseEventLoop, "_check_closed", "overridden, and called",
            (_sig("self"),)),
    Private(_UNIX_LOOP, "_write_to_self", "overridden: the native eventfd wake-up",
            (_sig("self"),)),
    Private(base_events.BaseEventLoop, "_run_forever_setup",
            "overridden (defined natively before 3.13)",
            (_sig("self"),), since=(3, 13)),
    Private(base_events.BaseEventLoop, "_run_forever_cleanup",
            "overridden (defined natively before 3.13)",
            (_sig("self"),), since=(3, 13)),
    Private(_UNIX_LOOP, "_add_reader", "overridden: native fd table",
            (_sig("self", "fd", "callback", "*args"),
             _sig("self", "fd", "callback", "*args", "context=None"))),
    Private(_UNIX_LOOP, "_add_writer", "overridden: native fd table",
            (_sig("self", "fd", "callback", "*args"),
             _sig("self", "fd", "callback", "*args", "context=None"))),
    Private(_UNIX_LOOP, "_remove_reader", "overridden: native fd table", (_sig("self", "fd"),)),
    Private(_UNIX_LOOP, "_remove_writer", "overridden: native fd table", (_sig("self", "fd"),)),
    Private(_UNIX_LOOP, "_make_socket_transport", "overridden: builds fastloop's SocketTransport",
            (_sig("self", "sock", "protocol", "waiter=None", "extra=None", "server=None"),
             _sig("self", "sock", "protocol", "waiter=None", "extra=None", "server=None",
                  "context=None"))),
    Private(_UNIX_LOOP, "_accept_connection", "overridden: the native accept loop",
            tuple(_ACCEPT_HEAD + t for t in _WITH_TIMEOUTS)),
    Private(_UNIX_LOOP, "_close_self_pipe", "overridden, then called", (_sig("self"),)),
    # Loop methods fastloop calls (inherited stdlib code it runs on its loop).
    Private(_UNIX_LOOP, "_start_serving", "called: re-arms accepting after a pause",
            tuple(_ACCEPT_HEAD + t for t in _WITH_TIMEOUTS)),
    Private(_UNIX_LOOP, "_accept_connection2", "called: per accepted connection",
            tuple(_CONN2_HEAD + t for t in _WITH_TIMEOUTS)),
    Private(_UNIX_LOOP, "_make_self_pipe", "called by Loop.__init__", (_sig("self"),)),
    Private(_UNIX_LOOP, "_ensure_fd_no_transport", "called by add_reader & co and sock_*",
            (_sig("self", "fd"),)),
    Private(_UNIX_LOOP, "_ensure_resolved", "called by sock_connect",
            (_sig("self", "address", "family=0", "type=<SocketKind.SOCK_STREAM: 1>", "proto=0",
                  "flags=0", "loop"),)),
    Private(base_events.BaseEventLoop, "_check_callback", "called in debug mode",
            (_sig("self", "callback", "method"),)),
    Private(base_events.BaseEventLoop, "_check_thread", "called in debug mode", (_sig("self"),)),
    Private(base_events.BaseEventLoop, "_check_running", "called by run_forever", (_sig("self"),)),
    Private(base_events.BaseEventLoop, "_set_coroutine_origin_tracking", "called by run_forever",
            (_sig("self", "enabled"),)),
    Private(base_events.BaseEventLoop, "_asyncgen_firstiter_hook", "installed by run_forever",
            (_sig("self", "agen"),)),
    Private(base_events.BaseEventLoop, "_asyncgen_finalizer_hook", "installed by run_forever",
            (_sig("self", "agen"),)),
    # Loop attributes the stdlib's __init__ assigns that LoopCore shadows with
    # properties over C fields, or that fastloop reads.
    Private(_UNIX_LOOP, "_transports", "read by sock_* (WeakValueDictionary.data)"),
    Private(_UNIX_LOOP, "_ssock", "read: the self-pipe's fd for the silent-poll rule"),
    Private(_UNIX_LOOP, "_signal_handlers", "read: the silent-poll rule"),
    # The socket transport fastloop subclasses.
    Private(selector_events, "_SelectorSocketTransport", "subclassed by SocketTransport"),
    Private(_TRANSPORT, "__init__", "called: SocketTransport.__init__ passes everything on",
            (_sig("self", "loop", "sock", "protocol", "waiter=None", "extra=None", "server=None"),
             _sig("self", "loop", "sock", "protocol", "waiter=None", "extra=None", "server=None",
                  "context=None"))),
    Private(_TRANSPORT, "write", "overridden: native send-first write", (_sig("self", "data"),)),
    Private(_TRANSPORT, "_read_ready", "overridden: the native core (callable)", (_sig("self"),)),
    Private(_TRANSPORT, "_read_ready__data_received", "overridden: native recv",
            (_sig("self"),)),
    Private(_TRANSPORT, "_read_ready__get_buffer", "overridden: native recv_into",
            (_sig("self"),)),
    Private(_TRANSPORT, "_call_connection_lost", "overridden: also releases the native core",
            (_sig("self", "exc"),)),
    Private(_TRANSPORT, "set_protocol", "called: picks the read path", (_sig("self", "protocol"),)),
    Private(_TRANSPORT, "_read_ready__on_eof", "called by the native read path", (_sig("self"),)),
    Private(_TRANSPORT, "_fatal_error", "called by the native read/write paths",
            (_sig("self", "exc", "message='Fatal error on transport'"),)),
    Private(_TRANSPORT, "_maybe_pause_protocol", "called by the native write", (_sig("self"),)),
    Private(_TRANSPORT, "_add_writer",
            "called by the native write (in the transport's context)",
            (_sig("self", "fd", "callback", "*args"),), since=(3, 15)),
    # The datagram transport fastloop subclasses (datagram.py, _datagram.pyx).
    Private(_UNIX_LOOP, "_make_datagram_transport",
            "overridden: builds fastloop's DatagramTransport",
            (_sig("self", "sock", "protocol", "address=None", "waiter=None", "extra=None"),)),
    Private(selector_events, "_SelectorDatagramTransport", "subclassed by DatagramTransport"),
    Private(_DATAGRAM, "__init__", "called: DatagramTransport.__init__ passes everything on",
            (_sig("self", "loop", "sock", "protocol", "address=None", "waiter=None",
                  "extra=None"),)),
    Private(_DATAGRAM, "_read_ready",
            "overridden: the core (callable); called for sockets it does not serve",
            (_sig("self"),)),
    Private(_DATAGRAM, "sendto", "overridden: native send-first sendto; called for the rest",
            (_sig("self", "data", "addr=None"),)),
    Private(_DATAGRAM, "_sendto_ready", "registered by the native sendto when it queues",
            (_sig("self"),)),
    Private(_DATAGRAM, "_fatal_error", "called by the native read path",
            (_sig("self", "exc", "message='Fatal error on transport'"),)),
    Private(_DATAGRAM, "_maybe_pause_protocol", "called by the native sendto", (_sig("self"),)),
    Private(_DATAGRAM, "_call_connection_lost", "overridden: also releases the native core",
            (_sig("self", "exc"),)),
    Private(_DATAGRAM, "_header_size", "read: what a queued datagram adds to the buffer size",
            since=(3, 14)),
    # The pipe transports fastloop subclasses (pipes.py, _pipes.pyx).
    Private(_UNIX_LOOP, "_make_read_pipe_transport",
            "overridden: builds fastloop's ReadPipeTransport",
            (_sig("self", "pipe", "protocol", "waiter=None", "extra=None"),)),
    Private(_UNIX_LOOP, "_make_write_pipe_transport",
            "overridden: builds fastloop's WritePipeTransport",
            (_sig("self", "pipe", "protocol", "waiter=None", "extra=None"),)),
    Private(unix_events, "_UnixReadPipeTransport", "subclassed by ReadPipeTransport"),
    Private(unix_events, "_UnixWritePipeTransport", "subclassed by WritePipeTransport"),
    Private(_READ_PIPE, "__init__", "called: ReadPipeTransport.__init__",
            (_sig("self", "loop", "pipe", "protocol", "waiter=None", "extra=None"),)),
    Private(_WRITE_PIPE, "__init__", "called: WritePipeTransport.__init__",
            (_sig("self", "loop", "pipe", "protocol", "waiter=None", "extra=None"),)),
    Private(_READ_PIPE, "_read_ready",
            "overridden: the core (callable); called at end of file and for ttys",
            (_sig("self"),)),
    Private(_READ_PIPE, "_fatal_error", "called by the native read",
            (_sig("self", "exc", "message='Fatal error on pipe transport'"),)),
    Private(_READ_PIPE, "_call_connection_lost", "overridden: also releases the native core",
            (_sig("self", "exc"),)),
    Private(_WRITE_PIPE, "write", "overridden: native write-first write; called for the rest",
            (_sig("self", "data"),)),
    Private(_WRITE_PIPE, "_write_ready", "registered by the native write when it queues",
            (_sig("self"),)),
    Private(_WRITE_PIPE, "_fatal_error", "called by the native write",
            (_sig("self", "exc", "message='Fatal error on pipe transport'"),)),
    Private(_WRITE_PIPE, "_maybe_pause_protocol", "called by the native write", (_sig("self"),)),
    Private(_WRITE_PIPE, "_call_connection_lost", "overridden: also releases the native core",
            (_sig("self", "exc"),)),
    # Module-level names.
    Private(format_helpers, "_format_callback_source", "called: handle reprs",
            (_sig("func", "args"), _sig("func", "args", "debug=False"))),
    Private(format_helpers, "extract_stack", "called: source tracebacks in debug mode",
            (_sig("f=None", "limit=None"),)),
    Private(base_events, "MAXIMUM_SELECT_TIMEOUT", "read: the poll timeout cap"),
    Private(base_events, "logger", "called: slow-callback warnings"),
    Private(selector_events, "logger", "called: transport warnings"),
    Private(coroutines, "_is_debug_mode", "called: PYTHONASYNCIODEBUG", (_sig(),)),
    Private(events, "_set_running_loop", "called by run_forever", (_sig("loop"),)),
    Private(events, "_get_running_loop", "called by fastloop.run (3.10/3.11)", (_sig(),)),
    Private(events, "new_event_loop",
            "replaced by fastloop.install() on 3.14+: what asyncio.run()/Runner() call "
            "without a loop_factory", (_sig(),)),
    Private(unix_events, "_UnixDefaultEventLoopPolicy",
            "subclassed by fastloop.Policy (no deprecation warning on access); "
            "where asyncio has no policies, fastloop.Policy is absent"),
    Private(events, "_ThreadSafeHandle", "built by call_soon_threadsafe", since=(3, 14)),
    Private(getattr(events, "_ThreadSafeHandle", None), "_run",
            "run from C by _threadsafe.run_threadsafe while it is the stdlib's own",
            (_sig("self"),), since=(3, 14)),
    Private(events.Handle, "_run",
            "what _ThreadSafeHandle._run calls: run from C while it is the stdlib's own, "
            "called for odd contexts or args", (_sig("self"),)),
    Private(threading, "_CRLock",
            "called by call_soon_threadsafe: a ThreadSafeHandle's lock, as threading.RLock()"),
    Private(constants, "ACCEPT_RETRY_DELAY", "read: the accept pause"),
    Private(constants, "LOG_THRESHOLD_FOR_CONNLOST_WRITES", "read: the native write"),
    Private(trsock, "TransportSocket", "built: out-of-fds reports"),
    Private(sys, "_current_frames", "called by the watchdog: the blocked loop thread's stack",
            (_sig(),)),
)


MAXIMUM_SELECT_TIMEOUT = float(base_events.MAXIMUM_SELECT_TIMEOUT)

# Behaviour that changed between versions and that fastloop reproduces so a
# program sees the same exceptions on fastloop as on its own interpreter's loop.
#: 3.11+ reject ``call_later(None)``/``call_at(None)`` with TypeError; 3.10 lets
#: ``time() + None`` fail (TypeError) and asserts in TimerHandle for call_at.
CHECKS_NONE_DELAY = PY_VERSION >= (3, 11)
#: 3.13 stopped clamping a NaN timeout to 0 in ``_run_once``: the selector then
#: raises ValueError. 3.10-3.12 clamp it with ``max(0, ...)`` and run the timer.
NAN_TIMEOUT_RAISES = PY_VERSION >= (3, 13)
def _end_time_adds_ulp():
    # 3.15 moves due timers up to ``now + max(clock_resolution, ulp(now))``
    # (so the window never rounds away on a long-running clock); earlier
    # versions use ``now + clock_resolution``. Read from the running stdlib's
    # _run_once, so a backport is followed; the version decides only where
    # the source is not shipped.
    try:
        return "ulp(" in inspect.getsource(base_events.BaseEventLoop._run_once)
    except (OSError, TypeError):
        return PY_VERSION >= (3, 15)


END_TIME_ADDS_ULP = _end_time_adds_ulp()
#: 3.14+ call_soon_threadsafe() returns this Handle subclass, whose cancel()
#: from another thread waits for a running callback (it holds a lock); None
#: where the running Python has no such class.
ThreadSafeHandle = getattr(events, "_ThreadSafeHandle", None)


def _threadsafe_handle_by_slots():
    """May call_soon_threadsafe fill a new ThreadSafeHandle's slots itself
    instead of running its Python __init__ chain? Only where the class and
    events.Handle have exactly the slots (and so the __init__) that
    _threadsafe.new_threadsafe_handle mirrors: 3.14 and 3.15."""
    return (ThreadSafeHandle is not None
            and tuple(ThreadSafeHandle.__slots__) == ("_lock",)
            and ThreadSafeHandle.__mro__[1] is events.Handle
            and set(events.Handle.__slots__) == {
                "_callback", "_args", "_cancelled", "_loop", "_source_traceback",
                "_repr", "__weakref__", "_context"})


THREADSAFE_HANDLE_BY_SLOTS = _threadsafe_handle_by_slots()
#: What threading.RLock() returns where the C implementation exists (what the
#: stdlib's ThreadSafeHandle.__init__ gets), or None.
RLOCK_FACTORY = threading.RLock
C_RLOCK = getattr(threading, "_CRLock", None)

#: sock_recvfrom, sock_recvfrom_into and sock_sendto are loop methods from 3.11
#: on; fastloop.Loop has its native versions only where the stdlib has them.
HAS_SOCK_DATAGRAM_OPS = hasattr(asyncio.AbstractEventLoop, "sock_recvfrom")



class _SetupFailed(Exception):
    pass


class _RunForeverProbe:
    cleaned_up = False

    def _check_closed(self):
        raise _SetupFailed

    def _run_forever_setup(self):
        raise _SetupFailed

    def _run_forever_cleanup(self):
        self.cleaned_up = True


def _cleans_up_after_failed_setup():
    probe = _RunForeverProbe()
    try:
        base_events.BaseEventLoop.run_forever(probe)
    except _SetupFailed:
        pass
    return probe.cleaned_up


#: 3.13.0 runs ``_run_forever_setup()`` inside run_forever's try/finally, so a
#: refused run_forever() ("already running") still runs the cleanup, which
#: resets the running loop and ``_thread_id``. Earlier versions check first.
#: Probed on the stdlib's own method rather than guessed from the version.
RUN_FOREVER_CLEANS_UP_FAILED_SETUP = _cleans_up_after_failed_setup()

#: The stdlib socket transport's per-message state, which fastloop's
#: SocketTransport keeps in C fields behind properties of these names (the
#: stdlib's __init__ assigns every one; tests check it on each Python).
TRANSPORT_STATE_ATTRIBUTES = (
    "_sock_fd", "_protocol", "_buffer", "_conn_lost", "_eof", "_empty_waiter",
    "_read_ready_cb",
)

#: 3.12+ queue transport writes as a deque of buffers (flushed with sendmsg);
#: 3.10/3.11 keep one bytearray.
TRANSPORT_BUFFER_IS_DEQUE = PY_VERSION >= (3, 12)


class _BufferSizeProbe:
    _buffer = [b"xy"]
    _buffer_size = 7


#: 3.15+ transports keep a running ``_buffer_size`` that write() adds to and
#: the writer subtracts from (get_write_buffer_size() returns it); earlier
#: ones sum the buffer. Probed on the stdlib's own method.
TRANSPORT_TRACKS_BUFFER_SIZE = (
    selector_events._SelectorTransport.get_write_buffer_size(_BufferSizeProbe()) == 7
)
if TRANSPORT_TRACKS_BUFFER_SIZE:
    TRANSPORT_STATE_ATTRIBUTES += ("_buffer_size",)
#: 3.15+ transports register their writer through their own ``_add_writer``,
#: which runs it in the transport's context; earlier ones call the loop's.
TRANSPORT_ADDS_WRITER = hasattr(_TRANSPORT, "_add_writer")


class _ProbeData:
    pass


def _write_type_error_template(write, fallback):
    # The running stdlib's message for write(<not bytes-like>), with the type
    # name as a format field ({!r} where the stdlib quotes it): 3.14 changed
    # the socket transport's wording, so it is read from the stdlib's own
    # write() (its type check comes before any use of self).
    try:
        write(None, _ProbeData())
    except TypeError as exc:
        text = str(exc)
        name = _ProbeData.__name__
        if repr(name) in text:
            return text.replace(repr(name), "{!r}")
        if name in text:
            return text.replace(name, "{}")
    except Exception:
        pass
    return fallback


_WRITE_TYPE_ERROR = _write_type_error_template(
    _TRANSPORT.write, "data argument must be a bytes-like object, not {!r}")


def write_type_error(data):
    """The TypeError the stdlib transport's write() raises for ``data``."""
    return TypeError(_WRITE_TYPE_ERROR.format(type(data).__name__))


LOG_THRESHOLD_FOR_CONNLOST_WRITES = constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES
ACCEPT_RETRY_DELAY = constants.ACCEPT_RETRY_DELAY
#: The parameters of _accept_connection after ``backlog``
#: (ssl_handshake_timeout; 3.11+ ssl_shutdown_timeout; 3.15+ context), which
#: _start_serving passes positionally, and their defaults.
_ACCEPT_TRAILING = list(
    inspect.signature(selector_events.BaseSelectorEventLoop._accept_connection)
    .parameters.values()
)[6:]
ACCEPT_TIMEOUT_DEFAULTS = tuple(p.default for p in _ACCEPT_TRAILING)
#: Where ``context`` (3.15+) sits among those trailing parameters, else -1.
ACCEPT_CONTEXT_INDEX = next(
    (i for i, p in enumerate(_ACCEPT_TRAILING) if p.name == "context"), -1
)


_ACCEPT_NAMES = [p.name for p in _ACCEPT_TRAILING]


def accept_trailing(args, kwargs):
    """_start_serving's trailing arguments as one positional tuple, completed
    with their defaults (the form the stdlib re-arms _start_serving with)."""
    values = list(args) + list(ACCEPT_TIMEOUT_DEFAULTS[len(args):])
    for name, value in kwargs.items():
        if name not in _ACCEPT_NAMES:
            raise TypeError(f"_accept_connection() got an unexpected keyword argument {name!r}")
        values[_ACCEPT_NAMES.index(name)] = value
    return tuple(values)


def accept_one(loop, protocol_factory, conn, addr, sslcontext, server, trailing):
    """Start serving one accepted connection, as the stdlib's accept loop
    does: a task running _accept_connection2 (3.15+: in a copy of the
    server's context, which the transport's callbacks then run in)."""
    if ACCEPT_CONTEXT_INDEX < 0:
        loop.create_task(loop._accept_connection2(
            protocol_factory, conn, {"peername": addr}, sslcontext, server, *trailing))
        return
    context = trailing[ACCEPT_CONTEXT_INDEX]
    conn_context = context.copy() if context is not None else None
    accept = loop._accept_connection2(
        protocol_factory, conn, {"peername": addr}, sslcontext, server,
        *trailing[:ACCEPT_CONTEXT_INDEX], context=conn_context)
    loop.create_task(accept, context=conn_context)


class _AcceptProbeConn:
    def setblocking(self, flag):
        pass


class _AcceptProbe:
    """Stands in for the loop and the listening socket while the stdlib's own
    _accept_connection runs once, to read its accept-loop rules."""

    _debug = False

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.tasks = []

    def accept(self):
        outcome = self.outcomes.pop(0) if self.outcomes else BlockingIOError()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _accept_connection2(self, *args, **kwargs):
        return kwargs

    def create_task(self, coro, **kwargs):
        self.tasks.append((coro, kwargs))


def _probe_accept(outcomes, backlog):
    probe = _AcceptProbe(outcomes)
    selector_events.BaseSelectorEventLoop._accept_connection(
        probe, None, probe, None, None, backlog)
    return probe.tasks


_ACCEPTED = (_AcceptProbeConn(), ("127.0.0.1", 1))
#: 3.14+ skip a connection aborted before accept() and go on accepting;
#: 3.10-3.13 end the wake-up there.
ACCEPT_SKIPS_ABORTED = len(_probe_accept([ConnectionAbortedError(), _ACCEPTED], 4)) == 1
#: How many accept() calls one wake-up makes beyond ``backlog`` (3.14+: one).
ACCEPT_EXTRA_TRIES = len(_probe_accept([_ACCEPTED] * 8, 3)) - 3

TransportSocket = trsock.TransportSocket
#: The logger the stdlib transports warn through.
transport_logger = selector_events.logger
#: The stdlib's socket transport; fastloop's subclasses it (see transport.py).
SelectorSocketTransport = selector_events._SelectorSocketTransport
#: The stdlib's datagram transport; fastloop's subclasses it (see datagram.py).
SelectorDatagramTransport = _DATAGRAM
#: The stdlib datagram transport's per-datagram state, which fastloop's keeps
#: in C fields behind properties of these names.
DATAGRAM_STATE_ATTRIBUTES = (
    "_sock_fd", "_protocol", "_buffer", "_buffer_size", "_conn_lost", "_address",
)
#: What one queued datagram adds to get_write_buffer_size(): its length on
#: 3.11/3.12, plus an 8-byte header from 3.13 (a class attribute from 3.14);
#: -1 on 3.10, whose transport sums the queue instead of keeping a size.
if PY_VERSION < (3, 11):
    DATAGRAM_HEADER_SIZE = -1
elif PY_VERSION < (3, 13):
    DATAGRAM_HEADER_SIZE = 0
else:
    DATAGRAM_HEADER_SIZE = getattr(_DATAGRAM, "_header_size", 8)
#: 3.12+ refuse a datagram transport on an fd another transport still uses
#: (_make_datagram_transport calls _ensure_fd_no_transport); 3.10/3.11 don't.
DATAGRAM_CHECKS_FD_IN_USE = PY_VERSION >= (3, 12)
#: The stdlib's pipe transports; fastloop's subclass them (see pipes.py).
UnixReadPipeTransport = _READ_PIPE
UnixWritePipeTransport = _WRITE_PIPE
#: The pipe transports' hot state, kept in C fields behind properties of these names.
READ_PIPE_STATE_ATTRIBUTES = ("_fileno", "_protocol")
WRITE_PIPE_STATE_ATTRIBUTES = ("_fileno", "_protocol", "_buffer", "_conn_lost", "_closing")

# -- TLS ---------------------------------------------------------------------
#: 3.11 rewrote asyncio.sslproto as a BufferedProtocol state machine over
#: MemoryBIO/SSLObject (SSLProtocolState, ssl_shutdown_timeout); 3.10's is the
#: older _SSLPipe design. fastloop runs the stdlib's SSLProtocol of the running
#: version as it is, over the native socket transport; tests read this flag
#: for where the two designs behave differently on both loops.
SSLPROTO_STATE_MACHINE = ssl is not None and hasattr(sslproto, "SSLProtocolState")
StdSSLProtocol = sslproto.SSLProtocol


def _make_ssl_transport_checks_fd():
    # 3.12+ check in _make_ssl_transport that no transport uses the fd yet;
    # read from the running stdlib's method, the version decides only where
    # the source is not shipped.
    try:
        return "_ensure_fd_no_transport" in inspect.getsource(
            selector_events.BaseSelectorEventLoop._make_ssl_transport)
    except (OSError, TypeError):
        return PY_VERSION >= (3, 12)


MAKE_SSL_TRANSPORT_CHECKS_FD = _make_ssl_transport_checks_fd()

_SSL_HEAD = ("self", "rawsock", "protocol", "sslcontext", "waiter=None", "server_side=False",
             "server_hostname=None", "extra=None", "server=None")
REGISTRY += (
    Private(_UNIX_LOOP, "_make_ssl_transport",
            "overridden: the stdlib's SSLProtocol over the native socket transport",
            tuple(_SSL_HEAD + t for t in _WITH_TIMEOUTS)),
    Private(sslproto, "SSLProtocol", "called: the TLS layer, as the stdlib's loop builds it"),
    Private(StdSSLProtocol, "_app_transport", "read: what _make_ssl_transport returns"),
)


_FORMAT_TAKES_DEBUG = (
    "debug" in inspect.signature(format_helpers._format_callback_source).parameters
)

extract_stack = format_helpers.extract_stack
#: Every thread's innermost Python frame (sys._current_frames, documented but
#: underscored): how the watchdog sees where a blocked loop's thread is.
current_frames = sys._current_frames
#: The stdlib code that calls a loop's run_forever(): frames down to it on a
#: loop thread's stack belong to the runner, the frames below it to a callback.
RUNNER_FILE = base_events.__file__
RUNNER_FUNCTIONS = ("run_until_complete", "run_forever")


def set_running_loop(loop):
    # Looked up per call, as the stdlib's run_forever does: tests (3.14+'s
    # TestPyGetEventLoop) swap in the pure-Python implementation.
    events._set_running_loop(loop)


get_running_loop = events._get_running_loop
is_debug_mode = coroutines._is_debug_mode


def ensure_resolved(loop, address, *, family, type, proto):
    """The stdlib's ``sock_connect`` address resolution (``_ensure_resolved``)."""
    return loop._ensure_resolved(address, family=family, type=type, proto=proto, loop=loop)


def format_callback_source(callback, args, debug):
    if _FORMAT_TAKES_DEBUG:
        return format_helpers._format_callback_source(callback, args, debug=debug)
    return format_helpers._format_callback_source(callback, args)


def format_handle(handle):
    """How the stdlib names a slow callback in its debug-mode warning."""
    cb = getattr(handle, "_callback", None)
    owner = getattr(cb, "__self__", None)
    if isinstance(owner, tasks.Task):
        return repr(owner)
    return str(handle)


def warn_slow_callback(handle, seconds):
    # Looked up at call time, as the stdlib's _run_once does, so code that
    # patches asyncio.base_events.logger sees fastloop's warnings too.
    base_events.logger.warning("Executing %s took %.3f seconds", format_handle(handle), seconds)


def init_loop(loop, selector):
    """Run the stdlib's own ``__init__`` chain of the Unix selector loop.

    BaseEventLoop's attributes land on the native core's properties, and
    ``selector`` (fastloop's view of its native fd table) stands in for the
    selector the stdlib would open; whatever else the running Python's loop
    sets up (signal handlers, Unix server sockets, 3.14's child watcher, the
    self-pipe) is set up exactly as there.
    """
    _UNIX_LOOP.__init__(loop, selector)


def quiet_self_pipe_fd(loop):
    """The self-pipe's fd while no signal handler can write into it, else -1.

    Only ``add_signal_handler`` points ``signal.set_wakeup_fd`` at the
    self-pipe (and ``_write_to_self`` is fastloop's own eventfd), so without a
    handler nothing ever becomes readable there.
    """
    if getattr(loop, "_signal_handlers", None):
        return -1
    ssock = getattr(loop, "_ssock", None)
    return ssock.fileno() if ssock is not None else -1


def default_policy_base():
    """The interpreter's default (Unix) policy class, or None where asyncio has no policies.

    The private name, unlike ``asyncio.DefaultEventLoopPolicy``, does not
    raise 3.14's deprecation warning on access.
    """
    return getattr(unix_events, "_UnixDefaultEventLoopPolicy", None)


#: 3.14 deprecated the policy system (``set_event_loop_policy``,
#: ``get_event_loop_policy``, the policy classes; 3.16 removes them).
#: ``fastloop.install()`` takes the loop-factory route from there on.
POLICIES_DEPRECATED = PY_VERSION >= (3, 14)
#: ``asyncio.run()`` takes ``loop_factory=`` (3.12+): ``fastloop.run()`` is
#: then the stdlib's own asyncio.run with fastloop's factory.
RUN_TAKES_LOOP_FACTORY = "loop_factory" in inspect.signature(asyncio.run).parameters


def set_default_loop_factory(factory):
    """Make ``factory`` what asyncio creates a loop with when it is given none.

    ``asyncio.run()`` and ``asyncio.Runner()`` without ``loop_factory`` create
    their loop by calling ``asyncio.events.new_event_loop()``, looked up at
    call time (3.11-3.15); programs call ``asyncio.new_event_loop()``. Both
    names are pointed at ``factory``: the loop-factory route for Pythons whose
    policy system is deprecated or gone.
    """
    events.new_event_loop = factory
    asyncio.new_event_loop = factory


def registry_problems(instances=None):
    """What is wrong with REGISTRY on the running Python (empty when all is well).

    ``instances`` maps an owner class to an instance of it, for the names
    that only instances carry (attributes the stdlib's ``__init__`` assigns).
    """
    problems = []
    for entry in REGISTRY:
        if PY_VERSION < entry.since:
            continue
        where = f"{getattr(entry.owner, '__name__', entry.owner)}.{entry.name}"
        owner = entry.owner
        if not hasattr(owner, entry.name) and instances and owner in instances:
            owner = instances[owner]
        if not hasattr(owner, entry.name):
            problems.append(f"{where}: missing")
            continue
        if entry.signatures is None:
            continue
        params = tuple(
            str(p) for p in inspect.signature(getattr(owner, entry.name)).parameters.values()
        )
        if params not in entry.signatures:
            problems.append(f"{where}: signature {params} is none of {entry.signatures}")
    return problems
