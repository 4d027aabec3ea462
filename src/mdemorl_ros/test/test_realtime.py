"""Middleware thread priorities and garbage-collector set-up (no ROS, no real SCHED_FIFO)."""

import gc
import json
import threading
from pathlib import Path

import pytest

from mdemorl_ros.loop_timing import DeadlineLoop
from mdemorl_ros.realtime import (
    GcPauseMonitor,
    loop_statistics_record,
    middleware_priority,
    prepare_loop_thread,
    promote_middleware_threads,
    settle_garbage_collector,
)


def test_middleware_priority_defaults_to_one_below_the_loop() -> None:
    assert middleware_priority(-1, 10) == 9
    assert middleware_priority(-1, 1) == 1  # never below the lowest real-time priority
    assert middleware_priority(-1, 0) == 0  # loop not real-time: middleware neither
    assert middleware_priority(5, 10) == 5
    assert middleware_priority(0, 10) == 0
    with pytest.raises(ValueError, match="middleware_priority"):
        middleware_priority(-2, 10)


def fake_task_dir(root: Path, threads: dict[int, str]) -> str:
    for thread_id, name in threads.items():
        (root / str(thread_id)).mkdir()
        (root / str(thread_id) / "comm").write_text(name + "\n")
    return str(root)


def test_promote_touches_only_middleware_threads_and_reports_refusals(tmp_path: Path) -> None:
    task_dir = fake_task_dir(
        tmp_path,
        {101: "dds.ev.0", 102: "python", 103: "dds.udp.7400", 104: "dds.shm.wdog", 105: "pool"},
    )
    calls: list[tuple[int, int]] = []

    def set_scheduler(thread_id: int, priority: int) -> None:
        if thread_id == 104:
            raise PermissionError("not allowed")
        calls.append((thread_id, priority))

    line = promote_middleware_threads(9, task_dir=task_dir, set_scheduler=set_scheduler)
    assert calls == [(101, 9), (103, 9)]
    assert line.startswith("SCHED_FIFO 9 for 2 (dds.ev.0, dds.udp.7400)")
    assert "refused for dds.shm.wdog" in line


def test_promote_off_and_bad_priority(tmp_path: Path) -> None:
    task_dir = fake_task_dir(tmp_path, {7: "dds.ev.0"})
    calls: list[tuple[int, int]] = []
    line = promote_middleware_threads(
        0, task_dir=task_dir, set_scheduler=lambda i, p: calls.append((i, p))
    )
    assert calls == [] and line == "normal scheduling"
    with pytest.raises(ValueError, match="1..99"):
        promote_middleware_threads(100, task_dir=task_dir)


def test_gc_monitor_times_collections_while_installed() -> None:
    ticks = iter(range(1000))
    monitor = GcPauseMonitor(clock=lambda: float(next(ticks)), keep_longest=2)
    monitor.install()
    try:
        for generation in (0, 1, 2):
            gc.collect(generation)
    finally:
        monitor.uninstall()
    gc.collect(0)  # not counted any more
    assert monitor.counts == [1, 1, 1]
    assert len(monitor.longest) == 2
    assert all(p.thread == threading.current_thread().name for p in monitor.longest)
    record = monitor.as_dict(origin=monitor.longest[0].started)
    assert record["counts"] == [1, 1, 1]
    assert record["longest"][0]["at_s"] == 0.0  # type: ignore[index]


def test_settle_garbage_collector_freezes_the_survivors() -> None:
    try:
        settle_garbage_collector()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_prepare_loop_thread_without_real_time_only_settles_the_collector() -> None:
    try:
        lines = prepare_loop_thread(0, -1)
        assert lines == ["loop thread: normal scheduling", "middleware threads: normal scheduling"]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_loop_statistics_record_is_json_ready_and_on_the_window_axis() -> None:
    now = [100.0]
    loop = DeadlineLoop(0.002, busy_wait=0.0, clock=lambda: now[0], sleep=lambda s: None)
    for stamp in (100.0, 100.002, 100.009, 100.011):
        now[0] = stamp
        loop.statistics.record(stamp)
    monitor = GcPauseMonitor(clock=lambda: 100.005)
    monitor(phase="start", info={"generation": 0})
    monitor(phase="stop", info={"generation": 0})
    record = loop_statistics_record(loop, monitor)
    json.dumps(record)
    assert record["window_start_clock"] == 100.0 and record["ticks"] == 4
    assert record["missed"] == 1
    longest = record["longest_periods"]
    assert longest[0]["period_ms"] == pytest.approx(7.0)  # type: ignore[index]
    assert longest[0]["at_s"] == pytest.approx(0.009)  # type: ignore[index]
    assert record["gc"]["longest"][0]["at_s"] == pytest.approx(0.005)  # type: ignore[index]
    assert "gc" not in loop_statistics_record(loop)
