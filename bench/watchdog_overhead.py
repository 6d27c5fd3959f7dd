"""What the watchdog costs a healthy loop, on the micro benchmarks.

    python bench/watchdog_overhead.py --timed [--rounds 11] [--threshold 0.1]
    python bench/watchdog_overhead.py [--threshold 0.1] [--share 0.25] [--tree DIR]

Each benchmark of bench/micro.py runs on fastloop at its smallest scale
(micro.SCALES), with the watchdog off and with it on (``FASTLOOP_WATCHDOG``,
so every loop is armed as a deployment would arm it).

``--timed``: wall-clock, the way bench/metrics_overhead.py measures the
metrics: off and on alternate in fresh processes (micro.py --one), and each
row is the median of the rounds. This is the number the 1 % budget is about;
run it on an otherwise idle machine.

Without it, callgrind (``--separate-threads=yes``) counts instructions, which
are repeatable on a noisy machine where timings are not (GC off, hash seed
fixed: two runs with the same settings agree to a few instructions). Three
runs per benchmark: off at n and 3n, on at 3n.

* per op: what one operation costs with the watchdog off, (off(3n) - off(n)) / 2n,
  so the interpreter's start-up is not in it;
* cost: every thread's instructions (the loop's, the watcher's, and the
  producer of call_soon_threadsafe) on minus off at 3n, per operation, as a
  share of "per op"; it includes starting the watcher thread, so it is an
  upper bound. The loop thread's share is given apart.

Under valgrind a run lasts ~50x longer than at full speed (more on a loaded
machine), so the watcher looks ~50x more often per operation than it would,
and callbacks that are short at full speed can outlast the threshold and be
reported for real: the callgrind cost is an upper bound, and ``--threshold``
scaled by the slowdown (e.g. 5) keeps valgrind's runs as healthy as the real
ones. (An earlier version differenced two sizes per setting, which doubled
the noise and reported it as cost.)
"""

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from micro import SCALES  # noqa: E402  (bench/ is not a package)

# The cyclic GC is off in the child: its collections fall at different
# operations once the watcher thread has allocated a few objects, which moves
# the counts by ~2 % either way (seen on timer schedule+cancel) and hides the
# difference being measured.
CHILD = """
import gc, sys
gc.disable()
sys.path.insert(0, {here!r})
import fastloop, micro
from fastloop import _watchdog
name, scale, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
loop = fastloop.new_event_loop()
try:
    micro.FUNCS[name](loop, scale, n)
finally:
    loop.close()
print(_watchdog.scans)
"""


def run(bench, scale, n, threshold, tree):
    """(instructions of all threads, of the loop's thread, watcher looks)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    if tree:
        env["PYTHONPATH"] = tree
    env.pop("FASTLOOP_WATCHDOG", None)
    if threshold is not None:
        env["FASTLOOP_WATCHDOG"] = str(threshold)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--separate-threads=yes",
             f"--callgrind-out-file={tmp}/cg", sys.executable, "-c",
             CHILD.format(here=HERE), bench, str(scale), str(n)],
            env=env, check=True, capture_output=True, text=True,
        )
        per_thread = {}
        for path in glob.glob(f"{tmp}/cg-*"):
            with open(path) as f:
                text = f.read()
            thread = int(re.search(r"^thread: (\d+)", text, re.M).group(1))
            per_thread[thread] = int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))
    # Thread 1 is the main thread, the loop's.
    return sum(per_thread.values()), per_thread[1], int(out.stdout.split()[-1])


def timed(bench, scale, n, threshold):
    """Operations per second of one run in a fresh process (micro.py --one)."""
    env = dict(os.environ)
    env.pop("FASTLOOP_WATCHDOG", None)
    if threshold is not None:
        env["FASTLOOP_WATCHDOG"] = str(threshold)
    out = subprocess.run([sys.executable, os.path.join(HERE, "micro.py"), "--one", bench,
                          str(scale), "fastloop", "--ops", str(n)],
                         env=env, check=True, capture_output=True, text=True)
    rates = json.loads(out.stdout.splitlines()[-1])
    return statistics.fmean(rates.values())     # timers: the mean of its phases


def main_timed(args, names):
    print(f"| micro benchmark (fastloop, scale, ops) | off, ops/s | on ({args.threshold:g} s), "
          f"ops/s | on ÷ off | spread of on ÷ off over the rounds |")
    print("|---|---:|---:|---:|---:|")
    for bench in names:
        _, scales, (full_ops, _) = SCALES[bench]
        off, on = [], []
        for r in range(args.rounds):
            pair = [(off, None), (on, args.threshold)]
            for results, threshold in (pair if r % 2 == 0 else pair[::-1]):
                results.append(timed(bench, scales[0], full_ops, threshold))
        ratios = sorted(b / a for a, b in zip(off, on, strict=True))
        print(f"| {bench} ({scales[0]}, {full_ops:,}) | {statistics.median(off):,.0f} "
              f"| {statistics.median(on):,.0f} "
              f"| {statistics.median(on) / statistics.median(off):.3f} "
              f"| {ratios[0]:.3f}–{ratios[-1]:.3f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.1)
    parser.add_argument("--timed", action="store_true",
                        help="wall-clock rounds instead of callgrind counts")
    parser.add_argument("--rounds", type=int, default=11, help="with --timed (default 11)")
    parser.add_argument("--share", type=float, default=0.25,
                        help="callgrind: share of bench/micro.py's full-profile operation "
                             "counts to run (default 0.25)")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--tree", help="callgrind: import fastloop from this directory")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SCALES)
    if args.timed:
        main_timed(args, names)
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed")
    print(f"| micro benchmark (fastloop, scale, n) | per op, off | cost per op, on "
          f"({args.threshold:g} s) | cost | of which the loop's thread | watcher looks |")
    print("|---|---:|---:|---:|---:|---:|")
    for bench in names:
        _, scales, (full_ops, _) = SCALES[bench]
        scale = scales[0]
        n = max(1000, int(full_ops * args.share))
        small, _, _ = run(bench, scale, n, None, args.tree)
        off, off_loop, _ = run(bench, scale, 3 * n, None, args.tree)
        on, on_loop, looks = run(bench, scale, 3 * n, args.threshold, args.tree)
        per_op = (off - small) / (2 * n)
        cost = (on - off) / (3 * n)
        loop_cost = (on_loop - off_loop) / (3 * n)
        print(f"| {bench} ({scale}, {n:,}) | {per_op:,.1f} | {cost:,.1f} "
              f"| {cost / per_op * 100:+.2f} % | {loop_cost / per_op * 100:+.2f} % | {looks} |",
              flush=True)


if __name__ == "__main__":
    main()
