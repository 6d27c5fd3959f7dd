"""``python -m fastloop``: version, info, and running unmodified programs."""

import os
import subprocess
import sys
import textwrap

import pytest
import watchdog_prog

import fastloop

HERE = os.path.dirname(os.path.abspath(__file__))

PROBE = textwrap.dedent("""
    import asyncio, sys

    async def main():
        print(type(asyncio.get_running_loop()).__module__, sys.argv[1:])

    {runner}
""")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastloop", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd)


def test_version():
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"fastloop {fastloop.__version__}"


def test_info_names_poller_and_build():
    out = run("info")
    assert out.returncode == 0
    fields = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert fields["fastloop"] == fastloop.__version__
    assert fields["poller"] in ("EpollPoller", "SelectorPoller")
    assert fields["build"] in ("release", "debug")


def test_usage_without_arguments():
    out = run()
    assert out.returncode == 2
    assert out.stderr.startswith("usage: python -m fastloop")
    assert out.stdout == ""


def test_help_lists_options_and_commands():
    out = run("--help")
    assert out.returncode == 0, out.stderr
    for word in ("--watchdog SECONDS", "-m MODULE", "info", "FASTLOOP_WATCHDOG"):
        assert word in out.stdout


def one_line_error(out, status):
    assert out.returncode == status, (out.stdout, out.stderr)
    assert out.stdout == ""
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return out.stderr


def test_missing_script_is_one_line_and_status_2(tmp_path):
    err = one_line_error(run("missing.py", cwd=tmp_path), 2)
    assert err == (f"python -m fastloop: can't open file {str(tmp_path / 'missing.py')!r}: "
                   f"[Errno 2] No such file or directory\n")


def test_unknown_option_is_one_line_and_status_2(tmp_path):
    err = one_line_error(run("--frobnicate", "prog.py", cwd=tmp_path), 2)
    assert "--frobnicate" in err


@pytest.mark.parametrize("args", [("--watchdog",), ("--watchdog", "soon", "x.py"),
                                  ("--watchdog", "0", "x.py"), ("-m",), ("info", "extra")])
def test_bad_option_values_are_one_line_and_status_2(args):
    one_line_error(run(*args), 2)


def test_missing_module_is_one_line_as_python_says(tmp_path):
    # python -m exits with 1 for a module it cannot find; so does fastloop.
    err = one_line_error(run("-m", "no_such_module_here", cwd=tmp_path), 1)
    assert err == "python -m fastloop: No module named no_such_module_here\n"


def test_options_after_the_program_are_the_programs(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(PROBE.format(runner="asyncio.run(main())"))
    out = run(str(script), "--watchdog", "0.1", "-m", "x")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fastloop.loop ['--watchdog', '0.1', '-m', 'x']"
    (tmp_path / "probe_mod.py").write_text(PROBE.format(runner="asyncio.run(main())"))
    out = run("--watchdog", "5", "-m", "probe_mod", "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fastloop.loop ['--help']"


def test_runs_a_script_on_fastloop(tmp_path):
    runners = (
        "asyncio.run(main())",
        "loop = asyncio.new_event_loop(); loop.run_until_complete(main()); loop.close()",
    )
    for runner in runners:
        script = tmp_path / "prog.py"
        script.write_text(PROBE.format(runner=runner))
        out = run(str(script), "a", "b")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "fastloop.loop ['a', 'b']"


def test_runs_a_module_on_fastloop(tmp_path):
    (tmp_path / "probe_mod.py").write_text(PROBE.format(runner="asyncio.run(main())"))
    out = run("-m", "probe_mod", "x", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fastloop.loop ['x']"


@pytest.mark.parametrize("how", ["script", "module"])
def test_watchdog_option_reports_to_stderr(how):
    target = ("watchdog_prog.py",) if how == "script" else ("-m", "watchdog_prog")
    out = run("--watchdog", "0.1", *target, cwd=HERE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "done"
    assert "fastloop watchdog: the event loop in thread 'MainThread' was blocked" in out.stderr
    assert "by task 'Task-1'" in out.stderr
    assert f"watchdog_prog.py:{watchdog_prog.BLOCKING_LINE} in parse_config()" in out.stderr
    assert "    time.sleep(0.4)" in out.stderr
    assert "fastloop watchdog: the step of task 'Task-1' returned after" in out.stderr
    assert out.stderr.count("was blocked for") == 1
