"""Horizon / batch schedules: linear ramp between epochs, clamped outside."""

import pytest

from mdemorl_core.planning.schedules import ScheduleConfig, batch_at, horizon_at, linear_ramp


def test_linear_ramp_endpoints_midpoint_and_clamping() -> None:
    assert linear_ramp(0, 5, 15, 2, 12) == 5
    assert linear_ramp(2, 5, 15, 2, 12) == 5
    assert linear_ramp(7, 5, 15, 2, 12) == 10
    assert linear_ramp(12, 5, 15, 2, 12) == 15
    assert linear_ramp(100, 5, 15, 2, 12) == 15


def test_ramp_is_monotone_for_horizon_and_batch() -> None:
    config = ScheduleConfig(
        h_start=5, h_end=15, b_start=100, b_end=10000, ramp_start_epoch=1, ramp_end_epoch=11
    )
    horizons = [horizon_at(e, config) for e in range(0, 15)]
    batches = [batch_at(e, config) for e in range(0, 15)]
    assert horizons == sorted(horizons) and horizons[0] == 5 and horizons[-1] == 15
    assert batches == sorted(batches) and batches[0] == 100 and batches[-1] == 10000
    assert batch_at(6, config) == 5050


def test_degenerate_ramp_steps_at_end_epoch() -> None:
    assert linear_ramp(3, 5, 15, 4, 4) == 5
    assert linear_ramp(4, 5, 15, 4, 4) == 15


def test_invalid_schedule_raises() -> None:
    with pytest.raises(ValueError, match="ramp_end_epoch"):
        ScheduleConfig(ramp_start_epoch=5, ramp_end_epoch=2)
    with pytest.raises(ValueError, match="h_start"):
        ScheduleConfig(h_start=0)
