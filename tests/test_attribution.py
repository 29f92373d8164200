"""The bench's attribution of slow calls to the publishing of batches."""

from __future__ import annotations

from chomp_tasks.bench.attribution import MARGIN_NS, attribute, beyond_chance, during

MS = 1_000_000


def test_a_call_counts_as_publishing_when_it_overlaps_a_window_or_its_margin() -> None:
    windows = [(10 * MS, 12 * MS), (20 * MS, 21 * MS)]
    calls = [
        (9 * MS, MS // 2),  # ends before the first window, within its margin
        (11 * MS, 1000),  # inside
        (15 * MS, 1000),  # between the windows, beyond both margins
        (21 * MS + MARGIN_NS - 1, 1000),  # just after the second, within its margin
        (30 * MS, 1000),  # after every window
    ]

    assert during(calls, windows) == [True, True, False, True, False]
    assert during(calls, []) == [False] * 5


def test_slow_calls_gathered_in_the_windows_are_beyond_chance() -> None:
    windows = [(i * 100 * MS, i * 100 * MS + 2 * MS) for i in range(50)]
    fast = [(i * MS // 10, 1000) for i in range(50_000)]
    # One slow call in every window: what a sender holding the interpreter lock does.
    gathered = fast + [(start + MS // 2, 2 * MS) for start, _ in windows]
    # As many slow calls, spread evenly over the run: the machine's own.
    spread = fast + [(i * 100 * MS + 50 * MS, 2 * MS) for i in range(50)]

    caused = attribute(gathered, windows)
    assert caused["over_1ms_publishing"] == 50
    assert beyond_chance(caused["over_1ms_publishing"], caused["over_1ms_by_chance"])
    machine = attribute(spread, windows)
    assert machine["over_1ms_publishing"] == 0
    assert not beyond_chance(machine["over_1ms_publishing"], machine["over_1ms_by_chance"])
