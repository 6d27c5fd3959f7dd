"""Instructions per operation of the micro benchmarks, under callgrind.

    python bench/callgrind_micro.py [--loops fastloop,rloop] [--only call_soon,timers]
                                    [--scales 100,10000] [--ops N] [--json FILE]

Timings on a shared 2-core machine swing 2-3x; instruction counts do not. Each
(benchmark, scale, loop) runs once, ``micro.py --one`` under
``valgrind --tool=callgrind --dump-before=getppid`` with ``--mark`` (each read
of the benchmark's timer first calls os.getppid(), a libc symbol callgrind finds
even in a stripped interpreter such as Debian's 3.15, where the interpreter's
own time_perf_counter has no symbol): callgrind writes its counters out (and
resets them) whenever the benchmark reads its timer, so
the instructions of exactly each timed region come out, start-up, imports and
the set-up of the live timers excluded, and are divided by the region's
operations. The timer phases are the three timed regions of one run. Threads
make the threadsafe rows vary a little (how many posts each wake-up finds).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import micro

HERE = Path(__file__).resolve().parent
TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.M)
PART = re.compile(r"\.(\d+)$")


def regions(args: list[str]) -> list[int]:
    """Instructions between consecutive reads of time.perf_counter()."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             "--dump-before=getppid", "--collect-systime=no",
             sys.executable, str(HERE / "micro.py"), "--one", *args, "--mark"],
            check=True, capture_output=True)
        parts = sorted(glob.glob(out + ".*"), key=lambda p: int(PART.search(p).group(1)))
        # Part k holds what ran between the (k-1)th and the kth read; the
        # last file (no suffix) is what ran after the final read.
        return [int(TOTALS.findall(Path(p).read_bytes())[-1]) for p in parts]


def per_op(bench: str, scale: int, loop: str, ops: int) -> dict[str, float]:
    counts = regions([bench, str(scale), loop, "--ops", str(ops)])
    # Every timed region is a (start, end) pair of reads: the even parts.
    timed = counts[1::2]
    metrics = micro.metrics_of(bench)
    if len(timed) != len(metrics):
        raise RuntimeError(f"{bench} on {loop}: {len(counts)} timer reads, "
                           f"expected {2 * len(metrics)}")
    # The benchmarks run whole batches (bursts, tasks, threads): ops rounded
    # down to a multiple of the scale, at least one batch (micro.py).
    done = ops if bench == "timers" else max(1, ops // scale) * scale
    return {metric: n / done for metric, n in zip(metrics, timed, strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", default="fastloop")
    parser.add_argument("--only", help="comma-separated benchmarks (default: all)")
    parser.add_argument("--scales", help="comma-separated scales (default: each benchmark's)")
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    benches = args.only.split(",") if args.only else list(micro.SCALES)
    rows = []
    print("| benchmark | scale | phase | " + " | ".join(args.loops.split(",")) + " |")
    print("|---|---:|---|" + "---:|" * len(args.loops.split(",")))
    for bench in benches:
        scales = micro.SCALES[bench][1]
        if args.scales:
            scales = [int(s) for s in args.scales.split(",") if int(s) in scales] or \
                [int(s) for s in args.scales.split(",")]
        for scale in scales:
            # Never more operations than a full-profile run makes (a gc row
            # is a handful of whole-heap collections, not 20,000).
            ops = min(args.ops, micro.SCALES[bench][2][0])
            counts = {loop: per_op(bench, scale, loop, ops)
                      for loop in args.loops.split(",")}
            for metric in micro.metrics_of(bench):
                row = {"bench": bench, "scale": scale, "metric": metric,
                       "ir_per_op": {loop: c[metric] for loop, c in counts.items()}}
                rows.append(row)
                print(f"| {bench} | {scale:,} | {metric} | "
                      + " | ".join(f"{v:,.0f}" for v in row["ir_per_op"].values()) + " |",
                      flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"ops": args.ops, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
