import asyncio
import inspect
import subprocess
import sys

import pytest

import fastloop
from fastloop import _compat


def test_async_tests_run_on_fastloop():
    async def probe():
        return asyncio.get_running_loop()

    assert isinstance(fastloop.run(probe()), fastloop.Loop)


async def test_pytest_asyncio_uses_fastloop():
    assert isinstance(asyncio.get_running_loop(), fastloop.Loop)


def test_loop_is_an_abstract_event_loop(loop):
    assert isinstance(loop, asyncio.AbstractEventLoop)
    assert isinstance(loop, asyncio.SelectorEventLoop)


@pytest.mark.parametrize(
    "name",
    ["call_soon", "call_later", "call_at", "call_soon_threadsafe", "run_forever", "_run_once",
     "time", "add_reader", "remove_reader", "add_writer", "remove_writer", "stop"],
)
def test_hot_methods_are_native(name):
    # A Python function here would mean the core silently fell back to the stdlib.
    attr = inspect.getattr_static(fastloop.Loop, name)
    assert type(attr).__name__ in ("cython_function_or_method", "method_descriptor")
    assert not inspect.isfunction(attr)


def defined_in(impl):
    """The module that defines a method: a Python function's own, or, for a
    native method descriptor (which has none), its class's."""
    owner = getattr(impl, "__objclass__", None)
    return impl.__module__ if owner is None else owner.__module__


def test_public_loop_methods_are_fastloops_or_the_stdlib_loops():
    # Every public AbstractEventLoop method resolves on fastloop.Loop either to
    # fastloop's own code or to exactly what asyncio.SelectorEventLoop runs:
    # nothing else in Loop's MRO (LoopCore, a mixin) shadows a stdlib method.
    own = set()
    for name, _ in inspect.getmembers(asyncio.AbstractEventLoop, inspect.isfunction):
        if name.startswith("_"):
            continue
        impl = inspect.getattr_static(fastloop.Loop, name)
        if impl is inspect.getattr_static(asyncio.SelectorEventLoop, name):
            continue
        assert defined_in(impl).startswith("fastloop."), (name, impl)
        own.add(name)
    assert {"call_soon", "call_later", "call_at", "run_forever", "add_reader",
            "sock_recv", "create_future"} <= own, own


def test_stdlib_private_names_exist():
    # Every private stdlib name fastloop relies on exists on this Python with
    # one of the signatures _compat knows (instance attributes are looked up
    # on a real stdlib loop and transport).
    import socket

    loop = asyncio.SelectorEventLoop()
    a, b = socket.socketpair()
    try:
        transport = loop._make_socket_transport(a, asyncio.Protocol())
        instances = {
            asyncio.unix_events._UnixSelectorEventLoop: loop,
            _compat.SelectorSocketTransport: transport,
        }
        ssl_protocol = None
        if _compat.ssl is not None:
            import ssl

            # A stdlib SSLProtocol for the TLS entries.
            ssl_protocol = _compat.StdSSLProtocol(
                loop, asyncio.Protocol(), ssl.create_default_context(), None,
                server_hostname="localhost")
            instances[_compat.StdSSLProtocol] = ssl_protocol
        assert _compat.registry_problems(instances) == []
    finally:
        if ssl_protocol is not None:
            ssl_protocol._app_transport.close()   # (unclosed: a ResourceWarning)
        loop.run_until_complete(asyncio.sleep(0))
        transport.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        b.close()


@pytest.mark.skipif(not hasattr(fastloop, "Policy"), reason="this Python's asyncio has no policies")
def test_policy(monkeypatch):
    old = asyncio.get_event_loop_policy()
    try:
        asyncio.set_event_loop_policy(fastloop.Policy())
        loop = asyncio.new_event_loop()
        assert isinstance(loop, fastloop.Loop)
        loop.close()

        async def main():
            return asyncio.get_running_loop()

        assert isinstance(asyncio.run(main()), fastloop.Loop)
    finally:
        asyncio.set_event_loop_policy(old)
    assert fastloop.EventLoopPolicy is fastloop.Policy


_INSTALL = """
import asyncio, sys, fastloop

fastloop.install()

async def main():
    return type(asyncio.get_running_loop()).__name__

print("run", asyncio.run(main()))
loop = asyncio.new_event_loop()
print("new_event_loop", type(loop).__name__)
loop.close()
if hasattr(asyncio, "Runner"):
    with asyncio.Runner() as runner:
        print("Runner", runner.run(main()))
if fastloop._compat.POLICIES_DEPRECATED:
    print("route", asyncio.new_event_loop is fastloop.new_event_loop)
else:
    print("route", isinstance(asyncio.get_event_loop_policy(), fastloop.Policy))
"""


def test_install():
    # In its own interpreter: install() changes process-wide state. Warnings
    # are errors there, so install() adds none (3.14+: no policy is touched).
    out = subprocess.run([sys.executable, "-W", "error", "-c", _INSTALL],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    seen = dict(line.split() for line in out.stdout.splitlines())
    expected = {"run": "Loop", "new_event_loop": "Loop", "route": "True"}
    if hasattr(asyncio, "Runner"):
        expected["Runner"] = "Loop"
    assert seen == expected


@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio.run(loop_factory=) is 3.12+")
def test_asyncio_run_loop_factory():
    async def main():
        return asyncio.get_running_loop()

    assert isinstance(asyncio.run(main(), loop_factory=fastloop.new_event_loop), fastloop.Loop)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.Runner is 3.11+")
def test_runner_loop_factory():
    async def main():
        return asyncio.get_running_loop()

    with asyncio.Runner(loop_factory=fastloop.Loop) as runner:
        assert isinstance(runner.run(main()), fastloop.Loop)


class _Awaitable:
    def __await__(self):
        return (yield from asyncio.sleep(0, "awaited").__await__())


def _run_outcome(run, make_main):
    main = make_main()
    try:
        return ("ok", run(main))
    except Exception as exc:
        return (type(exc).__name__, str(exc))
    finally:
        if asyncio.iscoroutine(main):
            main.close()


def test_run_contract():
    # fastloop.run accepts and rejects what the running Python's asyncio.run
    # does, with the same exceptions (3.14 also runs awaitables).
    async def main(x):
        await asyncio.sleep(0)
        return x * 2

    def not_a_coroutine():
        pass

    awaitable = _Awaitable()  # one object: its repr is in 3.10-3.13's message
    cases = {
        "coroutine": lambda: main(21),
        "function": lambda: not_a_coroutine,
        "awaitable": lambda: awaitable,
        "int": lambda: 42,
    }
    for name, make_main in cases.items():
        assert _run_outcome(fastloop.run, make_main) == _run_outcome(asyncio.run, make_main), name
    assert fastloop.run(main(21)) == 42


def test_run_from_a_running_loop(loop):
    async def outer(run):
        return _run_outcome(run, lambda: asyncio.sleep(0))

    fast = loop.run_until_complete(outer(fastloop.run))
    stdlib = loop.run_until_complete(outer(asyncio.run))
    assert fast == stdlib
    assert fast[0] == "RuntimeError"


def test_run_debug():
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert fastloop.run(main(), debug=True) is True


def test_version_single_sourced():
    import pathlib
    import re
    from importlib.metadata import PackageNotFoundError, version

    try:
        # An installed distribution: its metadata came from the same string.
        assert version("fastloop") == fastloop.__version__
    except PackageNotFoundError:
        # An in-place development build has no distribution metadata: the
        # checkout's pyproject.toml must take its version from the module
        # that fastloop.__version__ is read from.
        root = pathlib.Path(fastloop.__file__).resolve().parent.parent
        pyproject = (root / "pyproject.toml").read_text()
        assert 'version = { attr = "fastloop._version.__version__" }' in pyproject
        source = (root / "fastloop" / "_version.py").read_text()
        assert re.search(r'__version__ = "([^"]+)"', source).group(1) == fastloop.__version__


def test_import_has_no_side_effects():
    code = "import asyncio, fastloop; print(type(asyncio.get_event_loop_policy()).__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("asyncio")


@pytest.mark.parametrize("name", ["_call_soon"])
def test_shadowed_private_methods_are_fastloops(loop, name):
    # The stdlib's version would queue into a snapshot of _ready: the callback
    # must reach the native queue and run.
    assert defined_in(inspect.getattr_static(fastloop.Loop, name)) == "fastloop._loop"
    out = []
    getattr(loop, name)(out.append, ("ran",), None)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["ran"]
