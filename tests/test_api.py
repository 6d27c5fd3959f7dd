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


def test_every_abstract_loop_method_is_implemented(loop):
    for name, member in inspect.getmembers(asyncio.AbstractEventLoop, inspect.isfunction):
        if name.startswith("_"):
            continue
        impl = getattr(type(loop), name)
        assert impl is not member, f"{name} is only the abstract stub"


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
        assert _compat.registry_problems(instances) == []
    finally:
        loop.run_until_complete(asyncio.sleep(0))
        transport.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        b.close()


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


def test_install():
    old = asyncio.get_event_loop_policy()
    try:
        fastloop.install()
        assert isinstance(asyncio.get_event_loop_policy(), fastloop.Policy)
    finally:
        asyncio.set_event_loop_policy(old)


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


def test_run_contract():
    async def main(x):
        await asyncio.sleep(0)
        return x * 2

    assert fastloop.run(main(21)) == 42
    with pytest.raises(ValueError):
        fastloop.run(lambda: None)  # not a coroutine, as asyncio.run rejects it


def test_run_debug():
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert fastloop.run(main(), debug=True) is True


def test_version_single_sourced():
    from importlib.metadata import PackageNotFoundError, version

    try:
        assert version("fastloop") == fastloop.__version__
    except PackageNotFoundError:
        # An in-place development build has no distribution metadata.
        assert fastloop.__version__.count(".") == 2


def test_import_has_no_side_effects():
    code = "import asyncio, fastloop; print(type(asyncio.get_event_loop_policy()).__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("asyncio")
