"""Server cost per echo message, counted rather than timed (callgrind, strace).

    python bench/callgrind_echo.py [--loops fastloop,rloop,uvloop,asyncio]
        [--rows protocol:1024,protocol:10240,streams:102400,sockets:102400,udp:1024]
        [--connections 10] [--messages SHORT,LONG] [--strace] [--faults] [--keep DIR]

For every loop and row, ``bench/servers.py`` runs under
``valgrind --tool=callgrind`` twice, driven by ``bench/loadgen.c`` (``udp``
rows: ``bench/udpgen.c``, connections = client sockets) with a fixed number
of messages: a short run and a long one. Start-up, imports,
accepting the connections and shutting down are the same in both, so the
difference in instructions divided by the difference in messages is what one
more message costs the server (user space: the interpreter, the loop, libc;
the kernel's side is not counted). With ``--strace`` the same two runs go
under ``strace -f -c`` as well and the syscalls per message are printed by
name. With ``--faults`` they run once more without any tool (server and
load generator pinned to a CPU each, as in ``make bench``), and the
server's minor page faults (``/proc/PID/stat``, read just before it is
stopped) per message are printed: a read that gets fresh pages from the
kernel (an ``mmap``'d or newly grown heap block) pays one fault per 4 KiB.

The numbers are repeatable on a loaded machine, unlike timings, which is why
this is the tool for per-message work; ``make bench`` is the one for speed.
``--top N`` lists the N functions whose (exclusive, or with ``--inclusive``
inclusive) cost per message is highest, the same difference of two runs;
``--keep DIR`` keeps both runs' callgrind files of each (loop, row) for
``callgrind_annotate``. Run it on the Python under study, with
the loops installed, e.g. on 3.15: ``tools/pythons.sh run 3.15
.venv-bench-3.15/bin/python bench/callgrind_echo.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import cbuild  # noqa: E402

HOST = "127.0.0.1"
# Messages of the short and the long run, by size: valgrind runs the server
# ~50x slower, so the large messages get fewer.
COUNTS = {1024: (1000, 5000), 10240: (1000, 5000), 102400: (200, 1000)}
DEFAULT_ROWS = "protocol:1024,protocol:10240,streams:102400,sockets:102400"


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(c) for c in text)
    return out


def minor_faults(pid: int) -> int:
    # Field 10 of /proc/PID/stat; the command name (field 2) may hold spaces.
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def run_once(tool: list[str], loop: str, mode: str, size: int, connections: int,
             messages: int, loadgen: dict, env: dict, faults: list | None = None) -> int:
    """Serve `messages` round trips under `tool`; returns the messages done
    (and appends the server's minor faults so far to `faults`, if given)."""
    cmd = tool + [sys.executable, str(BENCH / "servers.py"), "--loop", loop, "--mode", mode,
                  "--port", "0", "--lifetime", "900"]
    # Without a tool (--faults) the run has the bench's shape: server and
    # load generator pinned to a CPU each, so the server falls behind as it
    # does there and every read finds a whole message waiting.
    cpus = sorted(os.sched_getaffinity(0))
    pin = not tool and len(cpus) >= 2

    def on_cpu(cpu: int):
        return (lambda: os.sched_setaffinity(0, {cpu})) if pin else None

    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, preexec_fn=on_cpu(cpus[0]))
    try:
        ready, _, _ = select.select([server.stdout], [], [], 600)
        port = server.stdout.readline().strip() if ready else ""
        if not port.isdigit():
            raise RuntimeError(f"{loop} {mode}: server did not start: {server.stderr.read()}")
        gen = loadgen["udp" if mode == "udp" else "tcp"]
        lg = subprocess.run([str(gen), HOST, port, str(connections), str(size), "600", "0",
                             str(messages)], capture_output=True, text=True, timeout=700,
                            preexec_fn=on_cpu(cpus[-1]))
        if lg.returncode != 0:
            raise RuntimeError(f"{loop} {mode}: loadgen exit {lg.returncode}: {lg.stderr}")
        done = json.loads(lg.stdout)["messages_total"]
        # SIGINT stops the loop (servers.py), so the tool writes its data;
        # under strace the server is the tracer's child.
        target = server.pid if not tool or tool[0] != "strace" else _children(server.pid)[0]
        if faults is not None:
            faults.append(minor_faults(target))
        os.kill(target, signal.SIGINT)
        server.wait(120)
        return done
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        server.stdout.close()
        server.stderr.close()


def instructions(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def functions(path: Path, inclusive: bool) -> dict[str, int]:
    """Instructions by function (exclusive, or inclusive), from callgrind_annotate."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", f"--inclusive={'yes' if inclusive else 'no'}",
         str(path)], capture_output=True, text=True, check=True).stdout
    costs: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.+)$", line)
        if m and "PROGRAM TOTALS" not in line:
            name = m.group(2).strip()
            costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def syscalls(path: Path) -> dict[str, int]:
    counts = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        # "% time seconds usecs/call calls [errors] syscall"
        if len(fields) >= 5 and re.fullmatch(r"[\d.]+", fields[0]) and fields[-1] != "total":
            counts[fields[-1]] = int(fields[3])
    return counts


def measure(loop: str, mode: str, size: int, args, loadgen: dict, env: dict, tmp: Path) -> dict:
    short, long_ = args.messages or COUNTS.get(size, (1000, 5000))
    result = {}
    ins, done = [], []
    for n in (short, long_):
        out = tmp / f"cg.{loop}.{mode}.{size}.{n}"
        done.append(run_once(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"],
                             loop, mode, size, args.connections, n, loadgen, env))
        ins.append(instructions(out))
    result["instr_per_msg"] = (ins[1] - ins[0]) / (done[1] - done[0])
    if args.top:
        costs = [functions(tmp / f"cg.{loop}.{mode}.{size}.{n}", args.inclusive)
                 for n in (short, long_)]
        per = {name: (costs[1].get(name, 0) - costs[0].get(name, 0)) / (done[1] - done[0])
               for name in costs[1]}
        result["top"] = sorted(per.items(), key=lambda kv: -kv[1])[:args.top]
    if args.keep:
        for n, tag in ((short, "short"), (long_, "long")):
            shutil.copy(tmp / f"cg.{loop}.{mode}.{size}.{n}",
                        Path(args.keep) / f"callgrind.{loop}.{mode}.{size}.{tag}")
    if args.strace:
        calls, done = [], []
        for n in (short, long_):
            out = tmp / f"st.{loop}.{mode}.{size}.{n}"
            done.append(run_once(["strace", "-f", "-c", "-o", str(out)], loop, mode, size,
                                 args.connections, n, loadgen, env))
            calls.append(syscalls(out))
        per = {}
        for name in set(calls[0]) | set(calls[1]):
            d = (calls[1].get(name, 0) - calls[0].get(name, 0)) / (done[1] - done[0])
            if abs(d) >= 0.005:
                per[name] = round(d, 2)
        result["syscalls_per_msg"] = dict(sorted(per.items(), key=lambda kv: -kv[1]))
        result["syscalls_total"] = round(sum(per.values()), 2)
    if args.faults:
        faults, done = [], []
        for n in (short, long_):
            done.append(run_once([], loop, mode, size, args.connections, n, loadgen, env, faults))
        result["faults_per_msg"] = (faults[1] - faults[0]) / (done[1] - done[0])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", default="fastloop,rloop,uvloop,asyncio")
    parser.add_argument("--rows", default=DEFAULT_ROWS, help="MODE:SIZE,... (servers.py modes)")
    parser.add_argument("--connections", type=int, default=10)
    defaults = ", ".join(f"{size}: {short},{long_}" for size, (short, long_) in COUNTS.items())
    parser.add_argument("--messages",
                        help=f"SHORT,LONG: the two runs' messages (default by size: {defaults})")
    parser.add_argument("--strace", action="store_true", help="also count syscalls per message")
    parser.add_argument("--faults", action="store_true",
                        help="also count the server's minor page faults per message")
    parser.add_argument("--keep", help="keep the callgrind files in this folder")
    parser.add_argument("--top", type=int, default=0,
                        help="also list the N functions that cost the most per message")
    parser.add_argument("--inclusive", action="store_true",
                        help="--top by inclusive cost (default: exclusive)")
    args = parser.parse_args(argv)
    if args.messages:
        args.messages = tuple(int(n) for n in args.messages.split(","))
        if len(args.messages) != 2 or not 0 < args.messages[0] < args.messages[1]:
            parser.error("--messages takes SHORT,LONG with 0 < SHORT < LONG")
    if shutil.which("valgrind") is None:
        print("callgrind_echo: valgrind is not installed", file=sys.stderr)
        return 1
    loadgen = {"tcp": cbuild.build("loadgen"), "udp": cbuild.build("udpgen")}
    env = dict(os.environ)
    # The in-place build of this checkout, whatever venv runs us.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH.parent),
                                                      env.get("PYTHONPATH", "")]))
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    rows = [(m, int(s)) for m, s in (r.split(":") for r in args.rows.split(","))]
    print(f"Python {sys.version.split()[0]}, {args.connections} connections; "
          "server instructions (and syscalls) per message")
    with tempfile.TemporaryDirectory() as tmp:
        for mode, size in rows:
            for loop in args.loops.split(","):
                try:
                    r = measure(loop, mode, size, args, loadgen, env, Path(tmp))
                except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                    print(f"{mode:9} {size:>7} {loop:9} failed: {exc}", flush=True)
                    continue
                line = f"{mode:9} {size:>7} {loop:9} {r['instr_per_msg']:>10,.0f} instr/msg"
                if "faults_per_msg" in r:
                    line += f"  {r['faults_per_msg']:6.2f} minor faults/msg"
                if "syscalls_total" in r:
                    line += f"  {r['syscalls_total']:5.2f} syscalls/msg {r['syscalls_per_msg']}"
                print(line, flush=True)
                for name, cost in r.get("top", []):
                    print(f"    {cost:>9,.0f}  {name[:150]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
