"""Pieces of the model-based agent that are not SAC: the model's trust score, D_MPC retention, and
the planner that acts on the real system (``agent.act: planner``).

Shapes: ``N`` rows, ``O`` observation, ``A`` action dimension, ``H`` horizon.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mdemorl_core.models.ensemble import DynamicsEnsemble
from mdemorl_core.models.model_env import TransitionFn
from mdemorl_core.planning.dmd_mpc import PlanResult
from mdemorl_core.replay import ReplayBuffer


def reward_r2(
    model: DynamicsEnsemble,
    data: dict[str, np.ndarray],
    reward_fn: TransitionFn | None,
    device: torch.device,
) -> float:
    """R^2 (clipped to [0, 1]) of the elite-mean model reward on real transitions ``data``
    (obs ``N x O``, act ``N x A``, rew ``N``); with ``reward_fn`` the prediction is that known
    reward of the elite-mean predicted next state. 0 with fewer than 2 rows."""
    if len(data["rew"]) < 2:
        return 0.0
    obs = torch.as_tensor(data["obs"], device=device)
    act = torch.as_tensor(data["act"], device=device)
    reward = torch.as_tensor(data["rew"], device=device)
    with torch.no_grad():
        mean, _ = model.predict(torch.cat([obs, act], dim=1))
    elite_mean = mean[model.elite_indices].mean(0)
    if reward_fn is None:
        predicted = elite_mean[:, -1]
    else:
        predicted = reward_fn(obs, act, obs + elite_mean[:, : model.obs_dim])
    error = (predicted - reward).pow(2).mean()
    # The floor keeps a constant reward finite: a model that predicts it exactly scores 1.
    variance = reward.var(unbiased=False).clamp_min(1e-8)
    return float((1.0 - error / variance).clamp(0.0, 1.0).item())


class MpcRetention:
    """Which D_MPC rows are recent enough to keep: each inner loop's rows are stamped with the
    env step at which they were planned and leave once ``retain_steps`` env steps are newer
    (the rows of the newest inner loop always stay)."""

    def __init__(self, retain_steps: int) -> None:
        self.retain_steps = retain_steps
        self.batches: list[tuple[int, int]] = []

    def add(self, env_step: int, rows: int, buffer: ReplayBuffer) -> None:
        """Record ``rows`` just added to ``buffer`` at ``env_step`` and drop the stale ones."""
        self.batches.append((env_step, rows))
        self.batches = [
            (step, count) for step, count in self.batches if env_step - step < self.retain_steps
        ] or [(env_step, rows)]
        buffer.keep_newest(sum(count for _, count in self.batches))

    def state(self) -> list[list[int]]:
        return [[step, count] for step, count in self.batches]

    def load(self, state: list[Any]) -> None:
        self.batches = [(int(step), int(count)) for step, count in state]


def add_rollout_rows(buffer: ReplayBuffer, rollout: PlanResult | tuple[torch.Tensor, ...]) -> int:
    """Append the valid rows of a model rollout (a :class:`PlanResult` or ``rollout_policy``'s
    tuple) to ``buffer``: rows after a terminal state are not transitions and are left out.
    Returns the number of rows added."""
    if isinstance(rollout, PlanResult):
        obs, act, rew, next_obs = (
            rollout.obs,
            rollout.rollout_actions,
            rollout.rewards,
            rollout.next_obs,
        )
        terminated, valid = rollout.terminated, rollout.valid
    else:
        obs, act, rew, next_obs, terminated, valid = rollout
    mask = valid.reshape(-1)
    rows = int(mask.sum().item())
    buffer.add_batch(
        obs.reshape(-1, obs.shape[-1])[mask].cpu().numpy(),
        act.reshape(-1, act.shape[-1])[mask].cpu().numpy(),
        rew.reshape(-1)[mask].cpu().numpy(),
        next_obs.reshape(-1, next_obs.shape[-1])[mask].cpu().numpy(),
        terminated.reshape(-1)[mask].to(torch.float32).cpu().numpy(),
    )
    return rows


PlanFn = Callable[[torch.Tensor, int, torch.Tensor | None], PlanResult]


class ActingPlanner:
    """DMD-MPC as the controller of the real system: plan ``horizon`` steps from the measured
    state, apply the first action, keep the plan. The previous plan, shifted by one step (its last
    action repeated), is one of the next plan's candidates (a warm start that the elite selection
    keeps only while it still scores among the best under the current model and critic)."""

    def __init__(self, plan: PlanFn, horizon: int) -> None:
        self.plan = plan
        self.horizon = horizon
        self.previous: torch.Tensor | None = None
        self.last_predicted_return = float("nan")

    def reset(self) -> None:
        """Forget the warm start (a new episode)."""
        self.previous = None

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """``1 x O`` -> first planned action ``A``."""
        fixed = None
        if self.previous is not None:
            shifted = torch.cat([self.previous[:, 1:], self.previous[:, -1:]], dim=1)
            fixed = shifted.unsqueeze(1)
        result = self.plan(obs, self.horizon, fixed)
        self.previous = result.actions
        self.last_predicted_return = float(result.returns[0].item())
        return result.actions[0, 0]

    def state(self) -> torch.Tensor | None:
        return None if self.previous is None else self.previous.cpu()

    def load(self, state: torch.Tensor | None, device: torch.device) -> None:
        self.previous = None if state is None else state.to(device)


class PlannedActions:
    """Ring buffer of (state ``O``, action ``A``) pairs the acting planner chose on the real
    system: the targets of the actor's distillation step (``agent.distill``)."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int) -> None:
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.act = np.zeros((capacity, act_dim), dtype=np.float32)
        self.capacity = capacity
        self.size = 0
        self.next_index = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, act: np.ndarray) -> None:
        self.obs[self.next_index] = obs
        self.act[self.next_index] = act
        self.next_index = (self.next_index + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``count`` uniform rows (with replacement): (obs ``count x O``, act ``count x A``)."""
        index = rng.integers(0, self.size, size=count)
        return self.obs[index], self.act[index]

    def state(self) -> dict[str, Any]:
        return {
            "obs": torch.from_numpy(self.obs[: self.size].copy()),
            "act": torch.from_numpy(self.act[: self.size].copy()),
            "next_index": self.next_index,
        }

    def load(self, state: dict[str, Any]) -> None:
        size = int(state["obs"].shape[0])
        self.obs[:size] = state["obs"].numpy()
        self.act[:size] = state["act"].numpy()
        self.size = size
        self.next_index = int(state["next_index"])
