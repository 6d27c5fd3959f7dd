"""``python -m fastloop``: version, info, and running unmodified programs."""

import subprocess
import sys
import textwrap

import fastloop

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
    assert "usage" in out.stdout


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
