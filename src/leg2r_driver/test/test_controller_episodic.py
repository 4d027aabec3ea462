"""The episodic protocol of the controller core: hold, act one request's steps, hold again."""

import numpy as np
import pytest

from leg2r_driver.controller_core import ControllerConfig, Leg2RControllerCore
from mdemorl_core.envs.leg2r import Leg2RPhysics
from mdemorl_core.envs.leg2r_task import Leg2RParams
from mdemorl_ros.protocol import ActingRequest

PARAMS = Leg2RParams(episode_steps=7)
HOLD = (0.2, -1.0)


def episodic_core(hold_mode: str = "pd") -> Leg2RControllerCore:
    config = ControllerConfig(protocol="episodic", hold_pose=HOLD, hold_mode=hold_mode, seed=1)
    return Leg2RControllerCore(PARAMS, config)


def run(core: Leg2RControllerCore, physics: Leg2RPhysics, policy_steps: int) -> list:
    """Tick for ``policy_steps`` policy steps; returns (transition or None, torque, phase)."""
    out = []
    for _ in range(policy_steps * PARAMS.decimation):
        tick = core.tick(physics.q, physics.qd)
        out.append((tick.transition, tick.torque, core.phase))
        physics.step(tick.torque)
    return out


def transitions(ticks: list) -> list:
    return [t for t, _, _ in ticks if t is not None]


def test_waits_acts_one_request_then_holds_without_transitions() -> None:
    physics = Leg2RPhysics(PARAMS)
    core = episodic_core()
    waiting = run(core, physics, 4)
    assert transitions(waiting) == [] and {p for _, _, p in waiting} == {"waiting"}
    q, qd = physics.q, physics.qd
    expected_hold = np.clip(np.array([8.0, 6.0]) * (np.array(HOLD) - q) - [0.3, 0.2] * qd, -3, 3)
    np.testing.assert_allclose(core.tick(q, qd).torque, expected_hold)

    core.request(ActingRequest(None, version=0, acting_steps=10, explore_uniform=True))
    assert core.reported_phase == "acting"
    first = transitions(run(core, physics, 14))
    assert len(first) == 10 and {t.policy_version for t in first} == {0}
    # Episode 0 starts at step 0 (waiting kept the clock frozen); the 7-step episode truncates, the phase end truncates too.
    assert [(t.episode, t.step) for t in first] == [(0, s) for s in range(7)] + [
        (1, s) for s in range(3)
    ]
    assert [t.truncated for t in first] == [False] * 6 + [True] + [False, False, True]
    assert core.phase == "holding"
    held = run(core, physics, 20)
    assert transitions(held) == [] and {p for _, _, p in held} == {"holding"}

    core.request(ActingRequest(lambda obs: np.array([0.5, -0.5]), version=1, acting_steps=3))
    second = transitions(run(core, physics, 5))
    assert [(t.episode, t.step, t.policy_version) for t in second] == [(2, s, 1) for s in range(3)]
    np.testing.assert_allclose([t.action for t in second], [[0.5, -0.5]] * 3)


def test_a_request_during_a_phase_waits_for_its_end() -> None:
    physics = Leg2RPhysics(PARAMS)
    core = episodic_core()
    core.request(ActingRequest(lambda obs: np.array([0.1, 0.1]), version=4, acting_steps=6))
    got = transitions(run(core, physics, 3))
    core.request(ActingRequest(lambda obs: np.array([0.2, 0.2]), version=5, acting_steps=2))
    got += transitions(run(core, physics, 8))
    assert [t.policy_version for t in got] == [4] * 6 + [5] * 2
    np.testing.assert_allclose(got[-1].action, [0.2, 0.2])
    assert got[5].truncated and got[6].step == 0


def test_zero_hold_mode_commands_zero_torque() -> None:
    physics = Leg2RPhysics(PARAMS)
    core = episodic_core(hold_mode="zero")
    assert all(np.all(torque == 0) for _, torque, _ in run(core, physics, 3))


def test_bad_protocol_and_hold_mode_raise() -> None:
    with pytest.raises(ValueError, match="protocol"):
        ControllerConfig(protocol="sometimes")
    with pytest.raises(ValueError, match="hold_mode"):
        ControllerConfig(hold_mode="limp")
