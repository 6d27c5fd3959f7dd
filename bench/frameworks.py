"""TLS echo and real-framework HTTP benchmark: the loops side by side.

    python bench/frameworks.py [--rounds 3] [--duration 2.5] [--quick] [--plan]
                               [--loops asyncio,fastloop,uvloop,rloop,aiofastnet]
                               [--rows tls-echo-1k,tls-echo-64k,uvicorn,uvicorn-tls,aiohttp]

Rows:
  tls-echo-1k / tls-echo-64k   bench/servers.py --mode tls (asyncio.Protocol
                               echo behind create_server(ssl=...)), driven by
                               bench/loadgen.c --tls: 10 connections, one
                               message of 1 KiB / 64 KiB in flight each, every
                               byte verified
  uvicorn / uvicorn-tls        uvicorn + httptools, plain ASGI app, HTTP and
                               HTTPS, driven by wrk (50 connections, 1 thread)
  aiohttp                      an aiohttp.web app, HTTP, driven by wrk

Each row runs on asyncio, fastloop, uvloop and rloop (rloop has no TLS: its
TLS rows are reported unsupported), and the TLS rows also on aiofastnet (its
C transports patched onto the stdlib loop) when it is installed. As in
bench/echo.py: the server is pinned to one CPU and the load to the other,
loops are interleaved with the order rotating per round, the server's
utime+stime gives CPU µs per message/request, and the table shows medians.

Writes bench/results/frameworks-<date>-py<ver>.json and .md (also printed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import cbuild  # noqa: E402
import echo  # noqa: E402
import matrix  # noqa: E402
from report import frameworks_markdown, save_results  # noqa: E402
from servers import LOOPS, TRANSPORT_LIBS  # noqa: E402

HOST = "127.0.0.1"
ALL_LOOPS = LOOPS + TRANSPORT_LIBS
WRK_CONNECTIONS = 50
ECHO_CONNECTIONS = 10

# name -> (kind, server arguments, size or TLS flag for the load)
ROWS = {
    "tls-echo-1k": ("loadgen", ["servers.py", "--mode", "tls"], 1024),
    "tls-echo-64k": ("loadgen", ["servers.py", "--mode", "tls"], 65536),
    "uvicorn": ("wrk", ["framework_servers.py", "--app", "uvicorn"], False),
    "uvicorn-tls": ("wrk", ["framework_servers.py", "--app", "uvicorn", "--tls"], True),
    "aiohttp": ("wrk", ["framework_servers.py", "--app", "aiohttp"], False),
}


def is_tls(row: str) -> bool:
    return "tls" in row


def parse_wrk(text: str) -> dict:
    """Requests, requests/s, latency percentiles and errors from wrk --latency output."""
    out: dict = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    if m:
        out["messages"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if m:
        out["msgs_per_s"] = float(m.group(1))
    for pct, key in (("50%", "p50_us"), ("99%", "p99_us")):
        m = re.search(rf"^\s*{pct}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if m:
            out[key] = float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        errors += int(m.group(1))
    out["errors"] = errors
    return out


class Run(echo.Run):
    """One server process, one load run against it (echo.Run's process handling)."""

    def __init__(self, args, row: str, loop: str, loadgen: Path | None) -> None:
        self.row, self.loop = row, loop
        server_args = ROWS[row][1]
        cmd = [sys.executable, str(BENCH / server_args[0]), *server_args[1:],
               "--loop", loop, "--host", HOST, "--port", "0",
               "--lifetime", str(args.duration + args.warmup + 120)]
        super().__init__(args, {"tcp": loadgen}, cmd, (row, ROWS[row][2], None))

    def _measure(self, server, err) -> dict:
        args = self.args
        kind = ROWS[self.row][0]
        ready, _, _ = select.select([server.stdout], [], [], args.start_timeout)
        port = server.stdout.readline().strip() if ready else ""
        if not port.isdigit():
            return self._server_failed(server, err, "did not print its port"
                                       if server.poll() is None else "exited at start")
        client = echo._child_setup(args.client_cpu if args.pinned else None, args.nice)
        if kind == "wrk":
            url = f"{'https' if ROWS[self.row][2] else 'http'}://{HOST}:{port}/"
            wrk = ["wrk", "-t1", f"-c{WRK_CONNECTIONS}"]
            if args.warmup > 0:
                subprocess.run(wrk + [f"-d{math.ceil(args.warmup)}s", url],
                               capture_output=True, preexec_fn=client, timeout=args.warmup + 30)
            cpu0 = echo.cpu_seconds(server.pid)
            lg = subprocess.run(wrk + ["--latency", f"-d{math.ceil(args.duration)}s", url],
                                capture_output=True, text=True, preexec_fn=client,
                                timeout=args.duration + 30)
            cpu1 = echo.cpu_seconds(server.pid) if server.poll() is None else None
            result = parse_wrk(lg.stdout)
            if lg.returncode != 0 or "msgs_per_s" not in result or not result.get("messages"):
                return {"status": "failed", "error": "wrk: " + echo._tail(lg.stdout + lg.stderr)
                        + echo._server_note(err)}
            if result["errors"]:
                return {"status": "failed", "error": f"wrk: {result['errors']} errors"
                        + echo._server_note(err)}
            total = result["messages"]
        else:
            cpu0 = echo.cpu_seconds(server.pid)
            cmd = [str(self.loadgen), "--tls", HOST, port, str(ECHO_CONNECTIONS),
                   str(ROWS[self.row][2]), str(args.duration), str(args.warmup)]
            lg = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=client,
                                timeout=args.duration + args.warmup + 30)
            cpu1 = echo.cpu_seconds(server.pid) if server.poll() is None else None
            try:
                result = json.loads(lg.stdout)
            except json.JSONDecodeError:
                result = {}
            if lg.returncode != 0 or not result:
                return {"status": "failed", "error": f"loadgen exit {lg.returncode}: "
                        + echo._tail(lg.stderr) + echo._server_note(err)}
            total = result["messages_total"]
        if cpu1 is None:
            return self._server_failed(server, err, "died during the run")
        result["server_cpu_s"] = cpu1 - cpu0
        result["cpu_us_per_msg"] = (cpu1 - cpu0) * 1e6 / max(total, 1)
        result["status"] = "ok"
        return result


def run_seconds(args, row: str) -> float:
    """One run's wall time: wrk counts whole seconds (its warmup is a run of
    its own), and a server start with its handshakes costs about half a second."""
    if ROWS[row][0] == "wrk":
        return math.ceil(args.duration) + (math.ceil(args.warmup) if args.warmup > 0 else 0) + 0.7
    return args.duration + args.warmup + 0.5


def loops_for(row: str, loops: list[str]) -> list[str]:
    """aiofastnet only on the TLS rows; everything else on every row."""
    return [loop for loop in loops if loop not in TRANSPORT_LIBS or is_tls(row)]


def median_rows(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["row"], r["loop"]), []).append(r)
    out = []
    for (row, loop), rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        med = {"row": row, "loop": loop, "rounds_ok": len(ok), "rounds": len(rs),
               "status": "ok" if len(ok) == len(rs) else rs[-1]["status"]}
        if len(ok) != len(rs):
            med["error"] = next(r["error"] for r in rs if r["status"] != "ok")
        for key in ("msgs_per_s", "cpu_us_per_msg", "p50_us", "p99_us"):
            values = [r[key] for r in ok if key in r]
            if values:
                med[key] = statistics.median(values)
        out.append(med)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.5)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round of 1 s after 1 s of warmup")
    parser.add_argument("--plan", action="store_true")
    parser.add_argument("--loops", type=matrix.name_list(ALL_LOOPS), default=list(ALL_LOOPS))
    parser.add_argument("--rows", type=matrix.name_list(tuple(ROWS)), default=list(ROWS))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--start-timeout", type=float, default=20.0)
    parser.add_argument("--nice", type=int, default=0,
                        help="run servers and load at this niceness (below 0: root only)")
    parser.add_argument("--out-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    if args.quick:
        # wrk counts whole seconds: 1 s is its shortest run. The warmup
        # absorbs the 50 TLS handshakes wrk starts with.
        args.rounds, args.duration, args.warmup = 1, 1.0, 1.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs_per_round = sum(len(loops_for(r, args.loops)) for r in args.rows)
    if args.plan:
        print(json.dumps({"rows": args.rows, "loops": args.loops, "rounds": args.rounds,
                          "runs": runs_per_round * args.rounds,
                          "estimated_s": round(args.rounds * sum(
                              len(loops_for(r, args.loops)) * run_seconds(args, r)
                              for r in args.rows))}))
        return 0
    need_wrk = any(ROWS[r][0] == "wrk" for r in args.rows)
    if need_wrk and shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): leaving out "
              + ", ".join(r for r in args.rows if ROWS[r][0] == "wrk"), file=sys.stderr)
        args.rows = [r for r in args.rows if ROWS[r][0] != "wrk"]
    loadgen = cbuild.build("loadgen") if any(ROWS[r][0] == "loadgen" for r in args.rows) else None
    cpus = os.sched_getaffinity(0)
    args.pinned = {args.server_cpu, args.client_cpu} <= cpus and args.server_cpu != args.client_cpu
    loops, skipped = echo.installed_loops(args.loops)
    py = "{}.{}".format(*sys.version_info[:2])
    data = {"date": time.strftime("%Y-%m-%d %H:%M"), "python": sys.version, "python_short": py,
            "machine": {"cpu": echo.cpu_model(), "loadavg_before": echo.loadavg()},
            "config": {"rounds": args.rounds, "duration": args.duration, "warmup": args.warmup,
                       "rows": args.rows, "loops": loops, "pinned": args.pinned,
                       "wrk_connections": WRK_CONNECTIONS,
                       "echo_connections": ECHO_CONNECTIONS},
            "versions": {loop: echo.version(loop) for loop in loops}, "skipped": skipped,
            "runs": []}
    for rnd in range(args.rounds):
        for row in args.rows:
            group = loops_for(row, loops)
            shift = rnd % len(group) if group else 0
            for loop in group[shift:] + group[:shift]:
                result = Run(args, row, loop, loadgen)()
                result.update(row=row, loop=loop, round=rnd)
                data["runs"].append(result)
                what = (f"{result['msgs_per_s']:>10,.0f}/s  CPU {result['cpu_us_per_msg']:.1f} µs"
                        if result["status"] == "ok"
                        else f"{result['status'].upper()}: {result['error']}")
                print(f"[{rnd + 1}/{args.rounds}] {row:<13} {loop:<11} {what}", flush=True)
    data["machine"]["loadavg_after"] = echo.loadavg()
    data["median"] = median_rows(data["runs"])
    stem = f"frameworks-{time.strftime('%Y%m%d')}-py{py}" + ("-quick" if args.quick else "")
    save_results(args.out_dir, stem, data, frameworks_markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
