"""GaitControllerCore: the env's gait reproduced tick by tick, protocols, termination/reset."""

from collections.abc import Iterator

import numpy as np
import pytest

from mdemorl_core.envs.stochlite import StochLiteEnv
from mdemorl_ros.protocol import ActingRequest
from stochlite_driver.b3m import RunMode
from stochlite_driver.gait_core import GaitConfig, GaitControllerCore, stand_pose
from stochlite_driver.robot import roll_pitch
from stochlite_driver.sim_physics import StochLiteSimulation


@pytest.fixture
def sim() -> Iterator[StochLiteSimulation]:
    simulation = StochLiteSimulation()
    yield simulation
    simulation.close()


def run_ticks(core: GaitControllerCore, sim: StochLiteSimulation, ticks: int) -> list:
    """Closed loop: measure, tick the core, command the simulated servos, step."""
    out = []
    for _ in range(ticks):
        q, qd, effort = sim.joint_state()
        quaternion, rates, _ = sim.imu()
        roll, pitch = roll_pitch(*quaternion)
        result = core.tick(q, qd, effort, roll, pitch, rates)
        sim.step(RunMode.NORMAL, result.targets)
        out.append(result)
    return out


def test_zero_shift_gait_reproduces_the_env_exactly(sim: StochLiteSimulation) -> None:
    env = StochLiteEnv()
    env.reset(seed=0, options={"slope": (0.0, 0.0)})
    core = GaitControllerCore(sim.params)
    steps = 20
    for _ in range(steps):
        env.step(np.zeros(12))
    results = run_ticks(core, sim, steps * sim.params.decimation)
    np.testing.assert_allclose(sim.torso()[0], env._torso_state()[0], atol=1e-9)
    env.close()
    transitions = [r.transition for r in results if r.transition is not None]
    assert len(transitions) == steps - 1  # the step in progress has not ended yet
    assert all(t.observation.shape == (10,) and t.action.shape == (12,) for t in transitions)
    assert sim.torso()[0][0] > 0.05  # the trot walks forward
    assert np.mean([t.reward for t in transitions]) > 0.0


def test_episodic_protocol_acts_the_requested_steps_then_holds(sim: StochLiteSimulation) -> None:
    core = GaitControllerCore(sim.params, GaitConfig(protocol="episodic"))
    decimation = sim.params.decimation
    first = run_ticks(core, sim, 3 * decimation)
    assert all(r.transition is None and r.source == "hold" for r in first)
    np.testing.assert_allclose(first[-1].targets, stand_pose(sim.params))
    core.request(ActingRequest(lambda obs: np.full(12, 0.1), version=3, acting_steps=4))
    acting = run_ticks(core, sim, 8 * decimation)
    transitions = [r.transition for r in acting if r.transition is not None]
    assert [t.step for t in transitions] == [0, 1, 2, 3]
    assert all(t.policy_version == 3 for t in transitions)
    assert [t.truncated for t in transitions] == [False, False, False, True]
    np.testing.assert_allclose(transitions[0].action, 0.1)
    assert core.phase == "holding" and acting[-1].source == "hold"
    core.request(ActingRequest(None, version=4, acting_steps=2, explore_uniform=True))
    again = [r.transition for r in run_ticks(core, sim, 4 * decimation) if r.transition]
    assert [(t.episode, t.step, t.policy_version) for t in again] == [(1, 0, 4), (1, 1, 4)]


def test_a_fall_terminates_and_waits_for_the_reset(sim: StochLiteSimulation) -> None:
    core = GaitControllerCore(sim.params)
    run_ticks(core, sim, 2 * sim.params.decimation)
    q, qd, effort = sim.joint_state()
    for _ in range(sim.params.decimation * 2):
        falling = core.tick(q, qd, effort, 1.0, 0.0, np.zeros(3))  # rolled beyond max_tilt
        if falling.transition is not None:
            break
    assert falling.transition is not None and falling.transition.terminated
    assert falling.needs_reset and core.phase == "resetting"
    held = core.tick(q, qd, effort, 0.0, 0.0, np.zeros(3))
    assert held.source == "hold" and not held.needs_reset
    core.reset_done()
    resumed = run_ticks(core, sim, 3 * sim.params.decimation)
    later = [r.transition for r in resumed if r.transition is not None]
    assert later and later[0].episode == 1 and later[0].step == 0


def test_bad_config_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="protocol"):
        GaitConfig(protocol="sometimes")
