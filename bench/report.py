"""Summarise one benchmark run: medians over rounds, ratios to the bare ceiling, targets.

    python bench/report.py RUN_DIR

RUN_DIR (written by bench/run.sh) holds `meta.json`, `measurements.tsv` (round, scenario,
connections, wrk result file or "-" when the scenario could not run) and the wrk results. Writes
RUN_DIR/summary.md and RUN_DIR/summary.json and prints the markdown to stdout. Standard library
only.
"""

import json
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Display order and labels. "bare" is the ceiling every other figure is compared with.
SCENARIOS = {
    "bare": "bare ASGI (ceiling)",
    "floor": "FastAPI floor: an empty route of the app, same bytes",
    "list": "GET /api/users/jobs ({big})",
    "list304": "GET /api/users/jobs + If-None-Match ({big})",
    "list304_db": "GET /api/users/jobs + If-None-Match, nothing remembered ({big})",
    "stats": "GET /api/users/jobs/stats ({big})",
    "submit": "POST /api/users/jobs, 1 user ({big})",
    "submit50": "POST /api/users/jobs, 50 users ({big})",
    "list_small": "GET /api/users/jobs (near-empty)",
}

TARGET_CONNECTIONS = 64
MIN_LIST_RATIO = 0.07
MAX_LIST_P99_MS = 40.0
MIN_BIG_OVER_SMALL = 0.90
MIN_304_RATIO = 0.13
MIN_SUBMIT_RATIO = 0.02
ERROR_FREE_CONNECTIONS = 256


@dataclass
class Measurement:
    ok_rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_kinds: dict[str, int]
    statuses: dict[int, int]


def load_measurement(path: Path) -> Measurement:
    raw = json.loads(path.read_text())
    seconds = raw["duration_us"] / 1e6
    statuses = {int(code): count for code, count in raw["statuses"].items()}
    ok = sum(count for code, count in statuses.items() if code < 400)
    errors = raw["errors"]
    # wrk's "status" counts responses >= 400; the others are socket errors and timeouts.
    error_count = sum(errors[key] for key in ("connect", "read", "write", "status", "timeout"))
    latency = raw["latency_us"]
    return Measurement(
        ok_rps=ok / seconds if seconds > 0 else 0.0,
        p50_ms=(latency["p50"] or 0.0) / 1000,
        p99_ms=(latency["p99"] or 0.0) / 1000,
        errors=error_count,
        error_kinds={key: errors[key] for key in errors if errors[key]},
        statuses=statuses,
    )


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def fmt_ratio(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


SERIOUS = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d([,.]\d+)?")


def server_log_summary(log_dir: Path) -> dict[str, Any]:
    """What the servers logged at WARNING and above (pool timeouts turned into 503s, crashes),
    grouped by message. The app may also log every request at INFO: those are not counted."""
    counts: dict[str, int] = {}
    for log in sorted(log_dir.glob("*.log")):
        if log.name.startswith("setup-"):
            continue
        for line in log.read_text(errors="replace").splitlines():
            if not SERIOUS.search(line):
                continue
            try:
                record = json.loads(line)
                key = f"{record.get('level', '')} {record.get('name', '')}: {record.get('message')}"
            except (ValueError, AttributeError):
                key = TIMESTAMP.sub("", line).strip()
            key = key[:200]
            counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return {
        "lines": sum(counts.values()),
        "top": [{"count": count, "message": message} for message, count in ranked[:5]],
    }


def summarise(run_dir: Path) -> dict[str, Any]:
    meta = json.loads((run_dir / "meta.json").read_text())
    runs: dict[tuple[str, int], dict[int, Measurement | None]] = {}
    for line in (run_dir / "measurements.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        round_text, scenario, conns_text, file_name = line.split("\t")
        result = None if file_name == "-" else load_measurement(run_dir / file_name)
        runs.setdefault((scenario, int(conns_text)), {})[int(round_text)] = result

    # The big table's size as a label: "300k" with the default data set.
    big = f"{meta.get('big_jobs_before', 0) / 1000:.0f}k"
    connections = sorted({conns for _, conns in runs})
    rows = []
    for conns in connections:
        bare = runs.get(("bare", conns), {})
        for scenario in SCENARIOS:
            per_round = runs.get((scenario, conns))
            if per_round is None:
                continue
            measured = {r: m for r, m in per_round.items() if m is not None}
            rps_ratios, p50_ratios, p99_ratios = [], [], []
            for r, m in measured.items():
                b = bare.get(r)
                if b is None:
                    continue
                if b.ok_rps > 0:
                    rps_ratios.append(m.ok_rps / b.ok_rps)
                if b.p50_ms > 0:
                    p50_ratios.append(m.p50_ms / b.p50_ms)
                if b.p99_ms > 0:
                    p99_ratios.append(m.p99_ms / b.p99_ms)
            statuses: dict[int, int] = {}
            error_kinds: dict[str, int] = {}
            for m in measured.values():
                for code, count in m.statuses.items():
                    statuses[code] = statuses.get(code, 0) + count
                for kind, count in m.error_kinds.items():
                    error_kinds[kind] = error_kinds.get(kind, 0) + count
            rows.append(
                {
                    "scenario": scenario,
                    "label": SCENARIOS[scenario].format(big=big),
                    "connections": conns,
                    "rounds": len(measured),
                    "rps": median([m.ok_rps for m in measured.values()]),
                    "rps_by_round": [
                        round(measured[r].ok_rps, 1) if r in measured else None
                        for r in sorted(per_round)
                    ],
                    "ratio_to_bare": median(rps_ratios),
                    "p50_ms": median([m.p50_ms for m in measured.values()]),
                    "p50_x_bare": median(p50_ratios),
                    "p99_ms": median([m.p99_ms for m in measured.values()]),
                    "p99_x_bare": median(p99_ratios),
                    "errors": sum(m.errors for m in measured.values()) if measured else None,
                    "error_kinds": error_kinds,
                    "statuses": {str(code): count for code, count in sorted(statuses.items())},
                }
            )

    targets = evaluate_targets(runs, rows, big)
    logs = server_log_summary(run_dir / "logs")
    summary: dict[str, Any] = {
        "meta": meta,
        "rows": rows,
        "targets": targets,
        "server_logs": logs,
    }
    # Written by bench/events.py when the event streams scenario ran, with its own section.
    events = run_dir / "events.json"
    if events.exists():
        summary["events"] = json.loads(events.read_text())
        summary["events_markdown"] = (run_dir / "events.md").read_text()
    return summary


def _row(rows: list[dict[str, Any]], scenario: str, conns: int) -> dict[str, Any] | None:
    for row in rows:
        if row["scenario"] == scenario and row["connections"] == conns:
            return row
    return None


def evaluate_targets(
    runs: dict[tuple[str, int], dict[int, Measurement | None]], rows: list[dict[str, Any]], big: str
) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    c = TARGET_CONNECTIONS

    def add(name: str, value: str, passed: bool | None) -> None:
        verdict = "N/A" if passed is None else ("PASS" if passed else "FAIL")
        targets.append({"target": name, "value": value, "result": verdict})

    list_row = _row(rows, "list", c)
    ratio = list_row["ratio_to_bare"] if list_row else None
    add(
        f"list ({big}) at {c} connections >= {MIN_LIST_RATIO} of the bare ceiling",
        fmt_ratio(ratio),
        None if ratio is None else ratio >= MIN_LIST_RATIO,
    )

    p99 = list_row["p99_ms"] if list_row else None
    add(
        f"list ({big}) p99 at {c} connections <= {MAX_LIST_P99_MS:g} ms",
        f"{fmt(p99, 1)} ms",
        None if p99 is None else p99 <= MAX_LIST_P99_MS,
    )

    # Per round, the big table's list over the near-empty one (the two ran minutes apart at most).
    big_runs, small_runs = runs.get(("list", c), {}), runs.get(("list_small", c), {})
    pair_ratios = []
    for r, big_m in big_runs.items():
        small_m = small_runs.get(r)
        if big_m is not None and small_m is not None and small_m.ok_rps > 0:
            pair_ratios.append(big_m.ok_rps / small_m.ok_rps)
    big_over_small = median(pair_ratios)
    add(
        f"list throughput at {c} connections: {big} table within 10% of near-empty "
        f"(ratio >= {MIN_BIG_OVER_SMALL})",
        fmt_ratio(big_over_small),
        None if big_over_small is None else big_over_small >= MIN_BIG_OVER_SMALL,
    )

    row_304 = _row(rows, "list304", c)
    ratio_304 = row_304["ratio_to_bare"] if row_304 else None
    if row_304 is None or ratio_304 is None:
        add(f"304 path at {c} connections >= {MIN_304_RATIO} of the ceiling", "n/a (no ETag)", None)
    else:
        answered = row_304["statuses"]
        total = sum(answered.values())
        share_304 = answered.get("304", 0) / total if total else 0.0
        value = f"{fmt_ratio(ratio_304)} ({share_304:.0%} of answers were 304)"
        add(
            f"304 path at {c} connections >= {MIN_304_RATIO} of the ceiling",
            value,
            ratio_304 >= MIN_304_RATIO and share_304 >= 0.99,
        )

    for scenario, who in (("submit", "1 user"), ("submit50", "50 users")):
        submit_row = _row(rows, scenario, c)
        submit_ratio = submit_row["ratio_to_bare"] if submit_row else None
        add(
            f"submit, {who}, at {c} connections >= {MIN_SUBMIT_RATIO} of the ceiling",
            fmt_ratio(submit_ratio),
            None if submit_ratio is None else submit_ratio >= MIN_SUBMIT_RATIO,
        )

    at_256 = [row for row in rows if row["connections"] == ERROR_FREE_CONNECTIONS]
    if at_256:
        errors = sum(row["errors"] or 0 for row in at_256)
        detail = ", ".join(f"{row['scenario']} {row['errors']}" for row in at_256 if row["errors"])
        add(
            f"zero errors at {ERROR_FREE_CONNECTIONS} connections (all scenarios, all rounds)",
            f"{errors} errors" + (f" ({detail})" if detail else ""),
            errors == 0,
        )
    else:
        add(f"zero errors at {ERROR_FREE_CONNECTIONS} connections", "not measured", None)
    return targets


def render_markdown(summary: dict[str, Any]) -> str:
    meta = summary["meta"]
    lines = [
        f"Run of {meta['started_at']} on {meta['host']}: {meta['cpus']} CPUs "
        f"({meta['cpu_model']}), shared; load average {meta['load_before']} before, "
        f"{meta['load_after']} after; 1-minute load at the start of each round: "
        f"{meta['load_by_round']}.",
        "",
        f"wrk {meta['wrk_version']}, -t1, {meta['duration']} per measurement "
        f"(+{meta['warmup']} warm-up), timeout {meta['timeout']}, {meta['rounds']} interleaved "
        f"rounds; uvicorn {meta['uvicorn_version']} (1 worker) on CPU {meta['api_cpu']}, wrk on "
        f"CPU {meta['wrk_cpu']}; PostgreSQL {meta['postgres_version']} unpinned.",
        f"Data: `{meta.get('big_db', 'jobs_bench')}` {meta['big_jobs_before']:,} jobs at the "
        f"start, {meta['big_jobs_after']:,} at the end (POSTs add rows); "
        f"`{meta.get('small_db', 'jobs_bench_small')}` "
        f"{meta['small_jobs']:,} jobs. The benchmark user owns {meta['bench_user_jobs']} jobs "
        f"in each; the list body is {meta['body_bytes']:,} bytes. ETag on the list: "
        f"{meta['etag_note']}.",
        "",
        "Medians over the rounds; ratios are per round against the bare app of the same round "
        "and connection count, then the median. req/s counts 2xx/3xx answers only. Errors "
        "(responses >= 400, socket errors, timeouts) are summed over all rounds.",
        "",
        "| scenario | conns | req/s | x ceiling | p50 ms (x bare) | p99 ms (x bare) "
        "| errors | statuses | req/s by round |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in summary["rows"]:
        statuses = ", ".join(f"{code}: {count:,}" for code, count in row["statuses"].items())
        by_round = " / ".join(fmt(v, 0) for v in row["rps_by_round"])
        ratio = "1.000" if row["scenario"] == "bare" else fmt_ratio(row["ratio_to_bare"])
        p50_x, p99_x = (
            ("", "")
            if row["scenario"] == "bare" or row["rps"] is None
            else (f" ({fmt(row['p50_x_bare'], 1)}x)", f" ({fmt(row['p99_x_bare'], 1)}x)")
        )
        errors = "n/a" if row["errors"] is None else str(row["errors"])
        if row["error_kinds"]:
            kinds = ", ".join(f"{kind} {count}" for kind, count in row["error_kinds"].items())
            errors += f" ({kinds})"
        # wrk leaves answers slower than its timeout out of the percentiles.
        capped = "*" if row["error_kinds"].get("timeout") else ""
        lines.append(
            f"| {row['label']} | {row['connections']} | {fmt(row['rps'], 0)} | {ratio} "
            f"| {fmt(row['p50_ms'], 2)}{p50_x} | {fmt(row['p99_ms'], 2)}{capped}{p99_x} "
            f"| {errors} | {statuses or 'n/a'} | {by_round} |"
        )
    if any(row["error_kinds"].get("timeout") for row in summary["rows"]):
        lines += [
            "",
            f"\\* wrk reported timeouts: answers slower than its {meta['timeout']} timeout are "
            "left out of its percentiles, so p50 and p99 there describe the faster answers only "
            "(p99 is a lower bound). wrk counts a request again at each of its 2-second checks "
            "while it stays unanswered: read the timeout count as a sign, not as a number of "
            "requests.",
        ]
    lines += _floor_lines(summary["rows"])
    lines += ["", "Targets (informational; the run does not fail on them):", ""]
    for target in summary["targets"]:
        lines.append(f"- {target['result']}: {target['target']}: {target['value']}")
    logs = summary["server_logs"]
    lines += ["", f"Server log lines at WARNING and above: {logs['lines']}."]
    if logs["top"]:
        lines += ["", "| count | message |", "|---:|---|"]
        for entry in logs["top"]:
            message = entry["message"].replace("|", "\\|")
            lines.append(f"| {entry['count']} | `{message}` |")
    if "events_markdown" in summary:
        lines += ["", summary["events_markdown"].rstrip("\n")]
    return "\n".join(lines) + "\n"


def _floor_lines(rows: list[dict[str, Any]]) -> list[str]:
    """How far each scenario is below the FastAPI floor: the framework's share of the gap to
    the ceiling is the floor's own ratio, the rest is the route's."""
    lines: list[str] = []
    for conns in sorted({row["connections"] for row in rows}):
        floor = _row(rows, "floor", conns)
        if floor is None or not floor["ratio_to_bare"]:
            continue
        parts = [
            f"{row['scenario']} {row['ratio_to_bare'] / floor['ratio_to_bare']:.3f}"
            for row in rows
            if row["connections"] == conns
            and row["scenario"] not in ("bare", "floor")
            and row["ratio_to_bare"]
        ]
        lines.append(
            f"- {conns} connections: the floor is {fmt_ratio(floor['ratio_to_bare'])} of the "
            f"ceiling; x floor: {', '.join(parts)}"
        )
    if lines:
        lines = ["", "Against the FastAPI floor (ratios of the medians):", "", *lines]
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run_dir = Path(argv[1])
    summary = summarise(run_dir)
    markdown = render_markdown(summary)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (run_dir / "summary.md").write_text(markdown)
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
