"""The loop factory, ``install()``, and the policy that hands out fastloop loops.

The policy exists only where asyncio still has its policy system (3.14
deprecated it, 3.16 removes it). On a Python without it ``fastloop.Policy``
is absent: ``hasattr(fastloop, "Policy")`` is the feature test, and touching
the name raises an AttributeError that says what to use instead, rather than
handing out a class that would only fail later inside asyncio.
"""

import asyncio

from fastloop import _compat
from fastloop.loop import Loop

#: The names that exist only while asyncio has policies.
POLICY_NAMES = ("Policy", "EventLoopPolicy")
NO_POLICY_MESSAGE = (
    "fastloop.{name} needs asyncio's event loop policy system, which this Python "
    "does not have (deprecated in 3.14, removed in 3.16); pass the loop factory "
    "instead: asyncio.run(main(), loop_factory=fastloop.new_event_loop), "
    "asyncio.Runner(loop_factory=fastloop.new_event_loop) or fastloop.run(main())"
)


def new_event_loop():
    """Create a new fastloop event loop (the ``loop_factory`` to pass around)."""
    return Loop()


_POLICY_BASE = _compat.default_policy_base()

if _POLICY_BASE is not None:

    class Policy(_POLICY_BASE):
        """An asyncio event loop policy whose loops are fastloop loops.

        ``asyncio.set_event_loop_policy(fastloop.Policy())`` makes
        ``asyncio.run()``, ``asyncio.new_event_loop()`` and
        ``asyncio.get_event_loop()`` use fastloop. Subclasses the interpreter's
        own default policy, so child watchers (3.10-3.13) and everything else
        behave as they do there, deprecation warnings (3.14+) included.
        """

        def new_event_loop(self):
            return Loop()

    EventLoopPolicy = Policy


def module_getattr(module_name, name):
    """A module ``__getattr__``: why a policy name is missing, else the usual error."""
    if name in POLICY_NAMES:
        raise AttributeError(NO_POLICY_MESSAGE.format(name=name), name=name)
    raise AttributeError(f"module {module_name!r} has no attribute {name!r}", name=name)


def __getattr__(name):
    module_getattr(__name__, name)


def install():
    """Make fastloop the loop of every asyncio.run()/Runner()/new_event_loop() call.

    3.10-3.13: installs ``Policy()``. Where the policy system is deprecated
    (3.14+) or gone, asyncio's own default loop creation is pointed at
    ``new_event_loop``, the path ``loop_factory`` users take; no policy is set
    and no deprecation warning is raised.
    """
    if _compat.POLICIES_DEPRECATED or _POLICY_BASE is None:
        _compat.set_default_loop_factory(new_event_loop)
        return
    asyncio.set_event_loop_policy(Policy())
