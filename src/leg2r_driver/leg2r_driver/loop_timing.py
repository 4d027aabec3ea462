"""Deadline-based fixed-rate loop timing and period statistics (no ROS).

``create_timer`` drifts and skips ticks at 500 Hz in rclpy (TOOLCHAIN.md); sleeping to an
absolute deadline and busy-waiting the last few hundred microseconds keeps the period p99 within
about 10 us of nominal on an idle machine. Deadlines advance by exactly one period, so short
delays are caught up; a tick that is more than one whole period late re-anchors the schedule
instead of bursting to catch up (a burst would send several commands at once).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PeriodSummary:
    """Statistics of measured tick-to-tick periods (milliseconds)."""

    ticks: int
    rate_hz: float
    period_p50_ms: float
    period_p99_ms: float
    period_max_ms: float
    missed: int  # periods longer than 2x nominal

    def as_dict(self) -> dict[str, float | int]:
        return {
            "rate_hz": self.rate_hz,
            "period_p50_ms": self.period_p50_ms,
            "period_p99_ms": self.period_p99_ms,
            "period_max_ms": self.period_max_ms,
            "missed": self.missed,
        }


class PeriodStatistics:
    """Records tick timestamps (seconds) and summarises the periods between them.

    Keeps at most ``capacity`` most recent periods (a ring buffer), so it can run for hours.
    """

    def __init__(self, nominal_period: float, capacity: int = 100_000) -> None:
        if nominal_period <= 0.0:
            raise ValueError(f"nominal_period must be > 0, got {nominal_period}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.nominal_period = nominal_period
        self._periods = np.zeros(capacity)
        self._count = 0
        self._last: float | None = None
        self._first: float | None = None
        self._total_ticks = 0
        self.total_missed = 0

    def record(self, timestamp: float) -> None:
        """Note that a tick happened at ``timestamp`` (seconds, monotonic)."""
        if self._last is not None:
            period = timestamp - self._last
            self._periods[self._count % len(self._periods)] = period
            self._count += 1
            if period > 2.0 * self.nominal_period:
                self.total_missed += 1
        else:
            self._first = timestamp
        self._last = timestamp
        self._total_ticks += 1

    def reset(self) -> None:
        self._count = 0
        self._last = None
        self._first = None
        self._total_ticks = 0
        self.total_missed = 0

    def summary(self) -> PeriodSummary:
        """Statistics over the retained periods (NaN when fewer than two ticks were recorded)."""
        n = min(self._count, len(self._periods))
        if n == 0 or self._first is None or self._last is None:
            nan = float("nan")
            return PeriodSummary(self._total_ticks, nan, nan, nan, nan, 0)
        periods = self._periods[:n] * 1e3
        elapsed = self._last - self._first
        rate = (self._total_ticks - 1) / elapsed if elapsed > 0 else float("nan")
        return PeriodSummary(
            ticks=self._total_ticks,
            rate_hz=float(rate),
            period_p50_ms=float(np.percentile(periods, 50)),
            period_p99_ms=float(np.percentile(periods, 99)),
            period_max_ms=float(periods.max()),
            missed=self.total_missed,
        )


class DeadlineLoop:
    """Waits for absolute deadlines ``start + k * period``.

    ``wait()`` sleeps until ``busy_wait`` seconds before the deadline, then spins on the clock.
    Clock and sleep are injectable for tests.
    """

    def __init__(
        self,
        period: float,
        busy_wait: float = 300e-6,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if period <= 0.0:
            raise ValueError(f"period must be > 0, got {period}")
        if busy_wait < 0.0:
            raise ValueError(f"busy_wait must be >= 0, got {busy_wait}")
        self.period = period
        self.busy_wait = busy_wait
        self._clock = clock
        self._sleep = sleep
        self._deadline: float | None = None
        self.reanchors = 0
        self.statistics = PeriodStatistics(period)

    def start(self) -> None:
        """Anchor the schedule: the first deadline is one period from now."""
        self._deadline = self._clock() + self.period

    def wait(self) -> float:
        """Block until the next deadline; returns the tick time (clock seconds)."""
        if self._deadline is None:
            self.start()
        assert self._deadline is not None
        deadline = self._deadline
        remaining = deadline - self._clock() - self.busy_wait
        if remaining > 0.0:
            self._sleep(remaining)
        now = self._clock()
        while now < deadline:
            now = self._clock()
        if now - deadline > self.period:
            self.reanchors += 1
            self._deadline = now + self.period
        else:
            self._deadline = deadline + self.period
        self.statistics.record(now)
        return now


def request_realtime_priority(priority: int) -> str:
    """Put the calling thread under SCHED_FIFO at ``priority`` (1..99); 0 leaves it alone.

    Needs CAP_SYS_NICE (or root, or an rtprio limit). Returns a line for the log; failing is not
    an error, the loop then runs with normal priority.
    """
    if priority == 0:
        return "normal scheduling"
    if not 1 <= priority <= 99:
        raise ValueError(f"realtime priority must be in 1..99 (0 = off), got {priority}")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError) as error:
        return f"SCHED_FIFO {priority} refused ({error}); normal scheduling"
    return f"SCHED_FIFO priority {priority}"
