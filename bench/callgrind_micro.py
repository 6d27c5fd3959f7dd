"""Instructions per operation of the micro benchmarks, under callgrind.

    python bench/callgrind_micro.py [--loops fastloop,rloop] [--only call_soon,timers]
                                    [--scales 100,10000] [--ops N] [--json FILE]

Timings on a shared 2-core machine swing 2-3x; instruction counts do not. For
each (benchmark, scale, loop) this runs ``micro.py --one`` under
``valgrind --tool=callgrind`` twice, with N and 2N operations, and reports
(Ir(2N) - Ir(N)) / N: start-up, imports and the set-up of the live timers
cancel out. The timer phases are separated the same way: only the phase being
counted changes between the two runs. Threads make the threadsafe rows vary
a little (how many posts each wake-up finds queued).
"""

from __future__ import annotations

import argparse
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


def instructions(args: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, str(HERE / "micro.py"), "--one", *args],
            check=True, capture_output=True)
        return int(TOTALS.findall(Path(out).read_bytes())[-1])


def per_op(bench: str, scale: int, loop: str, ops: int) -> dict[str, float]:
    base = [bench, str(scale), loop]
    if bench != "timers":
        small = instructions(base + ["--ops", str(ops)])
        big = instructions(base + ["--ops", str(2 * ops)])
        return {bench: (big - small) / ops}
    result = {}
    for metric, (a, b) in {
        "schedule": ((ops, 0, 0), (2 * ops, 0, 0)),
        "cancel": ((2 * ops, ops, 0), (2 * ops, 2 * ops, 0)),
        "fire": ((0, 0, ops), (0, 0, 2 * ops)),
    }.items():
        small = instructions(base + ["--phase-ops", ",".join(map(str, a))])
        big = instructions(base + ["--phase-ops", ",".join(map(str, b))])
        result[metric] = (big - small) / ops
    return result


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
            counts = {loop: per_op(bench, scale, loop, args.ops)
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
