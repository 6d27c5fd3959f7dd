"""A busy loop with no I/O registered skips its non-blocking poll (no syscall
per iteration); nothing a program can observe may change because of it.

Each scenario runs on fastloop and on the stdlib loop and records in which
iteration of a call_soon chain something arrives; the two must agree.
"""

import os
import signal
import socket
import threading

from conftest import same_on_both_loops as both

CHAIN = 40




def chain(loop, at_step, log):
    """Run CHAIN iterations of a call_soon chain, calling at_step(i) in each."""
    step = 0

    def tick():
        nonlocal step
        log.append(("tick", step))
        at_step(step)
        step += 1
        if step < CHAIN:
            loop.call_soon(tick)
        else:
            loop.stop()

    loop.call_soon(tick)
    loop.run_forever()
    return log


def test_signal_during_busy_chain_arrives_in_the_same_iteration():
    def scenario(loop):
        log = []
        loop.add_signal_handler(signal.SIGUSR1, log.append, "signal")

        def at_step(i):
            if i == 5:
                os.kill(os.getpid(), signal.SIGUSR1)

        try:
            return chain(loop, at_step, log)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    log = both(scenario)
    assert "signal" in log


def test_signal_handler_removed_then_added_again():
    def scenario(loop):
        log = []
        loop.add_signal_handler(signal.SIGUSR2, log.append, "first")
        loop.remove_signal_handler(signal.SIGUSR2)
        loop.add_signal_handler(signal.SIGUSR2, log.append, "second")

        def at_step(i):
            if i == 3:
                os.kill(os.getpid(), signal.SIGUSR2)

        try:
            return chain(loop, at_step, log)
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)

    assert "second" in both(scenario)


def test_reader_added_during_busy_chain_fires_in_the_same_iteration():
    def scenario(loop):
        log = []
        a, b = socket.socketpair()

        def at_step(i):
            if i == 4:
                b.send(b"x")
                loop.add_reader(a, lambda: (log.append(("read", a.recv(1))), loop.remove_reader(a)))

        try:
            return chain(loop, at_step, log)
        finally:
            a.close()
            b.close()

    assert ("read", b"x") in both(scenario)


def test_threadsafe_posts_during_busy_chain_all_run():
    def scenario(loop):
        ran = []
        posted = threading.Event()

        def post():
            for i in range(100):
                loop.call_soon_threadsafe(ran.append, i)
            posted.set()

        def at_step(i):
            if i == 2:
                threading.Thread(target=post).start()
            if i == CHAIN - 2:
                posted.wait(10)

        chain(loop, at_step, [])
        loop.call_soon(loop.stop)
        loop.run_forever()
        return ran

    assert both(scenario) == list(range(100))
