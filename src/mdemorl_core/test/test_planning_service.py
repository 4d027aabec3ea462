"""One-state planning from a training run's checkpoint (what the planner node serves)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mdemorl_core.agent import Agent
from mdemorl_core.config import build_train_config, config_to_dict
from mdemorl_core.planning.service import PlanningService, PlanningUnavailable
from mdemorl_core.training.checkpoint import save_checkpoint
from mdemorl_core.training.loop import CHECKPOINT_FORMAT
from mdemorl_core.training.run_dir import RunPaths, prepare_new_run

SMALL_AGENT = {
    "model": {"ensemble_size": 3, "num_elites": 2, "hidden_size": 32, "max_epochs": 5},
    "sac": {"hidden_size": 32},
    "schedule": {"b_start": 10, "b_end": 10},
    "utd_ratio": 0.05,
    "initial_random_steps": 0,
}


def _write_run(run_dir: Path, algo: str = "mdemorl") -> Agent:
    torch.set_num_threads(1)
    config = build_train_config({"env_id": "Pendulum-v1", "algo": algo, "agent": SMALL_AGENT})
    agent = Agent(3, 1, config.agent, torch.device("cpu"), seed=3)
    rng = np.random.default_rng(0)
    for _ in range(300):
        obs = rng.uniform(-1, 1, 3).astype(np.float32)
        act = rng.uniform(-1, 1, 1).astype(np.float32)
        agent.observe(obs, act, float(-np.sum(obs**2)), obs + 0.1 * act[0], False)
    agent.update(1)
    paths = RunPaths(run_dir)
    prepare_new_run(paths, config)
    state = {"format": CHECKPOINT_FORMAT, "config": config_to_dict(config), "epoch": 4}
    save_checkpoint(paths.checkpoint_dir, {**state, "agent": agent.state_dict()})
    return agent


def test_plan_from_run_checkpoint(tmp_path: Path) -> None:
    _write_run(tmp_path / "run")
    service = PlanningService.from_run(tmp_path / "run", default_horizon=7)

    plan = service.plan(np.array([0.1, -0.2, 0.3], dtype=np.float32))
    assert service.version == 4
    assert plan.actions.shape == (7, 1) and plan.actions.dtype == np.float32
    assert np.all(np.abs(plan.actions) <= 1.0)
    assert np.isfinite(plan.predicted_return) and plan.seconds > 0.0

    longer = service.plan(np.zeros(3), horizon=12, num_samples=20, elite_fraction=0.5)
    assert longer.actions.shape == (12, 1)


def test_bad_requests_are_rejected_with_reasons(tmp_path: Path) -> None:
    _write_run(tmp_path / "run")
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
    _write_run(tmp_path / "sac_run", algo="sac")
    with pytest.raises(PlanningUnavailable, match="no dynamics model"):
        PlanningService.from_run(tmp_path / "sac_run")
