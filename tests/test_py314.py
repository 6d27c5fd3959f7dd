"""The asyncio features of Python 3.12-3.15 on fastloop, compared with the stdlib loop.

Each program runs once on each loop (``same_on_both_loops``) and the observable
results must be equal: ``loop.create_task()`` with every keyword (3.14's
``eager_start=`` and ``**kwargs`` for task factories), eager task factories
(a step-by-step trace), and 3.14's call-graph introspection, in process
(``asyncio.capture_call_graph``) and from outside (``python -m asyncio ps``).
A case whose feature the running Python lacks is skipped, saying so; where an
older Python rejects a keyword, the rejection itself is compared.
"""

import asyncio
import contextvars
import io
import re
import subprocess
import sys
import textwrap
import warnings

import pytest
from conftest import LOOPS
from conftest import same_on_both_loops as both

import fastloop
from fastloop import _compat

HAS_EAGER_FACTORY = hasattr(asyncio, "eager_task_factory")  # 3.12+
HAS_EAGER_START = sys.version_info >= (3, 14)  # create_task(eager_start=), Task(eager_start=)
HAS_CALL_GRAPH = hasattr(asyncio, "capture_call_graph")  # 3.14+

needs_eager_factory = pytest.mark.skipif(
    not HAS_EAGER_FACTORY, reason="asyncio.eager_task_factory is new in Python 3.12")
needs_eager_start = pytest.mark.skipif(
    not HAS_EAGER_START, reason="create_task(eager_start=) is new in Python 3.14")
needs_call_graph = pytest.mark.skipif(
    not HAS_CALL_GRAPH, reason="asyncio.capture_call_graph() is new in Python 3.14")

VAR = contextvars.ContextVar("VAR", default="unset")


def outcome(fn, *args, **kwargs):
    """What a call returns or raises, and the warnings it gives, as comparable data."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = ("ok", fn(*args, **kwargs))
        except Exception as exc:
            result = (type(exc).__name__, str(exc))
    return result + tuple((w.category.__name__, str(w.message)) for w in caught)


def task_name(task):
    # Default names count tasks process-wide ("Task-12"): only their form compares.
    name = task.get_name()
    return "Task-<n>" if re.fullmatch(r"Task-\d+", name) else name


def simple(value):
    """A keyword value as comparable data (objects by type name)."""
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return type(value).__name__


# -- loop.create_task(coro, *, name=, context=, eager_start=, **kwargs) -----------------

async def _child(trace, suspend):
    trace.append(("start", VAR.get()))
    if suspend:
        await asyncio.sleep(0)
    trace.append("end")
    return "result"


CREATE_TASK_KWARGS = [
    {},
    {"name": "named"},
    {"name": None},
    {"name": 42},
    {"context": "ctx"},
    {"context": None},
    {"eager_start": True},
    {"eager_start": False},
    {"eager_start": True, "name": "eager", "context": "ctx"},
    {"unknown": 1},
]


def _kwargs(spec):
    kwargs = dict(spec)
    if kwargs.get("context") == "ctx":
        ctx = contextvars.copy_context()
        ctx.run(VAR.set, "in-ctx")
        kwargs["context"] = ctx
    return kwargs


def _start(loop, spec, suspend):
    """create_task(**spec): (None, the error) or (task, what was true at once, trace)."""
    trace = []
    coro = _child(trace, suspend)
    try:
        task = loop.create_task(coro, **_kwargs(spec))
    except Exception as exc:
        coro.close()
        return None, (type(exc).__name__, str(exc)), trace
    return task, ("ok", task_name(task), task.done(), list(trace)), trace


def create_task_program(loop):
    results = []
    for spec in CREATE_TASK_KWARGS:
        for suspend in (False, True):
            # Outside the loop (eager_start has no running loop to start on)...
            task, summary, trace = _start(loop, spec, suspend)
            if task is not None:
                summary += (loop.run_until_complete(task), trace)
            results.append(("outside", spec, suspend, summary))

            # ...and from a coroutine running on it.
            async def inside(spec=spec, suspend=suspend):
                task, summary, trace = _start(loop, spec, suspend)
                if task is not None:
                    summary += (await task, trace)
                return summary

            results.append(("inside", spec, suspend, loop.run_until_complete(inside())))
    return [(where, repr(spec), suspend, summary) for where, spec, suspend, summary in results]


def test_create_task_keywords_match_stdlib():
    results = both(create_task_program)
    by_case = {(where, spec, suspend): summary for where, spec, suspend, summary in results}
    # The running stdlib decides; these only check the comparison saw real work.
    assert by_case[("inside", "{'name': 'named'}", True)][1] == "named"
    assert by_case[("inside", "{'unknown': 1}", True)][0] == "TypeError"
    ctx_run = by_case[("inside", "{'context': 'ctx'}", False)]
    if sys.version_info >= (3, 11):
        assert ctx_run[-1][0] == ("start", "in-ctx"), ctx_run
    else:
        assert ctx_run[0] == "TypeError", ctx_run  # create_task(context=) is 3.11+
    eager = by_case[("inside", "{'eager_start': True}", False)]
    if HAS_EAGER_START:
        assert eager[2] is True, eager  # finished inside create_task()
        assert by_case[("outside", "{'eager_start': True}", False)][2] is False
    else:
        assert eager[0] == "TypeError", eager


def _recording_factory(calls, *, passes=("name", "context", "eager_start")):
    def factory(loop, coro, **kwargs):
        calls.append({key: simple(value) for key, value in kwargs.items()})
        return asyncio.Task(coro, loop=loop,
                            **{k: v for k, v in kwargs.items() if k in passes})
    return factory


def factory_program(loop):
    results = []
    for spec in CREATE_TASK_KWARGS + [{"name": "n", "unknown": 1, "other": "x"}]:
        calls = []

        async def main(spec=spec, calls=calls):
            # Set here, so that run_until_complete's own task is not the factory's.
            loop.set_task_factory(_recording_factory(calls))
            try:
                task, summary, trace = _start(loop, spec, True)
            finally:
                loop.set_task_factory(None)
            if task is not None:
                summary += (await task, trace)
            return summary

        results.append((loop.run_until_complete(main()), calls))
    return results


def test_task_factory_gets_the_keywords_the_stdlib_passes():
    results = both(factory_program)
    assert results[0][1] == [{}], results[0]  # create_task(coro): one call, no keywords
    if HAS_EAGER_START:
        # 3.14: every keyword, known to Task or not, reaches the factory.
        assert ({"name": "n", "unknown": 1, "other": "x"} in results[-1][1]), results[-1]


def non_task_factory_program(loop):
    results = []

    def factory(loop, coro, **kwargs):
        coro.close()
        return "not a task"

    for spec in ({}, {"name": "n"}, {"context": "ctx"}):
        async def main(spec=spec):
            loop.set_task_factory(factory)
            try:
                return outcome(loop.create_task, _child([], False), **_kwargs(spec))
            finally:
                loop.set_task_factory(None)
        results.append(loop.run_until_complete(main()))
    return results


def test_task_factory_returning_a_non_task():
    both(non_task_factory_program)


def set_task_factory_program(loop):
    def factory(loop, coro, **kwargs):
        return asyncio.Task(coro, loop=loop, **kwargs)

    results = [outcome(loop.set_task_factory, 42), loop.get_task_factory() is None]
    results.append(outcome(loop.set_task_factory, "not callable"))
    results.append(outcome(loop.set_task_factory, factory))
    results.append(loop.get_task_factory() is factory)
    results.append(outcome(loop.set_task_factory, None))
    results.append(loop.get_task_factory() is None)
    return results


def test_set_task_factory_validation():
    results = both(set_task_factory_program)
    assert results[0][0] == "TypeError"


def closed_loop_program(loop):
    loop.close()
    coro = _child([], False)
    try:
        return outcome(loop.create_task, coro, name="late")
    finally:
        coro.close()


def test_create_task_on_a_closed_loop():
    assert both(closed_loop_program)[0] == "RuntimeError"


def not_a_coroutine_program(loop):
    return [outcome(loop.create_task, value) for value in (42, None, "coro", [1])]


def test_create_task_rejects_what_the_stdlib_rejects():
    results = both(not_a_coroutine_program)
    assert all(kind == "TypeError" for kind, _ in results), results


# -- eager tasks: the same steps in the same order ---------------------------------------

class RecordingTask(asyncio.Task):
    """A Task subclass for create_eager_task_factory that notes its keywords."""

    made = []

    def __init__(self, coro, *, loop=None, **kwargs):
        RecordingTask.made.append({key: simple(value) for key, value in kwargs.items()})
        super().__init__(coro, loop=loop, **kwargs)


def eager_trace(loop, spawn):
    """A program whose trace shows when each task's steps run."""
    trace = []
    RecordingTask.made = []

    def note(*event):
        trace.append(event)

    async def leaf(tag, suspend):
        current = asyncio.current_task()
        note(tag, "start", task_name(current) if current else None, VAR.get())
        if suspend:
            await asyncio.sleep(0)
            note(tag, "resumed")
        return tag

    async def spawner(tag):
        note(tag, "start")
        inner = spawn(loop, leaf(tag + ".inner", False), tag + ".inner")
        note(tag, "inner created", inner.done())
        return await inner

    async def boom():
        note("boom", "start")
        raise ValueError("eager boom")

    async def main():
        loop.call_soon(note, "soon-1")
        VAR.set("main")
        made = []
        for tag, coro in (("a", leaf("a", False)), ("b", leaf("b", True)),
                          ("c", spawner("c"))):
            task = spawn(loop, coro, tag)
            made.append(task)
            note(tag, "created", task.done(), task in asyncio.all_tasks(loop),
                 task_name(asyncio.current_task()))
        loop.call_soon(note, "soon-2")
        note("gather", await asyncio.gather(*made))
        failing = spawn(loop, boom(), "boom")
        note("boom", "created", failing.done())
        try:
            await failing
        except ValueError as exc:
            note("boom", "raised", str(exc))
        return "main done"

    # Created before the loop runs: nothing can start eagerly yet.
    first = spawn(loop, main(), "main")
    note("main", "created", first.done())
    note("main", loop.run_until_complete(first))
    note("made", RecordingTask.made)
    return trace


def _with_factory(factory):
    def spawn(loop, coro, name):
        if loop.get_task_factory() is not factory:
            loop.set_task_factory(factory)
        return loop.create_task(coro, name=name)
    return spawn


def _eager_cases():
    cases = {"no factory": _with_factory(None)}
    if HAS_EAGER_FACTORY:
        cases["eager_task_factory"] = _with_factory(asyncio.eager_task_factory)
        cases["create_eager_task_factory(Task)"] = _with_factory(
            asyncio.create_eager_task_factory(asyncio.Task))
        cases["create_eager_task_factory(subclass)"] = _with_factory(
            asyncio.create_eager_task_factory(RecordingTask))
    if HAS_EAGER_START:
        cases["create_task(eager_start=True)"] = (
            lambda loop, coro, name: loop.create_task(coro, name=name, eager_start=True))
        cases["asyncio.create_task(eager_start=True)"] = (
            lambda loop, coro, name: asyncio.create_task(coro, name=name, eager_start=True)
            if loop.is_running() else loop.create_task(coro, name=name, eager_start=True))
        eager_factory = asyncio.eager_task_factory

        def lazy_on_eager_factory(loop, coro, name):
            loop.set_task_factory(eager_factory)
            return loop.create_task(coro, name=name, eager_start=False)

        cases["eager factory, eager_start=False"] = lazy_on_eager_factory
    return cases


EAGER_CASES = _eager_cases()


@pytest.mark.parametrize("case", sorted(EAGER_CASES))
def test_eager_task_steps_match_stdlib(case):
    trace = both(lambda loop: eager_trace(loop, EAGER_CASES[case]))
    assert ("main", "main done") in trace
    eager = case not in ("no factory", "eager factory, eager_start=False")
    # Whether task "a" (never suspends) had finished when create_task returned.
    (a_created,) = [e for e in trace if e[:2] == ("a", "created")]
    assert a_created[2] is eager, trace


@needs_eager_factory
def test_eager_factory_without_it_is_the_control():
    # The differential means something: the eager and lazy traces differ.
    lazy = both(lambda loop: eager_trace(loop, EAGER_CASES["no factory"]))
    eager = both(lambda loop: eager_trace(loop, EAGER_CASES["eager_task_factory"]))
    assert lazy != eager


# -- call graphs (3.14+) -----------------------------------------------------------------

_IDS = re.compile(r"0x[0-9a-f]+")


def _describe(graph):
    return (
        task_name(graph.future) if isinstance(graph.future, asyncio.Task)
        else type(graph.future).__name__,
        [entry.frame.f_code.co_name for entry in graph.call_stack],
        [_describe(parent) for parent in graph.awaited_by],
    )


def call_graph_program(loop):
    out = {}

    async def leaf():
        await asyncio.sleep(0)
        out["current"] = _describe(asyncio.capture_call_graph())
        out["limited"] = _describe(asyncio.capture_call_graph(limit=1))
        out["formatted"] = _IDS.sub("ID", asyncio.format_call_graph())
        buf = io.StringIO()
        asyncio.print_call_graph(file=buf)
        out["printed"] = _IDS.sub("ID", buf.getvalue())
        out["of_middle"] = _describe(asyncio.capture_call_graph(middle_task))

    async def helper():
        await asyncio.create_task(leaf(), name="leaf")

    async def middle():
        await helper()

    async def main():
        nonlocal middle_task
        async with asyncio.TaskGroup() as group:
            middle_task = group.create_task(middle(), name="middle")
        return "done"

    middle_task = None
    out["result"] = loop.run_until_complete(loop.create_task(main(), name="main"))
    # Outside any running loop only an explicit future is accepted.
    out["outside"] = outcome(asyncio.capture_call_graph)
    return out


@needs_call_graph
def test_call_graph_matches_stdlib():
    out = both(call_graph_program)
    name, stack, awaited_by = out["current"]
    # leaf is awaited by middle (through helper's frame), middle by main.
    assert (name, stack[-1]) == ("leaf", "leaf"), out["current"]
    ((parent, parent_stack, grandparents),) = awaited_by
    assert (parent, parent_stack) == ("middle", ["helper", "middle"]), awaited_by
    assert [g[0] for g in grandparents] == ["main"], grandparents
    assert out["limited"][1] == ["leaf"]
    for text in (out["printed"], out["formatted"]):
        for task in ("leaf", "middle", "main"):
            assert f"Task(name='{task}', id=ID)" in text, text
    assert out["outside"][0] == "RuntimeError"


_PS_PROGRAM = textwrap.dedent("""
    import asyncio, functools, sys

    async def leaf():
        loop = asyncio.get_running_loop()
        # Printed once leaf() is suspended, so the tools see a settled graph.
        loop.call_soon(functools.partial(print, "ready", flush=True))
        await asyncio.sleep(3600)

    async def worker():
        await asyncio.create_task(leaf(), name="leaf-task")

    async def main():
        asyncio.current_task().set_name("main-task")
        async with asyncio.TaskGroup() as group:
            group.create_task(worker(), name="worker-task")

    if sys.argv[1] == "fastloop":
        import fastloop
        fastloop.run(main())
    else:
        asyncio.run(main())
""")

_PERMISSION_DENIED = re.compile(r"Operation not permitted|Permission denied|PermissionError"
                                r"|ptrace|EPERM", re.IGNORECASE)


def _inspect_with_asyncio_tool(script, loop_name, command):
    proc = subprocess.Popen([sys.executable, str(script), loop_name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() else "")
        return subprocess.run([sys.executable, "-m", "asyncio", command, str(proc.pid)],
                              capture_output=True, text=True, timeout=60)
    finally:
        proc.kill()
        proc.communicate()


def _normalized(text):
    # Thread ids (the first column of ps) and task ids differ from run to run,
    # and with their widths the column padding.
    text = re.sub(r"0x[0-9a-f]+", "N", text)
    text = re.sub(r"^\d+", "N", text, flags=re.MULTILINE)
    return re.sub(r"[ \t]+", " ", text)


def _check_chain(command, text):
    lines = text.splitlines()
    if command == "ps":
        # Each task's row names the task that awaits it.
        (leaf,) = [line for line in lines if "leaf-task" in line]
        (worker,) = [line for line in lines if line.split()[2:3] == ["worker-task"]]
        assert "worker-task" in leaf and "sleep -> leaf" in leaf, text
        assert "main-task" in worker, text
    else:
        # The tree nests leaf-task under worker-task under main-task.
        depth = {name: next(line.index("(T) " + name) for line in lines
                            if "(T) " + name in line)
                 for name in ("main-task", "worker-task", "leaf-task")}
        assert depth["main-task"] < depth["worker-task"] < depth["leaf-task"], text


@needs_call_graph
@pytest.mark.parametrize("command", ["ps", "pstree"])
def test_asyncio_ps_and_pstree_see_fastloop_tasks(tmp_path, command):
    script = tmp_path / "program.py"
    script.write_text(_PS_PROGRAM)
    results = {}
    for loop_name in sorted(LOOPS):
        res = _inspect_with_asyncio_tool(script, loop_name, command)
        # Detected on the stdlib loop's process (first in sorted order): a
        # refusal there is the machine's, not fastloop's.
        if (loop_name == "asyncio" and res.returncode != 0
                and _PERMISSION_DENIED.search(res.stderr + res.stdout)):
            pytest.skip(f"`python -m asyncio {command}` may not read another process here "
                        f"(ptrace/process_vm_readv refused): {res.stderr.strip()[-200:]}")
        assert res.returncode == 0, (loop_name, res.stdout, res.stderr)
        results[loop_name] = res.stdout
    _check_chain(command, results["fastloop"])
    assert _normalized(results["fastloop"]) == _normalized(results["asyncio"])


# -- policies: deprecated in 3.14, removed in 3.16 -----------------------------------------

needs_policies = pytest.mark.skipif(
    not hasattr(fastloop, "Policy"), reason="this Python's asyncio has no policy system")


def _policy_calls(policy_class):
    """The policy API's everyday calls, and every warning they give."""

    async def main():
        return type(asyncio.get_running_loop())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = asyncio.get_event_loop_policy()
        try:
            policy = policy_class()
            asyncio.set_event_loop_policy(policy)
            installed = asyncio.get_event_loop_policy() is policy
            loop = asyncio.new_event_loop()
            loops = [type(loop)]
            loop.close()
            loops.append(asyncio.run(main()))
            loop = policy.new_event_loop()
            loops.append(type(loop))
            policy.set_event_loop(loop)
            current = policy.get_event_loop() is loop
            policy.set_event_loop(None)
            loop.close()
        finally:
            asyncio.set_event_loop_policy(old)
    return ([(w.category.__name__, str(w.message), w.filename, w.lineno) for w in caught],
            installed, current, loops)


@needs_policies
def test_policy_warns_exactly_as_the_stdlib_policy():
    stdlib_warnings, *stdlib_state, stdlib_loops = _policy_calls(_compat.default_policy_base())
    fast_warnings, *fast_state, fast_loops = _policy_calls(fastloop.Policy)
    assert fast_warnings == stdlib_warnings
    assert fast_state == stdlib_state == [True, True]
    assert fast_loops == [fastloop.Loop] * 3
    assert fastloop.Loop not in stdlib_loops
    if _compat.POLICIES_DEPRECATED:
        # The stdlib's own deprecations, which fastloop.Policy neither hides nor adds to.
        messages = " ".join(message for _, message, _, _ in stdlib_warnings)
        assert "set_event_loop_policy" in messages and "get_event_loop_policy" in messages


_HIDE_POLICIES = textwrap.dedent("""
    import asyncio, asyncio.events, asyncio.unix_events, sys, warnings

    warnings.simplefilter("error")
    # What a Python without the policy system (3.16) lacks: every policy name.
    for module in (asyncio, asyncio.events, asyncio.unix_events):
        for name in [n for n in vars(module) if "policy" in n.lower()]:
            delattr(module, name)
    # 3.14's asyncio.__getattr__ serves the deprecated policy class names.
    vars(asyncio).pop("__getattr__", None)

    import fastloop

    print("has Policy:", hasattr(fastloop, "Policy"), hasattr(fastloop, "EventLoopPolicy"))
    print("in __all__:", [n for n in fastloop.__all__ if "Policy" in n])
    try:
        fastloop.Policy
    except AttributeError as exc:
        print("Policy:", exc)
    try:
        from fastloop import EventLoopPolicy
    except ImportError:
        print("import: ImportError")
    exec("from fastloop import *", {})

    async def main():
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__name__

    loop = fastloop.new_event_loop()
    print("new_event_loop:", loop.run_until_complete(main()))
    loop.close()
    loop = fastloop.Loop()
    print("Loop:", loop.run_until_complete(main()))
    loop.close()
    if sys.version_info >= (3, 11):
        # (3.10's asyncio.run itself sets the loop through the policy.)
        print("run:", fastloop.run(main()))
    fastloop.install()
    loop = asyncio.new_event_loop()
    print("install:", type(loop).__name__)
    loop.close()
""")


def test_import_without_policies():
    out = subprocess.run([sys.executable, "-c", _HIDE_POLICIES], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert lines["has Policy"] == "False False"
    assert lines["in __all__"] == "[]"
    assert "loop_factory=fastloop.new_event_loop" in lines["Policy"]
    assert lines["import"] == "ImportError"
    assert lines["new_event_loop"] == lines["Loop"] == lines["install"] == "Loop"
    if sys.version_info >= (3, 11):
        assert lines["run"] == "Loop"


def test_python_m_fastloop_adds_no_deprecation_warning(tmp_path):
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent("""
        import asyncio

        async def main():
            return type(asyncio.get_running_loop()).__module__

        print(asyncio.run(main()))
        if hasattr(asyncio, "Runner"):  # 3.11+
            with asyncio.Runner() as runner:
                print(runner.run(main()))
        else:
            loop = asyncio.new_event_loop()
            print(type(loop).__module__)
            loop.close()
    """))
    out = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-m", "fastloop",
                          str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [fastloop.Loop.__module__] * 2
