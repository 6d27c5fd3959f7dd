"""The estimated time of a whole `make bench`, part by part (runs nothing).

    python bench/plan.py [--micro ARGS] [--echo ARGS] [--pipe ARGS] [--frameworks ARGS]

Each ARGS is the option string make bench passes to that part (BENCH_*_ARGS).
echo.py and frameworks.py estimate themselves (their --plan); the micro
benchmarks and the pipe row are estimated here from their run counts and the
per-run times measured on the 2-core bench machine.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from report import duration  # noqa: E402

MICRO_LOOPS = 4
MICRO_RUN_S = 0.6       # one (benchmark, loop) subprocess: interpreter start + the run
PIPE_START_S = 0.5      # the child, cat, the pipes
PIPE_S_PER_MIB = 0.004  # the slowest loop (asyncio) moves ~250 MiB/s through cat


def _self_planned(script: str, args: str) -> dict:
    out = subprocess.run([sys.executable, str(BENCH / script), *shlex.split(args), "--plan"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _option(args: list[str], name: str, default: int) -> int:
    if name in args and args.index(name) + 1 < len(args):
        return int(args[args.index(name) + 1])
    return default


def micro_plan(args: str) -> dict:
    import micro

    argv = shlex.split(args)
    profile = "quick" if "quick" in argv or "--profile=quick" in argv else "full"
    rounds = _option(argv, "--rounds", 5 if profile == "full" else 1)
    runs = len(micro.plan(list(micro.SCALES), profile)) * MICRO_LOOPS * rounds
    return {"runs": runs, "estimated_s": round(runs * MICRO_RUN_S)}


def pipe_plan(args: str) -> dict:
    argv = shlex.split(args)
    rounds, mb = (1, 16) if "--quick" in argv else (_option(argv, "--rounds", 3),
                                                     _option(argv, "--mb", 256))
    runs = rounds * MICRO_LOOPS
    return {"runs": runs, "estimated_s": round(runs * (PIPE_START_S + mb * PIPE_S_PER_MIB))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for part in ("micro", "echo", "pipe", "frameworks"):
        parser.add_argument(f"--{part}", default="", metavar="ARGS")
    args = parser.parse_args(argv)
    parts = {
        "micro.py (micro benchmarks)": micro_plan(args.micro),
        "echo.py (echo, HTTP and UDP matrix)": _self_planned("echo.py", args.echo),
        "pipe.py (pipe through cat)": pipe_plan(args.pipe),
        "frameworks.py (TLS echo, uvicorn, uvicorn TLS, aiohttp)":
            _self_planned("frameworks.py", args.frameworks),
    }
    total = 0
    for name, plan in parts.items():
        total += plan["estimated_s"]
        print(f"{name:<58} {plan['runs']:>5} runs  ~{duration(plan['estimated_s'])}")
    print(f"{'make bench in all':<58} {'':>10}  ~{duration(total)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
