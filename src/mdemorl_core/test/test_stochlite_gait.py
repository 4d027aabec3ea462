"""StochLite low level: trajectory generator, leg kinematics, and the URDF agreeing with them."""

from __future__ import annotations

import dataclasses
import math
from importlib import resources

import numpy as np
import pybullet
import pytest
from pybullet_utils.bullet_client import BulletClient

from mdemorl_core.envs.stochlite_gait import (
    JOINTS_PER_LEG,
    LEG_NAMES,
    StochLiteParams,
    action_to_shifts,
    ellipse_angles,
    foot_targets,
    leg_forward_kinematics,
    leg_inverse_kinematics,
    leg_phases,
)

PARAMS = StochLiteParams()


def test_inverse_kinematics_round_trip() -> None:
    rng = np.random.default_rng(0)
    feet = np.stack(
        [rng.uniform(-0.06, 0.06, 40), rng.uniform(-0.04, 0.04, 40), rng.uniform(-0.21, -0.14, 40)],
        axis=-1,
    )
    joints = leg_inverse_kinematics(feet, PARAMS)
    assert joints.shape == (40, 3)
    assert np.all(joints[:, 2] < 0.0)
    np.testing.assert_allclose(leg_forward_kinematics(joints, PARAMS), feet, atol=1e-10)


def test_inverse_kinematics_clamps_out_of_reach_targets() -> None:
    too_far = np.array([0.0, 0.0, -1.0])
    joints = leg_inverse_kinematics(too_far, PARAMS)
    foot = leg_forward_kinematics(joints, PARAMS)
    assert np.all(np.isfinite(joints))
    assert np.all(joints >= np.asarray(PARAMS.joint_lower) - 1e-12)
    assert np.all(joints <= np.asarray(PARAMS.joint_upper) + 1e-12)
    assert foot[2] < -0.2  # stretched toward the target, not folded
    with pytest.raises(ValueError, match="feet"):
        leg_inverse_kinematics(np.zeros(2), PARAMS)


def test_trot_phases_pair_the_diagonals() -> None:
    phases = leg_phases(0.3)
    fl, fr, bl, br = phases
    assert fl == pytest.approx(br) and fr == pytest.approx(bl)
    assert (fr - fl) % (2 * math.pi) == pytest.approx(math.pi)


def test_foot_trajectory_is_a_semi_ellipse_with_the_duty_factor() -> None:
    gait_phases = np.linspace(0.0, 2 * math.pi, 2000, endpoint=False)
    feet = np.array(
        [foot_targets(float(phase), np.zeros((4, 3)), PARAMS)[0] for phase in gait_phases]
    )
    stance = np.isclose(feet[:, 2], -PARAMS.standing_height)
    assert stance.mean() == pytest.approx(PARAMS.duty_factor, abs=0.01)
    assert feet[:, 2].max() == pytest.approx(-PARAMS.standing_height + PARAMS.step_height, abs=1e-4)
    assert feet[:, 0].min() == pytest.approx(-0.5 * PARAMS.step_length, abs=1e-6)
    assert feet[:, 0].max() == pytest.approx(0.5 * PARAMS.step_length, abs=1e-4)
    # In stance the foot moves backwards (pushing the body forward).
    stance_dx = np.diff(feet[:, 0])[stance[:-1] & stance[1:]]
    assert np.all(stance_dx <= 1e-12)
    angles = ellipse_angles(np.array([0.0, 2 * math.pi * (1 - PARAMS.duty_factor)]), 0.7)
    np.testing.assert_allclose(angles, [0.0, math.pi])


def test_shifts_move_each_foot_and_lateral_offset_points_outward() -> None:
    base = foot_targets(1.0, np.zeros((4, 3)), PARAMS)
    assert np.all(base[[0, 2], 1] > 0.0) and np.all(base[[1, 3], 1] < 0.0)
    action = np.zeros(12)
    action[3:6] = (1.0, -1.0, 0.5)
    shifts = action_to_shifts(action, PARAMS)
    moved = foot_targets(1.0, shifts, PARAMS)
    limits = np.asarray(PARAMS.shift_limits)
    np.testing.assert_allclose(moved[1] - base[1], [limits[0], -limits[1], 0.5 * limits[2]])
    np.testing.assert_allclose(moved[[0, 2, 3]], base[[0, 2, 3]])
    np.testing.assert_allclose(action_to_shifts(np.full(12, 5.0), PARAMS)[2], limits)
    with pytest.raises(ValueError, match="shape"):
        action_to_shifts(np.zeros(4), PARAMS)
    with pytest.raises(ValueError, match="non-finite"):
        action_to_shifts(np.full(12, np.nan), PARAMS)


@pytest.mark.parametrize(
    ("field", "value"),
    [("gait_period", 0.0), ("duty_factor", 1.0), ("standing_height", 0.23), ("decimation", 0)],
)
def test_params_reject_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(PARAMS, **{field: value})


def test_urdf_matches_params() -> None:
    client = BulletClient(connection_mode=pybullet.DIRECT)
    try:
        path = str(resources.files("mdemorl_core.envs").joinpath("assets/stochlite.urdf"))
        robot = client.loadURDF(path, [0.0, 0.0, 1.0])  # no gravity set: it stays put
        infos = [client.getJointInfo(robot, index) for index in range(client.getNumJoints(robot))]
        by_name = {info[1].decode(): info for info in infos}
        total_mass = client.getDynamicsInfo(robot, -1)[0] + sum(
            client.getDynamicsInfo(robot, info[0])[0] for info in infos
        )
        assert total_mass == pytest.approx(3.4)
        for leg in LEG_NAMES:
            for joint_index, joint in enumerate(JOINTS_PER_LEG):
                info = by_name[f"{leg}_{joint}"]
                assert info[8] == pytest.approx(PARAMS.joint_lower[joint_index])
                assert info[9] == pytest.approx(PARAMS.joint_upper[joint_index])
                assert info[10] == pytest.approx(PARAMS.servo_torque)
                assert info[11] == pytest.approx(PARAMS.servo_speed)
        rng = np.random.default_rng(1)
        joints = rng.uniform(PARAMS.joint_lower, PARAMS.joint_upper, size=(4, 3))
        for leg_index, leg in enumerate(LEG_NAMES):
            for joint_index, joint in enumerate(JOINTS_PER_LEG):
                client.resetJointState(
                    robot, by_name[f"{leg}_{joint}"][0], joints[leg_index, joint_index]
                )
        expected = leg_forward_kinematics(joints, PARAMS)
        for leg_index, leg in enumerate(LEG_NAMES):
            foot_link = by_name[f"{leg}_foot_fixed"][0]
            world = np.array(client.getLinkState(robot, foot_link, computeForwardKinematics=1)[4])
            in_hip = world - np.array([0.0, 0.0, 1.0]) - np.asarray(PARAMS.hip_positions[leg_index])
            np.testing.assert_allclose(in_hip, expected[leg_index], atol=1e-6)
    finally:
        client.disconnect()
