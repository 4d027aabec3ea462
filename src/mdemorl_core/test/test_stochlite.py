"""StochLite-v0 (PyBullet): registration, env checker, determinism, walking, termination, render."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mdemorl_core.envs  # noqa: F401  (registers the tasks)
from mdemorl_core.envs.stochlite import StochLiteEnv


def test_registered_and_passes_env_checker() -> None:
    for env_id in ("StochLite-v0", "mdemorl_core.envs:StochLite-v0"):
        env = gymnasium.make(env_id)
        assert isinstance(env.unwrapped, StochLiteEnv)
        assert env.observation_space.shape == (10,)
        assert env.action_space.shape == (12,)
        env.close()
    plain = gymnasium.make("StochLite-v0")
    check_env(plain.unwrapped, skip_render_check=True)
    plain.close()
    rendered = gymnasium.make("StochLite-v0", render_mode="rgb_array", render_size=(64, 48))
    check_env(rendered.unwrapped)
    rendered.close()
    with pytest.raises(TypeError, match="bogus"):
        StochLiteEnv(bogus=1)


def _rollout(seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    env = StochLiteEnv()
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(0.3 * env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    env.close()
    return np.array(observations), np.array(rewards)


def test_same_seed_gives_identical_trajectories() -> None:
    obs_a, rew_a = _rollout(seed=5, steps=60)
    obs_b, rew_b = _rollout(seed=5, steps=60)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    obs_c, _ = _rollout(seed=6, steps=2)
    assert not np.array_equal(obs_a[0, 6:8], obs_c[0, 6:8]), "the slope is drawn from the seed"


def test_zero_shifts_walk_forward_on_flat_ground_for_a_full_episode() -> None:
    env = StochLiteEnv()
    obs, _ = env.reset(seed=0, options={"slope": (0.0, 0.0)})
    np.testing.assert_array_equal(obs[6:8], [0.0, 0.0])
    steps, terminated, truncated, info = 0, False, False, {}
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(np.zeros(12, np.float32))
        steps += 1
    env.close()
    assert not terminated
    assert steps == env.params.episode_steps == 1000
    assert info["forward_distance"] > 5.0  # measured ~9.2 m with the defaults


def test_random_slopes_lie_in_range_and_tilting_terminates() -> None:
    env = StochLiteEnv(max_slope=0.1)
    slopes = []
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        slopes.append(info["slope"])
        np.testing.assert_allclose(obs[6:8], info["slope"], atol=1e-6)
    slopes_array = np.array(slopes)
    assert np.all(np.abs(slopes_array) <= 0.1) and np.ptp(slopes_array[:, 1]) > 0.0
    env.reset(seed=0, options={"slope": (0.0, 0.0)})
    client = env.client
    robot = env._robot
    client.resetBasePositionAndOrientation(
        robot, [0.0, 0.0, 0.3], client.getQuaternionFromEuler([1.0, 0.0, 0.0])
    )
    _, _, terminated, _, _ = env.step(np.zeros(12, np.float32))
    assert terminated
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="slope"):
        env.reset(options={"slope": (2.0, 0.0)})
    env.close()


def test_rgb_array_render_and_close() -> None:
    env = StochLiteEnv(render_mode="rgb_array", render_size=(96, 72))
    env.reset(seed=0)
    image = env.render()
    assert isinstance(image, np.ndarray)
    assert image.shape == (72, 96, 3) and image.dtype == np.uint8
    assert image.std() > 1.0, "the robot and ground should be visible, not a blank frame"
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.reset(seed=0)
    assert StochLiteEnv().render() is None
