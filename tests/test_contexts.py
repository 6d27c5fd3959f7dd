"""contextvars: callbacks run in the context they were given, or a copy of the caller's."""

import contextvars
import logging
import socket
import threading

from conftest import LOOPS

var = contextvars.ContextVar("var", default="unset")


def test_explicit_context_is_used(any_loop):
    loop = any_loop
    ctx = contextvars.copy_context()
    ctx.run(var.set, "explicit")
    seen = []

    def probe(tag):
        seen.append((tag, var.get(), contextvars.copy_context().get(var)))

    var.set("caller")
    loop.call_soon(probe, "soon", context=ctx)
    loop.call_later(0, probe, "later", context=ctx)
    loop.call_at(loop.time(), probe, "at", context=ctx)
    loop.call_soon_threadsafe(probe, "threadsafe", context=ctx)
    t = threading.Thread(target=lambda: loop.call_soon_threadsafe(probe, "thread", context=ctx))
    t.start()
    t.join()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert sorted(seen) == sorted((tag, "explicit", "explicit")
                                  for tag in ("soon", "later", "at", "threadsafe", "thread"))


def test_default_context_is_a_copy(any_loop):
    loop = any_loop
    seen = []

    def mutate(tag):
        seen.append((tag, var.get()))
        var.set("changed-by-" + tag)

    token = var.set("before")
    try:
        h = loop.call_soon(mutate, "soon")
        loop.call_later(0, mutate, "later")
        var.set("after")
        a, b = socket.socketpair()
        loop.add_reader(a, lambda: (seen.append(("reader", var.get())), loop.remove_reader(a)))
        b.send(b"x")
        loop.call_later(0.01, loop.stop)
        loop.run_forever()
        a.close()
        b.close()
        assert var.get() == "after"  # callbacks never touch the caller's context
        assert h._context.get(var) == "changed-by-soon"
    finally:
        var.reset(token)
    assert sorted(seen) == [("later", "before"), ("reader", "after"), ("soon", "before")]


def test_handle_with_entered_context_reports_runtime_error(caplog):
    # The default exception handler logs it (a custom handler would itself be
    # run in the handle's context on 3.12+, and fail the same way).
    results = {}
    for name, factory in LOOPS.items():
        loop = factory()
        ctx = contextvars.copy_context()
        ran = []
        caplog.clear()
        try:
            with caplog.at_level(logging.ERROR, logger="asyncio"):
                loop.call_soon(ran.append, 1, context=ctx)
                ctx.run(loop._run_once)  # the handle runs while ctx is entered
        finally:
            loop.close()
        results[name] = [(r.getMessage(), r.exc_info[0],
                          str(r.exc_info[1]).replace(hex(id(ctx)), "0x?"))
                         for r in caplog.records if r.name == "asyncio"] + [ran]
    assert results["fastloop"] == results["asyncio"]
    (message, exc_type, text), ran = results["fastloop"]
    assert ran == [] and exc_type is RuntimeError and "is already entered" in text
    assert message.startswith("Exception in callback list.append(")
