"""The portable SelectorPoller (FASTLOOP_POLLER=selectors) runs the same scenarios."""

import os
import subprocess
import sys
import textwrap

import pytest

SCENARIOS = textwrap.dedent("""
    import asyncio, socket, time
    import fastloop

    async def echo_server():
        async def handle(reader, writer):
            data = await reader.read(100)
            writer.write(data.upper())
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        await writer.drain()
        reply = await reader.read()
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return reply

    loop = fastloop.new_event_loop()
    print("poller", loop._poller_name())
    print("echo", loop.run_until_complete(echo_server()))

    out = []
    t0 = loop.time()
    for k in (3, 1, 2):
        loop.call_at(t0 + 0.01 * k, lambda k=k: out.append((k, loop.time() >= t0 + 0.01 * k)))
    loop.call_soon(out.append, "soon")
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    print("timers", out)

    a, b = socket.socketpair()
    got = []
    def on_read():
        got.append(a.recv(10))
        if len(got) == 2:
            print("remove", loop.remove_reader(a), loop.remove_reader(a))
            loop.stop()
        else:
            b.send(b"second")
    loop.add_reader(a, on_read)
    b.send(b"first")
    loop.call_later(5, loop.stop)  # hang guard only
    loop.run_forever()
    print("reader", got)
    a.close()
    b.close()
    loop.close()
""")

EXPECTED = [
    "echo b'PING'",
    "timers ['soon', (1, True), (2, True), (3, True)]",
    "remove True False",
    "reader [b'first', b'second']",
]


# epoll exists only on Linux; elsewhere the default, and FASTLOOP_POLLER=epoll,
# give the selectors-based poller, which is then what users run.
NATIVE = "EpollPoller" if sys.platform.startswith("linux") else "SelectorPoller"


@pytest.mark.parametrize("env_value, poller", [
    (None, NATIVE),
    ("selectors", "SelectorPoller"),
    ("epoll", NATIVE),
])
def test_scenarios_under_each_poller(env_value, poller):
    env = dict(os.environ)
    env.pop("FASTLOOP_POLLER", None)
    if env_value is not None:
        env["FASTLOOP_POLLER"] = env_value
    res = subprocess.run([sys.executable, "-c", SCENARIOS], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"poller {poller}"
    assert lines[1:] == EXPECTED


def test_invalid_poller_name_is_rejected():
    env = dict(os.environ, FASTLOOP_POLLER="kqueue-please")
    res = subprocess.run([sys.executable, "-c", "import fastloop; fastloop.new_event_loop()"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "FASTLOOP_POLLER must be 'epoll' or 'selectors'" in res.stderr
