"""Deadline loop and period statistics with a simulated clock (no real sleeping)."""

import numpy as np
import pytest

from mdemorl_ros.loop_timing import DeadlineLoop, MeasurementWindow, PeriodStatistics


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


def test_rate_of_a_loop_that_pauses_between_ticks() -> None:
    # A held controller: runs of 2 ms periods, and a 5 ms pause before every other tick.
    stats = PeriodStatistics(0.002)
    now = 0.0
    for i in range(200):
        if i % 2:
            now += 0.005
            stats.mark_gap()
        else:
            now += 0.002
        stats.record(now)
    summary = stats.summary()
    assert summary.period_max_ms == pytest.approx(2.0)
    assert summary.rate_hz == pytest.approx(500.0)


def test_empty_summary_and_bad_arguments() -> None:
    stats = PeriodStatistics(0.001)
    assert np.isnan(stats.summary().rate_hz)
    assert np.isnan(stats.percentile_ms(50.0))
    with pytest.raises(ValueError, match="nominal_period"):
        PeriodStatistics(0.0)
    with pytest.raises(ValueError, match="keep_longest"):
        PeriodStatistics(0.001, keep_longest=-1)
    with pytest.raises(ValueError, match="percentile"):
        stats.percentile_ms(101.0)


def test_histogram_percentiles_match_nearest_rank_within_one_bin() -> None:
    rng = np.random.default_rng(3)
    periods = np.concatenate([rng.uniform(0.0015, 0.0030, 5000), [0.0091, 0.0123, 0.0456]])
    rng.shuffle(periods)
    stats = PeriodStatistics(0.002)
    for stamp in np.concatenate([[0.0], np.cumsum(periods)]):
        stats.record(float(stamp))
    for q in (1.0, 50.0, 90.0, 99.0, 99.9):
        expected = 1e3 * np.percentile(periods, q, method="inverted_cdf")
        assert stats.percentile_ms(q) == pytest.approx(expected, abs=1e3 * stats.bin_width)
    summary = stats.summary()
    assert summary.period_max_ms == pytest.approx(45.6)  # beyond the histogram, still exact
    assert summary.missed == int(np.sum(periods > 0.004))
    assert stats.percentile_ms(100.0) == pytest.approx(45.6)


def test_reset_starts_a_new_window() -> None:
    stats = PeriodStatistics(0.002)
    for stamp in (0.0, 0.002, 0.010):
        stats.record(stamp)
    stats.reset()
    for stamp in (1.0, 1.002, 1.004):
        stats.record(stamp)
    summary = stats.summary()
    assert summary.ticks == 3 and summary.missed == 0
    assert summary.period_max_ms == pytest.approx(2.0)
    assert stats.first_tick == 1.0
    assert stats.longest()[0].at_s == pytest.approx(0.002)


def test_longest_periods_tell_a_slow_tick_from_a_slow_sleep() -> None:
    t = SimulatedTime()
    running = [True]  # whether the simulated thread burns CPU while "sleeping"
    cpu = [0.0]

    def sleep(seconds: float) -> None:
        t.sleep(seconds)
        if running[0]:
            cpu[0] += seconds + t.oversleep

    loop = DeadlineLoop(0.002, busy_wait=0.0, clock=t.clock, sleep=sleep, cpu_clock=lambda: cpu[0])
    loop.statistics.keep_longest = 2
    loop.start()
    for _ in range(10):
        loop.wait()
    t.now += 0.005  # a tick whose own work took 5 ms
    loop.wait()
    for _ in range(10):
        loop.wait()
    t.oversleep, running[0] = 0.002, False  # a sleep that returned 2 ms late, thread not running
    loop.wait()
    t.oversleep = 0.0
    for _ in range(10):
        loop.wait()
    slow_tick, slow_sleep = loop.statistics.longest()
    assert slow_tick.work_ms == pytest.approx(5.0, abs=0.01)
    assert slow_tick.sleep_overrun_ms == pytest.approx(0.0, abs=0.01)
    assert slow_sleep.sleep_overrun_ms == pytest.approx(2.0, abs=0.01)
    assert slow_sleep.sleep_cpu_ms == pytest.approx(0.0)
    assert slow_sleep.work_ms < 0.01
    assert slow_tick.period_ms > slow_sleep.period_ms > 2.5
    assert slow_tick.at_s < slow_sleep.at_s


def test_measurement_window_opens_after_warmup_and_closes_after_duration() -> None:
    window = MeasurementWindow(warmup=2.0, duration=60.0)
    assert window.advance(0.0, has_data=False) is None  # no data yet: the warm-up waits
    assert window.advance(1.0, has_data=True) is None  # warm-up runs from here
    assert window.advance(2.9, has_data=True) is None
    assert window.advance(3.0, has_data=True) == "open"
    assert window.advance(62.9, has_data=True) is None
    assert window.advance(63.0, has_data=True) == "close"
    assert window.advance(100.0, has_data=True) is None
    assert window.state == "closed"


def test_measurement_window_without_warmup_or_duration() -> None:
    endless = MeasurementWindow(warmup=0.0, duration=0.0)
    assert [endless.advance(t, has_data=True) for t in (0.0, 1e6)] == [None, None]
    assert endless.state == "open"
    timed = MeasurementWindow(warmup=0.0, duration=5.0)
    assert timed.advance(1.0, has_data=True) is None  # open from the start: nothing to reset
    assert timed.advance(6.0, has_data=True) == "close"
    with pytest.raises(ValueError, match="warmup"):
        MeasurementWindow(-1.0, 0.0)
