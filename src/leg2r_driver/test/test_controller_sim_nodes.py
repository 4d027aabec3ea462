"""torque_controller_node + sim_robot_node in two processes (a ~3 s run, no timing assertions).

Checks over ROS: the controller's transitions carry the Gymnasium task's reward for the measured
states, the actor received on /mdemorl/policy is the one acting (a corrupted update is rejected),
tracking and IMU data flow, the sim's e-stop latches, and killing the controller makes the sim's
watchdog zero the applied torque.
"""

import signal
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Imu, JointState
from std_srvs.srv import SetBool

from mdemorl_core.agents.sac import TanhGaussianActor
from mdemorl_core.envs.leg2r_task import (
    ACTION_DIM,
    OBSERVATION_DIM,
    Leg2RParams,
    step_reward,
)
from mdemorl_core.policy_io import serialize_actor, sha256_hex
from mdemorl_msgs.msg import PolicyUpdate, TrackingState, Transition
from mdemorl_ros.ros_common import MONITOR_QOS, POLICY_QOS, STATE_QOS, TRANSITION_QOS
from mdemorl_ros.ros_testing import RosHarness

pytestmark = pytest.mark.ros

PARAMS = Leg2RParams()


def joint_state_from_observation(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = np.arctan2([obs[1], obs[3]], [obs[0], obs[2]])
    qd = np.asarray(obs[4:6], dtype=np.float64) / PARAMS.joint_velocity_scale
    return q, qd


def policy_message(actor: TanhGaussianActor, version: int) -> PolicyUpdate:
    blob = serialize_actor(actor, algorithm="sac", version=version)
    return PolicyUpdate(
        version=version,
        algorithm="sac",
        observation_dim=OBSERVATION_DIM,
        action_dim=ACTION_DIM,
        weights=list(blob),
        checksum=sha256_hex(blob),
    )


@pytest.fixture(scope="module")
def harness() -> Iterator[RosHarness]:
    harness = RosHarness(salt=47)
    yield harness
    harness.close()


def test_controller_and_sim_robot(harness: RosHarness) -> None:
    torch.manual_seed(0)
    actor = TanhGaussianActor(OBSERVATION_DIM, ACTION_DIM, hidden_size=32).eval()
    probe = harness.node("loop_probe")
    transitions: list[Transition] = []
    tracking: list[TrackingState] = []
    imu: list[Imu] = []
    states: list[JointState] = []
    diagnostics: list[DiagnosticArray] = []
    probe.create_subscription(Transition, "/mdemorl/transition", transitions.append, TRANSITION_QOS)
    probe.create_subscription(TrackingState, "/mdemorl/tracking", tracking.append, MONITOR_QOS)
    probe.create_subscription(Imu, "/imu/data", imu.append, STATE_QOS)
    probe.create_subscription(JointState, "/joint_states", states.append, STATE_QOS)
    probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, MONITOR_QOS)
    policy_pub = probe.create_publisher(PolicyUpdate, "/mdemorl/policy", POLICY_QOS)
    policy_pub.publish(policy_message(actor, version=7))  # before the controller exists

    sim = harness.start("leg2r_driver.sim_robot_node", {"diagnostics_rate": 4.0})
    controller = harness.start(
        "leg2r_driver.torque_controller_node", {"diagnostics_rate": 4.0, "episode_steps": 100}
    )

    def acted() -> list[Transition]:
        return [t for t in transitions if np.any(np.asarray(t.action) != 0.0)]

    # Zero-action steps run until the controller has imported torch and loaded the actor.
    assert harness.spin_until(lambda: len(acted()) >= 100, 60.0), harness.output(
        controller
    ) + harness.output(sim)
    assert "policy version 7 (sac) loaded" in harness.output(controller)

    def crossed_boundary() -> bool:
        """An episode end (episode_steps=100) and the next episode's start were both received
        (under load the subscription may match only after the first episodes went by)."""
        episodes = [t.episode for t in transitions]
        return any(t.truncated for t in transitions) and max(episodes) > min(episodes)

    assert harness.spin_until(crossed_boundary, 60.0)

    bad = policy_message(actor, version=8)
    bad.checksum = "0" * 64
    policy_pub.publish(bad)
    harness.spin_for(0.5)

    for t in transitions:
        q, qd = joint_state_from_observation(np.asarray(t.next_observation))
        expected = step_reward(q, qd, (t.step + 1) * PARAMS.policy_dt, PARAMS)
        assert t.reward == pytest.approx(expected, abs=1e-4)
        assert not t.terminated
    for t in acted():
        predicted = actor.act_numpy(np.asarray(t.observation, dtype=np.float32))
        np.testing.assert_allclose(t.action, predicted, atol=1e-5)
    episodes = {(t.episode, t.step) for t in transitions}
    assert len(episodes) == len(transitions)  # no duplicated steps
    assert crossed_boundary()

    assert tracking and 0.0 <= tracking[-1].reward <= 1.0
    assert imu and imu[-1].header.frame_id == "imu_link"
    assert imu[-1].linear_acceleration.z == pytest.approx(PARAMS.gravity)

    def controller_value(key: str) -> str | None:
        for array in reversed(diagnostics):
            for status in array.status:
                if status.name == "torque_controller_node":
                    return {kv.key: kv.value for kv in status.values}[key]
        return None

    diagnostics.clear()
    assert harness.spin_until(lambda: controller_value("policies_rejected") is not None, 5.0)
    assert controller_value("policies_rejected") == "1"
    assert controller_value("policy_version") == "7"

    estop = probe.create_client(SetBool, "/sim_robot_node/estop")
    assert harness.call(estop, SetBool.Request(data=True)).success
    harness.spin_for(0.2)
    states.clear()
    # Wait for messages rather than a fixed 0.3 s: under load none may arrive that fast.
    assert harness.spin_until(lambda: len(states) >= 5, 10.0)
    assert all(np.all(np.asarray(s.effort) == 0.0) for s in states)
    assert harness.call(estop, SetBool.Request(data=False)).success
    assert harness.spin_until(lambda: np.any(np.asarray(states[-1].effort) != 0.0), 5.0)

    controller.send_signal(signal.SIGKILL)
    controller.wait()
    harness.spin_for(0.2)
    states.clear()
    assert harness.spin_until(lambda: len(states) >= 5, 10.0)
    assert all(np.all(np.asarray(s.effort) == 0.0) for s in states)
    assert harness.terminate(sim) == 0
