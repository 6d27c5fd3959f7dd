"""Run one transport scenario on fastloop and on the stdlib loop and compare."""

import asyncio
import re

from conftest import LOOPS


def describe(exc):
    """An exception as (type name, message), without addresses and port numbers."""
    msg = re.sub(r"0x[0-9a-f]+", "0x?", str(exc))
    return type(exc).__name__, re.sub(r"\b\d{4,5}\b", "PORT", msg)


def attempt(fn):
    """What fn() raised, described, or "ok"."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - compared across loops
        return describe(exc)
    return "ok"


async def settle(n=5):
    for _ in range(n):
        await asyncio.sleep(0)


def on_both(scenario, timeout=30):
    """scenario(loop) -> result, on a fresh loop of each kind; results and the
    exception-handler calls must match. Returns fastloop's result."""
    results = {}
    for name, factory in LOOPS.items():
        loop = factory()
        errors = []

        def handler(_loop, ctx, errors=errors):
            exc = ctx.get("exception")
            errors.append((ctx["message"], None if exc is None else describe(exc)))

        loop.set_exception_handler(handler)
        try:
            result = loop.run_until_complete(asyncio.wait_for(scenario(loop), timeout))
            results[name] = (result, errors)
        finally:
            loop.close()
    assert results["fastloop"] == results["asyncio"]
    return results["fastloop"][0]
