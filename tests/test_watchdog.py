"""The blocking-callback watchdog: one report per block, naming the blocking line.

The assertions are about the reports' content and count, never about how
fast anything ran: each block is far longer than the threshold, and the
reported duration is compared with the clock readings the blocking code took
itself. Waits for a report to arrive are bounded (DELIVERY_TIMEOUT) and only
fail when it never comes.
"""

import asyncio
import ctypes
import inspect
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import watchdog_prog

import fastloop
from fastloop import _watchdog

HERE = os.path.dirname(os.path.abspath(__file__))
THRESHOLD = 0.1
BLOCK = 0.4
DELIVERY_TIMEOUT = 30


def sleep_line(func):
    """The line number of the ``time.sleep(`` call in ``func``."""
    lines, first = inspect.getsourcelines(func)
    for offset, text in enumerate(lines):
        if "time.sleep(" in text:
            return first + offset
    raise AssertionError(f"no time.sleep in {func.__name__}")


def blocking_function(record):
    record["t0"] = time.monotonic()
    time.sleep(BLOCK)
    record["t1"] = time.monotonic()


def other_blocking_function(record):
    record["t0"] = time.monotonic()
    time.sleep(BLOCK)
    record["t1"] = time.monotonic()


class Collector:
    """A watchdog callback that keeps every delivery, and waits for them."""

    def __init__(self):
        self.calls = []
        self.cond = threading.Condition()

    def __call__(self, report):
        with self.cond:
            self.calls.append((report, report.finished))
            self.cond.notify_all()

    @property
    def reports(self):
        seen = []
        for report, _ in self.calls:
            if not any(report is r for r in seen):
                seen.append(report)
        return seen

    def wait_finished(self, count):
        """Until ``count`` reports were delivered finished (bounded)."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        with self.cond:
            while sum(1 for _, finished in self.calls if finished) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"watchdog reports never arrived: {self.calls}"
                self.cond.wait(left)


@pytest.fixture(autouse=True)
def no_default():
    yield
    _watchdog.set_default(None)


def run_block(loop, schedule):
    """Run the loop while ``schedule(loop, record)`` blocks it once; return record."""
    record = {}

    async def main():
        schedule(loop, record)
        await asyncio.sleep(0)
        await asyncio.sleep(0.05)

    loop.run_until_complete(main())
    return record


def test_blocking_callback_makes_one_report_naming_function_and_line(loop):
    got = Collector()
    loop.watchdog(THRESHOLD, callback=got)
    record = run_block(loop, lambda lp, rec: lp.call_soon(blocking_function, rec))
    got.wait_finished(1)
    assert len(got.reports) == 1
    report = got.reports[0]
    # Seen while blocked, then completed when the callback returned.
    assert [finished for _, finished in got.calls] == [False, True]
    assert report.stack is not None
    assert report.where.name == "blocking_function"
    assert report.where.lineno == sleep_line(blocking_function)
    assert report.where.filename == __file__
    assert report.blocked >= THRESHOLD
    assert report.task is None
    assert "blocking_function" in report.handle
    assert report.thread_id == threading.get_ident()
    # The total is the loop's own measure of the callback; it agrees with
    # the clock readings the callback took itself.
    assert abs(report.duration - (record["t1"] - record["t0"])) < 0.05
    assert loop.last_watchdog_report() is report
    text = report.format()
    assert f"{__file__}:{sleep_line(blocking_function)} in blocking_function()" in text
    assert "returned after" in text


def test_short_callbacks_make_no_report(loop):
    got = Collector()
    # A long threshold: a healthy callback preempted on a loaded machine
    # must not count, and the program runs well past the threshold.
    loop.watchdog(0.5, callback=got)

    async def chatter():
        for _ in range(60):
            await asyncio.sleep(0.02)

    def ping(n):
        if n:
            loop.call_soon(ping, n - 1)

    async def main():
        ping(10_000)
        await asyncio.gather(*(chatter() for _ in range(5)))

    looks = _watchdog.scans
    loop.run_until_complete(main())
    assert got.calls == []
    assert _watchdog.scans > looks      # the watcher did look meanwhile
    # The same watcher sees a real block.
    loop.watchdog(THRESHOLD, callback=got)
    run_block(loop, lambda lp, rec: lp.call_soon(blocking_function, rec))
    got.wait_finished(1)
    assert len(got.reports) == 1


def test_blocking_task_step_names_the_task(loop):
    got = Collector()
    loop.watchdog(THRESHOLD, callback=got)
    record = {}

    async def worker():
        await asyncio.sleep(0)
        other_blocking_function(record)

    async def main():
        await asyncio.create_task(worker(), name="slow-worker")

    loop.run_until_complete(main())
    got.wait_finished(1)
    [report] = got.reports
    assert report.task_name == "slow-worker"
    assert report.task is not None and report.task.get_name() == "slow-worker"
    names = [frame.name for frame in report.stack]
    assert names[-2:] == ["worker", "other_blocking_function"]
    assert report.where.lineno == sleep_line(other_blocking_function)
    assert "task 'slow-worker'" in report.format()
    assert abs(report.duration - (record["t1"] - record["t0"])) < 0.05


def test_reports_go_to_the_logger_without_a_callback(loop, caplog):
    loop.watchdog(THRESHOLD)
    with caplog.at_level(logging.WARNING, logger="fastloop.watchdog"):
        run_block(loop, lambda lp, rec: lp.call_soon(blocking_function, rec))
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while len(caplog.records) < 2:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.01)
    blocked, returned = caplog.records
    assert blocked.name == returned.name == "fastloop.watchdog"
    assert blocked.levelno == logging.WARNING
    assert f"{__file__}:{sleep_line(blocking_function)} in blocking_function()" in blocked.message
    assert "still blocked" in blocked.message
    assert "returned after" in returned.message and "blocking_function" in returned.message


def test_switched_off_reports_nothing(loop):
    got = Collector()
    loop.watchdog(THRESHOLD, callback=got)
    loop.watchdog(None)
    run_block(loop, lambda lp, rec: lp.call_soon(blocking_function, rec))
    assert got.calls == []
    assert loop.last_watchdog_report() is None


def test_debug_mode_loop_is_watched_too(loop):
    got = Collector()
    loop.set_debug(True)
    loop.watchdog(THRESHOLD, callback=got)
    run_block(loop, lambda lp, rec: lp.call_soon(blocking_function, rec))
    got.wait_finished(1)
    assert len(got.reports) == 1
    assert got.reports[0].where.name == "blocking_function"


def _libc_holding_gil():
    try:
        libc = ctypes.PyDLL(None)
        return libc.usleep
    except (OSError, AttributeError):
        return None


@pytest.mark.skipif(_libc_holding_gil() is None, reason="no libc usleep reachable through ctypes")
def test_callback_holding_the_gil_is_reported_late(loop):
    # ctypes.PyDLL keeps the GIL across the call: the watchdog's thread cannot
    # look while it lasts, so the report comes when the callback returns and
    # says there is no stack.
    got = Collector()
    loop.watchdog(THRESHOLD, callback=got)
    usleep = _libc_holding_gil()
    run_block(loop, lambda lp, rec: lp.call_soon(usleep, int(BLOCK * 1e6)))
    got.wait_finished(1)
    [report] = got.reports
    assert report.late
    assert report.stack is None
    assert "usleep" in report.handle
    assert report.duration is not None and report.duration >= THRESHOLD
    assert "no stack" in report.format()


def test_loops_in_several_threads_each_get_their_report():
    got = {}
    errors = []

    def thread_main(name, func):
        loop = fastloop.new_event_loop()
        try:
            got[name] = Collector()
            loop.watchdog(THRESHOLD, callback=got[name])
            run_block(loop, lambda lp, rec: lp.call_soon(func, rec))
            got[name].wait_finished(1)
            got[name].thread = threading.get_ident()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            loop.close()

    threads = [threading.Thread(target=thread_main, args=("a", blocking_function)),
               threading.Thread(target=thread_main, args=("b", other_blocking_function))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DELIVERY_TIMEOUT * 2)
    assert not errors, errors
    for name, func in (("a", "blocking_function"), ("b", "other_blocking_function")):
        [report] = got[name].reports
        assert report.where.name == func
        assert report.thread_id == got[name].thread


def test_closed_loops_are_dropped_and_the_thread_stops():
    loop = fastloop.new_event_loop()
    got = Collector()
    loop.watchdog(THRESHOLD, callback=got)
    run_block(loop, lambda lp, rec: lp.call_soon(blocking_function, rec))
    got.wait_finished(1)
    loop.close()
    loop.watchdog(None)      # off on a closed loop: allowed, as close() twice is
    with pytest.raises(RuntimeError, match="closed"):
        loop.watchdog(THRESHOLD)
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while any(t.name == "fastloop-watchdog" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the watchdog thread outlived every watched loop"
        time.sleep(0.01)
    assert len(got.reports) == 1


def test_bad_arguments(loop):
    with pytest.raises(ValueError):
        loop.watchdog(0)
    with pytest.raises(ValueError):
        loop.watchdog(float("nan"))
    with pytest.raises(TypeError):
        loop.watchdog("0.1")
    with pytest.raises(TypeError):
        loop.watchdog(0.1, callback=42)
    stdlib_loop = asyncio.SelectorEventLoop()
    try:
        with pytest.raises(TypeError, match="fastloop loop"):
            fastloop.watchdog(0.1, loop=stdlib_loop)
    finally:
        stdlib_loop.close()


def test_module_level_default_arms_new_and_running_loops():
    got = Collector()
    fastloop.watchdog(THRESHOLD, callback=got)
    loop = fastloop.new_event_loop()
    try:
        run_block(loop, lambda lp, rec: lp.call_soon(blocking_function, rec))
        got.wait_finished(1)
    finally:
        loop.close()
    fastloop.watchdog(None)
    assert len(got.reports) == 1

    running = Collector()
    loop = fastloop.new_event_loop()
    try:
        async def main():
            fastloop.watchdog(THRESHOLD, callback=running)   # arms the running loop
            await asyncio.sleep(0)
            blocking_function({})

        loop.run_until_complete(main())
        running.wait_finished(1)
        assert len(running.reports) == 1
    finally:
        loop.close()


def run_python(code):
    return subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True,
                          timeout=120)


def test_fork_child_does_not_inherit_the_watch():
    code = textwrap.dedent("""
        import asyncio, os, sys, threading, time, warnings
        import fastloop
        warnings.simplefilter("ignore", DeprecationWarning)   # fork with a thread running

        def blocked_in_child():
            time.sleep(0.4)

        reports = []
        loop = fastloop.new_event_loop()
        loop.watchdog(0.1, callback=reports.append)
        r, w = os.pipe()

        def child_loop(got):
            child = fastloop.new_event_loop()
            child.watchdog(0.1, callback=got.append)
            child.call_soon(blocked_in_child)
            child.run_until_complete(asyncio.sleep(0.05))
            deadline = time.monotonic() + 30
            while not (got and got[-1].finished) and time.monotonic() < deadline:
                time.sleep(0.01)
            child.close()

        async def main():
            pid = os.fork()
            if pid == 0:
                # The inherited loop (still "running" here) is not watched...
                blocked_in_child()
                inherited = list(reports)
                # ...a loop of the child's own is.
                got = []
                t = threading.Thread(target=child_loop, args=(got,))
                t.start()
                t.join()
                names = [r.where.name for r in dict.fromkeys(got)]
                os.write(w, repr((len(inherited), names)).encode())
                os._exit(0)
            os.close(w)
            _, status = os.waitpid(pid, 0)
            print(os.read(r, 1000).decode(), os.waitstatus_to_exitcode(status))

        loop.run_until_complete(main())
        loop.close()
    """)
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["(0,", "['blocked_in_child'])", "0"], out.stdout


def test_environment_variable_arms_loops_created_by_another_runner():
    # As under uvicorn --loop fastloop:new_event_loop: the program never
    # mentions the watchdog; the environment switches it on.
    env = dict(os.environ, FASTLOOP_WATCHDOG="0.1")
    code = "import fastloop, watchdog_prog; fastloop.run(watchdog_prog.main())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env, cwd=HERE)
    assert out.returncode == 0, out.stderr
    assert f"watchdog_prog.py:{watchdog_prog.BLOCKING_LINE} in parse_config()" in out.stderr
    assert "returned after" in out.stderr


def test_environment_variable_rejects_nonsense(tmp_path):
    env = dict(os.environ, FASTLOOP_WATCHDOG="soon")
    out = subprocess.run([sys.executable, "-c", "import fastloop"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0
    assert "FASTLOOP_WATCHDOG='soon' is not a positive number of seconds" in out.stderr
