"""A live one-line view of a fastloop loop's metrics, beside a running server.

    python examples/loop_top.py [--port 8888] [--interval 1] [--duration 0]

Starts the protocol echo server on fastloop and, every interval, prints what
its loop did since the last line: iterations and callbacks per second, the
share of time waiting in the poller, the ready-queue high-water mark, timer
lag, fds registered, and the slowest callback seen. Drive it with
`python examples/echo_client.py --port 8888 --duration 10`.
"""

import argparse
import asyncio

import fastloop


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


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
    before = fastloop.metrics(loop)
    ticks = 0
    while not args.duration or ticks * args.interval < args.duration:
        await asyncio.sleep(args.interval)
        now = fastloop.metrics(loop)
        print(line(now, before, args.interval), flush=True)
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
    try:
        fastloop.run(main(parser.parse_args()))
    except KeyboardInterrupt:
        pass
