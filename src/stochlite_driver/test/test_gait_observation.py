"""The measured observation: against StochLite-v0's true one, and equal to StochLite-v1's."""

import dataclasses

import numpy as np
import pytest

from mdemorl_core.envs.stochlite import StochLiteEnv
from mdemorl_core.envs.stochlite_gait import STOCHLITE_V1
from mdemorl_core.envs.stochlite_v1 import StochLiteV1Env
from stochlite_driver.b3m import RunMode
from stochlite_driver.gait_core import GaitConfig, GaitControllerCore
from stochlite_driver.gait_observation import (
    SupportPlaneEstimator,
    build_observation,
    observer_for_task,
    terminated,
)
from stochlite_driver.robot import roll_pitch
from stochlite_driver.sim_physics import StochLiteSimulation

FOOT_LINKS = (3, 7, 11, 15)  # the URDF's foot links, in leg order


@pytest.mark.parametrize("slope", [(0.0, 0.0), (0.1, -0.12)])
def test_estimate_tracks_the_true_slope_and_height(slope: tuple[float, float]) -> None:
    env = StochLiteEnv()
    true_contacts = SupportPlaneEstimator(env.params)
    by_effort = SupportPlaneEstimator(env.params)
    try:
        env.reset(seed=0, options={"slope": slope})
        errors, effort_errors = [], []
        for _ in range(100):
            true_obs, *_ = env.step(np.zeros(12))
            client = env.client
            states = client.getJointStates(env._robot, env._joint_ids)
            q = np.array([s[0] for s in states])
            effort = np.array([s[3] for s in states])
            _, quaternion = client.getBasePositionAndOrientation(env._robot)
            roll, pitch = roll_pitch(*quaternion)
            touching = {c[3] for c in client.getContactPoints(bodyA=env._robot)}
            contacts = np.array([link in touching for link in FOOT_LINKS])
            rates = true_obs[2:5]  # the env's body rates are what a gyro measures
            plane = true_contacts.update(q, roll, pitch, contacts)
            estimate = build_observation(roll, pitch, rates, plane, env._gait_phase)
            errors.append(np.abs(estimate - true_obs))
            effort_plane = by_effort.update(q, roll, pitch, by_effort.contacts(effort))
            effort_errors.append(np.abs(np.subtract(effort_plane, true_obs[[6, 7, 5]])))
        mean = np.mean(errors, axis=0)
        assert mean[5] < 0.01  # height, m
        assert mean[6] < 0.02 and mean[7] < 0.02  # slope roll, pitch, rad
        np.testing.assert_allclose(np.max(errors, axis=0)[[0, 1, 2, 3, 4, 8, 9]], 0.0, atol=1e-4)
        print(
            f"slope {slope}: effort-based contacts, mean |error| (roll, pitch, height)",
            np.round(np.mean(effort_errors, axis=0), 3),
        )
        assert not terminated(estimate, env.params)
    finally:
        env.close()


def test_termination_on_tilt_or_height() -> None:
    env = StochLiteEnv()
    params = env.params
    env.close()
    observation = np.zeros(10, dtype=np.float32)
    observation[5] = 0.2
    assert not terminated(observation, params)
    observation[0] = params.max_tilt + 0.01
    assert terminated(observation, params)
    observation[0], observation[5] = 0.0, params.min_height - 0.01
    assert terminated(observation, params)


def test_estimator_keeps_its_estimate_with_fewer_than_three_contacts() -> None:
    env = StochLiteEnv()
    params = env.params
    env.close()
    estimator = SupportPlaneEstimator(params)
    standing = np.array([0.0, 0.6, -1.2] * 4)
    first = estimator.update(standing, 0.0, 0.0, np.zeros(4, dtype=bool))  # first fit: all feet
    assert first[0] == pytest.approx(0.0, abs=1e-9) and first[2] > 0.1
    tilted = standing.copy()
    tilted[2] = -0.6  # one knee straightened: that foot would be lower
    assert estimator.update(tilted, 0.0, 0.0, np.array([True, True, False, False])) == first
    assert estimator.update(tilted, 0.0, 0.0, np.ones(4, dtype=bool)) != first
    with pytest.raises(ValueError, match="contact_effort"):
        SupportPlaneEstimator(params, contact_effort=0.0)


@pytest.mark.parametrize("slope", [(0.0, 0.0), (0.15, -0.15)])
def test_node_core_observes_stochlite_v1_as_the_env_does(slope: tuple[float, float]) -> None:
    """The gait controller's core, fed the simulated robot's joint states and IMU tick by tick
    (as the node is from /joint_states and /imu/data), emits the env's observations, rewards
    and terminations for the same zero-shift episode."""
    env = StochLiteV1Env(mass_scale=0.0)  # the simulated robot has the nominal mass
    sim = StochLiteSimulation(slope=slope, task="StochLite-v1")
    core = GaitControllerCore(sim.params, GaitConfig(task="StochLite-v1"))
    assert sim.params == STOCHLITE_V1 and core.observer.dim == 11
    try:
        env_obs, _ = env.reset(seed=0, options={"slope": slope})
        env_steps = [env.step(np.zeros(12)) for _ in range(60)]
        transitions = []
        while len(transitions) < len(env_steps):
            q, qd, effort = sim.joint_state()
            quaternion, rates, _ = sim.imu()
            roll, pitch = roll_pitch(*quaternion)
            result = core.tick(q, qd, effort, roll, pitch, rates)
            sim.step(RunMode.NORMAL, result.targets)
            if result.transition is not None:
                transitions.append(result.transition)
        np.testing.assert_allclose(transitions[0].observation, env_obs, atol=1e-6)
        for transition, (obs, reward, terminated, _, _) in zip(transitions, env_steps, strict=True):
            np.testing.assert_allclose(transition.next_observation, obs, atol=1e-6)
            assert transition.reward == pytest.approx(reward, abs=1e-6)
            assert transition.terminated == terminated
        estimated_slope = np.abs(env_steps[-1][0][6:8])
        assert np.all(estimated_slope > 0.05) == any(slope)  # the estimate sees the incline
    finally:
        env.close()
        sim.close()


def test_observers_per_task_and_unknown_task() -> None:
    v0 = observer_for_task("StochLite-v0")
    v1 = observer_for_task("StochLite-v1")
    assert (v0.dim, v0.contact_source) == (10, "effort")
    assert (v1.dim, v1.contact_source) == (11, "schedule")
    with pytest.raises(ValueError, match="StochLite-v7"):
        observer_for_task("StochLite-v7")


def test_the_gait_controller_refuses_a_world_speed_reward() -> None:
    """A robot measures no world speed: a v1 task paying it cannot be the controller's."""
    world = dataclasses.replace(STOCHLITE_V1, progress_from="world")
    with pytest.raises(ValueError, match="odometry"):
        observer_for_task("StochLite-v1", world)
