"""The loop factory and the policy that hands out fastloop loops."""

import asyncio
import warnings

from fastloop import _compat
from fastloop.loop import Loop


def new_event_loop():
    """Create a new fastloop event loop (the ``loop_factory`` to pass around)."""
    return Loop()


class Policy(_compat.default_policy_base()):
    """An asyncio event loop policy whose loops are fastloop loops.

    ``asyncio.set_event_loop_policy(fastloop.Policy())`` makes
    ``asyncio.run()``, ``asyncio.new_event_loop()`` and
    ``asyncio.get_event_loop()`` use fastloop. Subclasses the interpreter's own
    default policy, so child watchers (3.10-3.13) and everything else behave as
    they do there.
    """

    def new_event_loop(self):
        return Loop()


EventLoopPolicy = Policy


def install():
    """Make fastloop the loop of every asyncio.run()/new_event_loop() call."""
    with warnings.catch_warnings():
        # 3.14 deprecates the policy system; installing a policy is exactly
        # what the caller asked for, so its DeprecationWarning is not news.
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(Policy())
