"""How each module of CPython's test.test_asyncio is pointed at fastloop.

Imported only inside the per-module subprocess (``bootstrap.py``). Three
mechanisms, all applied to the interpreter's own, unmodified test classes:

1. Policy: ``fastloop.Policy()`` is installed before the module is imported
   and re-installed whenever a test resets the policy with
   ``set_event_loop_policy(None)`` (the lazy ``_init_event_loop_policy`` hook
   is replaced). ``asyncio.new_event_loop()``, ``asyncio.run()``,
   ``IsolatedAsyncioTestCase`` and ``policy.new_event_loop()`` then give
   fastloop loops: test_tasks, test_streams, test_locks, test_ssl, ...
2. Factories: the ``create_event_loop``/``new_loop`` hooks of the concrete
   classes that run real loops (test_events' EventLoopTestsMixin and
   SubprocessTestsMixin, test_sock_lowlevel, test_sendfile, every
   ``functional.FunctionalTestCaseMixin`` subclass: test_server,
   test_buffered_proto, test_sslproto's start_tls tests, test_ssl) return
   ``fastloop.Loop()``.
3. setUp swap: classes whose ``setUp`` calls ``asyncio.SelectorEventLoop()``
   directly get ``asyncio.SelectorEventLoop`` bound to ``fastloop.Loop`` for
   the duration of setUp.

Unit tests that run on ``test_utils.TestLoop`` or on mocked
``BaseEventLoop``/``BaseSelectorEventLoop`` instances test the stdlib's
implementation, not a loop, and are left alone.
"""

import asyncio
import functools
import inspect
import unittest

# Modules that never run a real event loop of their own: pure unit tests of
# the stdlib's classes on TestLoop/mocks, ABC checks, or Windows-only code.
# Every other module must report fastloop loops created (see bootstrap).
NOT_REBOUND = {
    "test_protocols": "ABC method checks, no loop",
    "test_transports": "ABC/transport unit tests on mocks, no loop",
    "test_proactor_events": "Windows proactor unit tests on mocks",
    "test_windows_events": "Windows only",
    "test_windows_utils": "Windows only",
    "test_selector_events": "unit tests of BaseSelectorEventLoop with a mocked selector",
    "test_futures": "Future unit tests on test_utils.TestLoop (a stdlib test double)",
    "test_tools": "asyncio.tools (ps/pstree) formatting of canned data, no loop (3.14+)",
}

# Modules that run only on a stdlib test double before some version:
# module -> (first version whose tests run real loops, reason).
NOT_REBOUND_BEFORE = {
    "test_queues": ((3, 11), "3.10's queue tests run on test_utils.TestLoop (a test double)"),
}

# Classes whose setUp constructs asyncio.SelectorEventLoop() itself.
SETUP_SWAP = {
    "test_unix_events": (
        "SelectorEventLoopSignalTests",
        "SelectorEventLoopUnixSocketTests",
    ),
    "test_base_events": ("BaseEventLoopWithSelectorTests",),
}

FACTORY_HOOKS = ("create_event_loop", "new_loop")

# Classes that run their tests on a mocked asyncio.BaseEventLoop() only because
# it was the cheapest loop to hand; the tests themselves use public API
# (run_until_complete, asyncio.run, Runner), so they run on fastloop instead.
MOCK_LOOP_CLASSES = {
    "test_pep492": ("BaseTest",),   # setUp: self.loop = asyncio.BaseEventLoop() + mocks
    "test_runners": ("BaseTest",),  # new_loop: asyncio.BaseEventLoop() + mocks
}


def _is_windows_only(cls):
    return "Proactor" in cls.__name__ or "Windows" in cls.__name__


def _factory_classes(module):
    """(class, hook) pairs to rebind in ``module``."""
    from test.test_asyncio import functional

    found = []
    for name, cls in vars(module).items():
        if not (inspect.isclass(cls) and issubclass(cls, unittest.TestCase)):
            continue
        if cls.__module__ != module.__name__ or _is_windows_only(cls):
            continue
        if issubclass(cls, functional.FunctionalTestCaseMixin):
            found.append((cls, "new_loop"))
        elif name == "TestSSL":
            found.append((cls, "new_loop"))
        elif hasattr(cls, "create_event_loop"):
            found.append((cls, "create_event_loop"))
    return found


def _new_fastloop(self):
    import fastloop

    return fastloop.Loop()


def _swap_setup(cls):
    import fastloop

    original = cls.setUp

    @functools.wraps(original)
    def setUp(self):
        saved = asyncio.SelectorEventLoop
        asyncio.SelectorEventLoop = fastloop.Loop
        try:
            original(self)
        finally:
            asyncio.SelectorEventLoop = saved

    cls.setUp = setUp


def _runner_new_loop(self):
    # test_runners.BaseTest.tearDown asserts loop.shutdown_ag_run: record the
    # call, then do the real shutdown.
    loop = _new_fastloop(self)
    loop.shutdown_ag_run = False
    real_shutdown_asyncgens = loop.shutdown_asyncgens

    async def shutdown_asyncgens():
        loop.shutdown_ag_run = True
        await real_shutdown_asyncgens()

    loop.shutdown_asyncgens = shutdown_asyncgens
    return loop


def _pep492_setup(self):
    from test.test_asyncio import utils as test_utils

    test_utils.TestCase.setUp(self)
    self.loop = _new_fastloop(self)
    self.set_event_loop(self.loop)


def rebind(short_name, module):
    """Point ``module``'s loop-running classes at fastloop; return what was done."""
    done = []
    for cls, hook in _factory_classes(module):
        setattr(cls, hook, _new_fastloop)
        done.append(f"{cls.__name__}.{hook}")
    for name in SETUP_SWAP.get(short_name, ()):
        cls = getattr(module, name, None)
        if cls is not None:
            _swap_setup(cls)
            done.append(f"{name}.setUp")
    for name in MOCK_LOOP_CLASSES.get(short_name, ()):
        cls = getattr(module, name, None)
        if cls is None:
            continue
        if short_name == "test_runners":
            cls.new_loop = _runner_new_loop
            done.append(f"{name}.new_loop")
        else:
            cls.setUp = _pep492_setup
            done.append(f"{name}.setUp")
    return done


def alias_event_loop():
    """Point ``asyncio.EventLoop`` (3.13+) at fastloop.Loop.

    Tests name the default loop class directly (``loop_factory =
    asyncio.EventLoop`` in test_taskgroups' IsolatedAsyncioTestCase classes,
    ``asyncio.run(..., loop_factory=asyncio.EventLoop)`` in test_tasks,
    test_runners, test_eager_task_factory); done before the module is
    imported, since class bodies read it at import time.
    """
    import fastloop

    if hasattr(asyncio, "EventLoop"):
        asyncio.EventLoop = fastloop.Loop
        return ["asyncio.EventLoop"]
    return []


def install_policy():
    """Install fastloop.Policy() and keep it installed across policy resets."""
    from asyncio import events

    import fastloop

    def _init_event_loop_policy():
        with events._lock:
            if events._event_loop_policy is None:
                events._event_loop_policy = fastloop.Policy()

    events._init_event_loop_policy = _init_event_loop_policy
    asyncio.set_event_loop_policy(fastloop.Policy())


def keep_policy():
    """Before each test: put fastloop.Policy() back if a test left another policy."""
    from asyncio import events

    import fastloop

    policy = events._event_loop_policy
    if policy is not None and not isinstance(policy, fastloop.Policy):
        asyncio.set_event_loop_policy(fastloop.Policy())
