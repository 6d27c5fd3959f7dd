"""What the always-on loop metrics cost, on the call_soon micro benchmark.

    python bench/metrics_overhead.py [--rounds 7]

Builds a copy of this checkout with the metrics compiled out
(FASTLOOP_NO_METRICS=1) in build/no-metrics/, then runs micro.py's
call_soon benchmark on both builds: interleaved wall-clock rounds (median),
and, when valgrind is installed, callgrind instruction counts per callback,
which are repeatable on a noisy machine where timings are not.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The call_soon benchmark of micro.py at batch size 1 (a chain of callbacks),
# run in a child on one build or the other.
MICRO = os.path.join(ROOT, "bench", "micro.py")


def _child(tree, n, prefix=()):
    return subprocess.run([*prefix, sys.executable, MICRO, "--one", "call_soon", "1", "fastloop",
                           "--ops", str(n)],
                          env=dict(os.environ, PYTHONPATH=tree), check=True,
                          capture_output=True, text=True)


def build_without_metrics(dest):
    """Build this checkout with FASTLOOP_NO_METRICS=1 into ``dest`` (also used
    by tests/test_metrics.py). Sources are copied with their timestamps, so a
    ``dest`` kept from an earlier call rebuilds only what changed since."""
    os.makedirs(dest, exist_ok=True)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(ROOT, name), dest)
    shutil.copytree(os.path.join(ROOT, "fastloop"), os.path.join(dest, "fastloop"),
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"),
                    copy_function=shutil.copy2, dirs_exist_ok=True)
    env = dict(os.environ, FASTLOOP_NO_METRICS="1")
    subprocess.run([sys.executable, "setup.py", "--quiet", "build_ext", "--inplace", "-j", "2"],
                   cwd=dest, env=env, check=True, capture_output=True)


def seconds(tree, n):
    return n / json.loads(_child(tree, n).stdout)["call_soon"]


def instructions(tree, n):
    out = _child(tree, n, ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"])
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("-n", type=int, default=300_000, help="callbacks per timed round")
    args = parser.parse_args()
    no_metrics = os.path.join(ROOT, "build", "no-metrics")
    build_without_metrics(no_metrics)
    trees = {"with metrics": ROOT, "metrics compiled out": no_metrics}
    times = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            times[name].append(seconds(tree, args.n))
    med = {name: statistics.median(t) for name, t in times.items()}
    for name, t in med.items():
        print(f"{name:22s} {t / args.n * 1e9:7.1f} ns per call_soon callback (median of "
              f"{args.rounds})")
    overhead = (med["with metrics"] / med["metrics compiled out"] - 1) * 100
    print(f"time overhead: {overhead:+.1f}%")
    if shutil.which("valgrind"):
        per = {}
        for name, tree in trees.items():
            small, large = instructions(tree, 20_000), instructions(tree, 60_000)
            per[name] = (large - small) / 40_000
            print(f"{name:22s} {per[name]:7.0f} instructions per callback (callgrind)")
        overhead = (per["with metrics"] / per["metrics compiled out"] - 1) * 100
        print(f"instruction overhead: {overhead:+.1f}%")


if __name__ == "__main__":
    main()
