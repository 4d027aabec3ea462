"""One-state planning from a training run's checkpoint (what the planner node serves)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mdemorl_core.planning.service import PlanningService, PlanningUnavailable
from mdemorl_core.testing import write_small_run


def test_plan_from_run_checkpoint(tmp_path: Path) -> None:
    write_small_run(tmp_path / "run", seed=3, epoch=4)
    service = PlanningService.from_run(tmp_path / "run", default_horizon=7)

    plan = service.plan(np.array([0.1, -0.2, 0.3], dtype=np.float32))
    assert service.version == 4
    assert plan.actions.shape == (7, 1) and plan.actions.dtype == np.float32
    assert np.all(np.abs(plan.actions) <= 1.0)
    assert np.isfinite(plan.predicted_return) and plan.seconds > 0.0

    longer = service.plan(np.zeros(3), horizon=12, num_samples=20, elite_fraction=0.5)
    assert longer.actions.shape == (12, 1)


def test_default_horizon_is_the_runs_acting_planner_horizon(tmp_path: Path) -> None:
    write_small_run(tmp_path / "run", seed=3)
    service = PlanningService.from_run(tmp_path / "run")
    horizon = service.agent.config.act_horizon
    assert service.default_horizon == horizon
    assert service.plan(np.zeros(3)).actions.shape == (horizon, 1)
    assert service.warm_start(horizon) is not None and service.warm_start(horizon + 1) is None


def test_bad_requests_are_rejected_with_reasons(tmp_path: Path) -> None:
    write_small_run(tmp_path / "run", seed=3)
    service = PlanningService.from_run(tmp_path / "run")
    with pytest.raises(ValueError, match="3 values, got 2"):
        service.plan(np.zeros(2))
    with pytest.raises(ValueError, match="NaN or Inf"):
        service.plan(np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="horizon"):
        service.plan(np.zeros(3), horizon=10_000)
    with pytest.raises(ValueError, match="elite_fraction"):
        service.plan(np.zeros(3), elite_fraction=1.5)


def test_unavailable_without_checkpoint_or_model(tmp_path: Path) -> None:
    with pytest.raises(PlanningUnavailable, match="no checkpoint"):
        PlanningService.from_run(tmp_path / "nothing")
    write_small_run(tmp_path / "sac_run", algo="sac", seed=3)
    with pytest.raises(PlanningUnavailable, match="no dynamics model"):
        PlanningService.from_run(tmp_path / "sac_run")
