"""Micro benchmarks of the loop core, side by side, as ratios to asyncio.

    python bench/micro.py [--rounds 5] [--loops asyncio,fastloop,uvloop,rloop] [--json FILE]

Each (benchmark, loop) pair runs in a fresh subprocess; rounds are interleaved
across loops so machine noise hits every loop alike, and the median of the
rounds is reported. Loops that are not installed are skipped and said so.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

from servers import make_loop  # the one place that knows how to build each loop

BENCHMARKS = {
    "call_soon": 200_000,
    "timer schedule+cancel": 200_000,
    "timers that fire": 50_000,
    "sleep(0) task switching": 100_000,
    "future create/resolve/await": 100_000,
    "call_soon_threadsafe": 200_000,
}


def bench_call_soon(loop, n):
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count < n:
            loop.call_soon(cb)
        else:
            loop.stop()

    loop.call_soon(cb)
    t0 = time.perf_counter()
    loop.run_forever()
    return time.perf_counter() - t0


def bench_timer_cancel(loop, n):
    def noop():
        pass

    async def main():
        for i in range(n):
            loop.call_later(10.0 + i * 1e-6, noop).cancel()
            if i % 1000 == 0:
                await asyncio_sleep0()

    t0 = time.perf_counter()
    loop.run_until_complete(main())
    return time.perf_counter() - t0


def asyncio_sleep0():
    import asyncio

    return asyncio.sleep(0)


def bench_timers_fire(loop, n):
    fired = 0

    def cb():
        nonlocal fired
        fired += 1
        if fired == n:
            loop.stop()

    base = loop.time()
    for i in range(n):
        loop.call_at(base + (i % 100) * 1e-5, cb)
    t0 = time.perf_counter()
    loop.run_forever()
    return time.perf_counter() - t0


def bench_sleep0(loop, n):
    import asyncio

    async def main():
        for _ in range(n):
            await asyncio.sleep(0)

    t0 = time.perf_counter()
    loop.run_until_complete(main())
    return time.perf_counter() - t0


def bench_futures(loop, n):
    async def main():
        for _ in range(n):
            fut = loop.create_future()
            loop.call_soon(fut.set_result, None)
            await fut

    t0 = time.perf_counter()
    loop.run_until_complete(main())
    return time.perf_counter() - t0


def bench_threadsafe(loop, n):
    import threading

    count = 0

    def cb():
        nonlocal count
        count += 1
        if count == n:
            loop.stop()

    def producer():
        for _ in range(n):
            loop.call_soon_threadsafe(cb)

    thread = threading.Thread(target=producer)
    t0 = time.perf_counter()
    loop.call_soon(thread.start)
    loop.run_forever()
    elapsed = time.perf_counter() - t0
    thread.join()
    return elapsed


FUNCS = {
    "call_soon": bench_call_soon,
    "timer schedule+cancel": bench_timer_cancel,
    "timers that fire": bench_timers_fire,
    "sleep(0) task switching": bench_sleep0,
    "future create/resolve/await": bench_futures,
    "call_soon_threadsafe": bench_threadsafe,
}


def child(bench, loop_name, n=None):
    """One benchmark on one loop, in this process: prints its ops/s as JSON.
    (bench/metrics_overhead.py runs this too, with its own ``n``.)"""
    n = n or BENCHMARKS[bench]
    loop = make_loop(loop_name)
    try:
        seconds = FUNCS[bench](loop, n)
    finally:
        loop.close()
    print(json.dumps({"ops_per_s": n / seconds}))


def available(name):
    probe = f"import {name if name != 'asyncio' else 'asyncio'}"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loops", default="asyncio,fastloop,uvloop,rloop")
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--child", nargs=2, metavar=("BENCH", "LOOP"),
                        help="run one benchmark on one loop in this process")
    parser.add_argument("-n", type=int, help="with --child: operations instead of the default")
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.n)
        return
    loops = [name for name in args.loops.split(",") if available(name)]
    skipped = sorted(set(args.loops.split(",")) - set(loops))
    if skipped:
        print(f"not installed, skipped: {', '.join(skipped)}")
    results = {bench: {name: [] for name in loops} for bench in BENCHMARKS}
    for _ in range(args.rounds):
        for bench in BENCHMARKS:
            for name in loops:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", bench, name],
                    capture_output=True, text=True, check=True,
                )
                results[bench][name].append(json.loads(out.stdout)["ops_per_s"])
    medians = {b: {n: statistics.median(v) for n, v in r.items()} for b, r in results.items()}
    header = "| benchmark | " + " | ".join(f"{n} ops/s" for n in loops)
    header += " | " + " | ".join(f"{n} ×asyncio" for n in loops if n != "asyncio") + " |"
    print(header)
    print("|" + "---|" * (1 + len(loops) + len(loops) - 1))
    for bench, row in medians.items():
        cells = [f"{row[n]:,.0f}" for n in loops]
        ratios = [f"{row[n] / row['asyncio']:.2f}×" for n in loops if n != "asyncio"]
        print(f"| {bench} | " + " | ".join(cells + ratios) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version, "rounds": args.rounds, "raw": results,
                       "median": medians}, f, indent=2)


if __name__ == "__main__":
    main()
