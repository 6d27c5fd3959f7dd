"""Run the interpreter's own test.test_asyncio against fastloop (or the stdlib loop).

Usage (from the repository root)::

    python tests/conformance/run.py --loop both --markdown docs/conformance.md
    python tests/conformance/run.py --loop fastloop --modules test_events,test_tasks
    python tests/conformance/run.py --python ~/.pyenv/versions/3.12.1/bin/python \
        --loop both --json build/conformance/3.12.json
    python tests/conformance/run.py --render build/conformance/*.json \
        --markdown docs/conformance.md

The tests come from the interpreter that runs them (``--python``, default: this
one); nothing of CPython's is copied here. Each module runs in its own
subprocess (``bootstrap.py``) with a per-test watchdog: a test that hangs is
recorded as hung and the module is restarted without it. With ``--loop
fastloop`` the module must report fastloop loops created, or it fails (unless
``rebind.NOT_REBOUND`` says it runs no loop). Failures listed in
``expected_failures.txt`` are reported but not counted as unexpected.

Exit status: 0 when no unexpected failure, error, hang or unproven rebinding
(fastloop runs only), 1 otherwise, 2 when the interpreter has no test package.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BOOTSTRAP = os.path.join(HERE, "bootstrap.py")
EXPECTED_FAILURES = os.path.join(HERE, "expected_failures.txt")
sys.path.insert(0, HERE)
from rebind import NOT_REBOUND, NOT_REBOUND_BEFORE  # noqa: E402

# Longest first, so two workers finish together.
SLOW_FIRST = ["test_tasks", "test_events", "test_ssl", "test_subprocess",
              "test_sslproto", "test_streams", "test_base_events", "test_sendfile",
              "test_unix_events", "test_locks", "test_sock_lowlevel"]
MAX_RESTARTS = 8


def python_info(python):
    code = ("import sys, json, os\n"
            "try:\n"
            "    import test.test_asyncio as t\n"
            "    mods = sorted(n[:-3] for n in os.listdir(t.__path__[0])\n"
            "                  if n.startswith('test_') and n.endswith('.py'))\n"
            "except ImportError:\n"
            "    mods = None\n"
            "print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3],"
            " 'implementation': sys.implementation.name, 'modules': mods}))\n")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def load_expected_failures(path=EXPECTED_FAILURES):
    """{test id: reason}; every entry must carry a reason."""
    expected = {}
    if not os.path.exists(path):
        return expected
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            test_id, sep, reason = line.partition("#")
            if not sep or not reason.strip():
                raise SystemExit(f"{path}:{n}: entry without a '# reason': {line}")
            expected[test_id.strip()] = reason.strip()
    return expected


def run_module(python, loop, module, test_timeout, module_timeout):
    """Run one module (restarting past hangs); return its report."""
    work = tempfile.mkdtemp(prefix=f"conformance-{loop}-{module}-")
    exclude_path = os.path.join(work, "exclude")
    results_path = os.path.join(work, "results.jsonl")
    progress_path = os.path.join(work, "progress")
    summary_path = os.path.join(work, "summary.json")
    hung, crashed, stderr_tail = [], [], ""
    started = time.monotonic()
    summary = {}
    try:
        for _attempt in range(MAX_RESTARTS + 1):
            if os.path.exists(progress_path):
                os.unlink(progress_path)
            cmd = [python, BOOTSTRAP, "--loop", loop, "--module", module, "--out", work,
                   "--test-timeout", str(test_timeout), "--exclude", exclude_path]
            with open(os.path.join(work, "stderr"), "w+") as err:
                try:
                    proc = subprocess.run(cmd, stdout=err, stderr=err, stdin=subprocess.DEVNULL,
                                          timeout=module_timeout, cwd=work)
                    timed_out = False
                    rc = proc.returncode
                except subprocess.TimeoutExpired:
                    timed_out, rc = True, None
                err.seek(0)
                stderr_text = err.read()
            if os.path.exists(summary_path):
                with open(summary_path) as f:
                    summary = json.load(f)
                if summary.get("status") in ("done", "no-test-package"):
                    break
            # The process died or was stopped mid-test: blame the running test.
            done = {r["id"] for r in _read_results(results_path)}
            current = None
            if os.path.exists(progress_path):
                with open(progress_path) as f:
                    current = f.read().strip() or None
            watchdog = re.search(r"^Timeout \(\d+:\d+:\d+\)!", stderr_text, re.M)
            entry = {"id": current or f"{module} (before the first test)",
                     "detail": stderr_text[-6000:]}
            if timed_out or watchdog:
                hung.append(entry)
            else:
                entry["returncode"] = rc
                crashed.append(entry)
            stderr_tail = stderr_text[-6000:]
            if current is None or current in done:
                break
            with open(exclude_path, "w") as f:
                f.write("\n".join(sorted(done | {h["id"] for h in hung + crashed})))
        results = _read_results(results_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stdlib_classes = {}
    for r in results:
        n = r.get("loops", {}).get("stdlib", 0)
        if n:
            cls = r["id"].rsplit(".", 1)[0]
            stdlib_classes[cls] = stdlib_classes.get(cls, 0) + n
    return {"module": module, "loop": loop, "stdlib_loops_by_class": stdlib_classes,
            "seconds": round(time.monotonic() - started, 1),
            "status": summary.get("status", "incomplete"), "rebound": summary.get("rebound", []),
            "python": summary.get("python", ""),
            "loops": summary.get("loops") or _sum_loops(results), "results": results,
            "hung": hung, "crashed": crashed,
            "stderr_tail": stderr_tail if summary.get("status") != "done" else ""}


def _read_results(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _sum_loops(results):
    total = {"fastloop": 0, "stdlib": 0}
    for r in results:
        for k, v in r.get("loops", {}).items():
            total[k] = total.get(k, 0) + v
    return total


def classify(report, expected):
    """Add counts and the lists of unexpected problems to a module report."""
    c = {"run": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
         "xfail": 0, "hung": len(report["hung"]) + len(report["crashed"])}
    unexpected, expected_hit, stale = [], [], []
    fastloop = report["loop"] == "fastloop"
    for r in report["results"]:
        outcome = r["outcome"]
        c["run"] += 1
        if outcome in ("pass", "xpass"):
            c["passed"] += 1
            if fastloop and r["id"] in expected:
                stale.append(r["id"])
        elif outcome in ("skip", "xfail"):
            c["skipped" if outcome == "skip" else "passed"] += 1
        else:
            c["failed" if outcome == "fail" else "errors"] += 1
            if fastloop and r["id"] in expected:
                c["xfail"] += 1
                expected_hit.append(r["id"])
            else:
                unexpected.append({"id": r["id"], "outcome": outcome,
                                   "detail": r.get("detail", "")})
    for h in report["hung"]:
        unexpected.append({"id": h["id"], "outcome": "hung", "detail": h["detail"]})
    for h in report["crashed"]:
        unexpected.append({"id": h["id"], "outcome": f"crashed (rc={h.get('returncode')})",
                           "detail": h["detail"]})
    if report["status"] not in ("done", "no-test-package") and not (
            report["hung"] or report["crashed"]):
        unexpected.append({"id": report["module"], "outcome": "incomplete",
                           "detail": report["stderr_tail"]})
    proof_ok = True
    if fastloop and report["status"] == "done" and not _exempt_from_proof(report):
        ran = c["run"] - c["skipped"]
        if ran and not report["loops"].get("fastloop"):
            proof_ok = False
            unexpected.append({"id": report["module"], "outcome": "not rebound",
                               "detail": "claims fastloop but created 0 fastloop loops"})
    report.update(counts=c, unexpected=unexpected, expected_failures=expected_hit,
                  stale_expected=stale, proof_ok=proof_ok)
    return report


def _exempt_from_proof(report):
    """Modules that run no real loop (on this Python) cannot prove fastloop ran."""
    if report["module"] in NOT_REBOUND:
        return True
    first = NOT_REBOUND_BEFORE.get(report["module"])
    if first is None:
        return False
    version = tuple(int(p) for p in report.get("python", "").split()[0].split(".")[:2] if p)
    return bool(version) and version < first[0]


def run_all(python, loop, modules, jobs, test_timeout, module_timeout, expected, log):
    order = sorted(modules, key=lambda m: (SLOW_FIRST.index(m) if m in SLOW_FIRST
                                           else len(SLOW_FIRST), m))
    reports = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futs = {pool.submit(run_module, python, loop, m, test_timeout, module_timeout): m
                for m in order}
        for fut in concurrent.futures.as_completed(futs):
            rep = classify(fut.result(), expected)
            reports[rep["module"]] = rep
            c = rep["counts"]
            log(f"[{loop}] {rep['module']:<22} run={c['run']:<4} fail={c['failed']:<3} "
                f"err={c['errors']:<3} skip={c['skipped']:<4} hung={c['hung']} "
                f"loops={rep['loops']} unexpected={len(rep['unexpected'])} "
                f"({rep['seconds']}s)")
    return {m: reports[m] for m in sorted(reports)}


COLS = ("run", "passed", "failed", "errors", "skipped", "hung")


def render_markdown(runs):
    """runs: list of {"python": ..., "loops": {"asyncio": {...}, "fastloop": {...}}}."""
    out = ["# Conformance: CPython's test.test_asyncio on fastloop", "",
           "Generated by `tests/conformance/run.py` (`make conformance`). Each module of",
           "the interpreter's own `test.test_asyncio` runs in a subprocess, once on the",
           "stdlib loop and once with fastloop in force (see `tests/conformance/rebind.py`).",
           "`fl loops` is the number of `fastloop.Loop` instances the module created.",
           "Failures listed in `tests/conformance/expected_failures.txt` are counted in",
           "failed/errors and shown in the `xfail` column.", ""]
    for run in sorted(runs, key=lambda r: [int(x) for x in r["version"].split(".")]):
        out += [f"## Python {run['version']}", ""]
        if run.get("no_test_package"):
            out += ["This interpreter has no `test` package: skipped.", ""]
            continue
        loops = run["loops"]
        std, fl = loops.get("asyncio", {}), loops.get("fastloop", {})
        hdr = ["module"] + [f"stdlib {c}" for c in COLS] + [f"fastloop {c}" for c in COLS]
        hdr += ["xfail", "fl loops"]
        out += ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
        totals = {"asyncio": dict.fromkeys(COLS, 0), "fastloop": dict.fromkeys(COLS, 0)}
        xf_total = loops_total = 0
        for m in sorted(set(std) | set(fl)):
            row = [m]
            for name, side in (("asyncio", std), ("fastloop", fl)):
                rep = side.get(m)
                for col in COLS:
                    v = rep["counts"][col] if rep else None
                    row.append("-" if v is None else str(v))
                    if v:
                        totals[name][col] += v
            frep = fl.get(m)
            xf = frep["counts"]["xfail"] if frep else 0
            nl = frep["loops"].get("fastloop", 0) if frep else 0
            xf_total += xf
            loops_total += nl
            row += [str(xf) if frep else "-", str(nl) if frep else "-"]
            out.append("| " + " | ".join(row) + " |")
        out.append("| **total** | " + " | ".join(
            [str(totals["asyncio"][c]) for c in COLS] + [str(totals["fastloop"][c]) for c in COLS]
            + [str(xf_total), str(loops_total)]) + " |")
        out.append("")
        unexpected = [(m, u) for m, rep in sorted(fl.items()) for u in rep["unexpected"]]
        if fl:
            out.append(f"Unexpected fastloop failures/hangs: {len(unexpected)}")
            out.append("")
            for _m, u in unexpected:
                out.append(f"- `{u['id']}`: {u['outcome']}")
            out.append("")
    return "\n".join(out) + "\n"


def strip_details(reports):
    """A smaller copy for JSON files: no per-test results, details truncated."""
    slim = {}
    for m, rep in reports.items():
        r = {k: v for k, v in rep.items() if k != "results"}
        r["unexpected"] = [dict(u, detail=u["detail"][-3000:]) for u in rep["unexpected"]]
        r["hung"] = [dict(h, detail=h["detail"][-3000:]) for h in rep["hung"]]
        r["crashed"] = [dict(h, detail=h["detail"][-3000:]) for h in rep["crashed"]]
        slim[m] = r
    return slim


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter whose test.test_asyncio to run (default: this one)")
    ap.add_argument("--loop", choices=["fastloop", "asyncio", "both"], default="fastloop")
    ap.add_argument("--modules", default="",
                    help="comma-separated test_asyncio modules (default: all)")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds one test may run before it counts as hung")
    ap.add_argument("--module-timeout", type=float, default=1200.0)
    ap.add_argument("--jobs", "-j", type=int, default=2)
    ap.add_argument("--json", help="write the full report here")
    ap.add_argument("--markdown", help="write the side-by-side tables here")
    ap.add_argument("--render", nargs="+", metavar="JSON",
                    help="only render --markdown from earlier --json files")
    ap.add_argument("--quiet", "-q", action="store_true")
    args = ap.parse_args(argv)

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    if args.render:
        runs = []
        for path in args.render:
            with open(path) as f:
                runs.append(json.load(f))
        text = render_markdown(runs)
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write(text)
        else:
            sys.stdout.write(text)
        return 0

    info = python_info(args.python)
    run = {"version": info["version"], "python": args.python, "loops": {}}
    if info["modules"] is None:
        log(f"{args.python} (Python {info['version']}) has no test.test_asyncio package "
            "(the 'test' package is not installed): conformance run skipped.")
        run["no_test_package"] = True
        if args.json:
            with open(args.json, "w") as f:
                json.dump(run, f, indent=1)
        return 2
    modules = info["modules"]
    if args.modules:
        wanted = [m.strip() for m in args.modules.split(",") if m.strip()]
        unknown = sorted(set(wanted) - set(modules))
        if unknown:
            raise SystemExit(f"no such test_asyncio module(s) on {info['version']}: {unknown}")
        modules = wanted
    expected = load_expected_failures()
    loops = ["asyncio", "fastloop"] if args.loop == "both" else [args.loop]
    started = time.monotonic()
    for loop in loops:
        reports = run_all(args.python, loop, modules, args.jobs, args.timeout,
                          args.module_timeout, expected, log)
        run["loops"][loop] = reports
    run["seconds"] = round(time.monotonic() - started, 1)
    log(f"Python {info['version']}: {', '.join(loops)} in {run['seconds']}s")

    failed = False
    fl = run["loops"].get("fastloop", {})
    for rep in fl.values():
        for u in rep["unexpected"]:
            failed = True
            log(f"UNEXPECTED {u['outcome']}: {u['id']}")
        for s in rep["stale_expected"]:
            log(f"note: expected failure now passes (remove it from the list): {s}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        slim = dict(run, loops={k: strip_details(v) for k, v in run["loops"].items()})
        with open(args.json, "w") as f:
            json.dump(slim, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(render_markdown([run]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
