"""The controller core reproduces Leg2REnv's observations, rewards and episode boundaries."""

import math

import numpy as np
import pytest

from leg2r_driver.controller_core import (
    MAX_STATE_FUTURE_SKEW,
    STATE_REJECTIONS,
    ControllerConfig,
    Leg2RControllerCore,
    PlanBuffer,
    StateRejected,
    check_policy_dims,
    select_joint_state,
)
from mdemorl_core.envs.leg2r import Leg2REnv, Leg2RPhysics
from mdemorl_core.envs.leg2r_task import OBSERVATION_DIM, Leg2RParams, build_observation

PARAMS = Leg2RParams(episode_steps=7)
WEIGHTS = np.random.default_rng(3).normal(scale=0.5, size=(2, OBSERVATION_DIM))


def linear_policy(obs: np.ndarray) -> np.ndarray:
    return np.tanh(WEIGHTS @ obs.astype(np.float64))


def run_core(core: Leg2RControllerCore, physics: Leg2RPhysics, ticks: int) -> list:
    transitions = []
    for _ in range(ticks):
        out = core.tick(physics.q, physics.qd)
        if out.transition is not None:
            transitions.append(out.transition)
        physics.step(out.torque)
    return transitions


def test_transitions_equal_the_gymnasium_task_across_episodes() -> None:
    env = Leg2REnv(params=PARAMS)
    obs, _ = env.reset(seed=5)
    physics = Leg2RPhysics(PARAMS)
    physics.reset(env.physics.q, env.physics.qd)
    core = Leg2RControllerCore(PARAMS)
    core.set_policy(linear_policy, version=1)
    episodes = 2
    ticks = episodes * PARAMS.episode_steps * PARAMS.decimation + 1
    transitions = run_core(core, physics, ticks)
    assert len(transitions) == episodes * PARAMS.episode_steps

    expected = []
    for episode in range(episodes):
        if episode > 0:  # the robot is not reset: the new episode starts where the leg is
            start = expected[-1]["state_after"]
            env.reset(seed=0)
            env.physics.reset(*start)
            obs = build_observation(start[0], start[1], 0.0, PARAMS)
        for step in range(PARAMS.episode_steps):
            action = linear_policy(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            expected.append(
                dict(
                    obs=obs,
                    action=action,
                    reward=reward,
                    next_obs=next_obs,
                    terminated=terminated,
                    truncated=truncated,
                    step=step,
                    episode=episode,
                    state_after=(env.physics.q, env.physics.qd),
                )
            )
            obs = next_obs
    for got, want in zip(transitions, expected, strict=True):
        assert (got.episode, got.step) == (want["episode"], want["step"])
        np.testing.assert_array_equal(got.observation, want["obs"])
        np.testing.assert_array_equal(got.next_observation, want["next_obs"])
        np.testing.assert_allclose(got.action, want["action"], rtol=1e-6)
        assert got.reward == want["reward"]
        assert (got.terminated, got.truncated) == (want["terminated"], want["truncated"])


def test_zero_default_until_a_policy_arrives_then_hot_swap() -> None:
    physics = Leg2RPhysics(PARAMS)
    core = Leg2RControllerCore(PARAMS)
    out = core.tick(physics.q, physics.qd, with_tracking=False)
    assert out.action_source == "zero" and np.all(out.torque == 0)
    assert out.tracking is None
    core.set_policy(lambda obs: np.array([0.5, -0.5]), version=2)
    for _ in range(PARAMS.decimation - 1):  # the swap waits for the next policy step
        assert np.all(core.tick(physics.q, physics.qd).torque == 0)
    out = core.tick(physics.q, physics.qd)
    assert out.action_source == "policy"
    np.testing.assert_allclose(out.torque, 0.5 * np.array([3.0, -3.0]))


def test_hold_default_is_a_pd_and_records_no_transitions() -> None:
    physics = Leg2RPhysics(PARAMS)
    core = Leg2RControllerCore(
        PARAMS, ControllerConfig(default_action="hold", hold_pose=(0.2, -1.0))
    )
    q = np.array([0.1, -1.0])
    out = core.tick(q, np.zeros(2))
    np.testing.assert_allclose(out.torque, [8.0 * 0.1, 0.0])
    for _ in range(3 * PARAMS.decimation):
        assert core.tick(physics.q, physics.qd).transition is None


def test_random_default_is_seeded_and_bounded() -> None:
    outs = []
    for _ in range(2):
        core = Leg2RControllerCore(PARAMS, ControllerConfig(default_action="random", seed=4))
        outs.append(np.array([core.tick(np.zeros(2), np.zeros(2)).torque for _ in range(20)]))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.all(np.abs(outs[0]) <= 3.0) and np.any(outs[0] != 0)


def test_planner_actions_are_used_then_fall_back_to_the_policy() -> None:
    core = Leg2RControllerCore(PARAMS)
    core.set_policy(lambda obs: np.array([-1.0, -1.0]), version=1)
    core.use_planner = True
    core.plans.store(np.array([[0.1, 0.2], [0.3, 0.4]]), episode=0, start_step=0)
    sources, torques = [], []
    for _ in range(3 * PARAMS.decimation):
        out = core.tick(np.zeros(2), np.zeros(2))
        sources.append(out.action_source)
        torques.append(out.torque)
    assert sources[0] == "planner" and sources[5] == "planner" and sources[10] == "policy"
    np.testing.assert_allclose(torques[5], [0.9, 1.2])
    np.testing.assert_allclose(torques[10], [-3.0, -3.0])


def test_tracking_reward_matches_the_task_reward_at_policy_boundaries() -> None:
    physics = Leg2RPhysics(PARAMS)
    core = Leg2RControllerCore(PARAMS)
    core.set_policy(linear_policy, version=1)
    for tick in range(3 * PARAMS.decimation + 1):
        out = core.tick(physics.q, physics.qd)
        if tick > 0 and out.transition is not None:
            assert out.tracking is not None
            assert out.tracking.reward == pytest.approx(out.transition.reward, abs=1e-12)
        physics.step(out.torque)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="default_action"):
        ControllerConfig(default_action="limp")
    with pytest.raises(ValueError, match="shape"):
        PlanBuffer().store(np.zeros((3, 3)), 0, 0)
    with pytest.raises(ValueError, match="dims"):
        check_policy_dims(13, 2)
    core = Leg2RControllerCore(PARAMS)
    core.set_policy(lambda obs: np.array([np.nan, 0.0]), version=1)
    with pytest.raises(ValueError, match="bad action"):
        core.tick(np.zeros(2), np.zeros(2))


def test_joint_states_are_selected_by_name_and_bad_ones_rejected_with_a_reason() -> None:
    joints = ("hip", "knee")
    q, qd = select_joint_state(
        joints, ["knee", "ankle", "hip"], [2.0, 9.0, 1.0], [4, 9, 3], 0.0, 0.02
    )
    np.testing.assert_array_equal(q, [1.0, 2.0])
    np.testing.assert_array_equal(qd, [3.0, 4.0])
    cases = {
        "wrong_length": (["hip", "knee"], [1.0], [0.0, 0.0], 0.0),
        "unknown_joint": (["hip", "ankle"], [1.0, 2.0], [0.0, 0.0], 0.0),
        "non_finite": (["hip", "knee"], [1.0, math.nan], [0.0, 0.0], 0.0),
        "stale": (["hip", "knee"], [1.0, 2.0], [0.0, 0.0], 0.021),
        "future_stamp": (["hip", "knee"], [1.0, 2.0], [0.0, 0.0], -MAX_STATE_FUTURE_SKEW - 1e-3),
    }
    assert set(cases) == set(STATE_REJECTIONS)
    for reason, (names, position, velocity, age) in cases.items():
        with pytest.raises(StateRejected) as caught:
            select_joint_state(joints, names, position, velocity, age, 0.02)
        assert caught.value.counter == f"states_rejected_{reason}"
    with pytest.raises(StateRejected, match="wrong_length"):
        select_joint_state(joints, ["hip", "hip"], [1.0, 2.0], [0.0, 0.0], 0.0, 0.02)
    with pytest.raises(StateRejected, match="non_finite"):
        select_joint_state(joints, ["hip", "knee"], [1.0, 2.0], [math.inf, 0.0], 0.0, 0.02)
    with pytest.raises(StateRejected, match="stale"):
        select_joint_state(joints, ["hip", "knee"], [1.0, 2.0], [0.0, 0.0], math.nan, 0.02)
