"""Deterministic evaluation episodes on fixed start states.

Episode i of every evaluation resets the evaluation env with seed `eval_seed(run_seed, i)`, so each
epoch's policy (and a random policy, for comparison) is scored on the same start states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

# Keeps evaluation start states apart from the training env's stream (seeded with the run seed).
EVAL_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class EvalResult:
    """Undiscounted returns of the evaluation episodes."""

    returns: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def as_json_dict(self) -> dict[str, Any]:
        return {"mean_return": self.mean, "std_return": self.std, "episodes": len(self.returns)}


def eval_seed(run_seed: int, episode: int) -> int:
    """Reset seed of evaluation episode `episode` for a run seeded with `run_seed`."""
    return (run_seed + EVAL_SEED_OFFSET + 7919 * episode) % 2**32


def run_episode(
    env: gym.Env[np.ndarray, np.ndarray],
    policy: Callable[[np.ndarray], np.ndarray],
    seed: int | None,
    max_steps: int | None = None,
    on_reset: Callable[[], None] | None = None,
) -> float:
    """Return of one episode: `policy` maps an observation [O] to an action [A] in [-1, 1].

    Ends when the env terminates or truncates (its TimeLimit), or after `max_steps` if given.
    `on_reset` is called after the reset (a stateful controller starts afresh).
    """
    obs, _ = env.reset(seed=seed)
    if on_reset is not None:
        on_reset()
    total = 0.0
    steps = 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total += float(reward)
        steps += 1
        if terminated or truncated or (max_steps is not None and steps >= max_steps):
            return total


def evaluate(
    env: gym.Env[np.ndarray, np.ndarray],
    policy: Callable[[np.ndarray], np.ndarray],
    run_seed: int,
    episodes: int,
    max_steps: int | None = None,
    on_reset: Callable[[], None] | None = None,
) -> EvalResult:
    """Run `episodes` episodes of `policy` on the fixed evaluation start states of `run_seed`."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    returns = tuple(
        run_episode(env, policy, eval_seed(run_seed, i), max_steps, on_reset)
        for i in range(episodes)
    )
    return EvalResult(returns)


def random_policy(act_dim: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """Uniform random actions in [-1, 1]^act_dim from its own generator (a baseline to beat)."""
    generator = np.random.default_rng(seed)

    def act(_obs: np.ndarray) -> np.ndarray:
        return generator.uniform(-1.0, 1.0, size=act_dim).astype(np.float32)

    return act
