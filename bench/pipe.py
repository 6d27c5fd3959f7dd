"""Pipe throughput: a stream through a `cat` subprocess, fastloop beside asyncio, uvloop and rloop.

    python bench/pipe.py [--rounds 3] [--mb 256] [--chunk 65536] [--quick]
                         [--loops asyncio,fastloop,uvloop,rloop]

Each run is one child process (``--run LOOP``, pinned to the server CPU) that
starts ``cat`` with ``loop.subprocess_exec`` (cat pinned to the other CPU)
and pushes MB megabytes through it with the protocol API: the stdin pipe
transport's ``write()`` in CHUNK pieces, paused by ``pause_writing`` and
resumed by ``resume_writing``; ``pipe_data_received`` counts what comes back
on stdout and compares every byte with what was sent.
Reported per loop (median of the rounds, loops interleaved, order rotating):
MB/s through the pipe (wall time) and the Python process's CPU seconds per
GiB (its own utime+stime, cat's excluded).

A loop without subprocess or pipe support reports "unsupported" instead of
failing the whole run. Writes bench/results/pipe-<date>-py<ver>.json and .md
(also printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from report import save_results  # noqa: E402
from servers import LOOPS, make_loop  # noqa: E402

EXIT_UNSUPPORTED = 3
MISSING_API = (NotImplementedError, AttributeError)


class Pump(asyncio.SubprocessProtocol):
    """Feeds stdin while not paused; counts stdout and compares it with what was sent."""

    def __init__(self, total: int, chunk: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.total, self.chunk = total, chunk
        self.sent = self.received = 0
        self.mismatch = False
        self.paused = False
        self.done = loop.create_future()
        self.stdin = None

    def connection_made(self, transport) -> None:
        self.stdin = transport.get_pipe_transport(0)

    def feed(self) -> None:
        while not self.paused and self.sent < self.total:
            piece = self.chunk[:min(len(self.chunk), self.total - self.sent)]
            self.sent += len(piece)
            self.stdin.write(piece)
        if self.sent >= self.total and not self.stdin.is_closing():
            self.stdin.close()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        # Not from inside this call: the stdlib's _write_ready calls it
        # between flushing its buffer and checking whether it is closing, so
        # writing the last piece and closing here would lose that piece.
        self.paused = False
        asyncio.get_running_loop().call_soon(self.feed)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        # The stream sent is the chunk over and over (the last one cut
        # short): compare each piece with the chunk at its offset (memcmp, a
        # fraction of a cycle per byte, so the check does not hide the loop).
        size = len(self.chunk)
        pos = 0
        while pos < len(data):
            off = (self.received + pos) % size
            n = min(len(data) - pos, size - off)
            if data[pos:pos + n] != self.chunk[off:off + n]:
                self.mismatch = True
            pos += n
        self.received += len(data)

    def pipe_connection_lost(self, fd: int, exc) -> None:
        # cat's stdout ends after everything came back (cat may exit, and be
        # reported, before its last bytes are read).
        if fd == 1 and not self.done.done():
            self.done.set_result(None)


def _pin(cpu: int | None):
    def setup() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return setup


async def one_run(total: int, chunk_size: int, cat_cpu: int | None) -> dict:
    loop = asyncio.get_running_loop()
    chunk = os.urandom(chunk_size)
    cat = shutil.which("cat") or "cat"
    pump = None

    def factory():
        nonlocal pump
        pump = Pump(total, chunk)
        return pump

    kwargs = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": None}
    try:
        transport, _ = await loop.subprocess_exec(factory, cat, preexec_fn=_pin(cat_cpu),
                                                  **kwargs)
    except MISSING_API as exc:
        print(f"unsupported: subprocess_exec: {type(exc).__name__}: {exc}", file=sys.stderr)
        os._exit(EXIT_UNSUPPORTED)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    pump.feed()
    await pump.done
    elapsed = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    transport.close()
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    return {"bytes": pump.received, "seconds": elapsed,
            "mb_per_s": pump.received / elapsed / 1e6,
            "cpu_s_per_gib": cpu / (pump.received / 2**30),
            "verified": not pump.mismatch and pump.sent == pump.received == total}


def child(args: argparse.Namespace) -> int:
    try:
        loop = make_loop(args.run)
    except ImportError as exc:
        print(f"not installed: {args.run}: {exc}", file=sys.stderr)
        return 2
    try:
        result = loop.run_until_complete(asyncio.wait_for(
            one_run(args.mb * 2**20, args.chunk, args.cat_cpu), args.timeout))
    finally:
        loop.close()
    print(json.dumps(result))
    return 0 if result["verified"] else 1


def measure(args: argparse.Namespace, loop: str) -> dict:
    cmd = [sys.executable, __file__, "--run", loop, "--mb", str(args.mb),
           "--chunk", str(args.chunk), "--timeout", str(args.timeout)]
    if args.pinned:
        cmd += ["--cat-cpu", str(args.client_cpu)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout + 30,
                              preexec_fn=_pin(args.server_cpu if args.pinned else None))
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": "timed out"}
    if proc.returncode == EXIT_UNSUPPORTED or "unsupported:" in proc.stderr:
        return {"status": "unsupported", "error": proc.stderr.strip().splitlines()[-1]}
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"status": "failed", "error": f"exit {proc.returncode}: {tail}"}
    if not result.get("verified"):
        return dict(result, status="failed", error="bytes came back different")
    return dict(result, status="ok")


def markdown(data: dict) -> str:
    cfg = data["config"]
    out = [f"### Pipe throughput through `cat` ({data['date']}, Python {data['python_short']})",
           "", f"{cfg['mb']} MiB per run in {cfg['chunk']}-byte writes (protocol API, "
           f"flow-controlled), median of {cfg['rounds']} interleaved rounds; the Python "
           f"process pinned to CPU {cfg['server_cpu']}, cat to CPU {cfg['client_cpu']}"
           + ("" if cfg["pinned"] else " (pinning unavailable: not pinned)") + ".", "",
           "| loop | MB/s | ×asyncio | CPU s/GiB (Python process) | spread |",
           "|---|---:|---:|---:|---:|"]
    base = next((r.get("mb_per_s") for r in data["median"] if r["loop"] == "asyncio"), None)
    best = max((r.get("mb_per_s") or 0 for r in data["median"]), default=0)
    notes = []
    for r in data["median"]:
        rate = r.get("mb_per_s")
        if r["status"] != "ok":
            notes.append(f"{r['loop']}: {r['status']} — {r.get('error', '')}")
        if rate is None:
            out.append(f"| {r['loop']} ({r['status']}) | — | — | — | — |")
            continue
        name = f"**{r['loop']}**" if rate == best else r["loop"]
        ratio = f"{rate / base:.2f}×" if base else "—"
        out.append(f"| {name} | {rate:,.0f} | {ratio} | {r['cpu_s_per_gib']:.2f} | "
                   f"{r['mb_per_s_max'] / r['mb_per_s_min']:.2f} |")
    if notes:
        out += ["", "Not measured or failed:", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def median_rows(runs: list[dict], loops: list[str]) -> list[dict]:
    rows = []
    for loop in loops:
        rs = [r for r in runs if r["loop"] == loop]
        ok = [r for r in rs if r["status"] == "ok"]
        row = {"loop": loop, "status": "ok" if len(ok) == len(rs) else
               next(r["status"] for r in rs if r["status"] != "ok")}
        if len(ok) != len(rs):
            row["error"] = next(r["error"] for r in rs if r["status"] != "ok")
        if ok:
            for key in ("mb_per_s", "cpu_s_per_gib"):
                row[key] = statistics.median(r[key] for r in ok)
            row["mb_per_s_min"] = min(r["mb_per_s"] for r in ok)
            row["mb_per_s_max"] = max(r["mb_per_s"] for r in ok)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=256, help="MiB per run (default 256)")
    parser.add_argument("--chunk", type=int, default=65536, help="bytes per write()")
    parser.add_argument("--quick", action="store_true", help="1 round of 16 MiB: a smoke run")
    parser.add_argument("--loops", default=",".join(LOOPS))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--out-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--tag", help="file name stem (default: pipe-<date>-py<ver>)")
    # One measured run in this process (what the driver starts per loop).
    parser.add_argument("--run", choices=LOOPS, help=argparse.SUPPRESS)
    parser.add_argument("--cat-cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        return child(args)
    if args.quick:
        args.rounds, args.mb = 1, 16
    loops = [name for name in args.loops.split(",") if name]
    unknown = [name for name in loops if name not in LOOPS]
    if unknown or args.rounds < 1 or args.mb < 1 or args.chunk < 1:
        parser.error(f"bad arguments (unknown loops: {unknown})")
    cpus = os.sched_getaffinity(0)
    args.pinned = {args.server_cpu, args.client_cpu} <= cpus and args.server_cpu != args.client_cpu
    py = "{}.{}".format(*sys.version_info[:2])
    stem = args.tag or f"pipe-{time.strftime('%Y%m%d')}-py{py}" + ("-quick" if args.quick else "")
    data = {"date": time.strftime("%Y-%m-%d %H:%M"), "python": sys.version, "python_short": py,
            "config": {"rounds": args.rounds, "mb": args.mb, "chunk": args.chunk,
                       "loops": loops, "server_cpu": args.server_cpu,
                       "client_cpu": args.client_cpu, "pinned": args.pinned},
            "runs": []}
    for rnd in range(args.rounds):
        shift = rnd % len(loops)
        for loop in loops[shift:] + loops[:shift]:
            result = dict(measure(args, loop), loop=loop, round=rnd)
            data["runs"].append(result)
            summary = (f"{result['mb_per_s']:8.0f} MB/s  {result['cpu_s_per_gib']:.2f} CPU s/GiB"
                       if result["status"] == "ok" else
                       f"{result['status'].upper()}: {result['error']}")
            print(f"[{rnd + 1}/{args.rounds}] pipe {loop:<10} {summary}", flush=True)
    data["median"] = median_rows(data["runs"], loops)
    save_results(args.out_dir, stem, data, markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
