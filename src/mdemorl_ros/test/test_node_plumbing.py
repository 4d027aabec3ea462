"""node_plumbing: the loop's diagnostics entry and the statistics file (no ROS graph needed)."""

from __future__ import annotations

import json
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticStatus

from mdemorl_ros.loop_timing import DeadlineLoop
from mdemorl_ros.node_plumbing import loop_status, write_statistics_file


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run_loop(ticks: int, work: float) -> DeadlineLoop:
    """A 2 ms loop on a fake clock whose every tick does ``work`` seconds of work."""
    t = FakeClock()
    loop = DeadlineLoop(0.002, busy_wait=0.0, clock=t.clock, sleep=t.sleep, cpu_clock=t.clock)
    loop.start()
    for _ in range(ticks):
        loop.wait()
        t.now += work
    return loop


def test_loop_status_ok_on_time_and_warns_after_a_missed_deadline() -> None:
    on_time = loop_status("node: loop", "robot", run_loop(50, 0.0005))
    assert (on_time.name, on_time.hardware_id) == ("node: loop", "robot")
    assert on_time.level == DiagnosticStatus.OK
    assert on_time.message == "500.0 Hz"
    values = {kv.key: kv.value for kv in on_time.values}
    assert values["reanchors"] == "0"
    late = loop_status("node: loop", "robot", run_loop(50, 0.005))
    assert late.level == DiagnosticStatus.WARN
    assert int({kv.key: kv.value for kv in late.values}["reanchors"]) > 0


def test_statistics_file_has_the_record_and_extra_keys_and_empty_path_writes_nothing(
    tmp_path: Path,
) -> None:
    loop = run_loop(20, 0.0005)
    path = tmp_path / "stats.json"
    write_statistics_file(str(path), loop, {"transitions": 7})
    record = json.loads(path.read_text())
    assert record["transitions"] == 7
    assert record["ticks"] == loop.statistics.summary().ticks
    assert record["reanchors"] == 0
    write_statistics_file("", loop)
    assert list(tmp_path.iterdir()) == [path]
