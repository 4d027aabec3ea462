"""Known rewards of the Gymnasium MuJoCo tasks against the real env's reward on real transitions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from mdemorl_core.envs.task_rewards import TASK_REWARDS, task_reward_function


def _transitions(task: str, steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Real transitions under uniform random actions, resetting at episode ends."""
    env = gym.make(task)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows: dict[str, list[np.ndarray]] = {
        key: [] for key in ("obs", "act", "next_obs", "rew", "terminated", "x_velocity")
    }
    for _ in range(steps):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, info = env.step(action)
        values = (obs, action, next_obs, reward, terminated, info.get("x_velocity", np.nan))
        for key, value in zip(rows, values, strict=True):
            rows[key].append(np.asarray(value))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    return {key: np.stack(value) for key, value in rows.items()}


def _predict(task: str, data: dict[str, np.ndarray]) -> np.ndarray:
    reward = task_reward_function(task)(
        torch.as_tensor(data["obs"]),
        torch.as_tensor(data["act"]),
        torch.as_tensor(data["next_obs"]),
    )
    assert reward.shape == (len(data["rew"]),) and reward.dtype == torch.float64
    return reward.numpy()


def test_inverted_pendulum_reward_is_exact() -> None:
    data = _transitions("InvertedPendulum-v5", 600)
    assert data["terminated"].sum() >= 10  # both 1 and 0 rewards occur
    np.testing.assert_array_equal(_predict("InvertedPendulum-v5", data), data["rew"])


def test_inverted_double_pendulum_reward_matches_while_speeds_are_unclipped() -> None:
    data = _transitions("InvertedDoublePendulum-v5", 1500)
    predicted = _predict("InvertedDoublePendulum-v5", data)
    unclipped = np.all(np.abs(data["next_obs"][:, 6:8]) < 10.0, axis=1)
    assert unclipped.mean() > 0.9 and data["terminated"].sum() >= 20
    # Not exact: the env's tip site is MuJoCo's last RK4 stage, not the final angles.
    np.testing.assert_allclose(predicted[unclipped], data["rew"][unclipped], atol=2e-4, rtol=0)
    # Where the clip is active the speed penalty can only be underestimated.
    assert np.all(predicted[~unclipped] >= data["rew"][~unclipped] - 1e-9)


def test_inverted_double_pendulum_reward_uses_the_tip_site() -> None:
    env = gym.make("InvertedDoublePendulum-v5")
    env.reset(seed=0)
    mujoco_env = env.unwrapped
    rng = np.random.default_rng(1)
    for _ in range(10):
        qpos = rng.uniform(-1.0, 1.0, 3) * np.array([0.5, 0.4, 0.8])
        mujoco_env.set_state(qpos, np.zeros(3))  # type: ignore[attr-defined]
        obs = torch.as_tensor(mujoco_env._get_obs())[None]  # type: ignore[attr-defined]
        tip_x, _, tip_y = mujoco_env.data.site_xpos[0]  # type: ignore[attr-defined]
        expected = 10.0 * (tip_y > 1) - 0.01 * tip_x**2 - (tip_y - 2) ** 2
        predicted = TASK_REWARDS["InvertedDoublePendulum-v5"](obs, torch.zeros(1, 1), obs)
        # set_state runs the kinematics on these angles, so here the site is exact.
        assert float(predicted) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("task", "mean_bound", "max_bound"),
    [("Hopper-v5", 0.01, 0.2), ("Walker2d-v5", 0.03, 0.4)],
)
def test_locomotion_reward_error_is_bounded(task: str, mean_bound: float, max_bound: float) -> None:
    data = _transitions(task, 3000)
    predicted = _predict(task, data)
    error = np.abs(predicted - data["rew"])
    assert data["terminated"].sum() >= 20
    assert error.mean() < mean_bound and error.max() < max_bound
    # All of the error is the forward term's: with the env's own x speed the rest is exact.
    x_index = 5 if task == "Hopper-v5" else 8
    trapezoid = 0.5 * (data["obs"][:, x_index] + data["next_obs"][:, x_index])
    np.testing.assert_allclose(predicted - trapezoid + data["x_velocity"], data["rew"], atol=1e-9)
