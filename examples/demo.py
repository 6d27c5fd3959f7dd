"""`make demo`: the examples, run on fastloop, with what they did.

1. the reverse server (loop.sock_*) with three concurrent clients;
2. the chat hub with three friends and one broadcast;
3. a few seconds of echo load against the same echo server on asyncio and on
   fastloop, side by side: requests/s and the server's CPU time per message.
"""

import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable


def example(name):
    return os.path.join(HERE, name)


def banner(text):
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def start_server(args):
    proc = subprocess.Popen(
        [PY, *args, "--port", "0"], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    first = proc.stdout.readline()
    match = re.search(r"listening on ([\d.]+):(\d+)", first)
    if not match:
        proc.kill()
        raise SystemExit(f"server did not start: {first!r}")
    return proc, int(match.group(2))


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def cpu_seconds(pid):
    # utime + stime of the server process, in clock ticks (/proc/PID/stat).
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reverse_demo():
    banner("reverse server (loop.sock_*) on fastloop, three concurrent clients")
    server, port = start_server([example("reverse_server.py"), "--loop", "fastloop",
                                 "--max-clients", "3"])
    try:
        subprocess.run([PY, example("reverse_client.py"), "--loop", "fastloop",
                        "--port", str(port), "--clients", "3"], check=True, timeout=30)
        server.wait(10)
        for line in server.stdout:
            print(f"  server: {line.rstrip()}")
    finally:
        stop(server)


def broadcast_demo():
    banner("broadcast to three friends through the local chat hub, on fastloop")
    subprocess.run([PY, example("broadcast.py"), "--loop", "fastloop", "I bought a car!"],
                   check=True, timeout=30)


def echo_run(server_loop, seconds):
    server, port = start_server([example("echo_server.py"), "--mode", "protocol",
                                 "--loop", server_loop])
    try:
        time.sleep(0.2)
        cpu0 = cpu_seconds(server.pid)
        out = subprocess.run(
            [PY, example("echo_client.py"), "--loop", "fastloop", "--port", str(port),
             "--connections", "10", "--size", "1024", "--duration", str(seconds), "--json"],
            check=True, capture_output=True, text=True, timeout=seconds + 30,
        )
        cpu = cpu_seconds(server.pid) - cpu0
    finally:
        stop(server)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu_us_per_msg"] = cpu / result["messages"] * 1e6
    return result


def echo_demo(seconds=3):
    banner(f"echo, 10 connections x 1 KiB, {seconds} s per server loop (same client)")
    rows = {}
    for loop_name in ("asyncio", "fastloop"):
        rows[loop_name] = echo_run(loop_name, seconds)
    print(f"{'server loop':<12} {'requests/s':>12} {'server CPU µs/msg':>19}")
    for loop_name, r in rows.items():
        print(f"{loop_name:<12} {r['rps']:>12,.0f} {r['server_cpu_us_per_msg']:>19.1f}")
    a, f = rows["asyncio"], rows["fastloop"]
    print(f"fastloop: {f['rps'] / a['rps']:.2f}x the requests/s, "
          f"{a['server_cpu_us_per_msg'] / f['server_cpu_us_per_msg']:.2f}x less server CPU "
          "per message (one noisy run; bench/ has the careful numbers)")


def main():
    reverse_demo()
    broadcast_demo()
    echo_demo()
    print("\ndemo finished")


if __name__ == "__main__":
    main()
