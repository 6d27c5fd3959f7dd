"""Run one module of the interpreter's test.test_asyncio, in this process.

Started by ``run.py`` as ``python bootstrap.py --loop fastloop --module
test_events --out DIR``; never imported by pytest. Writes, in DIR:

* ``progress``: the id of the test currently running (for hang reports);
* ``results.jsonl``: one JSON object per finished test;
* ``summary.json``: written last; loop counts and the rebinding applied.

A per-test watchdog (faulthandler) dumps every thread's stack to stderr and
exits when one test runs longer than ``--test-timeout``; ``run.py`` then
records the test as hung and restarts the module without it.
"""

import argparse
import collections
import faulthandler
import importlib
import json
import os
import sys
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

COUNTS = collections.Counter()


def count_loops(with_fastloop):
    """Count the real loops created: fastloop.Loop and stdlib selector loops."""
    from asyncio import selector_events

    base_init = selector_events.BaseSelectorEventLoop.__init__

    def counting_base_init(self, *args, **kwargs):
        # fastloop.Loop runs this __init__ too (with its own selector view).
        if type(self).__module__.split(".")[0] != "fastloop":
            COUNTS["stdlib"] += 1
        base_init(self, *args, **kwargs)

    selector_events.BaseSelectorEventLoop.__init__ = counting_base_init
    if with_fastloop:
        import fastloop

        loop_init = fastloop.Loop.__init__

        def counting_loop_init(self, *args, **kwargs):
            COUNTS["fastloop"] += 1
            loop_init(self, *args, **kwargs)

        fastloop.Loop.__init__ = counting_loop_init


class RecordingResult(unittest.TextTestResult):
    def __init__(self, *args, progress, sink, test_timeout, keep_policy, **kwargs):
        super().__init__(*args, **kwargs)
        self._keep_policy = keep_policy
        self._progress = progress
        self._sink = sink
        self._test_timeout = test_timeout
        self._outcome = None
        self._detail = ""
        self._started = 0.0
        self._counts_at_start = None

    def startTest(self, test):
        with open(self._progress, "w") as f:
            f.write(test.id())
        self._outcome, self._detail = "pass", ""
        self._started = time.monotonic()
        self._counts_at_start = dict(COUNTS)
        if self._keep_policy is not None:
            self._keep_policy()
        if self._test_timeout:
            faulthandler.dump_traceback_later(self._test_timeout, exit=True)
        super().startTest(test)

    def _set(self, outcome, detail=""):
        # A test can fail and then error in cleanup: keep the worst.
        order = ["pass", "skip", "xfail", "xpass", "fail", "error"]
        if order.index(outcome) >= order.index(self._outcome or "pass"):
            self._outcome, self._detail = outcome, detail

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set("fail", self.failures[-1][1])

    def addError(self, test, err):
        super().addError(test, err)
        if not hasattr(test, "_testMethodName"):  # setUpClass/module errors
            self._emit(test.id(), "error", self.errors[-1][1], 0.0, {})
            return
        self._set("error", self.errors[-1][1])

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "fail" if issubclass(err[0], test.failureException) else "error"
            self._set(kind, "".join(traceback.format_exception(*err))[-4000:])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if not hasattr(test, "_testMethodName"):
            self._emit(test.id(), "skip", reason, 0.0, {})
            return
        self._set("skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set("xfail")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set("xpass")

    def stopTest(self, test):
        super().stopTest(test)
        if self._test_timeout:
            faulthandler.cancel_dump_traceback_later()
        start = self._counts_at_start or {}
        loops = {k: COUNTS[k] - start.get(k, 0) for k in ("fastloop", "stdlib")}
        self._emit(test.id(), self._outcome, self._detail,
                   time.monotonic() - self._started, loops)

    def _emit(self, test_id, outcome, detail, seconds, loops):
        record = {"id": test_id, "outcome": outcome, "seconds": round(seconds, 3),
                  "loops": loops}
        if outcome in ("fail", "error"):
            record["detail"] = detail[-6000:]
        self._sink.write(json.dumps(record) + "\n")
        self._sink.flush()


def _filter(suite, exclude):
    kept = unittest.TestSuite()
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            kept.addTest(_filter(item, exclude))
        elif item.id() not in exclude:
            kept.addTest(item)
    return kept


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--loop", choices=["fastloop", "asyncio"], required=True)
    ap.add_argument("--module", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--test-timeout", type=float, default=60.0)
    ap.add_argument("--exclude", default=None, help="file of test ids not to run")
    args = ap.parse_args(argv)

    summary = {"module": args.module, "loop": args.loop, "python": sys.version,
               "rebound": [], "status": "started"}
    summary_path = os.path.join(args.out, "summary.json")
    try:
        import test.test_asyncio  # noqa: F401
    except ImportError as exc:
        summary.update(status="no-test-package", detail=str(exc))
        with open(summary_path, "w") as f:
            json.dump(summary, f)
        return 0

    with_fastloop = args.loop == "fastloop"
    if with_fastloop:
        sys.path.insert(0, ROOT)
        sys.path.insert(0, HERE)
        import rebind

        import fastloop

        summary["fastloop_file"] = fastloop.__file__
        rebind.install_policy()
        aliased = rebind.alias_event_loop()
    count_loops(with_fastloop)

    try:
        module = importlib.import_module(f"test.test_asyncio.{args.module}")
    except unittest.SkipTest as exc:  # e.g. test_windows_events off Windows
        with open(os.path.join(args.out, "results.jsonl"), "a") as sink:
            sink.write(json.dumps({"id": f"test.test_asyncio.{args.module}",
                                   "outcome": "skip", "detail": str(exc), "seconds": 0,
                                   "loops": {}}) + "\n")
        summary.update(status="done", loops=dict(COUNTS), module_skipped=str(exc))
        with open(summary_path, "w") as f:
            json.dump(summary, f)
        return 0
    if with_fastloop:
        summary["rebound"] = aliased + rebind.rebind(args.module, module)

    exclude = set()
    if args.exclude and os.path.exists(args.exclude):
        with open(args.exclude) as f:
            exclude = {line.strip() for line in f if line.strip()}
    suite = _filter(unittest.defaultTestLoader.loadTestsFromModule(module), exclude)

    faulthandler.enable(file=sys.stderr, all_threads=True)
    with open(os.path.join(args.out, "results.jsonl"), "a") as sink:
        runner = unittest.TextTestRunner(
            stream=sys.stderr, verbosity=0,
            resultclass=lambda *a, **k: RecordingResult(
                *a, progress=os.path.join(args.out, "progress"), sink=sink,
                test_timeout=args.test_timeout,
                keep_policy=rebind.keep_policy if with_fastloop else None, **k))
        runner.run(suite)

    summary.update(status="done", loops=dict(COUNTS))
    if with_fastloop:
        import asyncio

        summary["policy_at_end"] = type(asyncio.get_event_loop_policy()).__module__
    with open(summary_path, "w") as f:
        json.dump(summary, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
