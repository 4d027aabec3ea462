"""Known termination rules equal the real env's ``terminated`` flag on real transitions."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch

import mdemorl_core.envs  # noqa: F401  (registers Leg2R)
from mdemorl_core.envs.task_terminations import (
    TASK_TERMINATIONS,
    inverted_double_pendulum_tip_height,
    task_termination_function,
)

# Sets qpos [nq], qvel [nv] of a freshly reset env near its termination boundary.
Perturb = Callable[[np.ndarray, np.ndarray, np.random.Generator], None]


def _transitions(
    task: str, steps: int, perturb: Perturb | None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Real transitions under uniform random actions; with ``perturb``, every transition starts
    from a fresh reset moved near the boundary (one step each), else whole episodes."""
    env = gym.make(task)
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows: dict[str, list[np.ndarray]] = {"obs": [], "act": [], "next_obs": [], "terminated": []}
    for _ in range(steps):
        if perturb is not None:
            env.reset()
            mujoco_env = env.unwrapped
            qpos, qvel = mujoco_env.data.qpos.copy(), mujoco_env.data.qvel.copy()  # type: ignore[attr-defined]
            perturb(qpos, qvel, rng)
            mujoco_env.set_state(qpos, qvel)  # type: ignore[attr-defined]
            obs = mujoco_env._get_obs()  # type: ignore[attr-defined]
        action = env.action_space.sample()
        next_obs, _, terminated, truncated, _ = env.step(action)
        for key, value in (
            ("obs", obs),
            ("act", action),
            ("next_obs", next_obs),
            ("terminated", terminated),
        ):
            rows[key].append(np.asarray(value))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    return {key: np.stack(value) for key, value in rows.items()}


def _check_against_env(task: str, data: dict[str, np.ndarray], min_each: int) -> None:
    done = task_termination_function(task)(
        torch.as_tensor(data["obs"]),
        torch.as_tensor(data["act"]),
        torch.as_tensor(data["next_obs"]),
    )
    assert done.dtype == torch.bool and done.shape == (len(data["terminated"]),)
    expected = data["terminated"].astype(bool)
    # Both outcomes must be present, or agreement would prove nothing.
    assert expected.sum() >= min_each and (~expected).sum() >= min_each
    np.testing.assert_array_equal(done.numpy(), expected)


def _ip_boundary(qpos: np.ndarray, qvel: np.ndarray, rng: np.random.Generator) -> None:
    qpos[1] = rng.choice([-1.0, 1.0]) * rng.uniform(0.17, 0.23)


def _idp_boundary(qpos: np.ndarray, qvel: np.ndarray, rng: np.random.Generator) -> None:
    # Pick q1 and solve q2 so that the tip height 0.6 (cos q1 + cos(q1 + q2)) is near 1 m.
    q1 = rng.uniform(-0.5, 0.5)
    target = rng.uniform(0.95, 1.05)
    sum_angle = rng.choice([-1.0, 1.0]) * np.arccos(np.clip(target / 0.6 - np.cos(q1), -1.0, 1.0))
    qpos[1], qpos[2] = q1, sum_angle - q1


def _hopper_boundary(qpos: np.ndarray, qvel: np.ndarray, rng: np.random.Generator) -> None:
    if rng.random() < 0.5:
        qpos[1] = rng.uniform(0.66, 0.74)
    else:
        qpos[2] = rng.choice([-1.0, 1.0]) * rng.uniform(0.17, 0.23)


def _walker_boundary(qpos: np.ndarray, qvel: np.ndarray, rng: np.random.Generator) -> None:
    which = rng.integers(3)
    if which == 0:
        qpos[1] = rng.uniform(0.76, 0.84)
    elif which == 1:
        qpos[1] = rng.uniform(1.96, 2.04)
    else:
        qpos[2] = rng.choice([-1.0, 1.0]) * rng.uniform(0.96, 1.04)


@pytest.mark.parametrize(
    ("task", "random_steps", "perturb"),
    [
        ("InvertedPendulum-v5", 400, _ip_boundary),
        ("InvertedDoublePendulum-v5", 400, _idp_boundary),
        ("Hopper-v5", 1500, _hopper_boundary),
        ("Walker2d-v5", 1500, _walker_boundary),
    ],
)
def test_mujoco_termination_equals_env_flag(task: str, random_steps: int, perturb: Perturb) -> None:
    _check_against_env(task, _transitions(task, random_steps, None), min_each=5)
    _check_against_env(task, _transitions(task, 300, perturb, seed=1), min_each=50)


def test_idp_tip_height_is_the_tip_site_height() -> None:
    env = gym.make("InvertedDoublePendulum-v5")
    env.reset(seed=0)
    mujoco_env = env.unwrapped
    rng = np.random.default_rng(0)
    for _ in range(20):
        qpos = rng.uniform(-np.pi, np.pi, 3) * np.array([0.3, 1.0, 1.0])
        mujoco_env.set_state(qpos, np.zeros(3))  # type: ignore[attr-defined]
        obs = torch.as_tensor(mujoco_env._get_obs())  # type: ignore[attr-defined]
        site_height = mujoco_env.data.site_xpos[0][2]  # type: ignore[attr-defined]
        assert float(inverted_double_pendulum_tip_height(obs)) == pytest.approx(site_height)
        off_circle = obs.clone()
        off_circle[1:5] *= 1.3
        assert float(inverted_double_pendulum_tip_height(off_circle)) == pytest.approx(site_height)


@pytest.mark.parametrize("task", ["Leg2R-v0", "Leg2RHardware-v0"])
def test_leg2r_never_terminates(task: str) -> None:
    obs = torch.randn(7, 3, 14)
    done = task_termination_function(task)(obs, torch.zeros(7, 3, 2), obs)
    assert done.dtype == torch.bool and done.shape == (7, 3) and not done.any()


def test_termination_functions_keep_batch_shape_and_reject_wrong_width() -> None:
    for task, dim in (
        ("InvertedPendulum-v5", 4),
        ("InvertedDoublePendulum-v5", 9),
        ("Hopper-v5", 11),
        ("Walker2d-v5", 17),
    ):
        obs = torch.zeros(5, 2, dim)
        assert TASK_TERMINATIONS[task](obs, torch.zeros(5, 2, 1), obs).shape == (5, 2)
        with pytest.raises(ValueError, match=str(dim)):
            TASK_TERMINATIONS[task](obs, obs, torch.zeros(5, dim + 1))


def test_unknown_task_is_rejected_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="Hopper-v5"):
        task_termination_function("HalfCheetah-v5")
