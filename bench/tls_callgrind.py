"""Server instructions per TLS echo message, by library and function (callgrind).

    python bench/tls_callgrind.py [--loops fastloop,uvloop,aiofastnet] [--size 1024]
                                  [--messages 300,1300] [--top 25]
    python bench/tls_callgrind.py --app uvicorn [--loops fastloop,uvloop] [--seconds 10,30]

For each loop, bench/servers.py --mode tls runs under `valgrind --tool=callgrind`
twice, driven by `loadgen --tls` (10 connections, one message in flight each)
for the two message counts; instructions per message are the difference of
the two runs over the difference of the counts, so interpreter start-up, the
handshakes and the shutdown cancel out. With ``--app uvicorn`` the server is
``bench/framework_servers.py --app uvicorn --tls`` (the ``uvicorn-tls`` row of
``make bench``) and the load is ``wrk -t1 -c10`` for two durations; the counts
are the requests wrk reports (it cannot stop at a count); instrumentation is switched on
(callgrind_control) only once the server listens. The server stops on SIGINT (its loop
stops and the process exits, so callgrind writes its file). Instruction
counts do not depend on how loaded the machine is: this is what the TLS work
is measured with on the shared 2-core box, never timings.

Prints one table per size: per loop, all instructions per message and the
share of OpenSSL, libc, the interpreter (with _ssl) and the loop's own
extension modules; then each loop's top functions per message.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import cbuild  # noqa: E402
from frameworks import parse_wrk  # noqa: E402

CONNECTIONS = 10


def group_of(obj: str) -> str:
    name = os.path.basename(obj)
    if name.startswith(("libssl", "libcrypto")):
        return "OpenSSL"
    if name.startswith(("libc.", "libc-", "ld-linux", "libm.")):
        return "libc"
    if "fastloop" in obj or "uvloop" in obj or "aiofastnet" in obj:
        return "loop extension"
    return "CPython (+ _ssl)"


def run_once(loop: str, size: int, messages: int, loadgen: Path | None, out: Path,
             app: str | None = None) -> int:
    """Serve under callgrind; returns the messages (requests) done. ``app``:
    ``messages`` is wrk's duration in seconds instead of a message count."""
    server_cmd = (["framework_servers.py", "--app", app, "--tls"] if app
                  else ["servers.py", "--mode", "tls"])
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, str(BENCH / server_cmd[0]), *server_cmd[1:], "--loop", loop,
         "--host", "127.0.0.1", "--port", "0", "--lifetime", "900"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([server.stdout], [], [], 180)
        port = server.stdout.readline().strip() if ready else ""
        if not port.isdigit():
            raise RuntimeError(f"{loop}: server did not start: {server.stderr.read()[-2000:]}")
        # Start-up runs uninstrumented (minutes less on a loaded machine);
        # counting starts once the server listens.
        subprocess.run(["callgrind_control", "--instr=on", str(server.pid)],
                       capture_output=True, check=True, timeout=120)
        if app:
            lg = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{messages}s",
                                 f"https://127.0.0.1:{port}/"],
                                capture_output=True, text=True, timeout=messages + 120)
            done = parse_wrk(lg.stdout)
            if lg.returncode != 0 or not done.get("messages") or done["errors"]:
                raise RuntimeError(f"{loop}: wrk: {(lg.stdout + lg.stderr)[-2000:]}")
            return done["messages"]
        lg = subprocess.run([str(loadgen), "--tls", "127.0.0.1", port, str(CONNECTIONS),
                             str(size), "600", "0", str(messages)],
                            capture_output=True, text=True, timeout=900)
        if lg.returncode != 0:
            raise RuntimeError(f"{loop}: loadgen exit {lg.returncode}: {lg.stderr[-2000:]}")
        return messages
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def functions(path: Path) -> dict[tuple[str, str], int]:
    """Self instructions per (object, function) from callgrind_annotate."""
    text = subprocess.run(["callgrind_annotate", "--threshold=100", "--show-percs=no",
                           str(path)], capture_output=True, text=True, check=True).stdout
    out: dict[tuple[str, str], int] = defaultdict(int)
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\S*?:?(\S+)\s+\[(.+)\]\s*$", line)
        if m:
            out[(m.group(3), m.group(2))] += int(m.group(1).replace(",", ""))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", default="fastloop,uvloop,aiofastnet")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--messages", default="300,1300")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--app", choices=["uvicorn"],
                        help="serve this framework over TLS (wrk's load) instead of an echo")
    parser.add_argument("--seconds", default="10,30",
                        help="with --app: wrk's two durations (default: %(default)s)")
    args = parser.parse_args(argv)
    n1, n2 = (int(x) for x in (args.seconds if args.app else args.messages).split(","))
    loadgen = None if args.app else cbuild.build("loadgen")
    per_loop: dict[str, dict[tuple[str, str], float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for loop in args.loops.split(","):
            runs, done = [], []
            try:
                for n in (n1, n2):
                    path = Path(tmp) / f"{loop}-{n}.out"
                    done.append(run_once(loop, args.size, n, loadgen, path, args.app))
                    runs.append(functions(path))
            except RuntimeError as exc:
                print(f"{loop}: not measured: {exc}", file=sys.stderr, flush=True)
                continue
            if done[1] <= done[0]:
                print(f"{loop}: not measured: the longer run did no more ({done})",
                      file=sys.stderr, flush=True)
                continue
            keys = set(runs[0]) | set(runs[1])
            per_loop[loop] = {k: (runs[1].get(k, 0) - runs[0].get(k, 0)) / (done[1] - done[0])
                              for k in keys}
            print(f"{loop}: {done[0]} and {done[1]} messages", file=sys.stderr, flush=True)
    what = (f"uvicorn request over TLS (wrk -c{CONNECTIONS}, {n1} s and {n2} s runs)" if args.app
            else f"{args.size}-byte TLS echo message (({n2} - {n1})-message difference, "
                 f"{CONNECTIONS} connections)")
    print(f"Server instructions per {what}, Python {sys.version.split()[0]}\n")
    groups = ("OpenSSL", "CPython (+ _ssl)", "loop extension", "libc")
    print("| loop | all | " + " | ".join(groups) + " |")
    print("|---|---:|" + "---:|" * len(groups))
    for loop, fns in per_loop.items():
        by_group: dict[str, float] = defaultdict(float)
        for (obj, _), v in fns.items():
            by_group[group_of(obj)] += v
        print(f"| {loop} | {sum(fns.values()):,.0f} | "
              + " | ".join(f"{by_group[g]:,.0f}" for g in groups) + " |")
    for loop, fns in per_loop.items():
        print(f"\n{loop}: top functions per message")
        for (obj, fn), v in sorted(fns.items(), key=lambda kv: -kv[1])[:args.top]:
            print(f"  {v:>9,.0f}  {fn}  [{os.path.basename(obj)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
