"""Every use of CPython's private asyncio names lives here.

fastloop keeps the stdlib's non-hot machinery (transports for SSL/UDP/pipes,
subprocesses, signals, DNS, executors) by inheriting from
``asyncio.SelectorEventLoop``. That machinery talks to its loop through private
methods and attributes whose names and signatures drift between 3.10 and 3.14.
This module names each one once and adapts to the running interpreter;
``test_stdlib_private_names_exist`` in ``tests/test_api.py`` checks that every
name still exists, so a new CPython release breaks one test instead of some
callback at run time.
"""

import asyncio
import inspect
import sys
import weakref
from asyncio import (
    base_events,
    constants,
    coroutines,
    events,
    format_helpers,
    futures,
    selector_events,
    tasks,
    trsock,
    unix_events,
)

PY_VERSION = sys.version_info[:2]

# The module base_events.create_future() reads Future from (public module,
# imported here so the native core finds it in one place).
futures_module = futures

# Private names the native core and ``fastloop.loop`` rely on, by owner.
# (Methods we call by name on the loop instance, inherited from the stdlib.)
REQUIRED_LOOP_METHODS = (
    "_check_callback",
    "_check_thread",
    "_check_running",
    "_set_coroutine_origin_tracking",
    "_asyncgen_firstiter_hook",
    "_asyncgen_finalizer_hook",
    "_ensure_fd_no_transport",
    "_ensure_resolved",
    "_make_self_pipe",
    "_close_self_pipe",
    "_read_from_self",
    "_process_self_data",
    "_handle_signal",
    "_add_callback_signalsafe",
    "_start_serving",
    "_accept_connection2",
)
# Private attributes read directly (not through a method) by the native code:
# ``loop._transports`` (fd -> transport; fastloop.Loop creates it, the stdlib's
# transports fill it), a WeakValueDictionary whose ``data`` dict of weak
# references fastloop._sockops reads to tell, without the stdlib's KeyError,
# that no transport uses an fd (any hit is handed to _ensure_fd_no_transport).
REQUIRED_LOOP_ATTRIBUTES = ("_transports",)
REQUIRED_WEAKVALUEDICT_ATTRIBUTES = ("data",)
REQUIRED_MODULE_NAMES = (
    (format_helpers, "_format_callback_source"),
    (format_helpers, "extract_stack"),
    (base_events, "MAXIMUM_SELECT_TIMEOUT"),
    (coroutines, "_is_debug_mode"),
    (events, "_set_running_loop"),
    (events, "_get_running_loop"),
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
#: SocketTransport keeps in C fields behind properties of these names (every
#: one is assigned by the stdlib's __init__ on 3.10-3.13; tests check it).
TRANSPORT_STATE_ATTRIBUTES = (
    "_sock_fd", "_protocol", "_buffer", "_conn_lost", "_eof", "_empty_waiter",
    "_read_ready_cb",
)
#: Stdlib transport methods the native read/write paths call by name.
REQUIRED_TRANSPORT_METHODS = (
    "_fatal_error", "_read_ready__on_eof", "_maybe_pause_protocol",
    "_read_ready__data_received", "_read_ready__get_buffer", "set_protocol",
)

#: 3.12+ queue transport writes as a deque of buffers (flushed with sendmsg);
#: 3.10/3.11 keep one bytearray.
TRANSPORT_BUFFER_IS_DEQUE = PY_VERSION >= (3, 12)
LOG_THRESHOLD_FOR_CONNLOST_WRITES = constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES
ACCEPT_RETRY_DELAY = constants.ACCEPT_RETRY_DELAY
#: The defaults of _accept_connection's parameters after ``backlog``
#: (ssl_handshake_timeout; 3.11+ also ssl_shutdown_timeout), which the stdlib
#: passes on positionally to _start_serving when it pauses accepting.
ACCEPT_TIMEOUT_DEFAULTS = tuple(
    p.default
    for p in list(
        inspect.signature(selector_events.BaseSelectorEventLoop._accept_connection)
        .parameters.values()
    )[6:]
)
TransportSocket = trsock.TransportSocket
#: The logger the stdlib transports warn through.
transport_logger = selector_events.logger
#: The stdlib's socket transport; fastloop's subclasses it (see transport.py).
SelectorSocketTransport = selector_events._SelectorSocketTransport

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
set_running_loop = events._set_running_loop
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


def init_loop_attributes(loop):
    """Set the Python-level state the stdlib's inherited methods expect.

    Runs the stdlib's ``BaseEventLoop.__init__`` (the native core exposes the
    attributes it assigns as properties) and then what
    ``BaseSelectorEventLoop``/``_UnixSelectorEventLoop`` add, without creating
    the selector those classes would open.
    """
    base_events.BaseEventLoop.__init__(loop)
    loop._signal_handlers = {}
    if PY_VERSION >= (3, 13):
        loop._unix_server_sockets = {}


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
    """The interpreter's default (Unix) policy class, found without the 3.14 deprecation warning."""
    for owner, name in (
        (unix_events, "_UnixDefaultEventLoopPolicy"),
        (unix_events, "_DefaultEventLoopPolicy"),
        (events, "_BaseDefaultEventLoopPolicy"),
    ):
        cls = getattr(owner, name, None)
        if cls is not None:
            return cls
    raise ImportError("no default event loop policy class found in asyncio")


def missing_names():
    """Names this module relies on that the running interpreter lacks (empty when all is well)."""
    missing = [
        f"SelectorEventLoop.{name}"
        for name in REQUIRED_LOOP_METHODS
        if not hasattr(asyncio.SelectorEventLoop, name)
    ]
    missing += [
        f"{mod.__name__}.{name}" for mod, name in REQUIRED_MODULE_NAMES if not hasattr(mod, name)
    ]
    missing += [
        f"_SelectorSocketTransport.{name}"
        for name in REQUIRED_TRANSPORT_METHODS
        if not hasattr(SelectorSocketTransport, name)
    ]
    missing += [
        f"WeakValueDictionary().{name}"
        for name in REQUIRED_WEAKVALUEDICT_ATTRIBUTES
        if not hasattr(weakref.WeakValueDictionary(), name)
    ]
    return missing
