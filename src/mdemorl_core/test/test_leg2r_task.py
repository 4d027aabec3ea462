"""Leg2R task math (pure numpy): kinematics, reference, reward, observation, action scaling."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mdemorl_core.envs.leg2r_task import (
    OBSERVATION_DIM,
    OBSERVATION_LAYOUT,
    Leg2RParams,
    action_to_torque,
    build_observation,
    foot_velocity,
    forward_kinematics,
    initial_joint_state,
    inverse_kinematics,
    jacobian,
    reference,
    reference_phase,
    step_reward,
    tracking_reward,
    tracking_rewards,
)

PARAMS = Leg2RParams()


def test_reward_equals_formula_on_hand_computed_cases() -> None:
    zero = np.zeros(2)
    p_d, v_d = np.array([0.01, -0.30]), np.array([0.2, -0.1])
    assert tracking_reward(p_d, v_d, p_d, v_d, PARAMS) == pytest.approx(1.0)
    # 4 cm position error = 1 reward unit (position_scale 25 /m); velocities match.
    p = p_d + np.array([0.04, 0.0])
    assert tracking_reward(p, v_d, p_d, v_d, PARAMS) == pytest.approx(0.8 * math.exp(-1.0) + 0.2)
    # (2 cm, 2 cm) -> 0.5 unit^2; 0.25 m/s velocity error -> 1 unit^2 (velocity_scale 4 s/m).
    p = p_d + np.array([0.02, 0.02])
    v = v_d + np.array([0.0, 0.25])
    expected = 0.8 * math.exp(-0.5) + 0.2 * math.exp(-1.0)
    assert tracking_reward(p, v, p_d, v_d, PARAMS) == pytest.approx(expected)
    # Far away: both terms vanish.
    assert tracking_reward(np.ones(2), np.ones(2) * 9, zero, zero, PARAMS) < 1e-6
    custom = dataclasses.replace(PARAMS, position_scale=100.0, velocity_scale=1.0)
    p = p_d + np.array([0.01, 0.0])
    v = v_d + np.array([0.3, 0.4])
    expected = 0.8 * math.exp(-1.0) + 0.2 * math.exp(-0.25)
    assert tracking_reward(p, v, p_d, v_d, custom) == pytest.approx(expected)


def test_batched_reward_matches_single() -> None:
    rng = np.random.default_rng(0)
    p, v, p_d, v_d = (rng.normal(0.0, 0.05, size=(7, 2)) for _ in range(4))
    batch = tracking_rewards(p, v, p_d, v_d, PARAMS)
    assert batch.shape == (7,)
    singles = [tracking_reward(p[i], v[i], p_d[i], v_d[i], PARAMS) for i in range(7)]
    np.testing.assert_allclose(batch, singles)
    with pytest.raises(ValueError, match="p_d"):
        tracking_reward(p[0], v[0], np.zeros(3), v_d[0], PARAMS)


def test_forward_kinematics_known_poses() -> None:
    l1, l2 = PARAMS.thigh_length, PARAMS.shank_length
    np.testing.assert_allclose(forward_kinematics(np.zeros(2), PARAMS), [0.0, -(l1 + l2)])
    np.testing.assert_allclose(
        forward_kinematics(np.array([0.0, -math.pi / 2]), PARAMS), [-l2, -l1], atol=1e-12
    )
    np.testing.assert_allclose(
        forward_kinematics(np.array([math.pi / 2, 0.0]), PARAMS), [l1 + l2, 0.0], atol=1e-12
    )
    batch = forward_kinematics(np.zeros((3, 4, 2)), PARAMS)
    assert batch.shape == (3, 4, 2)
    with pytest.raises(ValueError, match="q"):
        forward_kinematics(np.zeros(3), PARAMS)


def test_inverse_kinematics_round_trip_and_branch() -> None:
    rng = np.random.default_rng(1)
    targets = np.stack([rng.uniform(-0.1, 0.1, 50), rng.uniform(-0.35, -0.2, 50)], axis=-1)
    q = inverse_kinematics(targets, PARAMS)
    assert np.all(q[:, 1] < 0.0), "knee-forward branch has a negative knee angle"
    np.testing.assert_allclose(forward_kinematics(q, PARAMS), targets, atol=1e-12)
    with pytest.raises(ValueError, match="reachable"):
        inverse_kinematics(np.array([0.0, -0.5]), PARAMS)


def test_jacobian_and_foot_velocity_match_finite_differences() -> None:
    q, qd = np.array([0.7, -1.3]), np.array([1.5, -2.0])
    eps = 1e-6
    numeric = np.stack(
        [
            (forward_kinematics(q + eps * e, PARAMS) - forward_kinematics(q - eps * e, PARAMS))
            / (2 * eps)
            for e in np.eye(2)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(jacobian(q, PARAMS), numeric, atol=1e-8)
    np.testing.assert_allclose(foot_velocity(q, qd, PARAMS), numeric @ qd, atol=1e-8)


def test_reference_is_a_semi_ellipse_with_consistent_velocity() -> None:
    (cx, cz), (a, b), period = PARAMS.ref_centre, PARAMS.ref_semi_axes, PARAMS.ref_period
    np.testing.assert_allclose(reference(0.0, PARAMS)[0], [cx - a, cz])
    np.testing.assert_allclose(reference(0.25 * period, PARAMS)[0], [cx, cz + b], atol=1e-12)
    np.testing.assert_allclose(reference(0.75 * period, PARAMS)[0], [cx, cz], atol=1e-12)
    times = np.linspace(0.0, 2 * period, 401)[:-1]
    positions = np.array([reference(float(t), PARAMS)[0] for t in times])
    stance = times % period > 0.5 * period + 1e-9
    np.testing.assert_allclose(positions[stance, 1], cz)
    assert np.all(positions[:, 1] >= cz - 1e-12) and np.all(positions[:, 1] <= cz + b + 1e-12)
    eps = 1e-6
    for t in (0.1, 0.3, 0.6, 0.9, 1.37):
        numeric = (reference(t + eps, PARAMS)[0] - reference(t - eps, PARAMS)[0]) / (2 * eps)
        np.testing.assert_allclose(reference(t, PARAMS)[1], numeric, atol=1e-6)
    np.testing.assert_allclose(reference(0.3, PARAMS)[0], reference(0.3 + 3 * period, PARAMS)[0])
    assert reference_phase(0.25 * period, PARAMS) == pytest.approx(math.pi / 2)


def test_initial_joint_state_is_on_the_reference() -> None:
    q, qd = initial_joint_state(PARAMS)
    p_d, v_d = reference(0.0, PARAMS)
    np.testing.assert_allclose(forward_kinematics(q, PARAMS), p_d, atol=1e-12)
    np.testing.assert_allclose(foot_velocity(q, qd, PARAMS), v_d, atol=1e-12)
    assert np.all(q >= np.asarray(PARAMS.joint_lower)) and np.all(
        q <= np.asarray(PARAMS.joint_upper)
    )
    assert step_reward(q, qd, 0.0, PARAMS) == pytest.approx(1.0)


def test_observation_layout() -> None:
    q, qd, t = np.array([0.6, -1.5]), np.array([2.0, -3.0]), 0.125
    obs = build_observation(q, qd, t, PARAMS)
    assert obs.shape == (OBSERVATION_DIM,) == (len(OBSERVATION_LAYOUT),)
    assert obs.dtype == np.float32
    named = dict(zip(OBSERVATION_LAYOUT, obs.astype(np.float64), strict=True))
    assert named["cos_q_hip"] == pytest.approx(math.cos(0.6), abs=1e-6)
    assert named["sin_q_knee"] == pytest.approx(math.sin(-1.5), abs=1e-6)
    assert named["qd_knee_scaled"] == pytest.approx(-3.0 * PARAMS.joint_velocity_scale, abs=1e-6)
    assert named["sin_phase"] == pytest.approx(math.sin(2 * math.pi * t), abs=1e-6)
    p_d, v_d = reference(t, PARAMS)
    error = PARAMS.position_scale * (forward_kinematics(q, PARAMS) - p_d)
    assert named["error_x_scaled"] == pytest.approx(error[0], abs=1e-5)
    assert named["desired_vz_scaled"] == pytest.approx(PARAMS.velocity_scale * v_d[1], abs=1e-5)
    with pytest.raises(ValueError, match="non-finite"):
        build_observation(np.array([np.nan, 0.0]), qd, t, PARAMS)


def test_step_reward_uses_reference_at_given_time() -> None:
    t = 0.37
    p_d, v_d = reference(t, PARAMS)
    q = inverse_kinematics(p_d, PARAMS)
    qd = np.linalg.solve(jacobian(q, PARAMS), v_d)
    assert step_reward(q, qd, t, PARAMS) == pytest.approx(1.0)
    assert step_reward(q, qd, t + 0.2, PARAMS) < 0.7


def test_action_to_torque_scales_and_clips() -> None:
    limits = np.asarray(PARAMS.torque_limit)
    np.testing.assert_allclose(action_to_torque(np.array([0.5, -1.0]), PARAMS), [0.5, -1] * limits)
    np.testing.assert_allclose(action_to_torque(np.array([3.0, -7.0]), PARAMS), [1, -1] * limits)
    with pytest.raises(ValueError, match="shape"):
        action_to_torque(np.zeros(3), PARAMS)
    with pytest.raises(ValueError, match="non-finite"):
        action_to_torque(np.array([np.inf, 0.0]), PARAMS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("thigh_length", -0.1),
        ("decimation", 0),
        ("torque_limit", (0.0, 3.0)),
        ("joint_lower", (2.0, -2.6)),
        ("ref_semi_axes", (0.3, 0.04)),
        ("ref_centre", (0.0, -0.45)),
    ],
)
def test_params_reject_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field.split("_")[0]):
        dataclasses.replace(PARAMS, **{field: value})


def test_default_timing() -> None:
    assert PARAMS.control_hz == 500.0
    assert PARAMS.policy_hz == pytest.approx(100.0)
    assert PARAMS.physics_dt == pytest.approx(0.001)
    assert PARAMS.episode_steps == 1000
