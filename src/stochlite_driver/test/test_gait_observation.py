"""The measured observation against the env's true one, on flat and sloped ground."""

import numpy as np
import pytest

from mdemorl_core.envs.stochlite import StochLiteEnv
from stochlite_driver.gait_observation import (
    SupportPlaneEstimator,
    build_observation,
    terminated,
)
from stochlite_driver.robot import roll_pitch

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
