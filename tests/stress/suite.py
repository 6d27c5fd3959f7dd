"""The stress tests, shared by the short run (tests/test_stress_short.py, part of
`make test`) and the full run (tests/stress/test_stress_full.py, `make stress`).

A module that imports these functions must define a ``stress_size`` fixture
returning "short" or "full". Every scenario runs in its own subprocess with a
hard timeout (harness.py), once per loop, and faces the same checks (checks.py).
"""

import pytest

from stress import checks, harness, scenarios

LOOPS = pytest.mark.parametrize("loop", harness.LOOPS)


@LOOPS
def test_fd_exhaustion_on_accept(loop, stress_size):
    """RLIMIT_NOFILE far below the clients: no crash, no spin, no flood, recovery < 1 s.

    Measured (short, 300 clients, limit = open fds + 24): the stdlib loop made
    100 EMFILE reports per second of exhaustion (its accept loop keeps going
    over range(backlog) after EMFILE), so "no flooding" is asserted for
    fastloop only; see checks.MAX_EMFILE_REPORTS_PER_S.
    """
    checks.check_fd_exhaustion(loop, harness.run_scenario("fd_exhaustion", loop, stress_size))


@LOOPS
def test_peer_reset_and_broken_pipe(loop, stress_size):
    """RST while writing tens of MB: transports, sock_* and streams; others unaffected."""
    checks.check_peer_reset(loop, harness.run_scenario("peer_reset", loop, stress_size))


@LOOPS
def test_many_concurrent_connections(loop, stress_size):
    """10,000 (short: 1,000) connections held idle, then one checked echo each."""
    checks.check_many_connections(loop, harness.run_scenario("many_connections", loop,
                                                             stress_size))


@LOOPS
def test_memory_flat_call_later_cancel(loop, stress_size):
    """10M (short: 1M) call_later + cancel: RSS and the timer heap stay flat."""
    checks.check_timers_memory(loop, harness.run_scenario("timers_memory", loop, stress_size))


@LOOPS
def test_memory_flat_connect_cycles(loop, stress_size):
    """200,000 (short: 5,000) connect/echo/close cycles: RSS flat, fds back to start."""
    checks.check_connect_cycles(loop, harness.run_scenario("connect_cycles", loop, stress_size))


@LOOPS
def test_memory_flat_slow_reader(loop, stress_size):
    """1 GiB (short: 50 MiB) to a slow reader: flow control bounds the buffer."""
    checks.check_slow_reader(loop, harness.run_scenario("slow_reader", loop, stress_size))


@LOOPS
def test_fork_from_running_loop(loop, stress_size):
    """os.fork() in a callback; the child runs a new loop; both keep working."""
    r = harness.run_scenario("fork", loop, stress_size)
    checks.check_fork(loop, r, harness.SIZES[stress_size]["fork"]["exchanges"])


@LOOPS
def test_fd_closed_while_registered_and_reused(loop, stress_size):
    """Closed-while-registered fd, its number reused at once (stdlib difference asserted)."""
    checks.check_fd_reuse(loop, harness.run_scenario("fd_reuse", loop, stress_size))


@LOOPS
def test_call_soon_threadsafe_from_threads(loop, stress_size):
    """8 threads x 1M (short: 20,000) posts: none lost; a closed loop raises RuntimeError."""
    checks.check_threads(loop, harness.run_scenario("threads", loop, stress_size))


_BAD = {}


def _bad_input_results(size):
    if size not in _BAD:
        res = {loop: harness.run_scenario("bad_input", loop, size)["cases"]
               for loop in harness.LOOPS}
        mismatches = sorted(k for k in res["asyncio"] if res["asyncio"][k] != res["fastloop"][k])
        for loop in harness.LOOPS:
            harness.RECORDED.append(("bad_input", loop, size, {
                "_elapsed_s": 0.0, "cases_compared": len(res[loop]),
                "mismatches": mismatches}))
        _BAD[size] = res
    return _BAD[size]


BAD_CASES = sorted(scenarios._bad_cases()) + sorted(scenarios._closed_cases())


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_matches_stdlib(case, stress_size):
    """Each bad call: fastloop's outcome (exception type, message shape, what reached
    the exception handler) equals the stdlib loop's on this interpreter."""
    res = _bad_input_results(stress_size)
    fl, std = res["fastloop"][case], res["asyncio"][case]
    assert fl == std, f"{case}: fastloop {fl!r} != stdlib {std!r}"
