"""The benchmark matrix of bench/echo.py: its rows, and how long they take.

A row is (mode, message size, connection count): every echo mode at every
size and connection count, and the HTTP mode (one fixed response, so no size)
at every connection count. Each row runs once per round on every loop and on
the C server, each run lasting warmup + duration + RUN_OVERHEAD_S.
"""

from __future__ import annotations

import argparse

# Per run, beyond warmup + duration: starting the server process (Python and
# the loop imported), connecting, and stopping it. Measured at 0.08-0.09 s on
# the 2-core bench machine; only used for the duration estimate.
RUN_OVERHEAD_S = 0.1


# UDP echo rows use one datagram size (the measurement: 1 KiB, one
# datagram in flight per socket); larger sizes would exceed a datagram.
UDP_SIZE = 1024
ROW_MODES_WITHOUT_SIZES = ("http", "udp")


def rows(args: argparse.Namespace) -> list[tuple[str, int | None, int]]:
    """The rows, in run order: (mode, size, connections); HTTP rows have no size,
    UDP rows always UDP_SIZE ("connections" are client sockets there)."""
    out = []
    for connections in args.connections:
        for size in args.sizes:
            out += [(mode, size, connections) for mode in args.modes
                    if mode not in ROW_MODES_WITHOUT_SIZES]
        if "http" in args.modes:
            out.append(("http", None, connections))
        if "udp" in args.modes:
            out.append(("udp", UDP_SIZE, connections))
    return out


def runs(args: argparse.Namespace, servers: int) -> int:
    """Runs in all: rows × servers × rounds, less the C server on UDP rows (it is TCP only)."""
    udp_rows = sum(1 for r in rows(args) if r[0] == "udp")
    c_server = servers > len(args.loops)
    return (len(rows(args)) * servers - udp_rows * c_server) * args.rounds


def estimate_s(args: argparse.Namespace, servers: int) -> float:
    """Expected wall time: runs × (duration + warmup + overhead)."""
    return runs(args, servers) * (args.duration + args.warmup + RUN_OVERHEAD_S)


def int_list(text: str) -> list[int]:
    """argparse type: "10,100" -> [10, 100], every value >= 1."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"values must be >= 1: {text!r}")
    return values


def name_list(choices: tuple[str, ...]):
    """argparse type: "a,b" -> ["a", "b"], each one of choices."""

    def parse(text: str) -> list[str]:
        names = text.split(",")
        unknown = [n for n in names if n not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(map(repr, unknown))} (choose from {', '.join(choices)})")
        return names

    return parse


def plan(args: argparse.Namespace) -> dict:
    """What echo.py --plan prints: the rows, the run count, the estimated seconds."""
    servers = len(args.loops) + bool(args.c_server)
    return {"rows": rows(args), "servers": servers, "rounds": args.rounds,
            "duration": args.duration, "warmup": args.warmup,
            "runs": runs(args, servers),
            "estimated_s": round(estimate_s(args, servers))}
