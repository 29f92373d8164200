"""Print the bench's figures next to their references and targets."""

from __future__ import annotations

from typing import Any

from chomp_tasks.bench.attribution import beyond_chance

STOP_TIMER_MEDIAN_TARGET_US = 10.0
STOP_TIMER_P99_TARGET_US = 100.0
STALL_TARGET_US = 1000.0
RECORDS_TARGET_PER_SECOND = 40_000
BASELINE_TARGET_RATIO = 50.0
LAG_TARGET_SECONDS = 2.0
SAMPLE_TARGET_MS = 5.0
# Above this share of calls made while a batch was published, see stalls_within_chance.
MOSTLY_PUBLISHING = 0.5

_CALLER_ROWS = (
    ("noise_floor", "empty timed loop (noise floor)"),
    ("deque_append", "deque.append of a record"),
    ("lpush", "one Redis LPUSH round trip"),
    ("delay", "plain monitor_request.delay()"),
    ("stop_timer_up", "Monitor.stop_timer, broker up"),
    ("stop_timer_down", "Monitor.stop_timer, broker port closed"),
)


def format_report(results: dict[str, Any]) -> str:
    """Return the bench's report as text, one figure per line with its reference and target."""
    meta = results["meta"]
    lines = [
        f"chomp-tasks bench ({'quick' if meta['quick'] else 'full'} run, {meta['cpus']} CPUs, "
        f"load {meta['load_before']:.2f} before and {meta['load_after']:.2f} after, "
        f"{meta['seconds']:.0f} s)",
        "",
    ]
    lines += _caller(results["latency"], results["stall"])
    lines += _storage(results["storage"])
    lines += _throughput(results["throughput"])
    lines += _lag(results["lag"])
    lines += _sampler(results["sampler"])
    return "\n".join(lines)


def ratio(value: float, reference: float) -> str:
    """Return value / reference as `12x` or `1/12`."""
    if value <= 0 or reference <= 0:
        return "n/a"
    quotient = value / reference
    return f"{quotient:,.1f}x" if quotient >= 1 else f"1/{1 / quotient:,.0f}"


def verdict(met: bool) -> str:
    """Return the word the report uses for a target."""
    return "met" if met else "MISSED"


def _caller(latency: dict[str, Any], stall: dict[str, Any]) -> list[str]:
    delay_median, append_median = latency["delay"][0], latency["deque_append"][0]
    lines = [
        f"{'Caller cost of one record (us)':44} {'median':>9} {'p99':>9} {'max':>9}"
        f"   median vs .delay() / vs deque.append",
    ]
    for key, label in _CALLER_ROWS:
        median, p99, worst = latency[key]
        lines.append(
            f"  {label:42} {median:9.2f} {p99:9.2f} {worst:9.0f}"
            f"   {ratio(median, delay_median):>9} / {ratio(median, append_median)}"
        )
    for key in ("stop_timer_up", "stop_timer_down"):
        median, p99, _ = latency[key]
        met = median <= STOP_TIMER_MEDIAN_TARGET_US and p99 <= STOP_TIMER_P99_TARGET_US
        lines.append(f"  target for {key}: median <= 10 us, p99 <= 100 us: {verdict(met)}")

    verdicts = {}
    for caller, label in (
        ("tight", "Monitor.stop_timer, calls back to back"),
        ("waiting", f"  with a {stall['waiting']['wait_s'] * 1e3:.1f} ms wait, beyond the wait"),
    ):
        figures = stall[caller]
        median, p99, worst = figures["stop_timer"]
        verdicts[caller] = stalls_within_chance(figures)
        lines += [
            f"  {label:42} {median:9.2f} {p99:9.2f} {worst:9.0f}",
            f"    {_stalls(figures)}",
        ]
    publish = stall["publish_cpu_us"]
    lines += [
        f"  sender thread CPU per batch, publishing through the relay: median "
        f"{publish[0]:,.0f} us, max {publish[2]:,.0f} us",
        *_thread_sender(stall["thread"]),
        f"  target no stall over 1 ms from monitoring: an ingester waiting on I/O "
        f"{verdict(verdicts['waiting'])}; a caller that never waits {verdict(verdicts['tight'])}",
        "",
    ]
    return lines


def stalls_within_chance(figures: dict[str, Any]) -> bool:
    """Say whether a caller's slow calls are what chance gives, not the sender's doing.

    The slow calls made while a batch was published are held against their share of all
    calls. A caller that never waits keeps a batch in publishing nearly all the time, which
    leaves no calls outside to compare with; its slow calls are held against the rounds with
    no sender at all instead.
    """
    if figures["share_publishing"] < MOSTLY_PUBLISHING:
        return not beyond_chance(figures["over_1ms_publishing"], figures["over_1ms_by_chance"])
    return not beyond_chance(figures["calls_over_1ms"], figures["noise_over_1ms"])


def _stalls(figures: dict[str, Any]) -> str:
    """Return one caller's slow calls: all, while publishing against chance, and with no sender."""
    return (
        f"calls over 1 ms: {figures['calls_over_1ms']} of {figures['calls']:,}; "
        f"while a batch was published: {figures['over_1ms_publishing']}, by chance "
        f"{figures['over_1ms_by_chance']:.1f} ({figures['share_publishing']:.1%} of calls); "
        f"with no sender at all: {figures['noise_over_1ms']}; "
        f"{'within' if stalls_within_chance(figures) else 'BEYOND'} chance"
    )


def _thread_sender(stall: dict[str, Any]) -> list[str]:
    """Return the lines of the reference: the sender publishing on a thread of the ingester."""
    publish = stall["publish_cpu_us"]
    return [
        "  the reference, publishing on a thread of the ingester (CHOMP_SENDER=thread):",
        f"    waiting caller: {_stalls(stall['waiting'])}",
        f"    back to back: {_stalls(stall['tight'])}",
        f"    sender thread CPU per batch, all of it holding the interpreter lock: median "
        f"{publish[0]:,.0f} us, max {publish[2]:,.0f} us",
    ]


def _throughput(figures: dict[str, Any]) -> list[str]:
    monitor, baseline = figures["monitor"], figures["baseline"]
    speedup = monitor["records_per_s"] / baseline["records_per_s"]
    met = monitor["records_per_s"] >= RECORDS_TARGET_PER_SECOND and speedup >= BASELINE_TARGET_RATIO
    caller = baseline["submit_us_per_record"]
    once = all(f["stored"] == f["records"] - f["dropped"] for f in (monitor, baseline))
    return [
        f"{'Stored end to end, one worker -c 2':42} {'records/s':>9} {'records':>10}"
        f" {'stored':>9} {'producer wall us/record':>24}",
        _throughput_row(f"Monitor, offered {monitor['offered_per_s']:,}/s", monitor),
        _throughput_row("monitor_request.delay() per record", baseline),
        f"  Monitor vs one row per task: {speedup:,.1f}x; "
        f"target >= 40,000 records/s and >= 50x: {verdict(met)}; "
        f"every record delivered stored once: {verdict(once)}; "
        f"dropped by the sender for a full buffer: {monitor['dropped']:,}",
        f"  the direct .delay() path stores {speedup:,.0f}x fewer records/s; its producer spends "
        f"{caller:,.0f} us on each (Monitor's producer was paced to the offered rate)",
        "",
    ]


def _throughput_row(label: str, figures: dict[str, Any]) -> str:
    return (
        f"  {label:40} {figures['records_per_s']:9,.0f} {figures['records']:10,}"
        f" {figures['stored']:9,} {figures['submit_us_per_record']:24.1f}"
    )


def _lag(lag: dict[str, Any]) -> list[str]:
    return [
        f"Lag from stop_timer to row visible at {lag['rate_per_s']:,} records/s "
        f"({lag['records']:,} records, polled every 50 ms)",
        f"  p50 {lag['p50_s']:.3f} s, p99 {lag['p99_s']:.3f} s, max {lag['max_s']:.3f} s; "
        f"p99 vs target 2 s: {ratio(lag['p99_s'], LAG_TARGET_SECONDS)}, "
        f"{verdict(lag['p99_s'] < LAG_TARGET_SECONDS)}",
        "",
    ]


def _sampler(sampler: dict[str, Any]) -> list[str]:
    return [
        f"Instance sample: one vitals sample of a process with {sampler['children']} forked "
        "children",
        f"  {sampler['steady_cpu_ms']:.2f} ms CPU with cached PSS, "
        f"{sampler['refresh_cpu_ms']:.2f} ms when one PSS is re-read; "
        f"{sampler['cpu_ms']:.2f} ms on average at a 30 s interval; "
        f"vs target 5 ms: {ratio(sampler['cpu_ms'], SAMPLE_TARGET_MS)}, "
        f"{verdict(sampler['cpu_ms'] < SAMPLE_TARGET_MS)}",
    ]


def _storage(storage: dict[str, Any]) -> list[str]:
    values, copy = storage["execute_values"], storage["copy"]
    return [
        f"PostgreSQL alone, batches of {storage['batch_rows']:,} rows, one commit each (rows/s)",
        f"  multi-row INSERT (execute_values)          {values:9,.0f}",
        f"  COPY into the parent (the worker's path)   {copy:9,.0f}   {ratio(copy, values)}",
        f"  the same batches again (redelivery path)   {storage['copy_redelivered']:9,.0f}"
        f"   {ratio(storage['copy_redelivered'], values)}",
        "",
    ]
