"""Run pytest-asyncio tests on fastloop.

Enable with ``-p fastloop.pytest_plugin`` (or ``pytest_plugins =
["fastloop.pytest_plugin"]`` in a conftest). Every async test then runs on a
fastloop loop. With the ini option ``fastloop_loops = fastloop asyncio`` each
async test runs twice, once per loop, parametrized by name.

Uses pytest-asyncio's ``pytest_asyncio_loop_factories`` hook (1.4+).
"""

import asyncio

import fastloop

_FACTORIES = {
    "fastloop": fastloop.new_event_loop,
    "asyncio": asyncio.SelectorEventLoop,
}


def pytest_addoption(parser):
    parser.addini(
        "fastloop_loops",
        type="args",
        default=["fastloop"],
        help="loops the async tests run on: fastloop, asyncio, or both",
    )


def pytest_asyncio_loop_factories(config, item):
    names = config.getini("fastloop_loops") or ["fastloop"]
    unknown = [name for name in names if name not in _FACTORIES]
    if unknown:
        raise ValueError(
            f"fastloop_loops: unknown loop(s) {unknown}; choose from {sorted(_FACTORIES)}"
        )
    return {name: _FACTORIES[name] for name in names}
