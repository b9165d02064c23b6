"""The event streams scenario's section of the benchmark report, from what bench/events.py
measured (its events.json)."""

from typing import Any

from bench.report import fmt

MAX_EVENT_DELAY_P99_MS = 250.0


def share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def refusals(counts: dict[str, Any]) -> str:
    found = counts["refusals_tried_again"]
    return ", ".join(f"{n} x HTTP {status}" for status, n in found.items()) if found else "none"


def event_targets(events: dict[str, Any]) -> list[tuple[bool, str]]:
    memory, delay = events["memory"], events["delay"]
    held = (
        f"{memory['open']:,} of {memory['streams']:,} open after {memory['hold_seconds']:g} s "
        f"idle, {sum(memory['errors'].values())} errors "
        f"(refused and tried again on the way: {refusals(memory)})"
    )
    p99 = delay["p99_ms"]
    shown = f"p99 {fmt(p99, 1)} ms, {delay['missed']} of {delay['changes']:,} changes never shown"
    return [
        (
            memory["open"] == memory["streams"] and not memory["errors"],
            f"{memory['streams']:,} streams held by one API process: {held}",
        ),
        (
            p99 is not None and p99 <= MAX_EVENT_DELAY_P99_MS and delay["missed"] == 0,
            f"commit to event p99 <= {MAX_EVENT_DELAY_P99_MS:g} ms at "
            f"{delay['streams']:,} streams, none missed: {shown}",
        ),
    ]


def render_events(events: dict[str, Any]) -> list[str]:
    """The event streams scenario (bench/events.py) as a Markdown section."""
    memory, delay = events["memory"], events["delay"]

    def errors(counts: dict[str, Any]) -> str:
        found = counts["errors"]
        return ", ".join(f"{n} x {why}" for why, n in found.items()) if found else "none"

    def mib(kib: int) -> str:
        return f"{kib / 1024:,.1f} MiB"

    logs = events["server_logs"]
    lines = [
        "## Event streams (`GET /api/users/jobs/events`)",
        "",
        f"Run of {events['started_at']}: {events['cpus']} CPUs, shared; load average "
        f"{events['load_before']} before, {events['load_after']} after. One API process "
        f"(`python -m app serve`) on CPU {events['api_cpu']}, the client (raw asyncio "
        f"connections, one stream per user, {events['jobs_per_user']} jobs per user) on CPU "
        f"{events['client_cpu']}; PostgreSQL unpinned.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| streams opened, {events['open_at_once']} at a time (each until its first event) | "
        f"{memory['streams']:,} in {memory['open_seconds']:g} s; first event `stats` on "
        f"{memory['first_event_stats']:,}; refused and tried again: {refusals(memory)}; "
        f"API CPU {memory['open_cpu_ms_per_stream']:g} ms per stream opened |",
        f"| API RSS: at start / after a warm-up / all open / after {memory['hold_seconds']:g} s "
        f"idle (peak) | {mib(memory['rss_kib_at_start'])} / {mib(memory['rss_kib_baseline'])} / "
        f"{mib(memory['rss_kib_all_open'])} / {mib(memory['rss_kib_after_hold'])} "
        f"({mib(memory['peak_rss_kib'])}) |",
        f"| memory per stream (after the hold, over the warm-up) | "
        f"{memory['kib_per_stream']:,.1f} KiB |",
        f"| still open after the hold | {memory['open']:,} of {memory['streams']:,}; "
        f"errors: {errors(memory)}; heartbeats received: {memory['pings']:,}; the API used "
        f"{share(memory.get('idle_cpu_share'))} of a CPU meanwhile |",
        f"| delay, commit to `job` event at {delay['streams']:,} streams | "
        f"p50 {fmt(delay['p50_ms'], 1)} ms, p99 {fmt(delay['p99_ms'], 1)} ms, "
        f"max {fmt(delay['max_ms'], 1)} ms (min {fmt(delay['min_ms'], 1)} ms) |",
        f"| the same from when each UPDATE was sent (an upper bound) | "
        f"p50 {fmt(delay['from_send_p50_ms'], 1)} ms, p99 {fmt(delay['from_send_p99_ms'], 1)} ms,"
        f" max {fmt(delay['from_send_max_ms'], 1)} ms; the UPDATE's round trip: p50 "
        f"{fmt(delay['update_p50_ms'], 1)} ms, p99 {fmt(delay['update_p99_ms'], 1)} ms |",
        f"| changes | {delay['changes']:,} over {delay['seconds']:g} s "
        f"({delay['achieved_rate']:g}/s, asked {delay['rate']:g}/s); shown "
        f"{delay['shown']:,} ({delay['shown_by_own_event']:,} by their own event, the rest by "
        f"a later one of the same job); missed {delay['missed']} |",
        f"| meanwhile | the API used {delay['api_cpu_share']:.0%} of a CPU "
        f"({share(delay['api_busiest_second'])} in its busiest second) and waited for one "
        f"up to {fmt(delay['api_cpu_wait_worst_second_ms'], 0)} ms in a second; this client "
        f"waited up to {fmt(delay['client_cpu_wait_worst_second_ms'], 0)} ms in a second, its "
        f"event loop woke late by p99 {fmt(delay['client_loop_lag_p99_ms'], 1)} ms, max "
        f"{fmt(delay['client_loop_lag_max_ms'], 1)} ms |",
        f"| delay phase streams | {delay['open']:,} of {delay['streams']:,} open at the end; "
        f"errors: {errors(delay)}; refused and tried again: {refusals(delay)} |",
        f"| every event had an `id` | memory phase: {memory['events_without_id']} without; "
        f"delay phase: {delay['events_without_id']} without |",
        f"| `job` events about another user's job | "
        f"{memory['foreign_job_events'] + delay['foreign_job_events']} |",
        f"| API log lines at WARNING and above | {logs['lines']}"
        + "".join(f"; {e['count']} x `{e['message']}`" for e in logs["top"][:3])
        + " |",
        "",
    ]
    for passed, target in event_targets(events):
        lines.append(f"- {'PASS' if passed else 'FAIL'}: {target}")
    return lines
