# cython: binding=False
# (Plain method descriptors: docs/design.md, "Handles and timers".)
"""The native loop core: scheduling, the iteration, metrics, and the stdlib's loop attributes.

``LoopCore`` is the first base of ``fastloop.Loop``; the stdlib's
``SelectorEventLoop`` comes second and supplies everything that is not hot
(transports, servers, SSL, subprocesses, signals, DNS, executors). Because an
extension type's methods win in the MRO, every method defined here replaces
the stdlib's, and the stdlib code that reads loop attributes such as
``_debug``, ``_thread_id`` or ``_closed`` reaches these C fields through the
properties at the bottom of the class. Its base ``FdTable`` (``_fdtable.pyx``)
holds the fd registrations and the poller (``_poller.pyx``), which owns the
wake-up fd and decides when a poll can be skipped.

One iteration (``run_once``) follows the phases of the stdlib's ``_run_once``
in the same order, so callbacks run in the same order:

1. ``drop_cancelled``: drop cancelled timers (compact the heap when they
   are the majority, _timers.pxd's ``cancelled_dominate``);
2. ``poll_timeout``: 0 when callbacks are ready or the loop is stopping,
   else until the earliest timer, else forever;
3. ``poll_and_dispatch``: poll (the poller skips a non-blocking poll that
   could report nothing, and drains the wake-up fd itself), and queue the
   reader/writer handles of the ready fds;
4. ``move_due_timers``: due timers join the ready queue (after the I/O
   callbacks);
5. ``run_ready``: run exactly the callbacks that are ready now; whatever
   they schedule runs in the next iteration.
"""

cimport cython
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.ref cimport PyObject
from libc.math cimport INFINITY, fabs, isnan, nextafter

from fastloop._fdtable cimport FdTable
from fastloop._handles cimport (
    Handle,
    new_handle,
    own_handle,
    own_stdlib_handle,
    release_handle,
    verify_owned,
)
from fastloop._metrics cimport (
    FL_METRICS,
    fl_coarse_monotonic,
    fl_coarse_resolution,
    metrics_iteration,
    metrics_polled,
    metrics_ready,
    metrics_timer_fired,
)
from fastloop._poller cimport FL_READ, FL_WRITE, Poller, ready_event
from fastloop._queue cimport ReadyQueue
from fastloop._threadsafe cimport new_threadsafe_handle, run_threadsafe
from fastloop._timers cimport TimerHandle, TimerHeap, cancelled_dominate, new_timer

import collections
import sys
import threading
import time as _time

from fastloop import _compat, _threadsafe

cdef extern from "_sys.h" nogil:
    int FL_HAVE_MONOTONIC
    int FL_DEBUG_BUILD
    double fl_monotonic()

#: True in a FASTLOOP_DEBUG=1 build (C asserts, bounds checks).
DEBUG_BUILD = bool(FL_DEBUG_BUILD)

cdef extern from "Python.h":
    int PyObject_GenericSetAttr(object o, object name, PyObject* value) except -1

cdef double MAXIMUM_SELECT_TIMEOUT = _compat.MAXIMUM_SELECT_TIMEOUT
cdef bint CHECKS_NONE_DELAY = _compat.CHECKS_NONE_DELAY
cdef bint NAN_TIMEOUT_RAISES = _compat.NAN_TIMEOUT_RAISES
cdef bint CLEANS_UP_FAILED_SETUP = _compat.RUN_FOREVER_CLEANS_UP_FAILED_SETUP
cdef bint END_TIME_ADDS_ULP = _compat.END_TIME_ADDS_ULP
cdef object _ThreadSafeHandle = _compat.ThreadSafeHandle
cdef bint _THREADSAFE_NATIVE = _threadsafe.NATIVE
cdef object _monotonic = _time.monotonic
cdef object _get_ident = threading.get_ident
cdef object _get_asyncgen_hooks = sys.get_asyncgen_hooks
cdef object _set_asyncgen_hooks = sys.set_asyncgen_hooks
cdef object _set_running_loop = _compat.set_running_loop
cdef object _warn_slow_callback = _compat.warn_slow_callback
cdef object _format_handle = _compat.format_handle
cdef object _deque = collections.deque
# Looked up per call, as the stdlib's create_future() does, so a patched
# asyncio.futures.Future is honoured.
cdef object _futures_module = _compat.futures_module


# Ready-queue handles are kept out of the cyclic GC (_owned.h) only once the
# queue holds more than this many: below, a collection finds few of them
# waiting, and owning one (untrack, verify, re-track) costs more than the
# traversals it saves.
cdef enum:
    OWN_AFTER = 64


# The phases of one iteration (LoopCore.run_once), in order.

cdef inline int drop_cancelled(TimerHeap timers) except -1:
    # Cancelling is O(1) (a flag and a count): the entries go here, all at
    # once when they dominate, else only those on top of the heap.
    if cancelled_dominate(timers):
        return timers.compact()
    return timers.drop_cancelled_head()


cdef inline double poll_timeout(LoopCore self) except? -2.0:
    # 0 when callbacks are ready or the loop is stopping; else until the
    # earliest timer, clamped to 0 .. MAXIMUM_SELECT_TIMEOUT; else -1 (block).
    cdef TimerHeap timers = self.timers
    cdef double timeout
    if self.ready.count or self.stopping:
        return 0
    if not timers.size:
        return -1
    timeout = timers.entries[0].when - self.now()
    if isnan(timeout):
        if NAN_TIMEOUT_RAISES:
            raise ValueError('cannot convert float NaN to integer')
        return 0
    if timeout > MAXIMUM_SELECT_TIMEOUT:
        return MAXIMUM_SELECT_TIMEOUT
    if timeout < 0:
        return 0
    return timeout


cdef inline int poll_and_dispatch(LoopCore self, double timeout) except -1:
    # Poll, then queue the ready fds' handles behind the callbacks already
    # queued.
    cdef int n = self.poller.poll(timeout)
    metrics_polled(&self.counters, timeout)
    if n:
        self.dispatch_events(n)
    return 0


cdef inline int move_due_timers(LoopCore self) except -1:
    # Timers due before now + the clock's resolution join the queue, in
    # deadline order, behind the I/O callbacks.
    cdef TimerHeap timers = self.timers
    cdef double end = self.now()
    if END_TIME_ADDS_ULP:
        # 3.15+: the window is at least one ulp, so it never rounds away
        # when the clock has run long enough for its ulp to pass the
        # clock's resolution.
        end += max(self.clock_resolution, nextafter(fabs(end), INFINITY) - fabs(end))
    else:
        end += self.clock_resolution
    while timers.size:
        if timers.entries[0].when >= end:
            break
        metrics_timer_fired(&self.counters, end - timers.entries[0].when)
        self.ready.push(timers.pop())
    return 0


@cython.auto_pickle(False)
cdef class LoopCore(FdTable):

    def __cinit__(self, *args, **kwargs):
        self.ready = ReadyQueue()
        self.timers = TimerHeap()
        self.clock_resolution = _time.get_clock_info('monotonic').resolution
        self.slow_callback = 0.1
        self.coarse_tick = fl_coarse_resolution()
        self.counters.mark = fl_coarse_monotonic()
        self.renote()
        self._notice_time_override()

    cdef inline double now(self) except? -1.0:
        if self.custom_time:
            return self.time()
        if FL_HAVE_MONOTONIC:
            return fl_monotonic()
        return _monotonic()

    # Attribute writes on the loop are rare (the stdlib's own code sets a few
    # per run_forever); watching them is how an instance-level time()
    # override is noticed without a dict lookup per iteration.
    def __setattr__(self, name, value):
        PyObject_GenericSetAttr(self, name, <PyObject*>value)
        if name == 'time':
            self._notice_time_override()

    def __delattr__(self, name):
        PyObject_GenericSetAttr(self, name, NULL)
        if name == 'time':
            self._notice_time_override()

    def _notice_time_override(self):
        instance_dict = getattr(self, '__dict__', None) or {}
        self.custom_time = ('time' in instance_dict
                            or getattr(type(self), 'time', None) is not _native_time)

    # -- scheduling ---------------------------------------------------------

    @cython.always_allow_keywords(False)
    def time(self):
        """Return the time according to the loop's clock (time.monotonic)."""
        if FL_HAVE_MONOTONIC:
            return fl_monotonic()
        return _monotonic()

    def _check_closed(self):
        self.check_closed()

    @cython.always_allow_keywords(False)
    def create_future(self):
        """Create a Future object attached to the loop."""
        return _futures_module.Future(loop=self)

    def call_soon(self, callback, *args, context=None):
        """Arrange for a callback to be called as soon as possible."""
        self.check_closed()
        if self.debug:
            self._check_thread()
            self._check_callback(callback, 'call_soon')
        handle = new_handle(callback, args, self, context, self.debug)
        self.ready.push(handle)
        if self.ready.count > OWN_AFTER:
            own_handle(handle)      # see _owned.h
        return handle

    def _call_soon(self, callback, args, context):
        # Not called by the stdlib on a fastloop loop: see its _compat.REGISTRY
        # entry for why it stays.
        handle = new_handle(callback, tuple(args), self, context, self.debug)
        self.ready.push(handle)
        if self.ready.count > OWN_AFTER:
            own_handle(handle)
        return handle

    def call_soon_threadsafe(self, callback, *args, context=None):
        """Like call_soon(), but thread-safe."""
        self.check_closed()
        if self.debug:
            self._check_callback(callback, 'call_soon_threadsafe')
        if _ThreadSafeHandle is None:
            handle = new_handle(callback, args, self, context, self.debug)
        elif _THREADSAFE_NATIVE and not self.debug:
            # The stdlib's class, made from C (_threadsafe.pyx).
            handle = new_threadsafe_handle(callback, args, self, context)
        else:
            # 3.14+: the stdlib's own class, whose cancel() and cancelled()
            # from another thread wait for a running callback (a lock held
            # around _run); users and tests check isinstance() against it.
            handle = _ThreadSafeHandle(callback, args, self, context)
            if handle._source_traceback:
                # Drop _ThreadSafeHandle.__init__'s frame: the traceback then
                # ends at the caller, as the stdlib's does.
                # (An explicit index: the module compiles with wraparound off.)
                tb = handle._source_traceback
                del tb[len(tb) - 1]
        self.ready.push(handle)
        if self.ready.count > OWN_AFTER:
            # See _owned.h (of the stdlib's class, the handle only).
            if _ThreadSafeHandle is None:
                own_handle(handle)
            else:
                own_stdlib_handle(handle)
        self.wakeup()
        return handle

    def call_later(self, delay, callback, *args, context=None):
        """Arrange for a callback to be called after ``delay`` seconds."""
        cdef double when
        if type(delay) is float or type(delay) is int:
            when = self.now() + <double>delay
        else:
            if delay is None and CHECKS_NONE_DELAY:
                raise TypeError('delay must not be None')
            # Whatever ``time() + delay`` does in Python (Fraction, numpy
            # scalars, or the stdlib's TypeError for nonsense).
            when = self.now() + delay
        return self.call_at_checked(when, callback, args, context)

    def call_at(self, when, callback, *args, context=None):
        """Arrange for a callback to be called at the absolute time ``when``."""
        if when is None:
            if CHECKS_NONE_DELAY:
                raise TypeError('when cannot be None')
            # 3.10 runs call_at's checks first, then TimerHandle asserts.
            self.check_closed()
            if self.debug:
                self._check_thread()
                self._check_callback(callback, 'call_at')
            raise AssertionError()
        # The stdlib checks for a closed loop before it ever looks at ``when``.
        self.check_closed()
        timer = self.call_at_checked(_as_deadline(when), callback, args, context)
        if type(when) is not float:
            (<TimerHandle>timer).when_given = when
        return timer

    cdef object call_at_checked(self, double when, object callback, tuple args,
                                object context):
        self.check_closed()
        if self.debug:
            self._check_thread()
            # The stdlib names call_at here even for call_later (it delegates).
            self._check_callback(callback, 'call_at')
        return self.schedule_at(when, callback, args, context)

    cdef object schedule_at(self, double when, object callback, tuple args, object context):
        cdef TimerHandle timer = new_timer(when, callback, args, self, context, self.debug)
        # Timers stay ordinary GC objects: owning them cost more on schedule
        # than the traversals it saved (docs/design.md, "Handles and the
        # cyclic GC").
        self.timers.push(timer)
        return timer

    def _timer_handle_cancelled(self, handle):
        if handle._scheduled:
            self.timers.cancelled += 1

    def _add_callback(self, handle):
        # The stdlib's signal path hands us its own events.Handle objects;
        # the ready queue runs any object with _cancelled and _run().
        if not handle._cancelled:
            self.ready.push(handle)

    def _write_to_self(self):
        self.wakeup()

    cdef inline int wakeup(self) noexcept:
        # The poller owns the wake-up fd (_poller.pyx).
        return self.poller.wakeup()

    # -- running ------------------------------------------------------------

    def run_forever(self):
        """Run until stop() is called."""
        if not CLEANS_UP_FAILED_SETUP:
            self._run_forever_setup()
        try:
            if CLEANS_UP_FAILED_SETUP:
                self._run_forever_setup()
            while True:
                self.run_once()
                if self.stopping:
                    break
        finally:
            self._run_forever_cleanup()

    def _run_forever_setup(self):
        self.check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self.debug)
        self._old_agen_hooks = _get_asyncgen_hooks()
        # Time between runs is neither a callback nor a poll (and must not look
        # like a blocked first callback to the watchdog).
        self.counters.mark = fl_coarse_monotonic()
        self.thread_id = _get_ident()
        _set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                            finalizer=self._asyncgen_finalizer_hook)
        _set_running_loop(self)

    def _run_forever_cleanup(self):
        self.stopping = False
        self.thread_id = None
        _set_running_loop(None)
        self._set_coroutine_origin_tracking(False)
        hooks = self._old_agen_hooks
        if hooks is not None:
            self._old_agen_hooks = None
            _set_asyncgen_hooks(*hooks)

    def _run_once(self):
        """Run one full iteration of the event loop."""
        self.run_once()

    def stop(self):
        """Stop running the event loop (after the current iteration)."""
        self.stopping = True

    @cython.always_allow_keywords(False)
    def is_running(self):
        return self.thread_id is not None

    @cython.always_allow_keywords(False)
    def is_closed(self):
        return self.closed

    @cython.always_allow_keywords(False)
    def get_debug(self):
        return self.debug

    cdef int run_once(self) except -1:
        # The phases of the stdlib's _run_once, in its order (module docstring).
        cdef double timeout
        metrics_iteration(&self.counters)
        verify_owned()      # handles scheduled since the last iteration (_owned.h)
        drop_cancelled(self.timers)
        timeout = poll_timeout(self)
        poll_and_dispatch(self, timeout)
        move_due_timers(self)
        metrics_ready(&self.counters, self.ready.count)
        return self.run_ready()

    def _set_quiet_fd(self, int fd):
        # The stdlib's self-pipe while no signal handler can write into it
        # (else -1): see Poller.poll_is_silent.
        cdef bint reading
        if self.poller is None:
            return      # __cinit__ failed before the poller existed; __del__ closes
        reading = 0 <= fd < PyList_GET_SIZE(self.fd_readers) and (
            <object>PyList_GET_ITEM(self.fd_readers, fd) is not None)
        self.poller.set_quiet_fd(fd, reading)

    cdef int dispatch_events(self, int n) except -1:
        cdef Poller poller = self.poller
        cdef Py_ssize_t nslots = PyList_GET_SIZE(self.fd_readers)
        cdef int i, fd, mask
        cdef object handle
        for i in range(n):
            fd = ready_event(poller, i, &mask)
            if fd >= nslots:
                continue
            if mask & FL_READ:
                handle = <object>PyList_GET_ITEM(self.fd_readers, fd)
                if handle is not None:
                    if (<Handle>handle)._cancelled:
                        self.fd_remove(fd, FL_READ)
                    else:
                        self.ready.push(handle)
            if mask & FL_WRITE:
                handle = <object>PyList_GET_ITEM(self.fd_writers, fd)
                if handle is not None:
                    if (<Handle>handle)._cancelled:
                        self.fd_remove(fd, FL_WRITE)
                    else:
                        self.ready.push(handle)
        return 0

    cdef int run_ready(self) except -1:
        cdef ReadyQueue ready = self.ready
        cdef Py_ssize_t _, ntodo = ready.count
        cdef object handle
        cdef int ran
        for _ in range(ntodo):
            if ready.count == 0:
                # A callback emptied the queue (close() from a callback, which
                # 3.13.0 allows after a refused nested run_forever()). Never pop
                # an empty ring; the stdlib's deque.popleft() raises this.
                raise IndexError('pop from an empty deque')
            handle = ready.pop()
            if isinstance(handle, Handle):
                # Out of the loop's hands: an ordinary GC object again if it
                # lives on (see _owned.h).
                if (<Handle>handle)._cancelled:
                    release_handle(<PyObject*>handle)
                    continue
                if self.debug:
                    self.run_debug(handle)
                else:
                    (<Handle>handle)._run_native()
                release_handle(<PyObject*>handle)
            elif type(handle) is _ThreadSafeHandle and not self.debug:
                # 3.14+ call_soon_threadsafe's handles: _run() from C, the
                # cancelled check under the handle's lock (_threadsafe.pyx).
                try:
                    ran = run_threadsafe(handle)
                finally:
                    release_handle(<PyObject*>handle)   # owned? (_owned.h)
                if not ran:
                    continue
            else:
                if handle._cancelled:
                    continue
                if self.debug:
                    self.run_debug(handle)
                else:
                    handle._run()
            if FL_METRICS:
                self.note_callback(handle)
        return 0

    cdef inline int note_callback(self, object handle) except -1:
        cdef double mark = fl_coarse_monotonic()
        cdef double took = mark - self.counters.mark
        if took > self.note_above:
            # Before the stamp moves on: until then the watchdog, which reads
            # it from another thread, still sees the slow callback running.
            self.note_slow(handle, took)
        self.counters.mark = mark
        self.counters.callbacks += 1
        self.counters.callback_seconds += took
        return 0

    cdef int note_slow(self, object handle, double took) except -1:
        # Rare (the maximum only grows; the watchdog's threshold is long):
        # naming the callback may cost a repr, the watchdog a Python call.
        # The watchdog first: until it has heard of the return, its thread
        # would take any Python code here for the callback still blocking.
        if self.watch_hook is not None and took > self.watch_threshold:
            self.watch_hook(handle, took)
        if took > self.counters.longest_callback and took > 2 * self.coarse_tick:
            self.counters.longest_callback = took
            self.longest_name = _format_handle(handle)
        self.renote()
        return 0

    cdef int renote(self) noexcept:
        cdef double above = self.counters.longest_callback
        if above < 2 * self.coarse_tick:
            above = 2 * self.coarse_tick
        if self.watch_hook is not None and self.watch_threshold < above:
            above = self.watch_threshold
        self.note_above = above
        return 0

    def metrics(self):
        """Counters the loop keeps at all times (see fastloop.metrics)."""
        fired = self.counters.timers_fired
        if not FL_METRICS:
            raise RuntimeError('this fastloop build has metrics compiled out (FASTLOOP_NO_METRICS)')
        return {
            'iterations': self.counters.iterations,
            'callbacks': self.counters.callbacks,
            'poll_seconds': self.counters.poll_seconds,
            'callback_seconds': self.counters.callback_seconds,
            'longest_callback_seconds': self.counters.longest_callback,
            'longest_callback': self.longest_name,
            'ready_now': self.ready.count,
            'ready_max': self.counters.ready_max,
            'timers_pending': self.timers.size - self.timers.cancelled,
            'timers_cancelled': self.timers.cancelled,
            'timers_fired': fired,
            'timer_lag_max_seconds': self.counters.lag_max,
            'timer_lag_mean_seconds': self.counters.lag_total / fired if fired else 0.0,
            'fds_registered': len(self._fd_registered()),
            'clock_tick_seconds': self.coarse_tick,
        }

    cdef int run_debug(self, object handle) except -1:
        cdef double t0, dt
        self.current_handle = handle
        try:
            t0 = self.now()
            handle._run()
            dt = self.now() - t0
            if dt >= self.slow_callback:
                _warn_slow_callback(handle, dt)
        finally:
            self.current_handle = None
        return 0

    # -- closing ------------------------------------------------------------

    def _close_native(self):
        """Release the poller, the wake-up fd and every queued handle."""
        self.ready.clear()
        self.timers.clear()
        self.fd_readers = []
        self.fd_writers = []
        self.fd_objects = []
        self._close_fds()

    # -- state the stdlib's inherited code reads and writes -----------------

    @property
    def _debug(self):
        return self.debug

    @_debug.setter
    def _debug(self, value):
        self.debug = bool(value)
        self.timers.debug = self.debug

    @property
    def _closed(self):
        return self.closed

    @_closed.setter
    def _closed(self, value):
        self.closed = bool(value)

    @property
    def _stopping(self):
        return self.stopping

    @_stopping.setter
    def _stopping(self, value):
        self.stopping = bool(value)

    @property
    def _thread_id(self):
        return self.thread_id

    @_thread_id.setter
    def _thread_id(self, value):
        self.thread_id = value

    @property
    def _clock_resolution(self):
        return self.clock_resolution

    @_clock_resolution.setter
    def _clock_resolution(self, value):
        self.clock_resolution = value

    @property
    def slow_callback_duration(self):
        return self.slow_callback

    @slow_callback_duration.setter
    def slow_callback_duration(self, value):
        self.slow_callback = value

    @property
    def _current_handle(self):
        return self.current_handle

    @_current_handle.setter
    def _current_handle(self, value):
        self.current_handle = value

    @property
    def _timer_cancelled_count(self):
        return self.timers.cancelled

    @_timer_cancelled_count.setter
    def _timer_cancelled_count(self, value):
        self.timers.cancelled = value

    # The stdlib keeps these as a deque and a heap list. Here they live in C;
    # reading gives a snapshot (oldest first / heap order) for debugging and
    # introspection. BaseEventLoop.__init__ assigns empty containers, which is
    # accepted; anything else would be silently lost, so it is refused.
    @property
    def _ready(self):
        return _deque(self.ready.snapshot())

    @_ready.setter
    def _ready(self, value):
        if len(value):
            raise ValueError('fastloop keeps its ready queue natively; it cannot be replaced')

    @property
    def _scheduled(self):
        return self.timers.handles()

    @_scheduled.setter
    def _scheduled(self, value):
        if len(value):
            raise ValueError('fastloop keeps its timer heap natively; it cannot be replaced')


cdef double _as_deadline(object when) except? -1.0:
    # A non-number deadline fails when the stdlib's heap first compares it;
    # here it fails at once, with the same exception type. float() alone
    # would accept strings ('1'), which the heap's comparison rejects.
    if type(when) is float:
        return when
    try:
        when < 0.0
        return float(when)
    except (TypeError, ValueError):
        raise TypeError(
            f"'<' not supported between instances of {type(when).__name__!r} and 'float'"
        ) from None


# What LoopCore.time is when nobody overrides it (see _notice_time_override).
cdef object _native_time = LoopCore.time
