# Types of fastloop's public API (PEP 561; the package ships py.typed).
# Checked against the runtime by `make typecheck` (mypy.stubtest) and used by
# tests/typing/ (mypy --strict), both part of `make test`.
import asyncio
import traceback
from collections.abc import Callable, Coroutine, Sequence
from contextvars import Context
from typing import Any, TypeVar

from typing_extensions import disjoint_base

_T = TypeVar("_T")

__version__: str
__all__ = [
    "EventLoopPolicy",
    "Handle",
    "Loop",
    "Policy",
    "TimerHandle",
    "WatchdogReport",
    "__version__",
    "install",
    "metrics",
    "new_event_loop",
    "run",
    "watchdog",
]

@disjoint_base
class Handle:
    """A callback scheduled by call_soon (fastloop's native handle type; it
    behaves like asyncio.Handle but does not derive from it)."""

    def __init__(self, callback: Callable[..., object], args: Sequence[Any],
                 loop: asyncio.AbstractEventLoop, context: Context | None = None) -> None: ...
    def cancel(self) -> None: ...
    def cancelled(self) -> bool: ...
    def get_context(self) -> Context: ...

@disjoint_base
class TimerHandle(Handle):
    """A callback scheduled by call_later/call_at."""

    def __init__(self, when: float, callback: Callable[..., object], args: Sequence[Any],
                 loop: asyncio.AbstractEventLoop, context: Context | None = None) -> None: ...
    def when(self) -> float: ...
    def __lt__(self, value: object, /) -> bool: ...
    def __le__(self, value: object, /) -> bool: ...
    def __gt__(self, value: object, /) -> bool: ...
    def __ge__(self, value: object, /) -> bool: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

class Loop(asyncio.SelectorEventLoop):
    """The fastloop event loop: asyncio.SelectorEventLoop with a native core."""

    def __init__(self) -> None: ...
    def metrics(self) -> dict[str, Any]: ...
    def watchdog(self, threshold: float | None, *,
                 callback: Callable[[WatchdogReport], object] | None = None) -> None: ...
    def last_watchdog_report(self) -> WatchdogReport | None: ...

class WatchdogReport:
    """One episode of a blocked loop (see fastloop._watchdog)."""

    threshold: float
    blocked: float
    stack: traceback.StackSummary | None
    late: bool
    task: asyncio.Task[Any] | None
    task_name: str | None
    handle: str | None
    duration: float | None
    finished: bool
    thread_id: int
    thread_name: str | None
    wall_time: float
    def __init__(self, loop: Loop, threshold: float, blocked: float,
                 stack: traceback.StackSummary | None, late: bool,
                 task: asyncio.Task[Any] | None, thread_id: int, episode: int) -> None: ...
    @property
    def loop(self) -> Loop | None: ...
    @property
    def where(self) -> str | None: ...
    def format(self) -> str: ...
    def format_returned(self) -> str: ...

class Policy(asyncio.DefaultEventLoopPolicy):
    """An event loop policy whose loops are fastloop loops."""

    def new_event_loop(self) -> Loop: ...

EventLoopPolicy = Policy

def new_event_loop() -> Loop: ...
def install() -> None: ...
def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T: ...
def metrics(loop: Loop) -> dict[str, Any]: ...
def watchdog(threshold: float | None, *,
             callback: Callable[[WatchdogReport], object] | None = None,
             loop: Loop | None = None) -> None: ...
