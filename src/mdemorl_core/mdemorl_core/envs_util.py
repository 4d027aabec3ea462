"""Environment construction for training: any Gymnasium id, `module:Id`, or this project's tasks.

The agent always acts in [-1, 1]^A; `make_env` wraps the environment so those actions are clipped
and mapped affinely onto the environment's own action bounds. Only flat Box observations and Box
actions with finite bounds are supported; anything else is rejected with a clear error.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym
import numpy as np

PROJECT_TASKS_MODULE = "mdemorl_core.envs"


class EnvSetupError(ValueError):
    """The environment id is unknown, cannot be built, or has unsupported spaces."""


class RescaledActionEnv(gym.ActionWrapper[Any, np.ndarray, np.ndarray]):
    """Exposes actions in [-1, 1]^A (float32) and maps them onto the wrapped env's [low, high]."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        space = env.action_space
        assert isinstance(space, gym.spaces.Box)
        self._low = np.asarray(space.low, dtype=np.float64)
        self._high = np.asarray(space.high, dtype=np.float64)
        self._dtype = space.dtype
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=space.shape, dtype=np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        """[A] in [-1, 1] (clipped) -> [A] in the wrapped env's bounds."""
        unit = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        if unit.shape != self._low.shape:
            raise ValueError(f"action has shape {unit.shape}, expected {self._low.shape}")
        scaled = self._low + 0.5 * (unit + 1.0) * (self._high - self._low)
        return np.asarray(scaled, dtype=self._dtype)


def _import_project_tasks() -> Exception | None:
    """Register Leg2R-v0 / StochLite-v0; returns the import error instead of raising it."""
    try:
        importlib.import_module(PROJECT_TASKS_MODULE)
    except Exception as error:  # any failure inside the tasks package must not hide other envs
        return error
    return None


def check_spaces(env: gym.Env[Any, Any], env_id: str) -> None:
    """Raise EnvSetupError unless observations are a flat Box and actions a bounded Box."""
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise EnvSetupError(
            f"environment {env_id!r} has observation space {obs_space}; "
            "only flat (1-D) Box observations are supported"
        )
    if not isinstance(act_space, gym.spaces.Box) or len(act_space.shape) != 1:
        raise EnvSetupError(
            f"environment {env_id!r} has action space {act_space}; "
            "only 1-D Box (continuous) actions are supported"
        )
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        raise EnvSetupError(
            f"environment {env_id!r} has unbounded actions; finite bounds are needed"
        )


def make_env(
    env_id: str, seed: int, max_episode_steps: int | None = None, **env_kwargs: Any
) -> gym.Env[np.ndarray, np.ndarray]:
    """Build, check, wrap and seed an environment.

    `env_id` is a Gymnasium id ("Pendulum-v1"), a "module:Id" pair, or one of this project's tasks
    (registered by importing mdemorl_core.envs). The env's RNG is seeded by one `reset(seed=seed)`;
    later resets without a seed continue that stream. Returns an env whose actions are [A] in
    [-1, 1] and observations [O].
    """
    tasks_error = _import_project_tasks()
    if ":" not in env_id and env_id not in gym.registry:
        hint = ""
        if tasks_error is not None:
            hint = (
                f"; note: this project's tasks (Leg2R-v0, StochLite-v0) are unavailable because "
                f"importing {PROJECT_TASKS_MODULE} failed: {tasks_error!r}"
            )
        raise EnvSetupError(f"unknown environment id {env_id!r}{hint}")
    try:
        env = gym.make(env_id, max_episode_steps=max_episode_steps, **env_kwargs)
    except (gym.error.Error, ModuleNotFoundError) as error:
        raise EnvSetupError(f"cannot create environment {env_id!r}: {error}") from error
    try:
        check_spaces(env, env_id)
    except EnvSetupError:
        env.close()
        raise
    wrapped: gym.Env[np.ndarray, np.ndarray] = RescaledActionEnv(env)
    wrapped.reset(seed=seed)
    wrapped.action_space.seed(seed)
    return wrapped


def get_rng_state(env: gym.Env[Any, Any]) -> dict[str, Any]:
    """The env's numpy bit-generator state (a plain dict), to be stored in a checkpoint."""
    return dict(env.unwrapped.np_random.bit_generator.state)


def set_rng_state(env: gym.Env[Any, Any], state: dict[str, Any]) -> None:
    """Restore a state returned by `get_rng_state` (same bit generator type)."""
    env.unwrapped.np_random.bit_generator.state = state


def space_dims(env: gym.Env[Any, Any]) -> tuple[int, int]:
    """(obs_dim, act_dim) of an env accepted by `check_spaces`."""
    obs_shape = env.observation_space.shape
    act_shape = env.action_space.shape
    assert obs_shape is not None and act_shape is not None
    return int(obs_shape[0]), int(act_shape[0])
