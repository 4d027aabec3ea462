"""Deadline loop and period statistics with a simulated clock (no real sleeping)."""

import numpy as np
import pytest

from leg2r_driver.loop_timing import DeadlineLoop, PeriodStatistics


class SimulatedTime:
    """A clock that advances by sleep() and by a fixed cost per clock read (busy-wait)."""

    def __init__(self, read_cost: float = 1e-6) -> None:
        self.now = 0.0
        self.read_cost = read_cost
        self.sleeps: list[float] = []
        self.oversleep = 0.0

    def clock(self) -> float:
        self.now += self.read_cost
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.oversleep


def test_ticks_land_on_absolute_deadlines_without_drift() -> None:
    t = SimulatedTime()
    loop = DeadlineLoop(0.002, busy_wait=300e-6, clock=t.clock, sleep=t.sleep)
    loop.start()
    start = t.now
    ticks = [loop.wait() for _ in range(1000)]
    deadlines = start + 0.002 * np.arange(1, 1001)
    assert np.all(np.array(ticks) >= deadlines - 1e-12)
    assert np.max(np.array(ticks) - deadlines) < 1e-5
    assert all(s <= 0.002 - 300e-6 + 1e-9 for s in t.sleeps)  # sleeps stop short, then spin


def test_oversleep_is_absorbed_by_the_busy_wait_margin() -> None:
    t = SimulatedTime()
    t.oversleep = 200e-6
    loop = DeadlineLoop(0.002, busy_wait=300e-6, clock=t.clock, sleep=t.sleep)
    loop.start()
    start = t.now
    ticks = np.array([loop.wait() for _ in range(100)])
    assert np.max(ticks - (start + 0.002 * np.arange(1, 101))) < 1e-5


def test_long_stall_reanchors_instead_of_bursting() -> None:
    t = SimulatedTime()
    loop = DeadlineLoop(0.002, busy_wait=0.0, clock=t.clock, sleep=t.sleep)
    loop.start()
    loop.wait()
    t.now += 0.010  # the work of one tick took 5 periods
    stalled = loop.wait()
    following = loop.wait()
    assert loop.reanchors == 1
    assert following - stalled == pytest.approx(0.002, abs=1e-5)
    assert loop.statistics.summary().missed == 1


def test_period_statistics_summary() -> None:
    stats = PeriodStatistics(0.002)
    stamps = np.cumsum([0.0] + [0.002] * 98 + [0.0061])
    for s in stamps:
        stats.record(float(s))
    summary = stats.summary()
    assert summary.ticks == 100
    assert summary.period_p50_ms == pytest.approx(2.0)
    assert summary.period_max_ms == pytest.approx(6.1)
    assert summary.missed == 1
    assert summary.rate_hz == pytest.approx(99 / stamps[-1])
    assert set(summary.as_dict()) == {
        "rate_hz",
        "period_p50_ms",
        "period_p99_ms",
        "period_max_ms",
        "missed",
    }


def test_statistics_ring_buffer_and_empty_summary() -> None:
    stats = PeriodStatistics(0.001, capacity=10)
    assert np.isnan(stats.summary().rate_hz)
    for i in range(50):
        stats.record(i * 0.001 + (0.0005 if i == 3 else 0.0))
    assert stats.summary().period_max_ms == pytest.approx(1.0)  # the early outlier fell out
    with pytest.raises(ValueError, match="nominal_period"):
        PeriodStatistics(0.0)
