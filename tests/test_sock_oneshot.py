"""sock_* waits keep a disabled one-shot epoll registration between waits
(one epoll_ctl per wait instead of two). What a program sees must not change,
and a registration left behind must never wake the loop.
"""

import asyncio
import socket

from conftest import LOOPS

import fastloop


def both(scenario):
    results = {}
    for name, factory in LOOPS.items():
        loop = factory()
        try:
            results[name] = loop.run_until_complete(scenario(loop))
        finally:
            loop.close()
    assert results["fastloop"] == results["asyncio"]
    return results["fastloop"]


def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


async def later(loop, delay, fn, *args):
    await asyncio.sleep(delay)
    fn(*args)


def test_after_a_wait_the_fd_is_not_registered():
    async def scenario(loop):
        a, b = pair()
        try:
            loop.call_later(0.01, b.send, b"one")
            got = await loop.sock_recv(a, 10)
            key_missing = a.fileno() not in loop._selector.get_map()
            removed = loop.remove_reader(a.fileno())
            return got, key_missing, removed
        finally:
            a.close()
            b.close()

    assert both(scenario) == (b"one", True, False)


def test_user_reader_on_a_parked_fd_then_wait_again():
    async def scenario(loop):
        a, b = pair()
        log = []
        try:
            loop.call_later(0.01, b.send, b"1")
            log.append(await loop.sock_recv(a, 10))
            fired = loop.create_future()
            loop.add_reader(a, lambda: fired.done() or fired.set_result(a.recv(10)))
            b.send(b"2")
            log.append(await fired)
            log.append(loop.remove_reader(a))
            loop.call_later(0.01, b.send, b"3")
            log.append(await loop.sock_recv(a, 10))
            return log
        finally:
            a.close()
            b.close()

    assert both(scenario) == [b"1", b"2", True, b"3"]


def test_fd_number_reused_after_close_while_parked():
    async def scenario(loop):
        a, b = pair()
        loop.call_later(0.01, b.send, b"old")
        first = await loop.sock_recv(a, 10)
        fd = a.fileno()
        a.close()
        b.close()
        c, d = pair()
        try:
            same_number = fd in (c.fileno(), d.fileno())
            reader = c if c.fileno() == fd else d
            writer = d if reader is c else c
            loop.call_later(0.01, writer.send, b"new")
            return first, same_number, await asyncio.wait_for(loop.sock_recv(reader, 10), 5)
        finally:
            c.close()
            d.close()

    assert both(scenario) == (b"old", True, b"new")


def test_data_stolen_before_the_waiter_runs_keeps_it_waiting():
    # The waiter wakes up, finds nothing (another callback read it) and must
    # wait for the next event: the one-shot interest is enabled again.
    async def scenario(loop):
        a, b = pair()
        stolen = []
        try:
            waiting = asyncio.ensure_future(loop.sock_recv(a, 10))
            await asyncio.sleep(0.01)           # the waiter is registered
            b.send(b"first")

            def steal():
                stolen.append(a.recv(10))

            loop.call_soon(steal)               # queued before the poll sees the data
            await asyncio.sleep(0.05)
            early = waiting.done()
            b.send(b"second")
            return stolen, early, await asyncio.wait_for(waiting, 5)
        finally:
            a.close()
            b.close()

    assert both(scenario) == ([b"first"], False, b"second")


def test_cancelled_wait_leaves_nothing_that_wakes_the_loop():
    loop = fastloop.new_event_loop()
    a, b = pair()
    try:
        async def main():
            waiting = asyncio.ensure_future(loop.sock_recv(a, 10))
            await asyncio.sleep(0.01)
            waiting.cancel()
            await asyncio.sleep(0)
            b.send(b"unread")                   # stays unread in a
            before = loop.metrics()["iterations"]
            await asyncio.sleep(0.2)
            return loop.metrics()["iterations"] - before

        assert loop.run_until_complete(main()) < 10
    finally:
        a.close()
        b.close()
        loop.close()


def test_parked_registration_of_a_closed_dup_never_spins():
    # The classic epoll trap: a registration belongs to the open file, not to
    # the fd number. Close the fd while its file lives on in a dup, let the
    # file become readable forever: a parked registration stays silent.
    loop = fastloop.new_event_loop()
    a, b = pair()
    try:
        async def main():
            loop.call_later(0.01, b.send, b"x")
            await loop.sock_recv(a, 10)
            keep = a.dup()                      # the open file outlives a's fd
            a.close()
            b.send(b"readable forever")
            before = loop.metrics()["iterations"]
            await asyncio.sleep(0.2)
            spins = loop.metrics()["iterations"] - before
            keep.close()
            return spins

        assert loop.run_until_complete(main()) < 10
    finally:
        a.close()
        b.close()
        loop.close()
