import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from chomp_tasks import sampler
from chomp_tasks.sampler import Counters, collect_counters, rates

CPU_COUNT = os.cpu_count() or 1
INTERVAL_SECONDS = 1.0
BUSY_FLOOR_PERCENT = 20 / CPU_COUNT
IDLE_CEILING_PERCENT = 5.0
WRITE_BYTES = 4 << 20

BUSY = "print('ready', flush=True)\nwhile True: pass"
IDLE = "import time\nprint('ready', flush=True)\ntime.sleep(120)"
# A parent that sleeps while its two children, one busy and one idle, do the work.
PARENT = f"""
import subprocess, sys, time
busy = subprocess.Popen([sys.executable, "-c", {BUSY!r}], stdout=subprocess.PIPE)
idle = subprocess.Popen([sys.executable, "-c", {IDLE!r}], stdout=subprocess.PIPE)
busy.stdout.readline(); idle.stdout.readline()
print(busy.pid, idle.pid, flush=True)
time.sleep(120)
"""
WRITER = """
import os, sys
with open(sys.argv[1], "wb") as file:
    file.write(os.urandom(int(sys.argv[2])))
    file.flush()
    os.fsync(file.fileno())
print("written", flush=True)
sys.stdin.readline()
"""
# A parent that starts a writer, and reaps it once told to.
REAPER = f"""
import subprocess, sys, time
writer = subprocess.Popen([sys.executable, "-c", {WRITER!r}] + sys.argv[1:], stdin=subprocess.PIPE)
sys.stdin.readline()
writer.communicate(b"done\\n")
print("reaped", flush=True)
time.sleep(120)
"""

Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    started: list[subprocess.Popen[str]] = []

    def start(code: str, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
        process.communicate()


@pytest.fixture(params=["children files", "psutil scan"])
def discovery(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "psutil scan":
        monkeypatch.setattr(sampler, "_has_children_files", lambda: False)
    return str(request.param)


def ready(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().strip()


def over_an_interval(*root_pids: int, exclude: tuple[int, ...] = ()) -> list[sampler.Rates]:
    first = [collect_counters(pid, exclude) for pid in root_pids]
    time.sleep(INTERVAL_SECONDS)  # lets the measured interval pass; nothing is awaited
    second = [collect_counters(pid, exclude) for pid in root_pids]
    return [rates(a, b, CPU_COUNT) for a, b in zip(first, second, strict=True)]


def test_busy_process_shows_clearly_more_cpu_than_idle_one(spawn: Spawn) -> None:
    busy, idle = spawn(BUSY), spawn(IDLE)
    ready(busy), ready(idle)

    busy_rates, idle_rates = over_an_interval(busy.pid, idle.pid)

    assert busy_rates.cpu_usage is not None and busy_rates.cpu_usage > BUSY_FLOOR_PERCENT
    assert idle_rates.cpu_usage is not None and idle_rates.cpu_usage < IDLE_CEILING_PERCENT
    assert busy_rates.cpu_usage <= 100


def test_tree_counts_the_cpu_of_children(spawn: Spawn, discovery: str) -> None:
    parent = spawn(PARENT)
    busy_pid, idle_pid = map(int, ready(parent).split())

    (tree_rates,) = over_an_interval(parent.pid)

    assert tree_rates.cpu_usage is not None and tree_rates.cpu_usage > BUSY_FLOOR_PERCENT
    assert {parent.pid, busy_pid, idle_pid} <= collect_counters(parent.pid).pids


def test_excluded_child_is_left_out_with_its_cpu(spawn: Spawn, discovery: str) -> None:
    parent = spawn(PARENT)
    busy_pid, idle_pid = map(int, ready(parent).split())

    (tree_rates,) = over_an_interval(parent.pid, exclude=(busy_pid,))
    pids = collect_counters(parent.pid, exclude_pids=[busy_pid]).pids

    assert tree_rates.cpu_usage is not None and tree_rates.cpu_usage < IDLE_CEILING_PERCENT
    assert busy_pid not in pids
    assert {parent.pid, idle_pid} <= pids


def test_tree_memory_counts_each_process_once(spawn: Spawn) -> None:
    parent = spawn(PARENT)
    ready(parent)

    tree = collect_counters(parent.pid)
    rss_sum = sum(psutil.Process(pid).memory_info().rss for pid in tree.pids)

    assert 0 < tree.tree_memory_bytes <= rss_sum


def test_first_sample_after_priming_is_a_real_figure(spawn: Spawn) -> None:
    busy = spawn(BUSY)
    ready(busy)

    primed = collect_counters(busy.pid)  # what a worker stores when it starts
    time.sleep(INTERVAL_SECONDS)
    first = rates(Counters.from_json(primed.to_json()), collect_counters(busy.pid), CPU_COUNT)

    assert first.cpu_usage is not None and first.cpu_usage > BUSY_FLOOR_PERCENT
    assert first.memory_usage is not None and first.memory_usage > 0
    assert first.host_cpu_usage is not None and first.host_cpu_usage > 0
    assert first.host_memory_usage is not None and first.host_memory_usage > 0
    assert first.host_network_usage is not None and first.host_network_usage >= 0
    assert first.disk_usage is not None and first.disk_usage >= 0


def test_disk_writes_show_in_disk_usage(spawn: Spawn, tmp_path: Path) -> None:
    writer = spawn(
        f"import sys\nsys.stdin.readline()\n{WRITER}", str(tmp_path / "out"), str(WRITE_BYTES)
    )
    assert writer.stdin is not None
    before = collect_counters(writer.pid)

    writer.stdin.write("go\n")
    writer.stdin.flush()
    assert ready(writer) == "written"
    after = collect_counters(writer.pid)

    if after.process_disk_bytes is None:
        pytest.skip("this system does not report per-process I/O counters")
    disk = rates(before, after, CPU_COUNT).disk_usage
    assert disk is not None
    # The rate times the interval gives back the bytes, less floating-point rounding.
    assert disk * (after.wall_time - before.wall_time) >= WRITE_BYTES * 0.999


def test_reaped_child_stays_in_the_tree_counted_once(spawn: Spawn, tmp_path: Path) -> None:
    reaper = spawn(REAPER, str(tmp_path / "out"), str(WRITE_BYTES))
    assert reaper.stdin is not None and ready(reaper) == "written"
    while_alive = collect_counters(reaper.pid)
    if while_alive.process_disk_bytes is None:
        pytest.skip("this system does not report per-process I/O counters")
    assert len(while_alive.pids) == 2

    reaper.stdin.write("reap\n")
    reaper.stdin.flush()
    assert ready(reaper) == "reaped"
    after_reaping = collect_counters(reaper.pid)

    disk = rates(while_alive, after_reaping, CPU_COUNT).disk_usage
    assert after_reaping.pids == {reaper.pid}
    assert after_reaping.tree_cpu_seconds >= while_alive.tree_cpu_seconds
    assert disk is not None
    assert disk * (after_reaping.wall_time - while_alive.wall_time) < WRITE_BYTES / 4


def test_ended_root_is_refused(spawn: Spawn) -> None:
    gone = spawn("pass")
    gone.communicate()

    with pytest.raises(ValueError, match=f"root_pid={gone.pid}"):
        collect_counters(gone.pid)


def test_counters_round_trip_through_json() -> None:
    counters = collect_counters(os.getpid())

    assert Counters.from_json(counters.to_json()) == counters
    assert Counters.from_dict(orjson.loads(orjson.dumps(counters.to_dict()))) == counters
    assert counters.process_disk_bytes is None or counters.process_disk_bytes
