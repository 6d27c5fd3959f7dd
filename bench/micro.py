"""Micro benchmarks of the loop core at several scales, side by side.

    python bench/micro.py [--profile quick|full] [--rounds N] [--loops asyncio,fastloop,...]
                          [--only BENCH[,BENCH]] [--json FILE]
    python bench/micro.py --one BENCH SCALE LOOP [--ops N]   # one run, in this process

Every benchmark has a scale parameter and is measured at each of its scales
(SCALES): how many callbacks one scheduling callback queues, how many timers
are live in the heap, how big a burst of already-due timers is, how many tasks
switch, how many threads post. A (benchmark, scale, loop) run happens in a
fresh subprocess; within a round the loops run back to back in an order that
rotates from round to round, so machine noise hits every loop alike, and the
table reports the median of the rounds as operations per second and as ratios
(to asyncio, and fastloop to the best other loop). Loops that are not
installed are skipped and said so.

``--one`` runs a single benchmark in this process with a given number of
operations and prints its result: what bench/callgrind_micro.py runs under
valgrind to count instructions per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time

from servers import make_loop  # the one place that knows how to build each loop

# name -> (what the scale counts, scales, operations per run: full, quick)
SCALES = {
    "call_soon": ("callbacks per batch", (1, 100, 10_000), (200_000, 40_000)),
    "timers": ("live timers", (10, 10_000, 1_000_000), (100_000, 20_000)),
    "due burst": ("already-due timers per burst", (100, 10_000, 100_000), (200_000, 100_000)),
    "sleep(0)": ("tasks", (1, 100, 10_000), (100_000, 20_000)),
    "futures": ("tasks", (1, 100, 10_000), (100_000, 20_000)),
    "call_soon_threadsafe": ("posting threads", (1, 4), (200_000, 40_000)),
    "gc": ("live timers", (10_000, 100_000, 1_000_000), (5, 2)),
}
# What each benchmark reports: one rate, or (timers) one per phase.
METRICS = {"timers": ("schedule", "cancel", "fire")}
DESCRIPTIONS = {
    "call_soon": "one scheduling callback queues a batch of `call_soon(cb)` and then "
                 "itself again; ops = callbacks run",
    "timers": "`call_at` at random deadlines with N other timers live in the heap: "
              "schedule (an hour ahead), cancel (in random order) and fire (deadlines "
              "already passed, random order) timed separately. Already-due timers run "
              "in deadline order on asyncio and fastloop, in scheduling order on uvloop "
              "and rloop (tests/test_timers.py), so fire and due burst make fastloop "
              "visit the handles in an order unrelated to their allocation",
    "due burst": "one callback schedules a burst of `call_at` whose deadlines have "
                 "already passed (random order), then the loop fires them; schedule+fire",
    "sleep(0)": "N tasks each looping over `await asyncio.sleep(0)`; ops = switches",
    "futures": "N tasks each looping over create_future / call_soon(set_result) / await",
    "call_soon_threadsafe": "N threads post `call_soon_threadsafe(cb)` to a running "
                            "loop; ops = callbacks run",
    "gc": "full cyclic collections (`gc.collect()`) while N timers at random deadlines "
          "are pending and held by the caller, as a program with that many timeouts "
          "holds them; ops = collections. A collection's pause grows with what it "
          "traverses: on asyncio and fastloop every handle and its copied context is "
          "a GC object (a cycle through a handle must be collected), rloop's handles "
          "are not",
}
YIELD_EVERY = 1000  # the timer loops give the loop an iteration this often


def _run_until(loop, coro):
    return loop.run_until_complete(coro)


def _run_tasks(loop, worker, tasks):
    """Seconds until ``tasks`` tasks running ``worker()`` have all finished."""
    async def main():
        workers = [loop.create_task(worker()) for _ in range(tasks)]
        t0 = time.perf_counter()
        await asyncio.gather(*workers)
        return time.perf_counter() - t0

    return _run_until(loop, main())


# ------------------------------------------------------------ benchmarks
# Each takes (loop, scale, ops) and returns {metric: seconds for ops operations}.


def bench_call_soon(loop, batch, ops):
    batches = max(1, ops // batch)
    done = 0

    def cb():
        pass

    def schedule():
        nonlocal done
        if done == batches:
            loop.stop()
            return
        done += 1
        call_soon = loop.call_soon
        for _ in range(batch):
            call_soon(cb)
        call_soon(schedule)

    loop.call_soon(schedule)
    t0 = time.perf_counter()
    loop.run_forever()
    return {"call_soon": (time.perf_counter() - t0) * ops / (batches * batch)}


def bench_timers(loop, live, ops, phase_ops=None):
    """phase_ops=(schedule, cancel, fire) sets each phase's count (cancel <=
    schedule); bench/callgrind_micro.py varies one at a time."""
    n_schedule, n_cancel, n_fire = phase_ops or (ops, ops, ops)
    rng = random.Random(live)
    fired = 0
    all_fired = None

    def noop():
        pass

    def count():
        nonlocal fired
        fired += 1
        if fired == n_fire:
            all_fired.set_result(None)

    async def main():
        nonlocal all_fired
        now = loop.time()
        hour = 3600.0
        # The live timers, an hour or two ahead: they never fire during the run.
        kept = [loop.call_at(now + hour + rng.random() * hour, noop) for _ in range(live)]
        await asyncio.sleep(0)
        deadlines = [loop.time() + hour + rng.random() * hour for _ in range(n_schedule)]
        call_at = loop.call_at
        handles = []
        append = handles.append
        t0 = time.perf_counter()
        for i in range(0, n_schedule, YIELD_EVERY):
            for when in deadlines[i:i + YIELD_EVERY]:
                append(call_at(when, noop))
            await asyncio.sleep(0)
        t_schedule = time.perf_counter() - t0
        rng.shuffle(handles)
        t0 = time.perf_counter()
        for i in range(0, n_cancel, YIELD_EVERY):
            for h in handles[i:min(i + YIELD_EVERY, n_cancel)]:
                h.cancel()
            await asyncio.sleep(0)
        t_cancel = time.perf_counter() - t0
        del handles
        # Fire: deadlines in the last second, in random order, popped from a
        # heap that still holds the live timers.
        now = loop.time()
        past = [now - rng.random() for _ in range(n_fire)]
        all_fired = loop.create_future()
        if not n_fire:
            all_fired.set_result(None)
        for when in past:
            call_at(when, count)
        # They are popped and run in the next iteration (plus one wake-up).
        t0 = time.perf_counter()
        await all_fired
        t_fire = time.perf_counter() - t0
        for h in kept:
            h.cancel()
        # Seconds for ``ops`` operations of each phase (None: phase not run).
        return {"schedule": t_schedule * ops / n_schedule if n_schedule else None,
                "cancel": t_cancel * ops / n_cancel if n_cancel else None,
                "fire": t_fire * ops / n_fire if n_fire else None}

    return _run_until(loop, main())


def bench_due_burst(loop, burst, ops):
    rng = random.Random(burst)
    bursts = max(1, ops // burst)
    offsets = [rng.random() for _ in range(burst)]
    fired = 0
    left = bursts

    def cb():
        nonlocal fired, left
        fired += 1
        if fired == burst:
            fired = 0
            left -= 1
            if left:
                loop.call_soon(schedule)
            else:
                loop.stop()

    def schedule():
        now = loop.time()
        call_at = loop.call_at
        for off in offsets:
            call_at(now - off, cb)

    loop.call_soon(schedule)
    t0 = time.perf_counter()
    loop.run_forever()
    return {"due burst": (time.perf_counter() - t0) * ops / (bursts * burst)}


def bench_sleep0(loop, tasks, ops):
    per_task = max(1, ops // tasks)

    async def worker():
        sleep = asyncio.sleep
        for _ in range(per_task):
            await sleep(0)

    return {"sleep(0)": _run_tasks(loop, worker, tasks) * ops / (per_task * tasks)}


def bench_futures(loop, tasks, ops):
    per_task = max(1, ops // tasks)

    async def worker():
        create_future = loop.create_future
        call_soon = loop.call_soon
        for _ in range(per_task):
            fut = create_future()
            call_soon(fut.set_result, None)
            await fut

    return {"futures": _run_tasks(loop, worker, tasks) * ops / (per_task * tasks)}


def bench_gc(loop, live, ops):
    rng = random.Random(live)
    now = loop.time()
    kept = [loop.call_at(now + 3600 + rng.random() * 3600, _gc_noop) for _ in range(live)]
    gc.collect()        # what was garbage before is not the loop's to pay for
    t0 = time.perf_counter()
    for _ in range(ops):
        gc.collect()
    elapsed = time.perf_counter() - t0
    for h in kept:
        h.cancel()
    return {"gc": elapsed}


def _gc_noop():
    pass


def bench_threadsafe(loop, threads, ops):
    per_thread = max(1, ops // threads)
    total = per_thread * threads
    count = 0
    start = threading.Event()

    def cb():
        nonlocal count
        count += 1
        if count == total:
            loop.stop()

    def producer():
        start.wait()
        post = loop.call_soon_threadsafe
        for _ in range(per_thread):
            post(cb)

    workers = [threading.Thread(target=producer) for _ in range(threads)]
    for w in workers:
        w.start()
    t0 = time.perf_counter()
    loop.call_soon(start.set)
    loop.run_forever()
    elapsed = time.perf_counter() - t0
    for w in workers:
        w.join()
    return {"call_soon_threadsafe": elapsed * ops / total}


FUNCS = {
    "call_soon": bench_call_soon,
    "timers": bench_timers,
    "due burst": bench_due_burst,
    "sleep(0)": bench_sleep0,
    "futures": bench_futures,
    "call_soon_threadsafe": bench_threadsafe,
    "gc": bench_gc,
}


def run_one(bench: str, scale: int, loop_name: str, ops: int, phase_ops=None) -> dict:
    """{metric: operations per second} for one run in this process."""
    loop = make_loop(loop_name)
    try:
        if phase_ops:
            seconds = FUNCS[bench](loop, scale, ops, phase_ops)
        else:
            seconds = FUNCS[bench](loop, scale, ops)
    finally:
        loop.close()
    return {metric: ops / s if s else None for metric, s in seconds.items()}


class GCCount:
    """Cyclic collections per generation while a run lasts (gc.callbacks)."""

    def __init__(self):
        self.per_generation = {}

    def __call__(self, phase, info):
        if phase == "start":
            gen = info["generation"]
            self.per_generation[gen] = self.per_generation.get(gen, 0) + 1

    def __enter__(self):
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        gc.callbacks.remove(self)


# ------------------------------------------------------------- the driver


def available(name: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {name}"],
                          capture_output=True).returncode == 0


def metrics_of(bench: str) -> tuple[str, ...]:
    return METRICS.get(bench, (bench,))


def plan(benches: list[str], profile: str) -> list[tuple[str, int, int]]:
    """(benchmark, scale, ops) for every run of one loop in one round."""
    col = 0 if profile == "full" else 1
    return [(b, scale, SCALES[b][2][col]) for b in benches for scale in SCALES[b][1]]


def _marked(read):
    getppid = os.getppid

    def perf_counter():
        getppid()
        return read()
    return perf_counter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("quick", "full"), default="full",
                        help="quick: fewer operations per run and 1 round unless --rounds")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--loops", default="asyncio,fastloop,uvloop,rloop")
    parser.add_argument("--only", help="comma-separated benchmarks (default: all)")
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--one", nargs=3, metavar=("BENCH", "SCALE", "LOOP"),
                        help="run one benchmark in this process and print its result")
    parser.add_argument("--ops", type=int, help="operations for --one")
    parser.add_argument("--phase-ops", help="timers with --one: SCHEDULE,CANCEL,FIRE counts")
    parser.add_argument("--mark", action="store_true",
                        help="with --one: every timer read first calls os.getppid(), a libc "
                             "symbol callgrind can find in a stripped interpreter "
                             "(bench/callgrind_micro.py)")
    parser.add_argument("--gc", action="store_true",
                        help="with --one: also count cyclic GC collections per generation")
    args = parser.parse_args(argv)
    if args.one:
        bench, scale, loop_name = args.one
        ops = args.ops or SCALES[bench][2][1]
        phase_ops = tuple(int(x) for x in args.phase_ops.split(",")) if args.phase_ops else None
        if args.mark:
            time.perf_counter = _marked(time.perf_counter)
        with GCCount() as collections:
            result = run_one(bench, int(scale), loop_name, ops, phase_ops)
        if args.gc:
            result["gc_collections"] = collections.per_generation
        print(json.dumps(result))
        return 0
    benches = args.only.split(",") if args.only else list(SCALES)
    unknown = [b for b in benches if b not in SCALES]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(SCALES)}")
    rounds = args.rounds or (5 if args.profile == "full" else 1)
    wanted = args.loops.split(",")
    loops = [name for name in wanted if available(name)]
    skipped = sorted(set(wanted) - set(loops))
    if skipped:
        print(f"not installed, skipped: {', '.join(skipped)}", flush=True)
    runs = plan(benches, args.profile)
    raw = {(b, s, m): {n: [] for n in loops} for b, s, _ in runs for m in metrics_of(b)}
    started = time.monotonic()
    for r in range(rounds):
        order = loops[r % len(loops):] + loops[:r % len(loops)]
        for bench, scale, ops in runs:
            for name in order:
                out = subprocess.run(
                    [sys.executable, __file__, "--one", bench, str(scale), name,
                     "--ops", str(ops)],
                    capture_output=True, text=True)
                if out.returncode:
                    print(f"{bench} at {scale} on {name} failed:\n{out.stderr}", file=sys.stderr)
                    continue
                for metric, rate in json.loads(out.stdout.splitlines()[-1]).items():
                    raw[(bench, scale, metric)][name].append(rate)
        print(f"round {r + 1}/{rounds} done ({time.monotonic() - started:.0f} s)", flush=True)
    rows = []
    for (bench, scale, metric), per_loop in raw.items():
        rows.append({
            "bench": bench, "scale": scale, "metric": metric,
            "raw": per_loop,
            "median": {n: statistics.median(v) for n, v in per_loop.items() if v},
        })
    data = {
        "format": 2, "python": sys.version, "profile": args.profile, "rounds": rounds,
        "loops": loops, "skipped": skipped, "elapsed_s": time.monotonic() - started,
        "scales": {b: {"counts": SCALES[b][0], "description": DESCRIPTIONS[b]} for b in benches},
        "rows": rows,
    }
    from report import micro_markdown

    print(micro_markdown(data))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
