"""Run a third-party test suite with fastloop in force, and prove it was.

Loaded by ``compat/run.py`` into the suites' own test runs:

* pytest suites: ``python -m pytest -p force_fastloop ...`` (``compat/`` is put
  on ``PYTHONPATH``);
* tornado's unittest suite: ``compat/tornado_runner.py`` calls
  :func:`activate` before handing over to ``tornado.test.runtests``.

The environment variable ``FASTLOOP_COMPAT_MODE`` picks the run:

``fastloop``
    fastloop's policy is installed at configure time and kept installed: a
    test that resets the policy (``asyncio.set_event_loop_policy(None)``) gets
    a fresh fastloop policy instead of the stdlib's. pytest-asyncio suites get
    a ``pytest_asyncio_loop_factories`` answer, anyio-plugin suites get
    ``loop_factory=fastloop.new_event_loop`` added to their asyncio backend
    options. ``FASTLOOP_COMPAT_PATCH=SelectorEventLoop,new_event_loop`` also
    rebinds those ``asyncio`` names, for suites that build loops by class.
``asyncio`` (the default)
    Nothing is changed; the loops are only counted, so both runs load the
    same plugin and differ in the loop alone.

Either way every ``fastloop.Loop`` created in this process is counted, and
the count is written at exit to ``$FASTLOOP_COMPAT_COUNT_DIR/<pid>.json``
(one file per process, so pytest-xdist workers each leave theirs).
"""

import asyncio
import atexit
import json
import os
import sys
import warnings

import fastloop

MODE = os.environ.get("FASTLOOP_COMPAT_MODE", "asyncio")
if MODE not in ("asyncio", "fastloop"):
    raise RuntimeError(f"FASTLOOP_COMPAT_MODE must be asyncio or fastloop, not {MODE!r}")
PATCHES = {name for name in os.environ.get("FASTLOOP_COMPAT_PATCH", "").split(",") if name}

_created = 0
_activated = False


def _count_loops():
    """Wrap ``fastloop.Loop.__init__`` so every loop built here is counted."""
    original = fastloop.Loop.__init__
    if getattr(original, "_fastloop_compat_counted", False):
        return

    def __init__(self, *args, **kwargs):
        global _created
        _created += 1
        original(self, *args, **kwargs)

    __init__._fastloop_compat_counted = True
    fastloop.Loop.__init__ = __init__


def _write_count():
    directory = os.environ.get("FASTLOOP_COMPAT_COUNT_DIR")
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    record = {"pid": os.getpid(), "mode": MODE, "fastloop_loops": _created}
    with open(os.path.join(directory, f"{os.getpid()}.json"), "w") as f:
        json.dump(record, f)


def _keep_policy_installed():
    """``set_event_loop_policy(None)`` means "the default": make that fastloop's."""
    original = asyncio.events.set_event_loop_policy

    def set_event_loop_policy(policy):
        if policy is None:
            policy = fastloop.Policy()
        original(policy)

    set_event_loop_policy._fastloop_compat_original = original
    asyncio.events.set_event_loop_policy = set_event_loop_policy
    asyncio.set_event_loop_policy = set_event_loop_policy
    # The harness's own install is no call of the suite's: on 3.14+ the stdlib
    # deprecates set_event_loop_policy, and a suite whose pytest config says
    # filterwarnings = error (uvicorn, aiohttp) would die at configure time on
    # it. Calls the suite itself makes still warn as the stdlib does.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        set_event_loop_policy(None)


def _patch_loop_names():
    if "SelectorEventLoop" in PATCHES:
        asyncio.SelectorEventLoop = fastloop.Loop
        asyncio.unix_events.SelectorEventLoop = fastloop.Loop
    if "new_event_loop" in PATCHES:
        asyncio.new_event_loop = fastloop.new_event_loop
        asyncio.events.new_event_loop = fastloop.new_event_loop


def _patch_anyio():
    """anyio's pytest plugin: run the asyncio backend on fastloop loops."""
    try:
        import anyio.pytest_plugin as plugin
    except ImportError:
        return
    original = plugin.extract_backend_and_options
    if getattr(original, "_fastloop_compat", False):
        return

    def extract_backend_and_options(backend):
        name, options = original(backend)
        if name == "asyncio" and not options.get("use_uvloop"):
            if options.get("loop_factory") is None:
                options = {**options, "loop_factory": fastloop.new_event_loop}
        return name, options

    extract_backend_and_options._fastloop_compat = True
    plugin.extract_backend_and_options = extract_backend_and_options


def activate():
    """Count fastloop loops and, in fastloop mode, put fastloop in force."""
    global _activated
    if _activated:
        return
    _activated = True
    _count_loops()
    atexit.register(_write_count)
    if MODE == "fastloop":
        _keep_policy_installed()
        _patch_loop_names()
        _patch_anyio()


def created_loops():
    return _created


# --- pytest hooks ----------------------------------------------------------


def pytest_configure(config):
    activate()


def _deselected_ids():
    path = os.environ.get("FASTLOOP_COMPAT_DESELECT")
    if not path or not os.path.exists(path):
        return set()
    with open(path) as f:
        return {line.split("#", 1)[0].strip() for line in f} - {""}


def pytest_collection_modifyitems(config, items):
    """Drop the tests listed in ``$FASTLOOP_COMPAT_DESELECT``.

    A listed id matches that node id exactly, and its parametrized variants
    (``id[...]``); unlike ``--deselect`` it is not a prefix of other tests.
    """
    listed = _deselected_ids()
    if not listed:
        return
    keep, drop = [], []
    for item in items:
        base = item.nodeid.split("[", 1)[0]
        (drop if item.nodeid in listed or base in listed else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    return f"force_fastloop: mode={MODE} patches={sorted(PATCHES)} pid={os.getpid()}"


try:
    import pytest
except ImportError:  # the tornado runner imports this module without pytest
    pytest = None

if pytest is not None:

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_asyncio_loop_factories(config, item):
        # The same factory name in both runs, so the test ids match.
        if MODE == "fastloop":
            return {"loop": fastloop.new_event_loop}
        return {"loop": asyncio.new_event_loop}


def main():
    """``python force_fastloop.py``: print the mode (a smoke check)."""
    activate()
    loop = asyncio.new_event_loop()
    try:
        print(MODE, type(loop).__module__, created_loops(), file=sys.stdout)
    finally:
        loop.close()


if __name__ == "__main__":
    main()
