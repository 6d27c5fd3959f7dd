"""fastloop.pytest_plugin, as a user's test suite sees it (run with pytester).

Each case writes a small async test suite into a temporary directory and runs
pytest on it in a subprocess (the same interpreter), with or without
``-p fastloop.pytest_plugin`` and the ``fastloop_loops`` ini option. The
user's tests print the class of the loop they run on; the checks read that.
"""

from __future__ import annotations

import re

import pytest

import fastloop

pytest_plugins = ["pytester"]

pytest_asyncio = pytest.importorskip("pytest_asyncio", reason="pytest-asyncio is not installed")
_PA_VERSION = tuple(int(p) for p in re.findall(r"\d+", pytest_asyncio.__version__)[:2])
if _PA_VERSION < (1, 4):
    pytest.skip("fastloop.pytest_plugin needs pytest-asyncio 1.4+ "
                "(pytest_asyncio_loop_factories)", allow_module_level=True)

FASTLOOP_LOOP = f"{fastloop.Loop.__module__}.{fastloop.Loop.__qualname__}"

USER_TESTS = """
import asyncio

import pytest


def _name(loop):
    return type(loop).__module__ + "." + type(loop).__qualname__


@pytest.fixture
async def fixture_loop():
    return asyncio.get_running_loop()


async def test_user_code(fixture_loop):
    loop = asyncio.get_running_loop()
    print("LOOP=" + _name(loop))
    # The async fixture ran on the loop the test runs on.
    assert fixture_loop is loop
    await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection(*(await _echo_server()))
    writer.write(b"ping")
    assert await reader.readexactly(4) == b"PING"
    writer.close()
    await writer.wait_closed()


async def _echo_server():
    async def handle(reader, writer):
        writer.write((await reader.readexactly(4)).upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server.sockets[0].getsockname()[:2]


def test_sync_code_is_left_alone():
    print("SYNC")
"""

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
{extra}
"""


def run_user_suite(pytester, *args, extra_ini=""):
    pytester.makeini(INI.format(extra=extra_ini))
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "-v", *args,
                                           timeout=120)
    loops = re.findall(r"LOOP=(\S+)", result.stdout.str())
    return result, loops


def test_plugin_runs_async_tests_on_fastloop(pytester):
    result, loops = run_user_suite(pytester, "-p", "fastloop.pytest_plugin")
    result.assert_outcomes(passed=2)
    assert loops == [FASTLOOP_LOOP]


def test_without_the_plugin_the_loop_is_the_stdlib_one(pytester):
    # The control: what the plugin changes is not fastloop by default.
    result, loops = run_user_suite(pytester)
    result.assert_outcomes(passed=2)
    assert len(loops) == 1
    assert not loops[0].startswith("fastloop"), loops


def test_fastloop_loops_ini_runs_each_async_test_on_both_loops(pytester):
    result, loops = run_user_suite(pytester, "-p", "fastloop.pytest_plugin",
                                   extra_ini="fastloop_loops = fastloop asyncio")
    # Two results for the async test, one per loop; the sync test runs once.
    result.assert_outcomes(passed=3)
    ids = re.findall(r"^test_user\.py::(\S+)", result.stdout.str(), re.MULTILINE)
    assert sorted(ids) == [
        "test_sync_code_is_left_alone", "test_user_code[asyncio]", "test_user_code[fastloop]",
    ]
    assert len(loops) == 2
    assert FASTLOOP_LOOP in loops
    (other,) = [name for name in loops if name != FASTLOOP_LOOP]
    assert not other.startswith("fastloop")


def test_an_unknown_loop_name_is_an_error(pytester):
    result, loops = run_user_suite(pytester, "-p", "fastloop.pytest_plugin",
                                   extra_ini="fastloop_loops = fastloop tokio")
    assert result.ret != 0
    assert loops == []
    assert "tokio" in result.stdout.str() + result.stderr.str()


def _policy_warnings(result):
    text = result.stdout.str() + result.stderr.str()
    return sorted({line.strip() for line in text.splitlines()
                   if "Warning" in line and "polic" in line.lower()})


def test_plugin_adds_no_policy_warning(pytester):
    # 3.14 deprecates the policy system: the plugin hands pytest-asyncio loop
    # factories, so it adds no policy warning to what a run without it shows.
    with_plugin, loops = run_user_suite(pytester, "-p", "fastloop.pytest_plugin",
                                        "-W", "default::DeprecationWarning")
    with_plugin.assert_outcomes(passed=2)
    assert loops == [FASTLOOP_LOOP]
    without, _ = run_user_suite(pytester, "-W", "default::DeprecationWarning")
    assert _policy_warnings(with_plugin) == _policy_warnings(without)
