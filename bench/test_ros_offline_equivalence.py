"""The equivalence criterion of bench/ros_offline_equivalence.py (fixed before its runs)."""

from __future__ import annotations

import pytest
from ros_offline_equivalence import summarise


def _record(online: float, offline: float) -> dict:
    return {
        "online_eval": {"mean_return": online},
        "offline_eval": {"mean_return": offline},
        "online_epoch_seconds": [20.0, 30.0],
        "offline_epoch_seconds": [5.0],
    }


def test_equivalent_when_the_mean_difference_is_within_the_online_seed_spread():
    summary = summarise([_record(800, 790), _record(900, 880), _record(700, 705)])
    assert summary["offline"]["minus_online"] == [-10, -20, 5]
    assert summary["online_seed_std"] == pytest.approx(100.0)
    assert summary["offline"]["equivalent_within_seed_noise"]
    assert summary["online_epoch_seconds_mean"] == pytest.approx(25.0)
    assert "train" not in summary  # no mdemorl train result yet


def test_not_equivalent_when_offline_falls_behind_by_more_than_the_seed_spread():
    summary = summarise([_record(800, 600), _record(810, 620), _record(820, 640)])
    assert summary["offline"]["mean_minus_online"] == pytest.approx(-190.0)
    assert not summary["offline"]["equivalent_within_seed_noise"]
