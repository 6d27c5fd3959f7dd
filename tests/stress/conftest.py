"""Per-scenario summary of the stress runs (numbers for both loops)."""

import os

from stress import harness

KEYS = {
    "fd_exhaustion": ["handler_calls_in_window", "handler_calls_total", "cpu_s_in_window",
                      "accept_after_free_s", "serve_after_free_s", "accepted_total"],
    "peer_reset": ["transport_lost_exc", "sock_sendall_outcome", "sock_recv_outcome",
                   "stream_drain_outcome", "handler_calls"],
    "many_connections": ["n", "connect_s", "echo_s", "fds_during", "skip_reason"],
    "timers_memory": ["n", "seconds", "rss_growth_mb", "max_heap_len", "fd_delta"],
    "connect_cycles": ["n", "ok", "seconds", "cycles_per_s", "rss_growth_mb", "fd_delta"],
    "slow_reader": ["mb", "seconds", "mb_per_s", "max_write_buffer", "pause_writing_calls",
                    "rss_growth_mb", "fd_delta"],
    "fork": ["child_status", "parent_echoes_while_child_ran", "parent_idle_cpu_s"],
    "fd_reuse": ["reader_old_calls", "reader_new_calls", "writer_add_reader_new",
                 "writer_new_calls"],
    "threads": ["posted", "executed", "lost", "seconds", "closed_post", "race_outcomes"],
    "bad_input": ["cases_compared", "mismatches"],
}


def pytest_terminal_summary(terminalreporter):
    if not harness.RECORDED:
        return
    tr = terminalreporter
    tr.section("stress scenarios (numbers per loop)")
    for name, loop, size, r in harness.RECORDED:
        vals = {k: r.get(k) for k in KEYS.get(name, []) if r.get(k) is not None}
        shown = ", ".join(f"{k}={v}" for k, v in vals.items())
        tr.write_line(f"{name:17} {size:5} {loop:8} {r['_elapsed_s']:7.2f}s  {shown}")


# The full sizes run only under `make stress` (FASTLOOP_STRESS=full); `make
# test` runs the short ones through tests/test_stress_short.py.
collect_ignore = [] if os.environ.get("FASTLOOP_STRESS") == "full" else ["test_stress_full.py"]
