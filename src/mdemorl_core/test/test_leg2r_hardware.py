"""Leg2RHardware-v0: every hardware effect is present, can be switched off, and the task stays solvable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import mdemorl_core.envs  # noqa: F401  (registers the tasks)
from mdemorl_core.envs.leg2r import Leg2REnv
from mdemorl_core.envs.leg2r_hardware import (
    ActuatorSpec,
    Leg2RHardwareEnv,
    quantise,
    torque_envelope,
)
from mdemorl_core.envs.leg2r_task import Leg2RParams, step_reward, tracking_controller_action

SPEC = ActuatorSpec()
ALL_OFF: dict[str, Any] = {
    "friction": False,
    "torque_speed_limit": False,
    "quantisation": False,
    "sensor_noise": False,
    "latency_ticks": 0,
    "randomisation": 0.0,
}


def _only(**effects: Any) -> Leg2RHardwareEnv:
    """v1 with every effect off except ``effects`` (and Leg2RParams overrides)."""
    return Leg2RHardwareEnv(**{**ALL_OFF, **effects})


def test_registered_with_v0_spaces_and_passes_env_checker() -> None:
    env = gymnasium.make("Leg2RHardware-v0")
    assert isinstance(env.unwrapped, Leg2RHardwareEnv)
    v0 = gymnasium.make("Leg2R-v0")
    assert env.observation_space == v0.observation_space
    assert env.action_space == v0.action_space
    check_env(env.unwrapped, skip_render_check=False)
    check_env(gymnasium.make("Leg2RHardware-v0", render_mode="rgb_array").unwrapped)
    overridden = gymnasium.make("Leg2RHardware-v0", latency_ticks=0, decimation=10).unwrapped
    assert overridden.latency_ticks == 0 and overridden.params.decimation == 10  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="latency_ticks"):
        Leg2RHardwareEnv(latency_ticks=-1)
    with pytest.raises(ValueError, match="randomisation"):
        Leg2RHardwareEnv(randomisation=0.7)
    with pytest.raises(TypeError, match="not_a_field"):
        Leg2RHardwareEnv(not_a_field=1)
    with pytest.raises(ValueError, match="peak_torque"):
        ActuatorSpec(rated_torque=10.0)


def _random_rollout(env: Leg2REnv, seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    env.action_space.seed(seed)
    observations, rewards = [env.reset(seed=seed)[0]], []
    for _ in range(steps):
        obs, reward, _, _, _ = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
    return np.array(observations), np.array(rewards)


def test_all_effects_off_is_v0() -> None:
    v0_armature = Leg2RParams().armature
    obs_v1, rew_v1 = _random_rollout(_only(armature=v0_armature), seed=2, steps=150)
    obs_v0, rew_v0 = _random_rollout(Leg2REnv(), seed=2, steps=150)
    np.testing.assert_array_equal(obs_v1, obs_v0)
    np.testing.assert_array_equal(rew_v1, rew_v0)


def test_datasheet_values_reach_the_model() -> None:
    env = Leg2RHardwareEnv()
    env.reset(seed=0)
    model = env.physics.model
    np.testing.assert_allclose(model.dof_frictionloss, [0.2, 0.2])
    np.testing.assert_allclose(model.dof_damping, [0.081, 0.081])
    np.testing.assert_allclose(model.dof_armature, [2.435e-5 * 36] * 2)
    assert SPEC.rated_speed == pytest.approx(24.4, abs=0.05)
    assert SPEC.position_step == pytest.approx(3.815e-4, rel=1e-3)
    assert SPEC.velocity_step == pytest.approx(0.02442, rel=1e-3)


def _zero_torque_swing(env: Leg2REnv) -> tuple[float, float, np.ndarray]:
    """Release the leg at rest 0.6 rad off the hanging pose, zero torque for 3 s (true state):
    mean |joint speed| (rad/s) over 0.3-1 s, over the last second, and the final q [2]."""
    env.reset(seed=0)
    env.physics.reset(np.array([0.6, -0.8]), np.zeros(2))
    speeds = []
    for _ in range(300):
        env.step(np.zeros(2, np.float32))
        speeds.append(np.abs(env.physics.qd).sum())
    return float(np.mean(speeds[30:100])), float(np.mean(speeds[200:])), env.physics.q


def test_friction_makes_a_zero_torque_swing_decay_faster_and_stick() -> None:
    ideal_swing, _, ideal_q = _zero_torque_swing(Leg2REnv())
    free_swing, _, _ = _zero_torque_swing(_only())
    for env in (_only(friction=True), Leg2RHardwareEnv()):
        swing, late, q = _zero_torque_swing(env)
        assert swing < 0.5 * ideal_swing and swing < 0.5 * free_swing
        # Coulomb friction holds the leg where gravity no longer exceeds it: at rest off the
        # hanging pose, which the viscous-only leg swings back to.
        assert late < 0.01 and abs(q[0]) > 0.2
    assert abs(ideal_q[0]) < 0.05


def test_torque_envelope_follows_the_datasheet_points() -> None:
    lower, upper = torque_envelope(np.array([0.0, SPEC.rated_speed, SPEC.no_load_speed]), SPEC)
    np.testing.assert_allclose(upper, [SPEC.peak_torque, SPEC.rated_torque, 0.0], atol=1e-12)
    np.testing.assert_allclose(lower, [-SPEC.peak_torque] * 3)
    lower, upper = torque_envelope(np.array([-SPEC.rated_speed, -2 * SPEC.no_load_speed]), SPEC)
    np.testing.assert_allclose(lower, [-SPEC.rated_torque, 0.0], atol=1e-12)
    np.testing.assert_allclose(upper, [SPEC.peak_torque] * 2)


@pytest.mark.parametrize("limited", [True, False])
def test_fast_joints_get_less_torque_along_the_motion(limited: bool) -> None:
    env = _only(torque_speed_limit=limited, decimation=1)
    env.reset(seed=0)
    env.physics.reset(np.array([0.0, -1.4]), np.array([30.0, -30.0]))
    env.step(np.array([1.0, -1.0], np.float32))
    applied = env.physics.applied_torque
    if limited:
        expected = SPEC.stall_torque * (1.0 - 30.0 / SPEC.no_load_speed)
        np.testing.assert_allclose(applied, [expected, -expected])
        assert expected < 0.5 * SPEC.rated_torque
    else:
        np.testing.assert_allclose(applied, [3.0, -3.0])


def test_quantise_rounds_to_the_fixed_point_grid() -> None:
    step = 25.0 / 65535
    values = np.array([0.0, 1e-5, 0.3, -12.6, 13.0])
    out = quantise(values, 12.5, 16)
    codes = (out + 12.5) / step
    np.testing.assert_allclose(codes, np.round(codes), atol=1e-6)
    assert np.all(np.abs(out - np.clip(values, -12.5, 12.5)) <= step / 2 + 1e-12)
    assert out[3] == -12.5 and out[4] == pytest.approx(12.5)


def test_measured_state_is_quantised_and_noisy_and_drives_the_observation() -> None:
    env = _only(quantisation=True)
    env.reset(seed=0)
    for _ in range(20):
        obs, reward, _, _, info = env.step(env.action_space.sample())
        q_codes = (env.measured_q + SPEC.position_range) / SPEC.position_step
        qd_codes = (env.measured_qd + SPEC.velocity_range) / SPEC.velocity_step
        np.testing.assert_allclose(q_codes, np.round(q_codes), atol=1e-6)
        np.testing.assert_allclose(qd_codes, np.round(qd_codes), atol=1e-6)
        assert np.all(np.abs(env.measured_qd - env.physics.qd) <= SPEC.velocity_step / 2 + 1e-12)
        np.testing.assert_allclose(obs[4:6], 0.1 * env.measured_qd, rtol=1e-6)
        np.testing.assert_array_equal(info["measured_q"], env.measured_q)
        assert reward == pytest.approx(
            step_reward(env.measured_q, env.measured_qd, env.episode_time, env.params)
        )
    assert not np.array_equal(env.measured_qd, env.physics.qd)
    exact = _only()
    exact.reset(seed=0)
    exact.step(np.zeros(2, np.float32))
    np.testing.assert_array_equal(exact.measured_q, exact.physics.q)


def test_sensor_noise_has_the_specified_spread_and_follows_the_seed() -> None:
    residuals = []
    for seed in (0, 0, 1):
        env = _only(sensor_noise=True)
        env.reset(seed=seed)
        rows = []
        for _ in range(400):
            env.step(np.zeros(2, np.float32))
            rows.append(
                np.concatenate([env.measured_q - env.physics.q, env.measured_qd - env.physics.qd])
            )
        residuals.append(np.array(rows))
    np.testing.assert_array_equal(residuals[0], residuals[1])
    assert not np.array_equal(residuals[0], residuals[2])
    spread = residuals[0].std(axis=0)
    expected = [SPEC.position_noise] * 2 + [SPEC.velocity_noise] * 2
    np.testing.assert_allclose(spread, expected, rtol=0.15)


def test_latency_delays_the_applied_torque_by_one_tick() -> None:
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1.0, 1.0, size=(12, 2)).astype(np.float32)
    delayed, per_tick, immediate = (
        _only(latency_ticks=1),
        _only(decimation=1),
        _only(),
    )
    for env in (delayed, per_tick, immediate):
        env.reset(seed=4)
    decimation = delayed.params.decimation
    # The tick-by-tick reference gets the command sequence shifted by one tick: zero first.
    tick_commands = [np.zeros(2, np.float32)] + [a for a in actions for _ in range(decimation)]
    ticks = 0
    for action in actions:
        delayed.step(action)
        immediate.step(action)
        for _ in range(decimation):
            per_tick.step(tick_commands[ticks])
            ticks += 1
        np.testing.assert_array_equal(delayed.physics.q, per_tick.physics.q)
        np.testing.assert_array_equal(delayed.physics.qd, per_tick.physics.qd)
    assert not np.allclose(delayed.physics.q, immediate.physics.q)


def _leg(env: Leg2RHardwareEnv) -> np.ndarray:
    model = env.physics.model
    return np.concatenate([model.body_mass[1:4], model.body_pos[2:4, 2], model.body_ipos[1:3, 2]])


def test_randomisation_differs_per_episode_and_follows_the_seed() -> None:
    env = Leg2RHardwareEnv()
    nominal = _leg(_only())
    env.reset(seed=5)
    first = _leg(env)
    env.reset()
    second = _leg(env)
    env.reset(seed=5)
    np.testing.assert_array_equal(_leg(env), first)
    assert not np.allclose(first, second)
    for leg in (first, second):
        ratio = leg / nominal
        assert np.all((ratio >= 0.9 - 1e-12) & (ratio <= 1.1 + 1e-12))
        assert not np.allclose(ratio, 1.0)
    # A link's centre of mass moves with its length.
    np.testing.assert_allclose(first[5:7] / nominal[5:7], first[3:5] / nominal[3:5])
    assert env.params == _only(friction=True).params  # the nominal leg is untouched


Policy = Callable[[Leg2REnv], np.ndarray]


def _mean_reward(make: Callable[[], Leg2REnv], policy: Policy, seeds: tuple[int, ...]) -> float:
    means = []
    for seed in seeds:
        env = make()
        env.action_space.seed(seed)
        env.reset(seed=seed)
        truncated, rewards = False, []
        while not truncated:
            _, reward, _, truncated, _ = env.step(policy(env))
            rewards.append(reward)
        means.append(np.mean(rewards))
    return float(np.mean(means))


def test_tracking_controller_on_measured_state_still_earns_a_high_reward() -> None:
    def tracking(env: Leg2REnv) -> np.ndarray:
        assert isinstance(env, Leg2RHardwareEnv)
        return tracking_controller_action(
            env.measured_q, env.measured_qd, env.episode_time, env.params
        )

    seeds = (0, 1)
    tracked = _mean_reward(Leg2RHardwareEnv, tracking, seeds)
    zero = _mean_reward(Leg2RHardwareEnv, lambda env: np.zeros(2), seeds)
    random = _mean_reward(Leg2RHardwareEnv, lambda env: env.action_space.sample(), seeds)
    assert tracked > 0.9
    assert tracked > zero + 0.6
    assert tracked > random + 0.6
