"""The equivalence criterion of bench/ros_offline_equivalence.py (fixed before its runs)."""

from __future__ import annotations

import pytest
from _report_equivalence import render_equivalence
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


def test_report_section_shows_each_seed_and_the_verdict():
    records = [dict(_record(800, 790), seed=0), dict(_record(900, 880), seed=1)]
    text = render_equivalence({"episodes": 10, "seeds": records, "summary": summarise(records)})
    assert "| 0 | 800.0 | 790.0 | — | 25.0 | 5.0 | — |" in text
    assert "retrain − ROS: mean -15.00" in text
    assert "equivalent within seed noise: yes" in text
