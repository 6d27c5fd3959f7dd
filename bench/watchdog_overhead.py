"""What the watchdog costs a healthy loop, on the micro benchmarks (callgrind).

    python bench/watchdog_overhead.py [--threshold 0.1] [--share 0.02] [--tree DIR]

Runs each benchmark of bench/micro.py, at its smallest scale (micro.SCALES),
on fastloop under
``valgrind --tool=callgrind --separate-threads=yes`` with the watchdog off
and with it on (``FASTLOOP_WATCHDOG``, so every loop is armed as a
deployment would arm it), at two sizes; the difference of the two sizes
gives instructions per operation without the start-up. Instruction counts
are repeatable on a noisy machine where timings are not.

Columns: the loop's thread, instructions per operation, off and on (this
includes its side of every GIL hand-over to the watcher); the watcher
thread's instructions per look (``_watchdog.scans``). Under valgrind a run
lasts ~50x longer than at full speed, so the watcher looks ~50x more often
per operation than it would: the loop-thread difference is an upper bound.
At full speed the watcher looks about once per threshold per busy loop (twice
per threshold while a loop sits idle in its poller). A benchmark whose
callbacks last longer than the threshold under valgrind (timer
schedule+cancel's task steps) is reported as blocked there; give
``--threshold`` the full-speed threshold times the slowdown (e.g. 5) to
keep valgrind's runs as healthy as the real ones.
"""

import argparse
import glob
import os
import re
import shutil
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
    """(instructions of the main thread, of the watchdog thread, watcher looks)."""
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
    watcher = sum(count for thread, count in per_thread.items() if thread != 1)
    # Thread 1 is the main thread (the loop's); call_soon_threadsafe's
    # producer thread, when there is one, is counted with the watcher's, so
    # the watcher share is only reported where it is the only other thread.
    return per_thread[1], watcher, int(out.stdout.split()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.1)
    parser.add_argument("--share", type=float, default=0.02,
                        help="share of bench/micro.py's full-profile operation counts to run "
                             "(default 0.02)")
    parser.add_argument("--only", help="comma-separated benchmark names")
    parser.add_argument("--tree", help="import fastloop from this directory (a frozen build)")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed")
    names = args.only.split(",") if args.only else list(SCALES)
    print(f"| micro benchmark (fastloop) | loop thread, off | on ({args.threshold:g} s) "
          f"| difference | watcher looks | watcher instructions per look |")
    print("|---|---:|---:|---:|---:|---:|")
    for bench in names:
        _, scales, (full_ops, _) = SCALES[bench]
        scale = scales[0]
        n = max(1000, int(full_ops * args.share))
        off_small, _, _ = run(bench, scale, n, None, args.tree)
        off_large, _, _ = run(bench, scale, 3 * n, None, args.tree)
        on_small, _, _ = run(bench, scale, n, args.threshold, args.tree)
        on_large, watcher, looks = run(bench, scale, 3 * n, args.threshold, args.tree)
        off = (off_large - off_small) / (2 * n)
        on = (on_large - on_small) / (2 * n)
        per_look = f"{watcher / looks:,.0f}" if looks and bench != "call_soon_threadsafe" else "-"
        print(f"| {bench} ({scale}) | {off:,.1f} | {on:,.1f} | {(on / off - 1) * 100:+.2f} % "
              f"| {looks} | {per_look} |", flush=True)


if __name__ == "__main__":
    main()
