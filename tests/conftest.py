import asyncio

import pytest

import fastloop

pytest_plugins = ["fastloop.pytest_plugin"]

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
