"""The assertions per scenario, identical for fastloop and the stdlib loop.

Where the stdlib loop itself fails a requirement, the assertion is made for
fastloop only and the stdlib's measured value is stated next to it.
"""

import pytest

RESET_ERRORS = ("ConnectionResetError", "BrokenPipeError")

#: The stdlib loop floods on EMFILE: its _accept_connection() keeps looping
#: over range(backlog) after the error, so every readiness event (one per
#: ACCEPT_RETRY_DELAY = 1 s) reports up to `backlog` (100 by default) errors
#: and schedules as many retries. Measured here: 100 calls per second of
#: exhaustion (250 in a 2.5 s run; a long run elsewhere saw 30,712). The
#: "no flooding" bound is therefore asserted for fastloop only.
MAX_EMFILE_REPORTS_PER_S = 10
#: A server that spins shows ~1 s of CPU per second of waiting.
MAX_IDLE_CPU_S = 0.2
#: "accepts and serves again within a second once fds are free" (stdlib
#: retries accept() on a 1 s timer, so it just makes it; 0.1 s of slack).
MAX_RECOVERY_S = 1.1
MAX_RSS_GROWTH_MB = {"timers_memory": 16, "connect_cycles": 16, "slow_reader": 64}
MAX_WRITE_BUFFER = 1024 * 1024      # 64 KiB high-water mark + one 256 KiB write


def check_fd_exhaustion(loop, r):
    assert r["emfile_reported"], "EMFILE never reached the exception handler"
    assert r["handler_calls_non_emfile"] == []
    assert r["cpu_s_in_window"] < MAX_IDLE_CPU_S, f"server spins: {r['cpu_s_in_window']} s CPU"
    assert r["serve_after_free_s"] is not None, "never served again after fds were freed"
    assert r["serve_after_free_s"] < MAX_RECOVERY_S
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
        pytest.skip(f"partly run: {r['skip_reason']}")


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
    assert r["parent_idle_cpu_s"] < 0.1, "parent loop spins after the fork"
    assert r["handler_calls"] == []


def check_fd_reuse(loop, r):
    if not (r["reader_same_fd"] and r["writer_same_fd"]):
        pytest.skip("the new socket did not get the closed fd's number")
    assert r["loop_still_runs"]
    assert r["handler_calls"] == []
    for variant in ("reader", "writer"):
        assert r[f"{variant}_old_calls"] == 0, f"{variant}: callback of the old registration ran"
        assert r[f"{variant}_cpu_s"] < 0.3
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
