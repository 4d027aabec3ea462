"""Helpers for tests of code that consumes training runs (planner service, planner node).

Like ``numpy.testing``: shipped with the package so that the tests of other packages
(``mdemorl_planner_node``) can build the same small fixtures without copying them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mdemorl_core.agent import Agent
from mdemorl_core.config import build_train_config
from mdemorl_core.training.loop import save_run_checkpoint
from mdemorl_core.training.run_dir import RunPaths, prepare_new_run

SMALL_AGENT: dict[str, Any] = {
    "model": {"ensemble_size": 3, "num_elites": 2, "hidden_size": 32, "max_epochs": 5},
    "sac": {"hidden_size": 32},
    "schedule": {"b_start": 10, "b_end": 10},
    "utd_ratio": 0.05,
    "initial_random_steps": 0,
    "update_mode": "epoch",
}
"""Agent overrides that train in well under a second (3-member ensemble, 32-unit networks)."""


def write_small_run(run_dir: Path, algo: str = "mdemorl", seed: int = 0, epoch: int = 1) -> Agent:
    """A Pendulum-v1 run directory whose checkpoint (labelled ``epoch``) holds a ``SMALL_AGENT``
    updated once on 300 transitions of a made-up linear system (obs ``3``, act ``1``).
    Returns the agent that was saved."""
    torch.set_num_threads(1)
    config = build_train_config({"env_id": "Pendulum-v1", "algo": algo, "agent": SMALL_AGENT})
    agent = Agent(3, 1, config.agent, torch.device("cpu"), seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(300):
        obs = rng.uniform(-1, 1, 3).astype(np.float32)
        act = rng.uniform(-1, 1, 1).astype(np.float32)
        agent.observe(obs, act, float(-np.sum(obs**2)), obs + 0.1 * act[0], False)
    agent.update(1)
    paths = RunPaths(run_dir)
    prepare_new_run(paths, config)
    save_run_checkpoint(paths, config, epoch, agent)
    return agent
