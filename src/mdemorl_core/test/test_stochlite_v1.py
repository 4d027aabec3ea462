"""StochLite-v1: spaces, seeding, 10 ms policy step, generated robot, estimated slope, known
reward and termination, transfer randomisation."""

from __future__ import annotations

import dataclasses
import math

import gymnasium
import numpy as np
import pybullet
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import mdemorl_core.envs  # noqa: F401  (registers the tasks)
from mdemorl_core.envs.stochlite_estimator import fit_plane, measured_reward, tilt_rotation
from mdemorl_core.envs.stochlite_gait import (
    STOCHLITE_V1,
    foot_targets,
    leg_forward_kinematics,
    leg_inverse_kinematics,
    task_params,
)
from mdemorl_core.envs.stochlite_urdf import StochLiteBuild
from mdemorl_core.envs.stochlite_v1 import StochLiteV1Env
from mdemorl_core.envs.task_rewards import task_reward_function
from mdemorl_core.envs.task_terminations import task_termination_function

SLOPES = [(0.15, 0.15), (-0.15, 0.15), (0.15, -0.15), (-0.15, -0.15), (0.15, 0.0), (0.0, -0.15)]


def heading_slope(env: StochLiteV1Env) -> np.ndarray:
    """The ground's roll and pitch seen from the robot's heading (its yaw removed): what the
    support-plane estimate should be (the robot turns as it walks on a slope)."""
    normal = env._slope_rotation[:, 2]
    _, quaternion = env.client.getBasePositionAndOrientation(env._robot)
    yaw = env.client.getEulerFromQuaternion(quaternion)[2]
    c, s = math.cos(yaw), math.sin(yaw)
    n = np.array([c * normal[0] + s * normal[1], -s * normal[0] + c * normal[1], normal[2]])
    return np.array([-math.asin(n[1]), math.atan2(n[0], n[2])])


def test_registered_spaces_and_env_checker() -> None:
    env = gymnasium.make("StochLite-v1")
    assert isinstance(env.unwrapped, StochLiteV1Env)
    assert env.observation_space.shape == (11,) and env.action_space.shape == (12,)
    env.close()
    plain = StochLiteV1Env()
    check_env(plain, skip_render_check=True)
    obs, _ = plain.reset(seed=3)
    for _ in range(50):
        obs, reward, terminated, truncated, _ = plain.step(plain.action_space.sample())
        assert plain.observation_space.contains(obs) and math.isfinite(reward)
    plain.close()
    with pytest.raises(TypeError, match="bogus"):
        StochLiteV1Env(bogus=1)
    with pytest.raises(ValueError, match="mass_scale"):
        StochLiteV1Env(mass_scale=1.5)
    with pytest.raises(ValueError, match="push_interval"):
        StochLiteV1Env(push_force=5.0, push_interval=0.05)


def test_authors_geometry_and_timing() -> None:
    params = task_params("StochLite-v1")
    assert params is STOCHLITE_V1
    assert (params.abduction_offset, params.thigh_length, params.shank_length) == (
        0.096,
        0.146,
        0.172,
    )
    hips = np.abs(np.asarray(params.hip_positions))
    assert 2 * hips[:, 0].max() == pytest.approx(0.334) and 2 * hips[:, 1].max() == 0.192
    assert StochLiteBuild().total_mass == pytest.approx(2.5)
    assert params.policy_dt == pytest.approx(0.01) and params.sim_hz == 200.0
    with pytest.raises(ValueError, match="StochLite-v9"):
        task_params("StochLite-v9")


def test_policy_step_is_ten_ms_of_sim_time() -> None:
    env = StochLiteV1Env()
    env.reset(seed=0)
    client = env.client
    timestep = client.getPhysicsEngineParameters()["fixedTimeStep"]
    calls = []
    original = client.stepSimulation

    def counting_step() -> None:
        calls.append(1)
        original()

    client.stepSimulation = counting_step  # type: ignore[method-assign]
    phase = env._gait_phase
    env.step(np.zeros(12))
    env.close()
    assert len(calls) * timestep == pytest.approx(0.010)
    # The trajectory generator's clock moved by 10 ms of the 0.4 s gait period.
    assert env._gait_phase - phase == pytest.approx(2 * math.pi * 0.010 / 0.4)


def _rollout(seed: int, steps: int, **overrides: float) -> tuple[np.ndarray, np.ndarray, float]:
    env = StochLiteV1Env(**overrides)
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(0.3 * env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    env.close()
    return np.array(observations), np.array(rewards), info["torso_mass"]


def test_same_seed_same_episode_other_seed_other_slope_and_mass() -> None:
    obs_a, rew_a, mass_a = _rollout(seed=5, steps=80, push_force=15.0, push_interval=0.3)
    obs_b, rew_b, mass_b = _rollout(seed=5, steps=80, push_force=15.0, push_interval=0.3)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    assert mass_a == mass_b
    obs_c, _, mass_c = _rollout(seed=6, steps=80, push_force=15.0, push_interval=0.3)
    assert mass_c != mass_a and abs(mass_c / StochLiteBuild().torso_mass - 1.0) <= 0.1
    assert not np.array_equal(obs_a, obs_c)
    obs_still, _, _ = _rollout(seed=5, steps=80)  # no pushes: another trajectory
    assert not np.array_equal(obs_a, obs_still)


def test_generated_urdf_matches_the_kinematics() -> None:
    env = StochLiteV1Env()
    env.reset(seed=0, options={"slope": (0.0, 0.0)})
    client, robot = env.client, env._robot
    rng = np.random.default_rng(2)
    joints = rng.uniform(STOCHLITE_V1.joint_lower, STOCHLITE_V1.joint_upper, size=(4, 3))
    for joint_id, angle in zip(env._joint_ids, joints.reshape(12), strict=True):
        client.resetJointState(robot, joint_id, float(angle))
    position, quaternion = client.getBasePositionAndOrientation(robot)
    rotation = np.array(client.getMatrixFromQuaternion(quaternion)).reshape(3, 3)
    names = {
        client.getJointInfo(robot, i)[1].decode(): i for i in range(client.getNumJoints(robot))
    }
    expected = leg_forward_kinematics(joints, STOCHLITE_V1)
    for leg_index, leg in enumerate(("FL", "FR", "BL", "BR")):
        world = np.array(client.getLinkState(robot, names[f"{leg}_foot_fixed"], 1)[4])
        in_body = rotation.T @ (world - np.array(position))
        hip = np.asarray(STOCHLITE_V1.hip_positions[leg_index])
        np.testing.assert_allclose(in_body - hip, expected[leg_index], atol=1e-6)
    total = client.getDynamicsInfo(robot, -1)[0] + sum(
        client.getDynamicsInfo(robot, i)[0] for i in range(client.getNumJoints(robot))
    )
    build = StochLiteBuild()  # 2.5 kg, the torso's mass drawn for this episode
    assert total == pytest.approx(build.total_mass - build.torso_mass + env.torso_mass)
    env.close()
    # IK inverts FK over the trajectory generator's workspace (every phase, half the shift
    # range: the full range reaches beyond the straight leg, where IK pulls the foot in).
    for phase in np.linspace(0.0, 2.0 * math.pi, 17):
        shifts = rng.uniform(-0.5, 0.5, (4, 3)) * np.asarray(STOCHLITE_V1.shift_limits)
        feet = foot_targets(float(phase), shifts, STOCHLITE_V1)
        joints = leg_inverse_kinematics(feet, STOCHLITE_V1)
        np.testing.assert_allclose(leg_forward_kinematics(joints, STOCHLITE_V1), feet, atol=1e-9)


def test_plane_fit_recovers_a_tilted_plane_exactly() -> None:
    rng = np.random.default_rng(0)
    roll, pitch = 0.12, -0.09
    ground = np.array(
        pybullet.getMatrixFromQuaternion(pybullet.getQuaternionFromEuler([roll, pitch, 0.0]))
    )
    ground = ground.reshape(3, 3)
    points = (ground @ np.column_stack([rng.uniform(-0.2, 0.2, (4, 2)), np.zeros(4)]).T).T
    points[:, 2] -= 0.25  # the plane 0.25 m below the torso origin (along z)
    slope_roll, slope_pitch, _ = fit_plane(points, 0.0)
    assert (slope_roll, slope_pitch) == pytest.approx((roll, pitch), abs=1e-9)
    np.testing.assert_allclose(tilt_rotation(0.0, 0.0), np.eye(3))


@pytest.mark.parametrize("slope", SLOPES)
def test_estimated_slope_tracks_the_true_one_on_015_rad_planes(slope: tuple[float, float]) -> None:
    """Zero-shift trot for a full episode: mean |error| < 0.03 rad, 95 % of steps < 0.08 rad,
    height within 1 cm on average (measured: mean <= 0.011, p95 <= 0.052, max 0.12 rad at foot
    touch-downs; height <= 4 mm)."""
    env = StochLiteV1Env()
    env.reset(seed=0, options={"slope": slope})
    errors, heights = [], []
    for _ in range(env.params.episode_steps):
        obs, _, terminated, truncated, info = env.step(np.zeros(12))
        errors.append(np.abs(obs[6:8] - heading_slope(env)))
        normal = env._slope_rotation[:, 2]
        heights.append(abs(obs[5] - float(normal @ info["torso_position"])))
        assert not terminated
    env.close()
    errors_array = np.array(errors)
    assert np.all(errors_array.mean(axis=0) < 0.03)
    assert np.all(np.percentile(errors_array, 95, axis=0) < 0.08)
    assert np.mean(heights) < 0.01  # m, the estimated height above the ground


def test_known_reward_and_termination_equal_the_envs() -> None:
    reward_fn = task_reward_function("StochLite-v1")
    done_fn = task_termination_function("StochLite-v1")
    env = StochLiteV1Env()
    rows = []
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        for _ in range(300):
            action = env.action_space.sample()
            next_obs, reward, terminated, truncated, _ = env.step(action)
            rows.append((obs, action, next_obs, reward, terminated))
            obs = next_obs
            if terminated or truncated:
                break
    env.close()
    o, a, n = (torch.as_tensor(np.array([r[k] for r in rows])) for k in range(3))
    rewards = np.array([r[3] for r in rows])
    np.testing.assert_allclose(reward_fn(o, a, n).numpy(), rewards, atol=1e-4)
    done = np.array([r[4] for r in rows])
    assert done.any(), "random shifts should topple the robot at least once in 900 steps"
    np.testing.assert_array_equal(done_fn(o, a, n).numpy(), done)


def test_alive_bonus_is_paid_only_on_steps_that_do_not_end_the_episode() -> None:
    upright = np.zeros(11)
    upright[5] = STOCHLITE_V1.standing_height
    walking, falling = (
        measured_reward(upright, 0.3, 0.0, STOCHLITE_V1, terminated=ended)
        for ended in (False, True)
    )
    assert walking - falling == pytest.approx(STOCHLITE_V1.alive_bonus)
    assert STOCHLITE_V1.alive_bonus == 10.0
    assert falling == pytest.approx(STOCHLITE_V1.progress_weight * 0.3)
    v0 = task_params("StochLite-v0")
    assert measured_reward(upright, 0.3, 0.0, v0, terminated=False) == pytest.approx(
        measured_reward(upright, 0.3, 0.0, v0, terminated=True)
    )
    # The known reward pays it where the known termination says the step did not end.
    reward_fn = task_reward_function("StochLite-v1")
    fallen = upright.copy()
    fallen[0] = STOCHLITE_V1.max_tilt + 0.1  # IMU roll beyond the limit
    rows = torch.as_tensor(np.stack([upright, fallen]), dtype=torch.float32)
    rewards = reward_fn(rows, torch.zeros(2, 12), rows).numpy()
    tilt_penalty = STOCHLITE_V1.orientation_weight * fallen[0] ** 2
    np.testing.assert_allclose(rewards, [STOCHLITE_V1.alive_bonus, -tilt_penalty], atol=1e-5)


def test_world_progress_pays_the_true_speed_and_odometry_needs_v1() -> None:
    env = StochLiteV1Env(progress_from="world")
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(1)  # full-scale random shifts: this episode falls (~300 steps)
    gaps, terminated = [], False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 12))
        expected = measured_reward(obs, info["true_forward_velocity"], 0.0, env.params, terminated)
        assert reward == pytest.approx(expected, abs=1e-9)
        gaps.append(abs(info["true_forward_velocity"] - float(obs[10])))
        assert not truncated, "the episode was expected to end in a fall"
    env.close()
    assert np.mean(gaps) > 0.05  # m/s: odometry is not what the world reward pays
    with pytest.raises(ValueError, match="progress_from"):
        StochLiteV1Env(progress_from="imu")
    with pytest.raises(ValueError, match="progress_from 'odometry'"):
        gymnasium.make("StochLite-v0", progress_from="odometry")


def test_known_functions_keep_batch_shape_and_reject_a_wrong_width() -> None:
    obs = torch.zeros(5, 2, 11)
    obs[..., 5] = 0.25  # standing height: not terminated
    assert task_reward_function("StochLite-v1")(obs, torch.zeros(5, 2, 12), obs).shape == (5, 2)
    done = task_termination_function("StochLite-v1")(obs, torch.zeros(5, 2, 12), obs)
    assert done.shape == (5, 2) and not done.any()
    obs[0, 0, 0] = 0.7  # rolled beyond max_tilt, on flat ground as estimated
    assert task_termination_function("StochLite-v1")(obs, obs, obs)[0, 0]
    with pytest.raises(ValueError, match="11"):
        task_termination_function("StochLite-v1")(obs, obs, torch.zeros(5, 10))


def test_torque_range_and_imu_noise_options() -> None:
    env = StochLiteV1Env(torque_range=(5.0, 8.0), imu_attitude_noise=0.02, imu_rate_noise=0.1)
    torques = []
    for seed in range(4):
        env.reset(seed=seed, options={"slope": (0.0, 0.0)})
        torques.append(env.servo_torque)
        _, _, _, roll_a, _, rates_a = env.measure()
        _, _, _, roll_b, _, rates_b = env.measure()  # the same state, fresh noise
        assert roll_a != roll_b and not np.array_equal(rates_a, rates_b)
    env.close()
    assert all(5.0 <= t <= 8.0 for t in torques) and len(set(torques)) == 4
    quiet = StochLiteV1Env()
    quiet.reset(seed=0)
    assert quiet.servo_torque == STOCHLITE_V1.servo_torque
    assert quiet.measure()[3] == quiet.measure()[3]  # no noise by default
    quiet.close()
    with pytest.raises(ValueError, match="torque_range"):
        StochLiteV1Env(torque_range=(8.0, 5.0))
    with pytest.raises(ValueError, match="imu_attitude_noise"):
        StochLiteV1Env(imu_attitude_noise=-1.0)


def test_offset_legs_need_all_four_legs() -> None:
    with pytest.raises(ValueError, match="4, 3"):
        leg_forward_kinematics(np.zeros(3), STOCHLITE_V1)
    with pytest.raises(ValueError, match="abduction_offset"):
        dataclasses.replace(STOCHLITE_V1, abduction_offset=-0.01)
