"""Echo and HTTP benchmark: fastloop, asyncio, uvloop and rloop side by side, and a C server.

    python bench/echo.py [--rounds 3] [--duration 2.5] [--quick] [--plan]
                         [--loops asyncio,fastloop,uvloop,rloop]
                         [--modes protocol,buffered,streams,sockets,http,udp]
                         [--sizes 1024,10240,102400] [--connections 10,100]

Rows: every echo mode × message size × connection count, the HTTP mode
(a fixed plaintext response; no size) × connection count, and UDP echo (1 KiB
datagrams, bench/udpgen.c: one datagram in flight per client socket) ×
connection count (client sockets; no C server row). For every row and
every round, each loop in turn (the order rotates from round to round, so
machine noise hits all alike) serves bench/servers.py pinned to one CPU while
the C load generator (bench/loadgen.c: N connections, pipelining 1, every byte
of every reply verified) runs pinned to another. The C epoll server
(bench/echo_server.c), the physical limit, takes its turn in every row's group
too. Each run also reads the server process's utime+stime from
/proc/<pid>/stat before and after, giving CPU µs per message (per request for
HTTP). Reported: medians over the rounds. --plan prints the rows and the
estimated duration as JSON and runs nothing.

Writes bench/results/<date>-py<ver>.json, .md (also printed) and .png. A loop
that is not installed is skipped; a mode a loop cannot run (the server exits
with "unsupported") or a run that fails (a mismatch, a reset, a timeout) is
recorded with its error, and the run goes on.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import cbuild  # noqa: E402
import matrix  # noqa: E402
import report  # noqa: E402
from servers import EXIT_UNSUPPORTED, LOOPS, MODES  # noqa: E402

HOST = "127.0.0.1"
C_SERVER = report.C_SERVER
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _libc = None


def _child_setup(cpu: int | None, nice: int = 0):
    """preexec_fn: pin to one CPU, renice, and die with the driver (no stray server)."""

    def setup() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        if nice:
            os.nice(nice)
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return setup


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available(loop: str) -> str | None:
    """None if the loop imports in this Python, else why not."""
    if loop == "asyncio":
        return None
    probe = subprocess.run([sys.executable, "-c", f"import {loop}"], capture_output=True,
                           text=True)
    if probe.returncode == 0:
        return None
    return "not installed (" + (probe.stderr.strip().splitlines() or ["?"])[-1] + ")"


def installed_loops(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The loops that import here, and why each other one does not (printed)."""
    loops, skipped = [], {}
    for loop in names:
        why = available(loop)
        if why:
            skipped[loop] = why
        else:
            loops.append(loop)
    if skipped:
        print("skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    return loops, skipped


def version(loop: str) -> str:
    if loop == "asyncio":
        return platform.python_version()
    code = (f"import importlib.metadata as m, {loop}\n"
            f"print(getattr({loop}, '__version__', None) or m.version({loop!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or "?"


class Run:
    """One server process and one load generator run against it."""

    def __init__(self, args, loadgen: Path, server_cmd: list[str], row: tuple) -> None:
        # loadgen: {"tcp": path, "udp": path} (bench/loadgen.c, bench/udpgen.c).
        self.args, self.server_cmd = args, server_cmd
        self.loadgen = loadgen["udp" if row[0] == "udp" else "tcp"]
        self.mode, self.size, self.connections = row

    def __call__(self) -> dict:
        args = self.args
        with tempfile.TemporaryFile("w+") as err:
            server = subprocess.Popen(
                self.server_cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                preexec_fn=_child_setup(args.server_cpu if args.pinned else None, args.nice),
            )
            try:
                return self._measure(server, err)
            finally:
                if server.poll() is None:
                    server.terminate()
                    try:
                        server.wait(5)
                    except subprocess.TimeoutExpired:
                        server.kill()
                        server.wait()
                server.stdout.close()

    def _measure(self, server: subprocess.Popen, err) -> dict:
        args = self.args
        ready, _, _ = select.select([server.stdout], [], [], args.start_timeout)
        line = server.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            return self._server_failed(server, err, "did not print its port"
                                       if server.poll() is None else "exited at start")
        try:
            cpu0 = cpu_seconds(server.pid)
        except OSError:
            return self._server_failed(server, err, "exited at start")
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cmd = [str(self.loadgen)] + (["--http"] if self.mode == "http" else []) + [
            HOST, line, str(self.connections), str(self.size or 0), str(args.duration),
            str(args.warmup)]
        try:
            lg = subprocess.run(
                cmd, capture_output=True, text=True,
                timeout=args.duration + args.warmup + 30,
                preexec_fn=_child_setup(args.client_cpu if args.pinned else None, args.nice),
            )
        except subprocess.TimeoutExpired:
            return {"status": "failed", "error": "load generator timed out"}
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            if server.poll() is not None:
                raise ProcessLookupError
            cpu1 = cpu_seconds(server.pid)
        except OSError:
            return self._server_failed(server, err, "died during the run",
                                       loadgen_err=lg.stderr)
        try:
            result = json.loads(lg.stdout)
        except json.JSONDecodeError:
            result = {}
        if lg.returncode != 0 or not result:
            why = {2: "echo MISMATCH", 1: "connection errors"}.get(lg.returncode,
                                                                  f"exit {lg.returncode}")
            return {"status": "failed", "error": f"load generator: {why}: "
                    + _tail(lg.stderr) + _server_note(err)}
        result["server_cpu_s"] = cpu1 - cpu0
        result["cpu_us_per_msg"] = (cpu1 - cpu0) * 1e6 / max(result["messages_total"], 1)
        result["loadgen_cpu_s"] = (children1.ru_utime + children1.ru_stime
                                   - children0.ru_utime - children0.ru_stime)
        result["status"] = "ok"
        return result

    def _server_failed(self, server, err, what: str, loadgen_err: str = "") -> dict:
        try:
            rc = server.wait(5)
        except subprocess.TimeoutExpired:
            rc = None
        err.seek(0)
        text = err.read()
        if rc == EXIT_UNSUPPORTED or "unsupported:" in text:
            msg = next((ln for ln in text.splitlines() if ln.startswith("unsupported:")), text)
            return {"status": "unsupported", "error": _tail(msg)}
        return {"status": "failed", "error": f"server {what} (exit {rc}): {_tail(text)}"
                + (f"; load generator: {_tail(loadgen_err)}" if loadgen_err else "")}


def _summary(result: dict, mode: str) -> str:
    if result["status"] != "ok":
        return f"{result['status'].upper()}: {result['error']}"
    unit = "req" if mode == "http" else "msg"
    return (f"{result['msgs_per_s']:>10,.0f} {unit}s/s  p50 {result['p50_us']:>7.0f} µs  "
            f"p99 {result['p99_us']:>7.0f} µs  CPU {result['cpu_us_per_msg']:>6.1f} µs/{unit}")


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def _server_note(err) -> str:
    err.seek(0)
    text = err.read().strip()
    return f"; server stderr: {_tail(text)}" if text else ""


def median_rows(runs: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["mode"], r["size"], r["connections"], r["loop"]), []).append(r)
    rows = []
    for (mode, size, connections, loop), rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        bad = [r for r in rs if r["status"] != "ok"]
        row = {"mode": mode, "size": size, "connections": connections, "loop": loop,
               "rounds_ok": len(ok), "rounds": len(rs),
               "status": bad[0]["status"] if bad else "ok"}
        if bad:
            row["error"] = bad[0]["error"] + (f" ({len(bad)} of {len(rs)} rounds)"
                                              if len(rs) > 1 else "")
        for key in ("msgs_per_s", "p50_us", "p99_us", "cpu_us_per_msg"):
            if ok:
                row[key] = statistics.median(r[key] for r in ok)
        if ok:
            rates = [r["msgs_per_s"] for r in ok]
            row["msgs_per_s_min"], row["msgs_per_s_max"] = min(rates), max(rates)
        rows.append(row)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument("--rounds", type=int, default=3, help="median of this many (default 3)")
    parser.add_argument("--duration", type=float, default=2.5,
                        help="measured seconds per run (default 2.5)")
    parser.add_argument("--warmup", type=float, default=0.5,
                        help="unmeasured seconds first (default 0.5)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 round of 0.5 s, 0.1 s warmup")
    parser.add_argument("--plan", action="store_true",
                        help="print the rows and the estimated duration (JSON), run nothing")
    parser.add_argument("--loops", type=matrix.name_list(LOOPS), default=list(LOOPS))
    parser.add_argument("--modes", type=matrix.name_list(MODES), default=list(MODES),
                        help="any of " + ",".join(MODES) + " (default: all)")
    parser.add_argument("--sizes", type=matrix.int_list, default=[1024, 10240, 102400],
                        help="echo message sizes in bytes (default 1024,10240,102400)")
    parser.add_argument("--connections", type=matrix.int_list, default=[10, 100],
                        help="connection counts, each a row of its own (default 10,100)")
    parser.add_argument("--no-c-server", dest="c_server", action="store_false",
                        help="leave out the C epoll server rows")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--nice", type=int, default=0,
                        help="run servers and load generator at this niceness; a negative "
                             "value (root only) keeps other work on a shared machine from "
                             "preempting them")
    parser.add_argument("--start-timeout", type=float, default=20.0,
                        help="seconds a server may take to print its port")
    parser.add_argument("--out-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--tag", help="file name stem (default: <date>-py<ver>)")
    args = parser.parse_args(argv)
    if args.nice < 0 and os.geteuid() != 0:
        parser.error("--nice below 0 needs root")
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 0.5, 0.1
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("need --rounds >= 1, --duration > 0, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plan:
        print(json.dumps(matrix.plan(args)))
        return 0
    try:
        loadgen = {"tcp": cbuild.build("loadgen"), "udp": cbuild.build("udpgen")}
        c_server = cbuild.build("echo_server") if args.c_server else None
    except cbuild.BuildError as exc:
        print(f"cannot build the C programs: {exc}", file=sys.stderr)
        return 1

    cpus = os.sched_getaffinity(0)
    args.pinned = {args.server_cpu, args.client_cpu} <= cpus and args.server_cpu != args.client_cpu
    if not args.pinned:
        print(f"CPUs {args.server_cpu} and {args.client_cpu} are not both available "
              f"(have {sorted(cpus)}): running unpinned", file=sys.stderr)

    loops, skipped = installed_loops(args.loops)
    versions = {loop: version(loop) for loop in loops}

    py = "{}.{}".format(*sys.version_info[:2])
    stem = args.tag or f"{time.strftime('%Y%m%d')}-py{py}" + ("-quick" if args.quick else "")
    data = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": sys.version,
        "python_short": py,
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "kernel": platform.release(),
                    "loadavg_before": loadavg()},
        "config": {"rounds": args.rounds, "duration": args.duration, "warmup": args.warmup,
                   "connections": args.connections, "sizes": args.sizes, "modes": args.modes,
                   "loops": loops, "server_cpu": args.server_cpu,
                   "client_cpu": args.client_cpu, "pinned": args.pinned, "nice": args.nice},
        "versions": versions,
        "skipped": skipped,
        "runs": [],
    }

    # The C server runs in every row's group (and is recorded under that row's
    # mode, though it is the same echo server in every echo row), so each
    # row's "% of C" compares runs made within seconds of each other.
    rows = matrix.rows(args)
    servers = len(loops) + bool(c_server)
    print(f"{args.rounds} rounds × {len(rows)} rows × {servers} servers, runs of "
          f"{args.duration + args.warmup:g} s; loops: {', '.join(loops)}; "
          f"about {report.duration(matrix.estimate_s(args, servers))}", flush=True)
    started = time.monotonic()
    for rnd in range(args.rounds):
        for row in rows:
            mode, size, connections = row
            group = []
            for loop in loops:
                group.append((loop, [sys.executable, str(BENCH / "servers.py"), "--loop", loop,
                                     "--mode", mode, "--host", HOST, "--port", "0",
                                     "--lifetime", str(args.duration + args.warmup + 120)]))
            if c_server and mode != "udp":     # echo_server.c is TCP only
                group.append((C_SERVER, [str(c_server)] + (["--http"] if mode == "http" else [])
                              + [HOST, "0"]))
            shift = rnd % len(group) if group else 0  # rotate the order per round
            for loop, cmd in group[shift:] + group[:shift]:
                result = Run(args, loadgen, cmd, row)()
                result.update(mode=mode, size=size, connections=connections, loop=loop,
                              round=rnd)
                data["runs"].append(result)
                print(f"[{rnd + 1}/{args.rounds}] {report.row_label(mode, size, connections)}"
                      f"  {loop:<15} {_summary(result, mode)}", flush=True)

    data["machine"]["loadavg_after"] = loadavg()
    data["elapsed_s"] = round(time.monotonic() - started, 1)
    data["median"] = median_rows(data["runs"])

    args.out_dir.mkdir(parents=True, exist_ok=True)
    png_path = args.out_dir / f"{stem}.png"
    why_not = report.echo_chart(data, png_path)
    md = report.echo_markdown(data) + (
        "" if why_not else f"\n![echo benchmark]({png_path.name})\n")
    json_path = report.save_results(args.out_dir, stem, data, md)
    print(f"results: {json_path}, {json_path.with_suffix('.md')}"
          + (f"; {why_not}" if why_not else f", {png_path}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
