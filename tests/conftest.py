import asyncio
import json
import os
import time

import hypothesis
import pytest

import fastloop

pytest_plugins = ["fastloop.pytest_plugin"]


def pytest_addoption(parser):
    parser.addoption(
        "--poller", choices=("epoll", "selectors"), default=None,
        help="run fastloop loops on this poller (sets FASTLOOP_POLLER for the "
             "session; `make test` reruns the fd, sock_*, transport and accept "
             "tests with --poller selectors, the default off Linux)")


def pytest_configure(config):
    poller = config.getoption("--poller")
    if poller:
        # Read by every loop at creation (fastloop/_poller.pyx make_poller);
        # subprocesses the tests start inherit it.
        os.environ["FASTLOOP_POLLER"] = poller

# Factories for tests that run the same program on both loops and compare.
LOOPS = {
    "fastloop": fastloop.new_event_loop,
    "asyncio": asyncio.SelectorEventLoop,
}


@pytest.fixture(params=sorted(LOOPS))
def any_loop(request):
    """A fresh loop of each kind, closed after the test."""
    loop = LOOPS[request.param]()
    yield loop
    if not loop.is_closed():
        loop.close()


@pytest.fixture
def loop():
    """A fresh fastloop loop, closed after the test."""
    loop = fastloop.new_event_loop()
    yield loop
    if not loop.is_closed():
        loop.close()


def same_on_both_loops(scenario):
    """Run scenario(loop) on a fresh loop of each kind; the results must be equal."""
    results = {}
    for name, factory in LOOPS.items():
        loop = factory()
        try:
            results[name] = scenario(loop)
        finally:
            loop.close()
    assert results["fastloop"] == results["asyncio"]
    return results["fastloop"]


def report_progress(name, stats, every=50):
    """For long differential runs: write ``stats`` as JSON to
    $FASTLOOP_PROGRESS_DIR/<name>.json every ``every`` examples, so a run that
    is stopped before it finishes still tells how far it got."""
    where = os.environ.get("FASTLOOP_PROGRESS_DIR")
    if where and stats["examples"] % every == 0:
        tmp = os.path.join(where, name + ".json.tmp")
        with open(tmp, "w") as f:
            json.dump(dict(stats, time=time.strftime("%H:%M:%S")), f)
        os.replace(tmp, os.path.join(where, name + ".json"))


def keep_going():
    """For long differential runs (FASTLOOP_KEEP_GOING=1 with
    $FASTLOOP_PROGRESS_DIR): a mismatch is recorded (report_mismatch) and
    counted, and the run goes on to search for more, instead of stopping at
    the first one to shrink it; the run's "enough compared" test then fails
    if any was counted."""
    return bool(os.environ.get("FASTLOOP_PROGRESS_DIR")) and os.environ.get(
        "FASTLOOP_KEEP_GOING") == "1"


def set_aside():
    """Set the current example aside as not comparable (a run stalled or did
    not settle): ``assume(False)``, so Hypothesis counts it as invalid; in a
    long run (keep_going()) it returns instead, and the caller returns too.
    Hypothesis stops a run as flaky ("Inconsistent results from replaying a
    test case") when an input it has seen pass comes up again and is then
    rejected, which a rejection that depends on timing does sooner or later
    over tens of thousands of examples: a chaos shard stopped so at 32,300
    examples on 2026-11-30."""
    if not keep_going():
        hypothesis.assume(False)


def report_mismatch(name, example, message):
    """For long differential runs: append a mismatching example (its repr)
    to $FASTLOOP_PROGRESS_DIR/<name>-mismatches.txt, so that one hypothesis
    cannot replay (a flaky failure prints no example) is still on record."""
    where = os.environ.get("FASTLOOP_PROGRESS_DIR")
    if where:
        with open(os.path.join(where, name + "-mismatches.txt"), "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {message}\n{example!r}\n\n")
