"""The assertions per scenario, identical for fastloop and the stdlib loop.

Where the stdlib loop itself fails a requirement, the assertion is made for
fastloop only and the stdlib's measured value is stated next to it.
"""

import warnings

import pytest

RESET_ERRORS = ("ConnectionResetError", "BrokenPipeError")

#: The stdlib loop floods on EMFILE: its _accept_connection() keeps looping
#: over range(backlog) after the error, so every readiness event (one per
#: ACCEPT_RETRY_DELAY = 1 s) reports up to `backlog` (100 by default) errors
#: and schedules as many retries. Measured here: 100 calls per second of
#: exhaustion (250 in a 2.5 s run; a long run elsewhere saw 30,712). The
#: "no flooding" bound is therefore asserted for fastloop only.
MAX_EMFILE_REPORTS_PER_S = 10
#: Spin detection counts loop iterations, not CPU time (which a loaded
#: machine inflates). Waiting out fd exhaustion for 1 s takes a handful of
#: iterations on a loop that sleeps between accept retries (the stdlib: about
#: one per ACCEPT_RETRY_DELAY; fastloop: a few quick retries, then the same);
#: a loop that spins on the listening socket runs one per few microseconds,
#: tens of thousands in that second. 200 is far from both.
MAX_EXHAUSTED_ITERATIONS = 200
#: An idle loop for 0.5 s: one blocking poll, plus the timer's iteration.
MAX_IDLE_ITERATIONS = 20
#: wait_until() polls every 5 ms for at most 0.5 s, then 0.1 s of sleep:
#: about 100 iterations when the reader fires at once, 200 in the worst case;
#: a stale level-triggered registration spins through thousands.
MAX_FD_REUSE_ITERATIONS = 400
MAX_RSS_GROWTH_MB = {"timers_memory": 16, "connect_cycles": 16, "slow_reader": 64}
MAX_WRITE_BUFFER = 1024 * 1024      # 64 KiB high-water mark + one 256 KiB write


def check_fd_exhaustion(loop, r):
    assert r["emfile_reported"], "EMFILE never reached the exception handler"
    assert r["handler_calls_non_emfile"] == []
    assert r["iterations_in_window"] <= MAX_EXHAUSTED_ITERATIONS, (
        f"server spins: {r['iterations_in_window']} iterations, {r['cpu_s_in_window']} s CPU")
    # Served again within the scenario's 5 s wait (a hang guard; the time it
    # took is in serve_after_free_s, and tests/test_accept.py bounds it).
    assert r["serve_after_free_s"] is not None, "never served again after fds were freed"
    assert r["accepted_total"] > r["accepted_before_exhaustion"]
    assert r["client"]["echoes"] > r["accepted_before_exhaustion"]
    if loop == "fastloop":
        rate = r["handler_calls_in_window"] / r["window_s"]
        assert rate <= MAX_EMFILE_REPORTS_PER_S, (
            f"flooding: {r['handler_calls_in_window']} EMFILE reports in {r['window_s']} s "
            f"({r['handler_calls_total']} in all)")


def check_peer_reset(loop, r):
    assert r["handler_calls"] == [], "unexpected exception-handler calls"
    for key in ("other_before", "other_after_transport", "other_after_sock_sendall",
                "other_after_sock_recv", "other_after_stream_drain", "other_after_stream_read"):
        assert r[key] is True, f"other connection broken: {key}"
    assert r["transport_lost_calls"] == 1, r["transport_lost_exc"]
    assert r["transport_lost_exc"][0] in RESET_ERRORS
    assert r["sock_sendall_outcome"] in RESET_ERRORS
    assert r["sock_recv_outcome"] == "ConnectionResetError"
    for key in ("sock_sendall_recv_after", "sock_recv_recv_after"):
        assert r[key] == "returned 0 bytes" or r[key] in RESET_ERRORS, (key, r[key])
    assert r["stream_drain_outcome"].split()[0] in RESET_ERRORS, r["stream_drain_outcome"]
    assert r["stream_read_outcome"].split()[0] in RESET_ERRORS, r["stream_read_outcome"]


def check_many_connections(loop, r):
    n = r["n"]
    c = r["client"]
    assert c is not None, "the client process reported nothing"
    assert c["connected"] == n, c["first_errors"]
    assert r["server_active"] == n
    assert r["server_active_after_idle"] == n, "connections dropped while idle"
    assert c["echo_ok"] == n and c["echo_bad_or_missing"] == 0
    assert r["bytes_echoed"] == n * 120
    assert r["handler_calls"] == [] and c["handler_calls"] == []
    if r.get("skip_reason"):
        # The assertions above held for the connections this machine allows:
        # a pass at reduced size, said so in the warnings summary.
        warnings.warn(f"many_connections ran at reduced size: {r['skip_reason']}", stacklevel=2)


def check_timers_memory(loop, r):
    assert r["handler_calls"] == []
    assert r["rss_growth_mb"] < MAX_RSS_GROWTH_MB["timers_memory"]
    assert r["max_heap_len"] <= 2 * 1000 + 100, "cancelled timers pile up in the heap"
    assert r["final_heap_len"] == 0
    assert r["fd_delta"] == 0


def check_connect_cycles(loop, r):
    assert r["ok"] == r["n"], r["errors"]
    assert r["handler_calls"] == []
    assert r["rss_growth_mb"] < MAX_RSS_GROWTH_MB["connect_cycles"]
    assert r["fd_delta"] == 0


def check_slow_reader(loop, r):
    assert r["received"] == r["expected"] and r["corrupt_chunks"] == 0
    assert r["pause_writing_calls"] > 0, "the reader was never slower than the writer"
    assert r["max_write_buffer"] <= MAX_WRITE_BUFFER
    assert r["rss_growth_mb"] < MAX_RSS_GROWTH_MB["slow_reader"]
    assert r["fd_delta"] == 0
    assert r["handler_calls"] == []


def check_fork(loop, r, exchanges):
    assert r["child_status"] == "exit 0", r["child"]
    c = r["child"]
    assert c["child_own_echo"] and c["child_own_threadsafe"] and c["child_own_signal"], c
    assert c["child_parent_echoes"] == exchanges
    assert c["child_handler_calls"] == []
    for what in ("echo", "threadsafe", "signal"):
        assert r[f"parent_before_{what}"] and r[f"parent_after_{what}"], what
    assert r["parent_idle_iterations"] <= MAX_IDLE_ITERATIONS, (
        f"parent loop spins after the fork: {r['parent_idle_iterations']} iterations in 0.5 s")
    assert r["handler_calls"] == []


def check_fd_reuse(loop, r):
    if not (r["reader_same_fd"] and r["writer_same_fd"]):
        pytest.skip("the new socket did not get the closed fd's number")
    assert r["loop_still_runs"]
    assert r["handler_calls"] == []
    for variant in ("reader", "writer"):
        assert r[f"{variant}_old_calls"] == 0, f"{variant}: callback of the old registration ran"
        assert r[f"{variant}_iterations"] <= MAX_FD_REUSE_ITERATIONS, (
            f"{variant}: loop spins: {r[f'{variant}_iterations']} iterations")
    if loop == "fastloop":
        for variant in ("reader", "writer"):
            assert r[f"{variant}_add_reader_new"] == "ok"
            assert r[f"{variant}_new_calls"] >= 1, f"{variant}: the new socket's reader never ran"
    else:
        # Documented stdlib behaviour: the selector keeps the stale key, so
        # add_reader() on the reused number makes no epoll call (same mask)
        # and the new reader never fires; with a different mask its modify()
        # fails with ENOENT.
        assert r["reader_add_reader_new"] == "ok" and r["reader_new_calls"] == 0
        assert r["writer_add_reader_new"].startswith("FileNotFoundError")
        assert r["writer_new_calls"] == 0


def check_threads(loop, r):
    assert r["post_errors"] == []
    assert r["lost"] == 0, f"{r['lost']} of {r['posted']} callbacks lost"
    assert r["closed_post"] == "RuntimeError: Event loop is closed"
    assert set(r["race_outcomes"]) <= {"RuntimeError: Event loop is closed"}
    assert r["race_thread_finished"]
    assert r["handler_calls"] == []
