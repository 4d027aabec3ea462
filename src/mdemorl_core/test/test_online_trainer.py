"""OnlineTrainer: the trainer node's core, fed transitions from outside instead of an env."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mdemorl_core.agent import Agent
from mdemorl_core.config import build_train_config
from mdemorl_core.policy_io import deserialize_actor
from mdemorl_core.training.online import OnlineTrainer
from mdemorl_core.training.progress_log import read_progress
from mdemorl_core.training.run_dir import RunDirError

STEPS = 100
TINY = {
    "env_id": "Pendulum-v1",
    "steps_per_epoch": STEPS,
    "epochs": 3,
    "agent": {
        "model": {"ensemble_size": 3, "num_elites": 2, "hidden_size": 32, "max_epochs": 3},
        "sac": {"hidden_size": 32, "batch_size": 32},
        "schedule": {"b_start": 8, "b_end": 8, "h_start": 2, "h_end": 2},
        "utd_ratio": 0.2,
        "initial_random_steps": 0,
        "min_model_data": 50,
    },
}


def _feed_epoch(trainer: OnlineTrainer, epoch: int) -> None:
    """One epoch of synthetic experience: two 50-step episodes of a damped linear system."""
    rng = np.random.default_rng(epoch)
    for step in range(STEPS):
        obs = rng.uniform(-1, 1, 3).astype(np.float32)
        act = rng.uniform(-1, 1, 1).astype(np.float32)
        next_obs = 0.9 * obs + 0.1 * act[0]
        trainer.add(obs, act, float(-np.sum(obs**2)), next_obs, False, step % 50 == 49)


def _without_wall_time(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in rows]


def test_epochs_checkpoints_and_policy(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    trainer = OnlineTrainer(build_train_config(TINY), tmp_path / "run", obs_dim=3, act_dim=1)
    assert not trainer.epoch_ready()
    _feed_epoch(trainer, 0)
    assert trainer.epoch_ready()
    row = trainer.run_epoch()
    assert row["epoch"] == 1 and row["env_steps"] == STEPS and row["train_episodes"] == 2
    assert row["d_env"] == STEPS and row["d_mpc"] > 0 and np.isfinite(row["model_loss"])
    assert not trainer.epoch_ready() and not trainer.done
    assert (tmp_path / "run" / "checkpoint").is_dir()
    assert len(read_progress(tmp_path / "run" / "progress.csv")) == 1
    actor = deserialize_actor(trainer.policy_blob())
    action = actor.act_numpy(np.zeros(3, dtype=np.float32))
    assert action.shape == (1,)


def test_invalid_transitions_are_rejected_and_not_stored(tmp_path: Path) -> None:
    trainer = OnlineTrainer(build_train_config(TINY), tmp_path / "run", obs_dim=3, act_dim=1)
    good = np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match="dimensions"):
        trainer.add(np.zeros(4), np.zeros(1), 0.0, good, False, False)
    with pytest.raises(ValueError, match="NaN"):
        trainer.add(np.array([0.0, np.nan, 0.0]), np.zeros(1), 0.0, good, False, False)
    with pytest.raises(ValueError, match="NaN"):
        trainer.add(good, np.zeros(1), float("inf"), good, False, False)
    with pytest.raises(ValueError, match=r"outside \[-1, 1\]"):
        trainer.add(good, np.array([3.0]), 0.0, good, False, False)
    assert trainer.rejected == 4 and len(trainer.agent.d_env) == 0


def test_resumed_trainer_continues_like_an_uninterrupted_one(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = build_train_config(TINY)
    straight = OnlineTrainer(config, tmp_path / "straight", obs_dim=3, act_dim=1)
    for epoch in range(3):
        _feed_epoch(straight, epoch)
        straight.run_epoch()
    assert straight.done

    first = OnlineTrainer(config, tmp_path / "killed", obs_dim=3, act_dim=1)
    for epoch in range(2):
        _feed_epoch(first, epoch)
        first.run_epoch()
    del first
    with pytest.raises(RunDirError, match="already holds a run"):
        OnlineTrainer(config, tmp_path / "killed", obs_dim=3, act_dim=1)
    resumed = OnlineTrainer(config, tmp_path / "killed", obs_dim=3, act_dim=1, resume=True)
    assert resumed.epoch == 2
    _feed_epoch(resumed, 2)
    resumed.run_epoch()

    assert _without_wall_time(read_progress(tmp_path / "killed" / "progress.csv")) == (
        _without_wall_time(read_progress(tmp_path / "straight" / "progress.csv"))
    )


def test_interleaved_trainer_learns_as_transitions_arrive_like_the_offline_loop(
    tmp_path: Path,
) -> None:
    """With update_mode interleaved, add() runs the agent's due work at once: the same agent as
    observe + after_env_step on the same transitions (what `mdemorl train` does), bit for bit."""
    torch.set_num_threads(1)
    interleaved = {
        **TINY,
        "agent": {
            **TINY["agent"],
            "update_mode": "interleaved",
            "train_every": 5,
            "model_train_every": 50,
        },
    }
    config = build_train_config(interleaved)
    trainer = OnlineTrainer(config, tmp_path / "run", obs_dim=3, act_dim=1)
    assert trainer.interleaved
    _feed_epoch(trainer, 0)
    assert trainer.agent.sac_updates == 0.2 * 5 * (STEPS // 5 - 6)  # from 32 rows (batch) on
    assert trainer.agent.refits == 2  # at 50 and 100 steps
    updates_before = trainer.agent.sac_updates
    row = trainer.run_epoch()  # logs and checkpoints; no further learning
    assert trainer.agent.sac_updates == updates_before and row["env_steps"] == STEPS

    offline = Agent(3, 1, config.agent, torch.device("cpu"), config.seed)
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        obs = rng.uniform(-1, 1, 3).astype(np.float32)
        act = rng.uniform(-1, 1, 1).astype(np.float32)
        offline.observe(obs, act, float(-np.sum(obs**2)), 0.9 * obs + 0.1 * act[0], False)
        offline.after_env_step()
    for mine, theirs in zip(
        trainer.agent.actor.parameters(), offline.actor.parameters(), strict=True
    ):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=0)
