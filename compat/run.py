"""Run other projects' own test suites on the stdlib loop and on fastloop.

    python compat/run.py [--projects aiohttp,anyio,...] [--markdown docs/compatibility.md]

For each pinned release below: fetch its sdist from PyPI (its tests ship in
it), install it and its test requirements into ``build/compat/<project>/venv``
(made with ``$PYTHON``, default ``python3``; a ``.pth`` file there puts this
checkout, and so its in-place fastloop build, on the path), then run the
suite twice from the unpacked sdist: once on the stdlib loop, once with
fastloop in force (``compat/force_fastloop.py``, loaded with ``-p``). Both
runs load that plugin; it counts the fastloop loops created, which proves
which loop ran. The junit XML of the two runs is compared test by test, tests
that pass on asyncio and fail on fastloop are run again on both loops to tell
reproducible differences from flaky ones, and the table goes to
docs/compatibility.md (and build/compat/summary.json).

The suites run in a network namespace of their own with only the loopback
interface (``unshare --net``), so no test reaches past this machine; the few
tests that need the internet are deselected on both runs, each listed with its
reason in ``compat/deselect/<project>.txt``.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

COMPAT = Path(__file__).resolve().parent
ROOT = COMPAT.parent
# Another Python's runs (make compat-3.15) keep their venvs and results apart.
BUILD = ROOT / os.environ.get("FASTLOOP_COMPAT_BUILD", "build/compat")
SDISTS = BUILD / "sdists"

# Per-test time limit for pytest suites (pytest-timeout), unless a project's
# own configuration sets one; and the time box for one whole suite run.
TEST_TIMEOUT = 60

# The pinned releases and how each one's suite is installed and run.
#   deps:        test requirements, installed next to the sdist (no uvloop, so
#                no suite adds a third loop of its own to the comparison)
#   extras:      extras of the project itself
#   pytest_args: after the common ones (-q, -p no:cacheprovider, junit, ...)
#   patch:       asyncio names force_fastloop also rebinds (FASTLOOP_COMPAT_PATCH)
#   env:         extra environment for both runs
PROJECTS = {
    "aiohttp": {
        "version": "3.14.5",
        "extras": ["speedups"],
        "deps": [
            "blockbuster", "coverage", "freezegun", "gunicorn", "isal", "pkgconfig",
            "proxy.py>=2.4.4rc5", "pytest>=8.4,<10", "pytest-codspeed", "pytest-mock",
            "pytest-timeout", "pytest-xdist", "setuptools-git", "trustme", "zlib_ng",
        ],
        # Their pytest.ini adds coverage, doctests and -n auto; keep the rest.
        "pytest_args": [
            "-o", "addopts=", "-m", "not dev_mode and not autobahn and not internal",
            "-n", "2", "tests",
        ],
        "timeout": 900,
    },
    "anyio": {
        "version": "4.16.0",
        "deps": [
            "blockbuster>=1.5.29", "hypothesis>=4.18.2", "psutil>=5.9", "pytest>=9.0",
            "pytest-mock>=3.14", "pytest-timeout>=2.4.0", "trustme>=1.0.0",
            "truststore>=0.9.1",
        ],
        # Their config loads -p anyio, pytest_mock, timeout (20 s a test). No
        # xdist: its workers' __main__ has no __file__, which to_process needs.
        "pytest_args": ["tests"],
        "test_timeout": None,
        "timeout": 700,
    },
    "httpx": {
        "version": "0.28.1",
        "extras": ["brotli", "cli", "http2", "socks", "zstd"],
        # As in httpx 0.28.1's requirements.txt (uvicorn serves the tests).
        "deps": [
            "chardet==5.2.0", "click==8.1.7", "cryptography", "pytest>=8.3,<9", "pytest-timeout",
            "trio==0.27.0", "trustme==1.2.0", "uvicorn==0.32.1",
        ],
        "pytest_args": ["tests"],
        "timeout": 300,
    },
    "tornado": {
        "version": "6.6.1",
        "runner": "tornado",
        "deps": [],
        "timeout": 400,
    },
    "uvicorn": {
        "version": "0.54.0",
        "extras": ["standard"],
        "deps": [
            "a2wsgi", "cryptography", "httpx2", "pytest>=9.0", "pytest-codspeed", "pytest-mock",
            "pytest-timeout", "pytest-xdist", "trustme", "wsproto", "zttp",
        ],
        # Their addopts add -n 8. uvicorn's "asyncio"/"auto" loop setting
        # builds asyncio.SelectorEventLoop by class: rebind it.
        "pytest_args": ["-o", "addopts=-rxXs --strict-config --strict-markers", "-n", "2",
                        "tests"],
        "patch": ["SelectorEventLoop"],
        # ... which renames one parametrized test (its id shows the class name).
        "id_aliases": {"[asyncio-Loop]": "[asyncio-_UnixSelectorEventLoop]"},
        "timeout": 600,
    },
}

# Rerun at most this many "passes on asyncio, fails on fastloop" tests.
MAX_RECHECK = 60


def log(message):
    print(f"[compat {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- install -----------------------------------------------------------------


def fetch_sdist(name, version):
    SDISTS.mkdir(parents=True, exist_ok=True)
    for path in SDISTS.iterdir():
        if path.name.lower().replace("_", "-").startswith(f"{name}-{version}.") and (
            path.name.endswith((".tar.gz", ".zip"))
        ):
            return path
    log(f"{name}: downloading the {version} sdist")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "--no-binary", ":all:", "--dest", str(SDISTS), f"{name}=={version}"],
        check=True,
    )
    return fetch_sdist(name, version)


def unpack(sdist, dest):
    if dest.exists():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp, filter="data")
    (top,) = list(tmp.iterdir())
    top.rename(dest)
    tmp.rmdir()
    return dest


def venv_python(venv):
    return venv / "bin" / "python"


def install(name, spec, python):
    """Make build/compat/<name>/venv with the release and its test deps."""
    home = BUILD / name
    sdist = fetch_sdist(name, spec["version"])
    source = unpack(sdist, home / "src")
    venv = home / "venv"
    extras = f"[{','.join(spec['extras'])}]" if spec.get("extras") else ""
    requirements = [f"{name}{extras} @ {sdist.resolve().as_uri()}", *spec["deps"]]
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    stamp_text = json.dumps({"python": version, "req": requirements}, sort_keys=True)
    stamp = venv / ".compat-installed"
    if stamp.exists() and stamp.read_text() == stamp_text:
        log(f"{name}: venv up to date")
    else:
        shutil.rmtree(venv, ignore_errors=True)
        log(f"{name}: creating {venv.relative_to(ROOT)} with {python}")
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv_python(venv)), "-m", "pip", "--disable-pip-version-check"]
        subprocess.run([*pip, "install", "--quiet", "--upgrade", "pip"], check=True)
        log(f"{name}: installing {name}{extras}=={spec['version']} and {len(spec['deps'])} "
            "test requirements")
        subprocess.run([*pip, "install", "--quiet", *requirements], check=True)
        stamp.write_text(stamp_text)
    # fastloop from this checkout, as the Makefile's build target does for .venv.
    subprocess.run([str(venv_python(venv)), str(ROOT / "tools" / "dev_pth.py"), str(ROOT)],
                   check=True)
    subprocess.run([str(venv_python(venv)), "-c", "import fastloop"], check=True)
    return venv, source


# --- run -----------------------------------------------------------------------


def read_deselect(name):
    path = COMPAT / "deselect" / f"{name}.txt"
    if not path.exists():
        return path, []
    ids = []
    for line in path.read_text().splitlines():
        test_id = line.split("#", 1)[0].strip()
        if test_id:
            ids.append(test_id)
    return path, ids


def isolated(cmd):
    """Wrap cmd to run in a network namespace that has only loopback, if we can.

    With a mount namespace too, /etc/hosts is swapped for a copy that also
    names ::1 localhost (some machines map localhost to 127.0.0.1 only, and
    the suites' IPv6 tests resolve "localhost" over AF_INET6). lo also gets
    one documentation address per family (192.0.2.1, 2001:db8::1; nothing
    answers or routes there), because getaddrinfo(AI_ADDRCONFIG) finds no
    address at all on a host whose only addresses are loopback ones, and
    anyio's create_tcp_listener("localhost") asks with that flag.
    """
    how = _isolation()
    if how == "net+hosts":
        script = ("ip link set lo up && ip addr add 192.0.2.1/32 dev lo"
                  " && ip -6 addr add 2001:db8::1/128 dev lo"
                  f' && mount --bind "{HOSTS}" /etc/hosts && exec "$@"')
        return ["unshare", "--net", "--mount", "--", "sh", "-c", script, "sh", *cmd]
    if how == "net":
        return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                *cmd]
    return cmd


HOSTS = BUILD / "hosts"
_ISOLATION = None


def _isolation():
    global _ISOLATION
    if _ISOLATION is not None:
        return _ISOLATION
    _ISOLATION = "none"
    if shutil.which("unshare") and shutil.which("ip"):
        HOSTS.parent.mkdir(parents=True, exist_ok=True)
        try:
            hosts = Path("/etc/hosts").read_text()
        except OSError:
            hosts = "127.0.0.1 localhost\n"
        HOSTS.write_text(hosts.rstrip("\n") + "\n::1 localhost ip6-localhost ip6-loopback\n")
        for how in ("net+hosts", "net"):
            _ISOLATION = how
            probe = subprocess.run(isolated(["true"]), capture_output=True)
            if probe.returncode == 0:
                break
            _ISOLATION = "none"
    if _ISOLATION == "none":
        log("WARNING: no network namespace (unshare --net); suites run on the host "
            "network, with only the deselect lists keeping them off the internet")
    else:
        log(f"suites run isolated: {_ISOLATION}")
    return _ISOLATION


def suite_command(name, spec, venv, mode_dir, tests=None):
    junit = mode_dir / "junit.xml"
    deselect_path, _ = read_deselect(name)
    if spec.get("runner") == "tornado":
        cmd = [str(venv_python(venv)), str(COMPAT / "tornado_runner.py"),
               "--junitxml", str(junit)]
        if deselect_path.exists():
            cmd += ["--deselect-file", str(deselect_path)]
        if tests:
            cmd += ["--", *tests]
        return cmd, junit
    cmd = [str(venv / "bin" / "pytest"), "-p", "force_fastloop", "-p", "no:cacheprovider",
           "-q", "--junitxml", str(junit), "-o", "junit_family=xunit1",
           "-o", "junit_logging=no", "-o", "junit_log_passing_tests=false",
           "-o", "junit_duration_report=total",
           "-o", "console_output_style=classic"]
    test_timeout = spec.get("test_timeout", TEST_TIMEOUT)
    if test_timeout:
        cmd += ["--timeout", str(test_timeout)]
    if tests:
        args = [a for a in spec["pytest_args"]
                if a not in ("tests", "tornado", *spec.get("subset", ()))]
        if "-n" in args:  # a handful of tests: no workers
            i = args.index("-n")
            del args[i:i + 2]
        return [*cmd, *args, *tests], junit
    return [*cmd, *spec["pytest_args"]], junit


def run_suite(name, spec, venv, source, mode, tests=None, label=None):
    label = label or mode
    mode_dir = BUILD / name / "results" / label
    shutil.rmtree(mode_dir, ignore_errors=True)
    counts = mode_dir / "counts"
    counts.mkdir(parents=True)
    cmd, junit = suite_command(name, spec, venv, mode_dir, tests)
    env = dict(os.environ)
    for var in ("PYTHONHOME", "VIRTUAL_ENV", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(var, None)
    env.update(spec.get("env", {}))
    env.update({
        "PYTHONPATH": str(COMPAT),
        "FASTLOOP_COMPAT_MODE": mode,
        "FASTLOOP_COMPAT_COUNT_DIR": str(counts),
        "FASTLOOP_COMPAT_PATCH": ",".join(spec.get("patch", [])),
        "FASTLOOP_COMPAT_DESELECT": str(read_deselect(name)[0]),
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONFAULTHANDLER": "1",
    })
    if spec.get("runner") == "tornado":
        cwd = BUILD / name / "work"  # the installed tornado (same files as the sdist)
        cwd.mkdir(exist_ok=True)
    else:
        cwd = source
    log_path = mode_dir / "output.log"
    start = time.monotonic()
    timed_out = False
    with open(log_path, "w") as out:
        out.write("$ " + " ".join(cmd) + "\n\n")
        out.flush()
        proc = subprocess.Popen(isolated(cmd), cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_default_sigint)
        try:
            rc = proc.wait(timeout=spec["timeout"])
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                rc = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
    elapsed = time.monotonic() - start
    results = parse_junit(junit) if junit.exists() else {}
    if mode == "fastloop":
        results = apply_aliases(results, spec.get("id_aliases", {}))
    loops = 0
    for path in counts.glob("*.json"):
        loops += json.loads(path.read_text())["fastloop_loops"]
    return {
        "mode": mode, "returncode": rc, "timed_out": timed_out, "seconds": round(elapsed, 1),
        "fastloop_loops": loops, "results": results, "log": str(log_path.relative_to(ROOT)),
        "junit_found": junit.exists(),
    }


def apply_aliases(results, aliases):
    """Rename fastloop-run test ids that embed a rebound class's name."""
    renamed = {}
    for test_id, outcome in results.items():
        for old, new in aliases.items():
            test_id = test_id.replace(old, new)
        renamed[test_id] = outcome
    return renamed


def _default_sigint():
    # A driver started in the background (`make compat &`) inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt: tests that
    # raise SIGINT on purpose (anyio's) need the default disposition.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def parse_junit(path):
    """{test id: "passed" | "failed" | "skipped"} from a junit XML file."""
    results = {}
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        test_id = junit_test_id(case)
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        # pytest reports an error in teardown as a second entry for the same test.
        if results.get(test_id) == "failed" or (
            results.get(test_id) == "skipped" and outcome == "passed"
        ):
            continue
        results[test_id] = outcome
    return results


def junit_test_id(case):
    classname = case.get("classname", "")
    name = case.get("name", "")
    path = case.get("file")
    if path and path.endswith(".py"):
        # xunit1 names the file: rebuild pytest's node id.
        module = path[:-3].replace("/", ".")
        inner = classname[len(module) + 1:] if classname.startswith(module + ".") else ""
        parts = [path, *(p for p in inner.split(".") if p), name]
        return "::".join(parts)
    return f"{classname}.{name}" if classname else name


def compare(asyncio_run, fastloop_run):
    a, f = asyncio_run["results"], fastloop_run["results"]
    return {
        "tests": len(a),
        "skipped": sum(1 for v in a.values() if v == "skipped"),
        "run": sum(1 for v in a.values() if v != "skipped"),
        "passed_asyncio": sum(1 for v in a.values() if v == "passed"),
        "passed_fastloop": sum(1 for v in f.values() if v == "passed"),
        "failed_both": sorted(t for t, v in a.items() if v == "failed" and f.get(t) == "failed"),
        "fastloop_only_failures": sorted(
            t for t, v in a.items() if v == "passed" and f.get(t, "missing") != "passed"
            and f.get(t) != "skipped"
        ),
        "asyncio_only_failures": sorted(
            t for t, v in a.items() if v == "failed" and f.get(t) == "passed"
        ),
        "skip_differs": sorted(
            t for t, v in a.items() if (v == "skipped") != (f.get(t, "skipped") == "skipped")
            and f.get(t) != "failed" and v != "failed"
        ),
        "missing_in_fastloop": sorted(set(a) - set(f)),
    }


def recheck(name, spec, venv, source, tests):
    """Run the fastloop-only failures again, alone, on both loops."""
    tests = tests[:MAX_RECHECK]
    runs = {mode: run_suite(name, spec, venv, source, mode, tests=tests, label=f"recheck-{mode}")
            for mode in ("asyncio", "fastloop")}
    verdict = {}
    for test in tests:
        a = runs["asyncio"]["results"].get(test, "missing")
        f = runs["fastloop"]["results"].get(test, "missing")
        if a == "passed" and f == "failed":
            verdict[test] = "reproduced"
        elif a == "passed" and f == "passed":
            verdict[test] = "flaky (passed on fastloop when rerun)"
        else:
            verdict[test] = f"rerun: asyncio {a}, fastloop {f}"
    return verdict


def run_project(name, spec, python):
    try:
        venv, source = install(name, spec, python)
    except subprocess.CalledProcessError as exc:
        log(f"{name}: install failed: {exc}")
        return {"name": name, "version": spec["version"], "error": f"install failed: {exc}"}
    runs = {}
    for mode in ("asyncio", "fastloop"):
        log(f"{name}: running the suite on {mode}")
        runs[mode] = run_suite(name, spec, venv, source, mode)
        r = runs[mode]
        outcomes = list(r["results"].values())
        log(f"{name}: {mode}: {outcomes.count('passed')} passed, {outcomes.count('failed')} "
            f"failed, {outcomes.count('skipped')} skipped in {r['seconds']} s "
            f"(rc {r['returncode']}{', TIMED OUT' if r['timed_out'] else ''}); "
            f"fastloop loops created: {r['fastloop_loops']}")
    summary = compare(runs["asyncio"], runs["fastloop"])
    if summary["fastloop_only_failures"]:
        log(f"{name}: rechecking {len(summary['fastloop_only_failures'])} fastloop-only failures")
        summary["recheck"] = recheck(name, spec, venv, source, summary["fastloop_only_failures"])
    _, deselected = read_deselect(name)
    return {
        "name": name,
        "version": spec["version"],
        "deselected": len(deselected),
        **summary,
        "runs": {mode: {k: v for k, v in r.items() if k != "results"} for mode, r in runs.items()},
    }


# --- report ------------------------------------------------------------------


def render_markdown(report):
    lines = [
        "# Compatibility: other projects' test suites on fastloop",
        "",
        "Generated by `make compat` (`compat/run.py`; see compat/README.md). Each",
        "project's own test suite, from its release sdist, runs twice in its own",
        "venv: once on the stdlib loop, once with fastloop in force",
        "(`compat/force_fastloop.py`). *Run* counts the tests that were not skipped",
        "on asyncio; a test counts for *fastloop loops* only if the fastloop run",
        "created fastloop loops (the number is the plugin's count of `fastloop.Loop`",
        "instances, all processes added up; the asyncio run's count is 0 when",
        "nothing leaked).",
        "",
        f"Python {report['python']}, {report['platform']}, fastloop "
        f"{report['fastloop_version']}, {report['date']}.",
        "",
        "| project | release | tests | run | passed on asyncio | passed on fastloop "
        "| pass on asyncio, fail on fastloop | fastloop loops created | deselected | time "
        "(asyncio / fastloop) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for p in report["projects"]:
        if "error" in p:
            lines.append(f"| {p['name']} | {p['version']} | {p['error']} | | | | | | | |")
            continue
        ra, rf = p["runs"]["asyncio"], p["runs"]["fastloop"]
        flags = []
        for r in (ra, rf):
            if r["timed_out"]:
                flags.append(f"{r['mode']} run timed out")
            if not r["junit_found"]:
                flags.append(f"{r['mode']} run wrote no results")
        if p.get("subset"):
            flags.append("only " + ", ".join(f"`{path}`" for path in p["subset"]))
        note = f" ({'; '.join(flags)})" if flags else ""
        lines.append(
            f"| {p['name']} | {p['version']} | {p['tests']} | {p['run']} | "
            f"{p['passed_asyncio']} | {p['passed_fastloop']} | "
            f"{len(p['fastloop_only_failures'])} | {rf['fastloop_loops']} "
            f"(asyncio run: {ra['fastloop_loops']}) | {p['deselected']} | "
            f"{ra['seconds']:.0f} s / {rf['seconds']:.0f} s{note} |"
        )
    lines.append("")
    any_diff = False
    for p in report["projects"]:
        if "error" in p or not (p["fastloop_only_failures"] or p["asyncio_only_failures"]):
            continue
        any_diff = True
        lines += [f"## {p['name']} {p['version']}", ""]
        if p["fastloop_only_failures"]:
            lines += ["Pass on asyncio, fail on fastloop:", ""]
            for t in p["fastloop_only_failures"]:
                verdict = p.get("recheck", {}).get(t, "")
                lines.append(f"- `{t}`" + (f" — {verdict}" if verdict else ""))
            lines.append("")
        if p["asyncio_only_failures"]:
            lines += ["Fail on asyncio, pass on fastloop (flaky on the stdlib loop, most likely):",
                      ""]
            lines += [f"- `{t}`" for t in p["asyncio_only_failures"]]
            lines.append("")
    if not any_diff:
        lines += ["No test passed on asyncio and failed on fastloop.", ""]
    failed_both = [(p["name"], t) for p in report["projects"] if "error" not in p
                   for t in p["failed_both"]]
    if failed_both:
        lines += ["## Failing on both loops", "",
                  "Environment, not loop: these fail the same way on the stdlib loop.", ""]
        lines += [f"- {name}: `{t}`" for name, t in failed_both]
        lines.append("")
    notes = report.get("notes")
    if notes:
        lines += ["## Notes", "", *notes, ""]
    triage = COMPAT / "triage.md"
    if triage.exists():
        lines += [triage.read_text().rstrip("\n"), ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", default=",".join(PROJECTS),
                        help="comma-separated subset of: " + ", ".join(PROJECTS))
    parser.add_argument("--python", default=os.environ.get("PYTHON", "python3"),
                        help="interpreter for the project venvs (default: $PYTHON or python3)")
    parser.add_argument("--markdown", default=str(ROOT / "docs" / "compatibility.md"),
                        help="where to write the table ('' for nowhere)")
    parser.add_argument("--render", action="store_true",
                        help="only re-render the markdown from build/compat/summary.json")
    parser.add_argument("--subset", action="append", default=[], metavar="PROJECT=PATH[,PATH]",
                        help="run only these test paths of PROJECT's suite (pytest suites; "
                             "the report names the subset)")
    args = parser.parse_args()
    subsets = {}
    for item in args.subset:
        name, _, paths = item.partition("=")
        if name not in PROJECTS or PROJECTS[name].get("runner") or not paths:
            parser.error(f"--subset {item!r}: want PROJECT=PATH[,PATH] for a pytest suite")
        subsets[name] = [p for p in paths.split(",") if p]
    summary_path = BUILD / "summary.json"
    if args.render:
        report = json.loads(summary_path.read_text())
    else:
        names = [n.strip() for n in args.projects.split(",") if n.strip()]
        unknown = sorted(set(names) - set(PROJECTS))
        if unknown:
            parser.error(f"unknown project(s): {unknown}")
        BUILD.mkdir(parents=True, exist_ok=True)
        python = shutil.which(args.python) or args.python
        version = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, check=True).stdout.strip()
        sys.path.insert(0, str(ROOT))
        import fastloop

        started = time.monotonic()
        report = {
            "python": version, "platform": f"{platform.system()} {platform.machine()}",
            "fastloop_version": fastloop.__version__,
            "date": datetime.date.today().isoformat(),
            "projects": [],
            "notes": [],
        }
        # Keep earlier projects' results when only some are rerun.
        if summary_path.exists() and len(names) < len(PROJECTS):
            previous = json.loads(summary_path.read_text())
            report["projects"] = [p for p in previous.get("projects", [])
                                  if p["name"] not in names]
        for name in names:
            spec = PROJECTS[name]
            if name in subsets:
                paths = subsets[name]
                spec = {**spec, "subset": paths,
                        "pytest_args": [a for a in spec["pytest_args"] if a != "tests"] + paths}
            result = run_project(name, spec, python)
            if name in subsets:
                result["subset"] = subsets[name]
            report["projects"].append(result)
            report["projects"].sort(key=lambda p: p["name"])
            summary_path.write_text(json.dumps(report, indent=1))
        log(f"all done in {time.monotonic() - started:.0f} s")
        report["config_digest"] = hashlib.sha256(
            json.dumps(PROJECTS, sort_keys=True).encode()).hexdigest()[:12]
        summary_path.write_text(json.dumps(report, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(render_markdown(report))
        log(f"wrote {args.markdown}")
    bad = [p["name"] for p in report["projects"]
           if "error" in p or p.get("fastloop_only_failures")
           or p["runs"]["fastloop"]["fastloop_loops"] == 0]
    if bad:
        log(f"differences or problems in: {', '.join(bad)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
