"""A live one-line view of a fastloop loop's metrics, beside a running server.

    python examples/loop_top.py [--port 8888] [--interval 1] [--duration 0]
                                [--watchdog 0.1] [--block-every 0]

Starts the protocol echo server on fastloop and, every interval, prints what
its loop did since the last line: iterations and callbacks per second, the
share of time waiting in the poller, the ready-queue high-water mark, timer
lag, fds registered, the slowest callback seen, and the last block the
watchdog caught (where, and for how long). A new watchdog report is printed
in full under its line. Drive it with
`python examples/echo_client.py --port 8888 --duration 10`; `--block-every 2`
adds a callback that blocks the loop every 2 seconds, to see a report.
"""

import argparse
import asyncio
import time

import fastloop


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


def simulate_blocking_call(seconds):
    time.sleep(seconds)     # what the watchdog will name: this function, this line


def last_block(report):
    if report is None:
        return "last block -"
    where = report.where
    at = f"{where.name}() {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else "(C)"
    took = report.duration if report.duration is not None else report.blocked
    return f"last block {took * 1e3:.0f} ms in {at}"


def line(now, before, seconds):
    rate = {k: (now[k] - before[k]) / seconds for k in ("iterations", "callbacks")}
    busy = now["callback_seconds"] - before["callback_seconds"]
    wait = now["poll_seconds"] - before["poll_seconds"]
    waiting = wait / (wait + busy) * 100 if wait + busy > 0 else 100.0
    slowest = now["longest_callback"] or "-"
    return (
        f"iter/s {rate['iterations']:>9,.0f}  cb/s {rate['callbacks']:>9,.0f}  "
        f"poll {waiting:5.1f}%  ready max {now['ready_max']:>5}  "
        f"timers {now['timers_pending']:>4}  lag max {now['timer_lag_max_seconds'] * 1e3:6.2f} ms  "
        f"fds {now['fds_registered']:>4}  slowest {now['longest_callback_seconds'] * 1e3:.0f} ms "
        f"{slowest}"
    )


async def main(args):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, args.host, args.port)
    print(f"listening on {args.host}:{server.sockets[0].getsockname()[1]}", flush=True)
    if args.watchdog:
        loop.watchdog(args.watchdog, callback=lambda report: None)   # keep reports, log none
    if args.block_every:
        def block():
            simulate_blocking_call(args.watchdog * 2 if args.watchdog else 0.2)
            loop.call_later(args.block_every, block)

        loop.call_later(args.block_every, block)
    before = fastloop.metrics(loop)
    shown = None
    ticks = 0
    while not args.duration or ticks * args.interval < args.duration:
        await asyncio.sleep(args.interval)
        now = fastloop.metrics(loop)
        report = loop.last_watchdog_report()
        print(f"{line(now, before, args.interval)}  {last_block(report)}", flush=True)
        if report is not None and report is not shown and report.finished:
            print("\n".join("    " + text for text in report.format().splitlines()), flush=True)
            shown = report
        before = now
        ticks += 1
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=0,
                        help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--watchdog", type=float, default=0.1, metavar="SECONDS",
                        help="report callbacks that block the loop longer than this "
                             "(default 0.1; 0: off)")
    parser.add_argument("--block-every", type=float, default=0, metavar="SECONDS",
                        help="block the loop for twice the watchdog threshold this often "
                             "(a demonstration; default: never)")
    try:
        fastloop.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        pass
