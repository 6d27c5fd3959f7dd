"""Render benchmark results: Markdown tables and the echo chart.

    python bench/report.py [--python 3.15] [--include-quick] [--no-readme]
                           [--echo FILE] [--micro FILE] [--out bench/results/latest.md]

Puts every row of the newest `make bench` run on one Python (echo.py's
<date>-py<ver>.json, micro.py's micro-<date>-py<ver>.json, pipe.py's and
frameworks.py's) into bench/results/<date>-py<ver>.md, and its summary into
the README between the bench-summary markers (full runs only: smoke runs,
named -quick, never reach the README). Also writes bench/results/latest.md
and latest.png (the echo matrix and the micro tables) for that version. Both
old (one rate per benchmark) and scaled (micro.py at several scales) micro
results render.

bench/echo.py imports the rendering functions from here for its own per-run
files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
LOOP_ORDER = ("fastloop", "asyncio", "uvloop", "rloop")
C_SERVER = "C epoll server"


def human_size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{value / base:.2f}×"


def _percent(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{100 * value / base:.0f}%"


def duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _loop_rank(row: dict) -> int:
    name = row["loop"]
    return LOOP_ORDER.index(name) if name in LOOP_ORDER else len(LOOP_ORDER)


def _spread(row: dict) -> str:
    return _ratio(row.get("msgs_per_s_max"), row.get("msgs_per_s_min"))


def _finish(out: list[str], notes: list[str], data: dict) -> str:
    """A table's lines, then what was not measured and the versions."""
    if notes:
        out += ["", "Not measured or failed:", ""] + [f"- {n}" for n in notes]
    versions = data.get("versions", {})
    if versions:
        out += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- echo

OLD_CONNECTIONS = 10  # results written before --connections took a list


def normalise(data: dict) -> dict:
    """The results in today's shape. Older files ran one connection count (an
    int in their config, 10 in practice) and have no connections key on their
    rows, and no HTTP rows."""
    cfg = dict(data["config"])
    conns = cfg.get("connections", OLD_CONNECTIONS)
    cfg["connections"] = conns if isinstance(conns, list) else [conns]
    rows = [r if "connections" in r else dict(r, connections=cfg["connections"][0])
            for r in data["median"]]
    return dict(data, config=cfg, median=rows)


def row_label(mode: str, size: int | None, connections: int) -> str:
    size_text = "" if size is None else human_size(size)
    return f"{size_text:>7} {mode:<8} {connections:>3} conns"


def _group_lines(keys: list[str], group: list[dict], label: str, notes: list[str]) -> list[str]:
    """Table lines for one row's loops (and C server), each starting with keys."""
    group = sorted(group, key=_loop_rank)
    c_row = next((r for r in group if r["loop"] == C_SERVER), None)
    c_rate = c_row.get("msgs_per_s") if c_row else None
    ok = {r["loop"]: r["msgs_per_s"] for r in group
          if r.get("msgs_per_s") and r["loop"] != C_SERVER}
    best = max(ok.values(), default=None)
    lead = "| " + " | ".join(keys) + " | "
    out = []
    for r in group:
        if r["status"] != "ok":
            notes.append(f"{label} on {r['loop']}: {r['status']} — {r.get('error', '').strip()}")
        if r["loop"] == C_SERVER:
            continue
        rate = ok.get(r["loop"])
        others = [v for name, v in ok.items() if name != r["loop"]]
        name = f"**{r['loop']}**" if rate is not None and rate == best else r["loop"]
        if r["status"] != "ok":
            name += f" ({r['status']})"
        out.append(
            lead + f"{name} | {_fmt(rate)} | "
            f"{_ratio(rate, ok.get('asyncio')) if r['loop'] != 'asyncio' else '1.00×'} | "
            f"{_ratio(rate, max(others, default=None))} | "
            f"{_percent(rate, c_rate)} | {_fmt(r.get('p50_us'), '.0f')} | "
            f"{_fmt(r.get('p99_us'), '.0f')} | {_fmt(r.get('cpu_us_per_msg'), '.1f')} | "
            f"{_spread(r)} |"
        )
    if c_row:
        out.append(
            lead + f"*{C_SERVER}* | {_fmt(c_rate)} | — | — | "
            f"{'100%' if c_rate else '—'} | {_fmt(c_row.get('p50_us'), '.0f')} | "
            f"{_fmt(c_row.get('p99_us'), '.0f')} | "
            f"{_fmt(c_row.get('cpu_us_per_msg'), '.1f')} | {_spread(c_row)} |"
        )
    return out


def _rows(rows: list[dict], mode: str, size: int | None, connections: int) -> list[dict]:
    return [r for r in rows
            if r["mode"] == mode and r["size"] == size and r["connections"] == connections]


# Modes with a table (and a chart column) of their own rather than a line per
# message size in the echo tables.
OWN_TABLE_MODES = ("http", "udp")
UDP_SIZE = 1024     # what bench/matrix.py gives UDP rows


def _echo_modes(cfg: dict) -> list[str]:
    return [m for m in cfg["modes"] if m not in OWN_TABLE_MODES]


def _kinds(cfg: dict) -> str:
    kinds = [k for k, there in (("echo", bool(_echo_modes(cfg))),
                                ("HTTP", "http" in cfg["modes"]),
                                ("UDP echo", "udp" in cfg["modes"])) if there]
    return " and ".join(kinds)


def echo_markdown(data: dict) -> str:
    """One echo table per connection count, one HTTP table, and the notes."""
    data = normalise(data)
    cfg = data["config"]
    machine = data.get("machine", {})
    rows = data["median"]
    echo_modes = _echo_modes(cfg)
    out = [
        f"### {_kinds(cfg)[:1].upper() + _kinds(cfg)[1:]}, pipelining 1 "
        f"({data.get('date', '?')}, Python {data.get('python_short', '?')})",
        "",
        f"Median of {cfg['rounds']} interleaved round{'s' if cfg['rounds'] != 1 else ''} "
        f"of {cfg['duration']:g} s "
        f"(+{cfg['warmup']:g} s warmup) per loop; server pinned to CPU {cfg['server_cpu']}, "
        f"load generator to CPU {cfg['client_cpu']}"
        + ("" if cfg.get("pinned", True) else " (pinning unavailable: not pinned)")
        + (f", both at nice {cfg['nice']}" if cfg.get("nice") else "")
        + f". {machine.get('cpu', '')} ({machine.get('cpus', '?')} CPUs), "
        f"load average {machine.get('loadavg_before', '?')} before, "
        f"{machine.get('loadavg_after', '?')} after"
        + (f"; {duration(data['elapsed_s'])} in all" if data.get("elapsed_s") else "")
        + ".",
        "",
        "×asyncio and ×best other compare messages (requests) per second, higher is "
        "better; CPU µs is the server's user+system time per echoed message or answered "
        "request, lower is better. The spread column is the fastest round's rate over "
        "the slowest's: how much machine noise there was.",
    ]
    columns = ("| loop | msgs/s | ×asyncio | ×best other | % of C | p50 µs | p99 µs "
               "| CPU µs/msg | spread |")
    align = "---|---:|---:|---:|---:|---:|---:|---:|---:|"
    notes: list[str] = []
    for connections in cfg["connections"] if echo_modes else ():
        out += ["", f"#### Echo, {connections} connections", "",
                "| size | mode " + columns, "|---|---|" + align]
        for size in cfg["sizes"]:
            for mode in echo_modes:
                out += _group_lines([human_size(size), mode],
                                    _rows(rows, mode, size, connections),
                                    f"{human_size(size)} {mode}, {connections} connections",
                                    notes)
    if "http" in cfg["modes"]:
        out += ["", "#### HTTP/1.1 keep-alive plaintext (protocol API, fixed 200 response "
                "with a 13-byte body)", "",
                "| connections " + columns.replace("msgs/s", "req/s")
                .replace("CPU µs/msg", "CPU µs/req"), "|---:|" + align]
        for connections in cfg["connections"]:
            out += _group_lines([str(connections)], _rows(rows, "http", None, connections),
                                f"HTTP, {connections} connections", notes)
    if "udp" in cfg["modes"]:
        out += ["", f"#### UDP echo ({human_size(UDP_SIZE)} datagrams, one in flight per "
                "client socket; bench/udpgen.c, no C server)", "",
                "| client sockets " + columns.replace("msgs/s", "datagrams/s")
                .replace("CPU µs/msg", "CPU µs/datagram"), "|---:|" + align]
        for connections in cfg["connections"]:
            out += _group_lines([str(connections)],
                                _rows(rows, "udp", UDP_SIZE, connections),
                                f"UDP echo, {connections} sockets", notes)
    skipped = data.get("skipped", {})
    if skipped:
        notes += [f"{loop}: {why}" for loop, why in skipped.items()]
    return _finish(out, notes, data)


def echo_chart(data: dict, path: Path) -> str | None:
    """Draw msgs/s and CPU µs/msg per row and loop; None, or why not.

    One column per echo message size (and one for HTTP), two rows of panels
    (rate, CPU) per connection count."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"no chart: matplotlib is not installed ({exc})"
    data = normalise(data)
    cfg = data["config"]
    rows = data["median"]
    loops = [name for name in LOOP_ORDER + (C_SERVER,) if any(r["loop"] == name for r in rows)]
    echo_modes = _echo_modes(cfg)
    # (title, x labels, (mode, size) per x label) per column
    columns = [(f"echo {human_size(size)}", echo_modes, [(m, size) for m in echo_modes])
               for size in (cfg["sizes"] if echo_modes else ())]
    if "http" in cfg["modes"]:
        columns.append(("HTTP plaintext", ["http"], [("http", None)]))
    if "udp" in cfg["modes"]:
        columns.append((f"UDP echo {human_size(UDP_SIZE)}", ["udp"], [("udp", UDP_SIZE)]))
    conns = cfg["connections"]
    fig, axes = plt.subplots(2 * len(conns), len(columns), squeeze=False,
                             figsize=(4.8 * len(columns), 3.6 * 2 * len(conns)))
    width = 0.8 / max(len(loops), 1)
    metrics = (("msgs_per_s", "per second (higher is better)"),
               ("cpu_us_per_msg", "server CPU µs each (lower is better)"))
    for block, connections in enumerate(conns):
        for col, (title, labels, keys) in enumerate(columns):
            for m, (key, ylabel) in enumerate(metrics):
                ax = axes[2 * block + m][col]
                for i, loop in enumerate(loops):
                    values = []
                    for mode, size in keys:
                        r = next((r for r in _rows(rows, mode, size, connections)
                                  if r["loop"] == loop), None)
                        values.append((r or {}).get(key) or 0)
                    xs = [x + (i - (len(loops) - 1) / 2) * width for x in range(len(keys))]
                    style = ({"color": "0.75", "edgecolor": "black", "hatch": "//"}
                             if loop == C_SERVER else {})
                    ax.bar(xs, values, width, label=loop, **style)
                ax.set_xticks(range(len(labels)), labels)
                if col == 0:
                    ax.set_ylabel(ylabel)
                ax.set_title(f"{title}, {connections} connections", fontsize=10)
                ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"fastloop {_kinds(cfg)} benchmark, Python {data.get('python_short', '?')}, "
                 f"median of {cfg['rounds']} round{'s' if cfg['rounds'] != 1 else ''} "
                 f"({data.get('date', '')})")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(loops), frameon=False)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


# ---------------------------------------------------------------- micro


def _micro_flat_markdown(data: dict) -> str:
    """Results written before micro.py had scales: one rate per benchmark."""
    medians = data["median"]
    loops = [n for n in LOOP_ORDER if any(n in row for row in medians.values())]
    out = [
        f"### Micro benchmarks (ops/s, median of {data.get('rounds', '?')} rounds)",
        "",
        "| benchmark | " + " | ".join(loops) + " | fastloop ×asyncio | fastloop ×best other |",
        "|---|" + "---:|" * (len(loops) + 2),
    ]
    for bench, row in medians.items():
        cells = [_fmt(row.get(n)) for n in loops]
        others = [v for n, v in row.items() if n != "fastloop"]
        out.append(f"| {bench} | " + " | ".join(cells)
                   + f" | {_ratio(row.get('fastloop'), row.get('asyncio'))}"
                   + f" | {_ratio(row.get('fastloop'), max(others, default=None))} |")
    return "\n".join(out) + "\n"


def _scale_text(n: int) -> str:
    return f"{n:,}"


def _micro_spread(raw: list[float]) -> str:
    return _ratio(max(raw), min(raw)) if raw else "—"


def micro_markdown(data: dict) -> str:
    """One table per micro benchmark, a row per scale (and phase), loops side by
    side: ops/s, each loop's ratio to asyncio, and fastloop against the best of
    the others. Renders any results file micro.py has written."""
    if "rows" not in data:
        return _micro_flat_markdown(data)
    rows = data["rows"]
    present = {n for r in rows for n in r["median"]}
    loops = [n for n in LOOP_ORDER if n in present] + sorted(present - set(LOOP_ORDER))
    peers = [n for n in loops if n != "asyncio"]
    scales = data.get("scales", {})
    out = [
        f"### Micro benchmarks at several scales ({data.get('profile', 'full')} profile, "
        f"median of {data.get('rounds', '?')} interleaved round"
        f"{'s' if data.get('rounds') != 1 else ''}, Python "
        f"{str(data.get('python', '?')).split()[0]})",
        "",
        "ops/s, higher is better; ×asyncio is each loop's rate over asyncio's; "
        "fastloop ÷ best is fastloop's rate over the best other loop's (≥ 1.00× means "
        "fastloop leads); spread is fastloop's fastest round over its slowest.",
    ]
    if data.get("skipped"):
        out += ["", "Not installed, skipped: " + ", ".join(data["skipped"]) + "."]
    benches = list(dict.fromkeys(r["bench"] for r in rows))
    for bench in benches:
        info = scales.get(bench, {})
        counts = info.get("counts", "scale")
        out += ["", f"#### {bench}", ""]
        if info.get("description"):
            out += [info["description"][:1].upper() + info["description"][1:] + ".", ""]
        out += [
            f"| {counts} | phase | " + " | ".join(f"{n} ops/s" for n in loops)
            + " | " + " | ".join(f"{n} ×asyncio" for n in peers)
            + " | fastloop ÷ best | spread |",
            "|---:|---|" + "---:|" * (2 * len(loops) - ("asyncio" in loops) + 2),
        ]
        for r in (r for r in rows if r["bench"] == bench):
            med = r["median"]
            others = [v for n, v in med.items() if n != "fastloop"]
            best = max(others, default=None)
            lead = med.get("fastloop") is not None and best is not None \
                and med["fastloop"] >= best
            ratio = _ratio(med.get("fastloop"), best)
            out.append(
                f"| {_scale_text(r['scale'])} | {r['metric'] if r['metric'] != bench else ''} | "
                + " | ".join(_fmt(med.get(n)) for n in loops) + " | "
                + " | ".join(_ratio(med.get(n), med.get("asyncio")) for n in peers) + " | "
                + (f"**{ratio}**" if lead else ratio) + " | "
                + _micro_spread(r["raw"].get("fastloop", [])) + " |")
    return "\n".join(out) + "\n"


# ----------------------------------------------- the whole run, one version
#
# make bench leaves four result files per Python version (echo.py's
# <date>-py<ver>.json, micro.py's, pipe.py's and frameworks.py's); the
# functions below put every row of them into one dated report and a summary
# into the README, between README_BEGIN and README_END.

ROOT = RESULTS.parent.parent
README_BEGIN = "<!-- bench-summary:begin (generated by bench/report.py; do not edit) -->"
README_END = "<!-- bench-summary:end -->"
SUMMARY_LOOPS = ("asyncio", "uvloop", "rloop", "aiofastnet", "fastloop")


def frameworks_markdown(data: dict) -> str:
    """The TLS echo and framework HTTP rows (bench/frameworks.py), every loop
    against asyncio, uvloop and the best other."""
    cfg = data["config"]
    out = [f"### TLS echo and real-framework HTTP ({data['date']}, Python "
           f"{data['python_short']})", "",
           f"Median of {cfg['rounds']} interleaved rounds of {cfg['duration']:g} s "
           f"(+{cfg['warmup']:g} s warmup); TLS echo: bench/loadgen.c --tls, "
           f"{cfg.get('echo_connections', '?')} connections, one message in flight each; "
           f"HTTP: wrk -t1 -c{cfg.get('wrk_connections', '?')}. aiofastnet runs the TLS rows "
           "only (its transports on the stdlib loop); rloop has no TLS.", "",
           "| row | loop | msgs or req/s | ×asyncio | ×uvloop | ×best other | CPU µs each "
           "| p50 µs | p99 µs |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    by = {(m["row"], m["loop"]): m for m in data["median"]}
    notes = [f"{loop}: {why}" for loop, why in data.get("skipped", {}).items()]
    for row in cfg["rows"]:
        ok = {loop: m["msgs_per_s"] for (r, loop), m in by.items()
              if r == row and m.get("msgs_per_s")}
        best = max(ok.values(), default=None)
        for loop in sorted((lp for (r, lp) in by if r == row),
                           key=lambda lp: _loop_rank({"loop": lp})):
            m = by[(row, loop)]
            if m["status"] != "ok":
                notes.append(f"{row} on {loop}: {m['status']} — {m.get('error', '').strip()}")
            rate = ok.get(loop)
            others = [v for name, v in ok.items() if name != loop]
            name = f"**{loop}**" if rate is not None and rate == best else loop
            if m["status"] != "ok":
                name += f" ({m['status']})"
            out.append(f"| {row} | {name} | {_fmt(rate)} | {_ratio(rate, ok.get('asyncio'))} | "
                       f"{_ratio(rate, ok.get('uvloop'))} | "
                       f"{_ratio(rate, max(others, default=None))} | "
                       f"{_fmt(m.get('cpu_us_per_msg'), '.1f')} | "
                       f"{_fmt(m.get('p50_us'), '.0f')} | {_fmt(m.get('p99_us'), '.0f')} |")
    return _finish(out, notes, data)


def _summary_cell(rate: float | None, cpu: float | None, best: bool, unit: str = "µs") -> str:
    if rate is None:
        return "—"
    text = f"{rate:,.0f}" + (f" · {cpu:.1f} {unit}" if cpu is not None else "")
    return f"**{text}**" if best else text


def _summary_line(label: str, by_loop: dict[str, dict], rate_key: str, cpu_key: str,
                  loops: tuple[str, ...], unit: str = "µs") -> str:
    # The loops only: the C epoll server's line stays in the full echo tables.
    rates = {lp: r.get(rate_key) for lp, r in by_loop.items()
             if r.get(rate_key) and lp != C_SERVER}
    best = max(rates.values(), default=None)
    cells = [_summary_cell(rates.get(lp), by_loop.get(lp, {}).get(cpu_key),
                           rates.get(lp) is not None and rates.get(lp) == best, unit)
             for lp in loops]
    others = [v for lp, v in rates.items() if lp != "fastloop"]
    return (f"| {label} | " + " | ".join(cells)
            + f" | {_ratio(rates.get('fastloop'), rates.get('asyncio'))}"
            + f" | {_ratio(rates.get('fastloop'), max(others, default=None))} |")


def summary_markdown(echo: dict | None, pipe: dict | None, frameworks: dict | None,
                     micro: dict | None) -> str:
    """Every row of the run on one line each: rate and server CPU per loop,
    fastloop against asyncio and against the best other loop."""
    loops = SUMMARY_LOOPS
    head = ("| row | " + " | ".join(loops) + " | fastloop ×asyncio | fastloop ×best other |")
    align = "|---|" + "---:|" * (len(loops) + 2)
    out = ["Each cell: per second (messages, requests, datagrams; MB for the pipe) · "
           "server CPU per message (CPU s per GiB for the pipe); higher rate and lower "
           "CPU are better; **bold**: the highest rate. Median of the interleaved rounds.",
           "", head, align]
    if echo:
        echo = normalise(echo)
        cfg = echo["config"]
        for connections in cfg["connections"]:
            for size in cfg["sizes"]:
                for mode in _echo_modes(cfg):
                    group = {r["loop"]: r for r in _rows(echo["median"], mode, size, connections)}
                    out.append(_summary_line(f"echo {mode} {human_size(size)}, {connections} "
                                             "conns", group, "msgs_per_s", "cpu_us_per_msg",
                                             loops))
            if "http" in cfg["modes"]:
                group = {r["loop"]: r for r in _rows(echo["median"], "http", None, connections)}
                out.append(_summary_line(f"HTTP plaintext (protocol), {connections} conns",
                                         group, "msgs_per_s", "cpu_us_per_msg", loops))
            if "udp" in cfg["modes"]:
                group = {r["loop"]: r for r in _rows(echo["median"], "udp", UDP_SIZE,
                                                     connections)}
                out.append(_summary_line(f"UDP echo {human_size(UDP_SIZE)}, {connections} "
                                         "sockets", group, "msgs_per_s", "cpu_us_per_msg",
                                         loops))
    if pipe:
        group = {r["loop"]: r for r in pipe["median"]}
        out.append(_summary_line(f"pipe through cat, {pipe['config']['chunk'] // 1024} KiB "
                                 "writes (MB/s · CPU s/GiB)", group, "mb_per_s",
                                 "cpu_s_per_gib", loops, unit="s"))
    if frameworks:
        for row in frameworks["config"]["rows"]:
            group = {m["loop"]: m for m in frameworks["median"] if m["row"] == row}
            out.append(_summary_line(row, group, "msgs_per_s", "cpu_us_per_msg", loops))
    if micro and "rows" in micro:
        for r in micro["rows"]:
            name = r["bench"] if r["metric"] == r["bench"] else f"{r['bench']} {r['metric']}"
            counts = micro.get("scales", {}).get(r["bench"], {}).get("counts", "scale")
            out.append(_summary_line(f"micro: {name}, {r['scale']:,} {counts} (ops/s)",
                                     {lp: {"v": v} for lp, v in r["median"].items()},
                                     "v", "-", loops))
    elif micro and isinstance(micro.get("median"), dict):
        for bench, row in micro["median"].items():
            if not isinstance(row, dict):
                continue
            out.append(_summary_line(f"micro: {bench} (ops/s)",
                                     {lp: {"v": v} for lp, v in row.items()}, "v", "-", loops))
    return "\n".join(out) + "\n"


def _newest_for(prefix: str, py: str, quick: bool) -> Path | None:
    files = [p for p in RESULTS.glob(f"{prefix}*-py{py}{'*' if quick else ''}.json")
             if quick or "-quick" not in p.stem]
    if prefix == "[0-9]":
        files = [p for p in files if p.name[:8].isdigit()]
    return max(files, key=lambda p: p.stat().st_mtime, default=None)


def _load(path: Path | None) -> dict | None:
    return json.loads(path.read_text()) if path else None


def full_report(py: str, include_quick: bool = False,
                readme: Path | None = ROOT / "README.md") -> Path | None:
    """bench/results/<date>-py<py>.md with every row of the newest run on that
    Python, and (for full runs) the README's summary block; the report's path,
    or None if there are no results."""
    files = {kind: _newest_for(prefix, py, include_quick)
             for kind, prefix in (("echo", "[0-9]"), ("micro", "micro-"), ("pipe", "pipe-"),
                                  ("frameworks", "frameworks-"))}
    if not any(files.values()):
        return None
    data = {kind: _load(path) for kind, path in files.items()}
    quick = any(p and "-quick" in p.stem for p in files.values())
    stamp = max(p.stat().st_mtime for p in files.values() if p)
    day = time.strftime("%Y%m%d", time.localtime(stamp))
    stem = files["echo"].stem if files["echo"] else f"{day}-py{py}"
    stem = stem.removesuffix("-quick") + ("-quick" if quick else "")
    summary = summary_markdown(data["echo"], data["pipe"], data["frameworks"], data["micro"])
    parts = [f"# fastloop benchmark results, Python {py}", "",
             "`make bench` (bench/README.md). "
             + ("A smoke run (--quick): every row once, not a measurement. " if quick else "")
             + "Sources: " + ", ".join(f"`{p.name}`" for p in files.values() if p) + ".", "",
             "## Summary", "", summary]
    if data["echo"]:
        parts += [echo_markdown(data["echo"])]
    if data["pipe"]:
        import pipe

        parts += [pipe.markdown(data["pipe"])]
    if data["frameworks"]:
        parts += [frameworks_markdown(data["frameworks"])]
    if data["micro"]:
        parts += [micro_markdown(data["micro"])]
    path = RESULTS / f"{stem}.md"
    path.write_text("\n".join(parts))
    if readme is not None and not quick:
        write_readme_block(readme, f"Python {py}, `make bench` of {stem[:8]} "
                           f"([all rows and latencies](bench/results/{path.name})):\n\n" + summary)
    return path


def save_results(out_dir: Path, stem: str, data: dict, markdown: str) -> Path:
    """One bench part's results: <stem>.json (every run, medians) and <stem>.md
    (its table, also printed); returns the .json path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown)
    print()
    print(markdown)
    return json_path


def write_readme_block(readme: Path, text: str) -> None:
    """Replace what is between the README's markers (which must be there)."""
    content = readme.read_text()
    start, end = content.find(README_BEGIN), content.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme}: no {README_BEGIN} ... {README_END} block")
    readme.write_text(content[:start + len(README_BEGIN)] + "\n\n" + text + "\n"
                      + content[end:])


# ------------------------------------------------------------------ CLI


def newest(pattern: str, exclude: str | None = None, skip_quick: bool = True) -> Path | None:
    # Smoke runs (echo.py --quick) are not results: latest.md skips them. The
    # micro benchmarks' quick profile is what `make bench` runs by default (its
    # tables name the profile), so for them it counts.
    files = [p for p in RESULTS.glob(pattern)
             if not (exclude and p.name.startswith(exclude))
             and not (skip_quick and "-quick" in p.stem)]
    return max(files, key=lambda p: p.stat().st_mtime, default=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--echo", type=Path, help="echo results JSON (default: the newest)")
    parser.add_argument("--micro", type=Path, help="micro results JSON (default: the newest)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.md")
    parser.add_argument("--chart", type=Path, default=RESULTS / "latest.png")
    parser.add_argument("--python", default="{}.{}".format(*sys.version_info[:2]),
                        help="the version whose newest run becomes <date>-py<ver>.md "
                             "and the README summary (default: this interpreter's)")
    parser.add_argument("--include-quick", action="store_true",
                        help="use --quick smoke results too (then the README is left alone)")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    full = full_report(args.python, args.include_quick,
                       None if args.no_readme else ROOT / "README.md")
    if full:
        print(f"full report: {full}")

    # latest.md and latest.png: the echo matrix and micro tables of that version.
    echo_file = args.echo or newest(f"[0-9]*-py{args.python}.json")
    micro_file = args.micro or newest(f"micro-*-py{args.python}.json")
    if echo_file is None and micro_file is None:
        print(f"no full echo or micro results for Python {args.python} in {RESULTS}: "
              "latest.md left as it is", file=sys.stderr)
        return 0 if full else 1
    parts = ["# fastloop benchmark results", ""]
    if echo_file:
        echo = json.loads(echo_file.read_text())
        parts += [echo_markdown(echo), f"Source: `{echo_file.name}`.", ""]
        why_not = echo_chart(echo, args.chart)
        if why_not:
            print(why_not, file=sys.stderr)
        else:
            parts += [f"![echo benchmark]({args.chart.name})", ""]
            print(f"chart: {args.chart}")
    if micro_file:
        micro = json.loads(micro_file.read_text())
        parts += [micro_markdown(micro), f"Source: `{micro_file.name}`.", ""]
    text = "\n".join(parts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
