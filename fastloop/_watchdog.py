"""The blocking-callback watchdog: which code blocked the loop, seen while it blocks.

How it works:

* The loop core stamps, for its always-on metrics, when the running callback
  began (``_watchstate.sample``). One watcher thread per process reads the
  stamps of every watched loop: a loop that is running, not waiting in its
  poller, and whose stamp is older than the threshold is blocked by the
  callback it is running. The watcher then takes that thread's Python stack
  (``sys._current_frames()``) while the block still goes on, names the task
  if a task step is running, and reports.
* When a callback longer than half the threshold returns, the core calls
  ``_Watch.returned`` (its ``watch_hook``) on the loop's thread before it
  moves the stamp on; that completes the report with the total duration the
  core measured, or makes the report itself if the watcher could not look in
  time (the loop's thread held the GIL throughout, e.g. in C code).
* Reports go out from the watcher thread, in order: to the ``callback``
  given, else as WARNING records of the ``fastloop.watchdog`` logger. Each
  blocking episode makes one report, delivered twice: when the block is seen
  and when its callback returns (``report.duration`` then set).

A healthy loop pays nothing per callback (the compare the metrics already
made); the watcher wakes about once per threshold per busy loop.
"""

import asyncio
import atexit
import collections
import logging
import math
import os
import threading
import time
import traceback
import warnings
import weakref

from fastloop import _compat, _watchstate

logger = logging.getLogger("fastloop.watchdog")

#: Environment variable: a threshold in seconds switches the watchdog on for
#: every fastloop loop created in the process (e.g. under someone else's
#: command line, such as uvicorn or gunicorn).
ENV = "FASTLOOP_WATCHDOG"

# The core calls back for callbacks longer than this share of the threshold:
# its coarse clock may read a block the watcher saw as slightly shorter.
_HOOK_SHARE = 0.5
# Stack frames kept, innermost first, in one report.
_MAX_FRAMES = 100


class WatchdogReport:
    """One episode of a blocked loop.

    Attributes:
        threshold: the watchdog's threshold, in seconds.
        blocked: how long the loop had been blocked when the stack was taken.
        stack: the loop thread's Python stack at that moment
            (``traceback.StackSummary``, innermost frame last; the runner's
            frames above the callback are left out), or None when the
            watchdog could not look while the block lasted.
        late: True when the stack (or the whole report) came later than the
            threshold because the loop's thread kept the GIL (C code that does
            not release it); the stack is then where that code let go.
        task: the task whose step blocked (None for a plain callback).
        task_name: its name.
        handle: how the blocking callback is named (``<Handle cb()>``, or the
            task); None until it returns.
        duration: the callback's total run time, measured by the loop's
            clock; None until it returns.
        finished: True once the callback returned or the block otherwise
            ended (``duration`` stays None if it ended without returning,
            e.g. an exception left the loop).
        thread_id, thread_name: the loop's thread.
        wall_time: ``time.time()`` when the block was seen.
    """

    def __init__(self, loop, threshold, blocked, stack, late, task, thread_id, episode):
        self._loop = weakref.ref(loop)
        self.threshold = threshold
        self.blocked = blocked
        self.stack = stack
        self.late = late
        self.task = task
        self.task_name = task.get_name() if task is not None else None
        self.handle = None
        self.duration = None
        self.finished = False
        self.thread_id = thread_id
        self.thread_name = _thread_name(thread_id)
        self.wall_time = time.time()
        self._episode = episode
        self._omitted = 0
        self._told_end = False

    @property
    def loop(self):
        """The loop (None once it is gone)."""
        return self._loop()

    @property
    def where(self):
        """The innermost frame of ``stack``: the function and line that blocked."""
        return self.stack[-1] if self.stack else None

    def _culprit(self):
        if self.task is not None:
            return f"task {self.task_name!r}"
        if self.handle is not None:
            return self.handle
        if self.stack:
            return f"a callback in {self.stack[0].name}()"
        return "a callback"

    def format(self):
        """The report as text: what blocked, for how long, and where."""
        head = (f"fastloop watchdog: the event loop in thread {self.thread_name!r} "
                f"was blocked for {self.blocked:.3f} s (threshold {self.threshold:g} s) "
                f"by {self._culprit()}")
        lines = [head]
        if self.stack:
            where = self.where
            lines.append(f"blocking at {where.filename}:{where.lineno} in {where.name}()")
            if self.late:
                lines.append("(stack taken late: the loop's thread held the GIL, e.g. in C "
                             "code that does not release it, or the machine was overloaded; "
                             "this is where the watchdog first got to look)")
            lines.append("Stack of the loop's thread while blocked (most recent call last):")
            if self._omitted:
                lines.append(f"  [{self._omitted} frames of the loop's runner omitted]")
            lines.append("".join(self.stack.format()).rstrip("\n"))
        else:
            lines.append("no stack: the watchdog could not look while the block lasted "
                         "(the loop's thread held the GIL, e.g. in C code that does not "
                         "release it, or the machine was overloaded)")
        if self.finished:
            lines.append(self._ending())
        else:
            lines.append("still blocked; the total follows when the callback returns")
        return "\n".join(lines)

    def _ending(self):
        if self.duration is None:
            return ("the block ended without its callback returning "
                    "(e.g. an exception left the loop)")
        if self.task is not None:
            return f"the step of task {self.task_name!r} returned after {self.duration:.3f} s"
        return f"the callback {self.handle} returned after {self.duration:.3f} s"

    def format_returned(self):
        """The follow-up line once the callback returned."""
        return f"fastloop watchdog: {self._ending()}"

    def __repr__(self):
        state = f"duration={self.duration:.3f}" if self.duration is not None else "running"
        where = self.where
        at = f" at {where.filename}:{where.lineno} in {where.name}" if where else ""
        return f"<WatchdogReport blocked={self.blocked:.3f}s {state} by {self._culprit()}{at}>"


def _thread_name(ident):
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return str(ident)


class _Watch:
    """One watched loop: its settings and its open report."""

    __slots__ = ("loop_ref", "threshold", "callback", "open", "last", "reported", "__weakref__")

    def __init__(self, loop, threshold, callback):
        self.loop_ref = weakref.ref(loop)
        self.threshold = threshold
        self.callback = callback
        self.open = None        # the report whose callback has not returned yet
        self.last = None        # the latest report
        self.reported = None    # the (mark, callbacks) episode last reported

    def returned(self, handle, took):
        """watch_hook: on the loop's thread, a callback of ``took`` s returned."""
        loop = self.loop_ref()
        if loop is None:
            return
        try:
            _returned(self, loop, handle, took)
        except Exception:
            # Never into the loop: a failing watchdog must not stop it.
            logger.exception("fastloop watchdog: failed to complete a report")


# Shared state; every change under _lock. The watcher thread holds it only
# while it samples (never while a report is delivered), the loop's thread
# only in _returned.
_lock = threading.Lock()
_wake = threading.Condition(_lock)
_watches = {}                   # id(loop) -> _Watch
_pending = collections.deque()  # (watch, report, event) waiting to be delivered
_deliver_lock = threading.Lock()
_thread = None
_default = None                 # (threshold, callback) for loops created from now on
scans = 0                       # how often the watcher has looked (tests, bench/)


def check_threshold(threshold):
    """``threshold`` as a float of seconds, or None (off); TypeError/ValueError otherwise."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"watchdog threshold must be a number of seconds or None, "
                        f"not {type(threshold).__name__}")
    threshold = float(threshold)
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ValueError(f"watchdog threshold must be a positive number of seconds, "
                         f"got {threshold!r}")
    return threshold


def watch(loop, threshold, callback=None):
    """Switch ``loop``'s watchdog on (or off with ``threshold=None``)."""
    threshold = check_threshold(threshold)
    if callback is not None and not callable(callback):
        raise TypeError("watchdog callback must be callable or None")
    if threshold is None:
        with _wake:
            _watches.pop(id(loop), None)
            _wake.notify()
        _watchstate.arm(loop, 0.0, None)
        return
    if not _watchstate.AVAILABLE:
        raise RuntimeError("this fastloop build has metrics compiled out (FASTLOOP_NO_METRICS); "
                           "the watchdog needs them")
    loop._check_closed()
    with _wake:
        w = _watches.get(id(loop))
        if w is None or w.loop_ref() is not loop:
            w = _Watch(loop, threshold, callback)
            _watches[id(loop)] = w
        else:
            w.threshold, w.callback = threshold, callback
        _watchstate.arm(loop, threshold * _HOOK_SHARE, w.returned)
        _start_locked()
        _wake.notify()


def last_report(loop):
    """The latest report of ``loop``'s watchdog, or None."""
    w = _watches.get(id(loop))
    return w.last if w is not None and w.loop_ref() is loop else None


def set_default(threshold, callback=None):
    """The watchdog every fastloop loop created from now on starts with."""
    global _default
    threshold = check_threshold(threshold)
    if callback is not None and not callable(callback):
        raise TypeError("watchdog callback must be callable or None")
    _default = None if threshold is None else (threshold, callback)


def on_new_loop(loop):
    """Loop.__init__: arm a new loop when a default (API, CLI or environment) says so."""
    if _default is not None and _watchstate.AVAILABLE:
        watch(loop, *_default)


def _default_from_env():
    value = os.environ.get(ENV, "").strip()
    if value.lower() in ("", "0", "off", "no", "false"):
        return None
    try:
        return (check_threshold(float(value)), None)
    except ValueError:
        warnings.warn(f"{ENV}={value!r} is not a positive number of seconds; "
                      f"the watchdog stays off", RuntimeWarning, stacklevel=2)
        return None


# -- the loop's thread --------------------------------------------------------

def _returned(w, loop, handle, took):
    with _wake:
        tid, _, mark, done = _watchstate.sample(loop)
        report = w.open
        if report is not None and report._episode == (mark, done):
            w.open = None
            report.handle = _compat.format_handle(handle)
            report.duration = took
            report.finished = True
            _pending.append((w, report, "returned"))
        elif took >= w.threshold and w.reported != (mark, done):
            # The watcher never got to look: the GIL was held throughout.
            w.reported = (mark, done)
            report = WatchdogReport(loop, w.threshold, took, None, True,
                                    _current_task(loop), tid, (mark, done))
            report.handle = _compat.format_handle(handle)
            report.duration = took
            report.finished = True
            w.last = report
            _pending.append((w, report, "blocked"))
        else:
            # Returned in time; what the loop does until it moves its stamp on
            # is not this callback's block.
            w.reported = (mark, done)
            return
        _start_locked()
        _wake.notify()


# -- the watcher thread ------------------------------------------------------

def _start_locked():
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(target=_run, name="fastloop-watchdog", daemon=True)
        _thread.start()


def _run():
    global _thread
    me = threading.current_thread()
    while True:
        with _wake:
            if _thread is not me:
                return          # replaced (after fork) or stopped
            wait = _scan()
        _deliver_pending()
        with _wake:
            if _pending:
                continue
            if not _watches:
                _thread = None
                return
            _wake.wait(wait)


def _scan():
    """Sample every watched loop; queue the reports. Returns seconds to sleep."""
    global scans
    scans += 1
    now = _watchstate.coarse_now()
    wait = 1.0
    for key, w in list(_watches.items()):
        loop = w.loop_ref()
        if loop is None or loop.is_closed():
            del _watches[key]
            _close_open(w, None)
            if loop is not None:
                _watchstate.arm(loop, 0.0, None)
            continue
        tid, polling, mark, done = _watchstate.sample(loop)
        episode = (mark, done)
        if w.open is not None and (tid is None or polling or w.open._episode != episode):
            # Ended without the core's call: not in a callback, or an
            # exception left the loop.
            _close_open(w, None)
        if tid is None or polling:
            wait = min(wait, w.threshold / 2)
            continue
        if episode == w.reported:
            wait = min(wait, w.threshold)
            continue
        blocked = now - mark
        if blocked < w.threshold:
            wait = min(wait, w.threshold - blocked)
            continue
        report = _capture(loop, w, tid, episode, blocked)
        if report is None:
            wait = min(wait, w.threshold / 2)
            continue
        w.reported = episode
        w.open = w.last = report
        _pending.append((w, report, "blocked"))
        wait = min(wait, w.threshold)
    return max(wait, 0.001)


def _close_open(w, duration):
    report = w.open
    if report is not None:
        w.open = None
        report.duration = duration
        report.finished = True
        _pending.append((w, report, "returned"))


def _capture(loop, w, tid, episode, blocked):
    frame = _compat.current_frames().get(tid)
    raw = []
    while frame is not None and len(raw) < _MAX_FRAMES:
        code = frame.f_code
        if code in _HOOK_CODES:
            return None     # the loop's thread is reporting this block itself
        raw.append((code.co_filename, frame.f_lineno, code.co_name))
        frame = frame.f_back
    del frame
    raw.reverse()
    omitted = 0
    for i in range(len(raw) - 1, -1, -1):
        filename, _, name = raw[i]
        if name in _compat.RUNNER_FUNCTIONS and filename == _compat.RUNNER_FILE:
            omitted = i + 1
            break
    # The watcher wakes by 1.5 thresholds at the latest (a loop it last saw
    # idle is looked at every half threshold), plus a GIL switch interval.
    late = blocked > w.threshold * 1.5 + 0.05
    stack = traceback.StackSummary.from_list(
        [traceback.FrameSummary(f, lineno, name, lookup_line=False)
         for f, lineno, name in raw[omitted:]])
    report = WatchdogReport(loop, w.threshold, blocked, stack, late, _current_task(loop),
                            tid, episode)
    report._omitted = omitted
    return report


_HOOK_CODES = (_returned.__code__, _Watch.returned.__code__)


def _current_task(loop):
    try:
        return asyncio.current_task(loop)
    except Exception:
        return None


def _deliver_pending():
    # One deliverer at a time, so a report's two events keep their order.
    with _deliver_lock:
        while True:
            with _wake:
                if not _pending:
                    return
                w, report, event = _pending.popleft()
            _deliver(w, report, event)


def _deliver(w, report, event):
    try:
        if w.callback is not None:
            w.callback(report)
        elif event == "blocked":
            told_end = report.finished
            logger.warning("%s", report.format())
            report._told_end = told_end
        elif not report._told_end:
            logger.warning("%s", report.format_returned())
    except Exception:
        logger.exception("fastloop watchdog: the report callback failed")


# Reports of a block that ended just before the program did still go out.
atexit.register(_deliver_pending)


def _after_fork_in_child():
    # The watcher thread does not exist in the child. The parent's loops are
    # disarmed there: a child forked from inside a callback (multiprocessing,
    # a process pool) runs its own work "inside" that callback's copy, and
    # would be reported as one endless block. Loops the child creates start
    # with the default (API, --watchdog, FASTLOOP_WATCHDOG) as usual, and
    # loop.watchdog() re-arms an inherited loop.
    global _lock, _wake, _deliver_lock, _thread
    _lock = threading.Lock()
    _wake = threading.Condition(_lock)
    _deliver_lock = threading.Lock()
    _thread = None
    _pending.clear()
    watches = list(_watches.values())
    _watches.clear()
    for w in watches:
        loop = w.loop_ref()
        if loop is not None:
            _watchstate.arm(loop, 0.0, None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_default = _default_from_env()
