"""Run tornado's own suite (``python -m tornado.test.runtests``) for compat/run.py.

    python compat/tornado_runner.py --junitxml OUT.xml [--deselect-file F]... [-- ARGS]

Does what ``python -m tornado.test.runtests`` does (the same module list, the
same warning filters, tornado's options such as ``--httpclient``) with three
additions:

* ``force_fastloop.activate()`` runs first, so with ``FASTLOOP_COMPAT_MODE=
  fastloop`` every loop tornado makes (``IOLoop()`` -> ``asyncio.new_event_loop()``
  -> the policy) is a fastloop loop, and the loops are counted in both modes;
* each test's outcome is recorded and written as junit XML, like pytest's
  ``--junitxml``, for run.py to compare;
* the tests named in the deselect files are left out of the default suite.

Test names given after ``--`` run instead of the whole suite.
"""

import argparse
import sys
import time
import unittest
import xml.etree.ElementTree as ET

import force_fastloop

_DESELECTED = set()
_RECORDS = {}  # test id -> (outcome, detail, seconds)
_START = {}  # test id -> monotonic start time


def read_deselect(path):
    names = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return names


def _iter_tests(suite):
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from _iter_tests(test)
        else:
            yield test


def all():  # noqa: A001 - unittest.main(defaultTest="all") looks up this name
    from tornado.test import runtests

    suite = runtests.all()
    if not _DESELECTED:
        return suite
    return unittest.TestSuite(t for t in _iter_tests(suite) if t.id() not in _DESELECTED)


def _record(test, outcome, detail=""):
    test_id = test.id()
    previous = _RECORDS.get(test_id)
    # A test that failed stays failed (e.g. a failing subtest, then success).
    if previous is not None and previous[0] in ("failure", "error"):
        return
    _RECORDS[test_id] = (outcome, detail, time.monotonic() - _START.get(test_id, time.monotonic()))


def _recording(result_class):
    class RecordingResult(result_class):
        def startTest(self, test):
            _START[test.id()] = time.monotonic()
            super().startTest(test)

        def addSuccess(self, test):
            super().addSuccess(test)
            _record(test, "passed")

        def addFailure(self, test, err):
            super().addFailure(test, err)
            _record(test, "failure", self._exc_info_to_string(err, test))

        def addError(self, test, err):
            super().addError(test, err)
            _record(test, "error", self._exc_info_to_string(err, test))

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            _record(test, "skipped", reason)

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            _record(test, "skipped", "expected failure")

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            _record(test, "failure", "unexpected success")

        def addSubTest(self, test, subtest, err):
            super().addSubTest(test, subtest, err)
            if err is not None:
                kind = "failure" if issubclass(err[0], test.failureException) else "error"
                _record(test, kind, self._exc_info_to_string(err, test))

    return RecordingResult


def write_junit(path):
    suite = ET.Element("testsuite", name="tornado", tests=str(len(_RECORDS)))
    for test_id, (outcome, detail, duration) in sorted(_RECORDS.items()):
        if " (" in test_id or "." not in test_id:
            classname, name = "", test_id  # e.g. "setUpClass (module.Class)"
        else:
            classname, name = test_id.rsplit(".", 1)
        case = ET.SubElement(
            suite, "testcase", classname=classname, name=name, time=f"{duration:.3f}"
        )
        if outcome == "skipped":
            ET.SubElement(case, "skipped", message=detail[:500])
        elif outcome in ("failure", "error"):
            element = ET.SubElement(case, outcome, message=detail.strip().splitlines()[-1][:500])
            element.text = detail
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junitxml", required=True)
    parser.add_argument("--deselect-file", action="append", default=[])
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    for path in args.deselect_file:
        _DESELECTED.update(read_deselect(path))

    force_fastloop.activate()

    from tornado.test import runtests

    original_factory = runtests.test_runner_factory

    def test_runner_factory(stderr):
        base = original_factory(stderr)

        class RecordingRunner(base):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                self.resultclass = _recording(self.resultclass)

            def run(self, test):
                try:
                    return super().run(test)
                finally:
                    write_junit(args.junitxml)

        return RecordingRunner

    runtests.test_runner_factory = test_runner_factory
    sys.argv = [sys.argv[0], *rest]
    runtests.main()


if __name__ == "__main__":
    main()
