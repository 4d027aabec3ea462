"""Leg2R-v0 (MuJoCo): registration, env checker, determinism, physics cross-checks, baselines."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import gymnasium
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mdemorl_core.envs  # noqa: F401  (registers the tasks)
from mdemorl_core.envs.leg2r import Leg2REnv, Leg2RPhysics
from mdemorl_core.envs.leg2r_task import (
    Leg2RParams,
    forward_kinematics,
    gravity_torque,
    step_reward,
    tracking_controller_action,
)

Policy = Callable[[Leg2REnv], np.ndarray]


def test_registered_under_both_ids() -> None:
    for env_id in ("Leg2R-v0", "mdemorl_core.envs:Leg2R-v0"):
        env = gymnasium.make(env_id)
        assert isinstance(env.unwrapped, Leg2REnv)
        assert env.observation_space.shape == (14,)
        assert env.action_space.shape == (2,)
        env.close()
    overridden = gymnasium.make("Leg2R-v0", decimation=10)
    assert overridden.unwrapped.params.decimation == 10  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="not_a_field"):
        Leg2REnv(not_a_field=1)


def test_passes_gymnasium_env_checker() -> None:
    check_env(gymnasium.make("Leg2R-v0").unwrapped, skip_render_check=False)
    check_env(gymnasium.make("Leg2R-v0", render_mode="rgb_array").unwrapped)


def _rollout(seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    env = gymnasium.make("Leg2R-v0")
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, _, _, _ = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
    env.close()
    return np.array(observations), np.array(rewards)


def test_same_seed_gives_identical_trajectories() -> None:
    obs_a, rew_a = _rollout(seed=3, steps=200)
    obs_b, rew_b = _rollout(seed=3, steps=200)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    obs_c, _ = _rollout(seed=4, steps=5)
    assert not np.array_equal(obs_a[:6], obs_c)


def test_default_params_equal_the_model_file() -> None:
    text = resources.files("mdemorl_core.envs").joinpath("assets/leg2r.xml").read_text()
    from_file = mujoco.MjModel.from_xml_string(text)
    applied = Leg2RPhysics(Leg2RParams()).model
    for field in (
        "body_pos",
        "body_ipos",
        "body_mass",
        "body_inertia",
        "dof_damping",
        "dof_armature",
        "dof_frictionloss",
        "jnt_range",
        "actuator_ctrlrange",
    ):
        np.testing.assert_allclose(getattr(applied, field), getattr(from_file, field), atol=1e-6)
    assert applied.opt.timestep == pytest.approx(from_file.opt.timestep)


def test_physics_matches_task_kinematics_and_gravity() -> None:
    params = Leg2RParams(thigh_length=0.22, shank_mass=0.2, ref_centre=(0.0, -0.32))
    physics = Leg2RPhysics(params)
    for q in (np.array([0.3, -1.0]), np.array([-0.8, -2.0]), np.array([1.2, -0.5])):
        physics.reset(q, np.zeros(2))
        np.testing.assert_allclose(physics.foot_position, forward_kinematics(q, params), atol=1e-9)
        # At rest the bias force is pure gravity; MuJoCo's sign is "torque needed to hold".
        np.testing.assert_allclose(physics.data.qfrc_bias, gravity_torque(q, params), atol=1e-9)
    assert physics.timestep == pytest.approx(params.physics_dt)


def test_physics_step_clips_torque_and_advances_time() -> None:
    physics = Leg2RPhysics()
    physics.reset(np.array([0.5, -1.4]), np.zeros(2))
    physics.step(np.array([10.0, -10.0]), n_substeps=4)
    np.testing.assert_allclose(physics.applied_torque, [3.0, -3.0])
    assert physics.time == pytest.approx(4 * physics.timestep)
    assert physics.qd[0] > 0.0 and physics.qd[1] < 0.0
    with pytest.raises(ValueError, match="torque"):
        physics.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="n_substeps"):
        physics.step(np.zeros(2), n_substeps=0)


def test_env_reward_is_task_reward_at_end_of_step() -> None:
    env = Leg2REnv(episode_steps=5)
    env.reset(seed=0)
    for step in range(1, 6):
        _, reward, terminated, truncated, info = env.step(np.array([0.2, -0.1], np.float32))
        physics = env.physics
        expected = step_reward(physics.q, physics.qd, step * env.params.policy_dt, env.params)
        assert reward == pytest.approx(expected)
        assert physics.time == pytest.approx(step * env.params.policy_dt)
        assert not terminated
        assert truncated == (step == 5)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))


def _mean_reward(policy: Policy, seeds: tuple[int, ...]) -> float:
    totals = []
    for seed in seeds:
        env = Leg2REnv()
        env.action_space.seed(seed)
        env.reset(seed=seed)
        truncated, rewards = False, []
        while not truncated:
            _, reward, _, truncated, _ = env.step(policy(env))
            rewards.append(reward)
        assert len(rewards) == env.params.episode_steps
        totals.append(np.mean(rewards))
    return float(np.mean(totals))


def test_tracking_controller_beats_zero_and_random_torques() -> None:
    def tracking(env: Leg2REnv) -> np.ndarray:
        physics = env.physics
        return tracking_controller_action(physics.q, physics.qd, env.episode_time, env.params)

    seeds = (0, 1)
    tracked = _mean_reward(tracking, seeds)
    zero = _mean_reward(lambda env: np.zeros(2), seeds)
    random = _mean_reward(lambda env: env.action_space.sample(), seeds)
    assert tracked > 0.85
    assert tracked > zero + 0.6
    assert tracked > random + 0.6


def test_rgb_array_render() -> None:
    env = gymnasium.make("Leg2R-v0", render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray)
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    for _ in range(30):
        env.step(np.array([1.0, 1.0], np.float32))
    second = env.render()
    assert isinstance(second, np.ndarray) and second.shape == first.shape
    assert np.count_nonzero(np.any(first != second, axis=-1)) > 50
    assert Leg2REnv().render() is None
