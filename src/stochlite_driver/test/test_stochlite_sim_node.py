"""stochlite_sim_node in its own process: same topics as the driver, targets move the joints,
the attitude guard latches the e-stop from the simulated IMU, SIGTERM exits 0."""

import time
from collections.abc import Iterator

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Imu, JointState
from trajectory_msgs.msg import JointTrajectory

from mdemorl_ros.ros_common import MONITOR_QOS, STATE_QOS
from mdemorl_ros.ros_testing import RosHarness
from stochlite_driver.robot import JOINT_NAMES
from stochlite_driver.ros_io import trajectory_message

pytestmark = pytest.mark.ros


@pytest.fixture
def rig() -> Iterator[tuple[RosHarness, object]]:
    harness = RosHarness(salt=21)
    try:
        yield harness, harness.node("sim_probe")
    finally:
        harness.close()


def test_sim_topics_targets_and_attitude_guard(rig: tuple[RosHarness, object]) -> None:
    harness, node = rig
    states: list[JointState] = []
    imus: list[Imu] = []
    poses: list[PoseStamped] = []
    diagnostics: list[DiagnosticArray] = []
    node.create_subscription(JointState, "/joint_states", states.append, STATE_QOS)  # type: ignore[attr-defined]
    node.create_subscription(Imu, "/imu/data", imus.append, STATE_QOS)  # type: ignore[attr-defined]
    node.create_subscription(PoseStamped, "/sim/torso_pose", poses.append, MONITOR_QOS)  # type: ignore[attr-defined]
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, MONITOR_QOS)  # type: ignore[attr-defined]
    publisher = node.create_publisher(JointTrajectory, "/joint_targets", STATE_QOS)  # type: ignore[attr-defined]
    process = harness.start(
        "stochlite_driver.stochlite_sim_node",
        {
            "tilt_limit": 0.08,
            "command_timeout": 0.5,
            "max_command_age": 0.5,
            "diagnostics_rate": 4.0,
        },
    )
    # The torso pose comes on its own (monitor) topic: wait for it too before reading it.
    assert harness.spin_until(
        lambda: len(states) > 10 and len(imus) > 2 and len(poses) > 0, 40.0
    ), harness.output(process)
    assert list(states[-1].name) == list(JOINT_NAMES)
    standing = poses[-1].pose.position.z
    assert standing > 0.1  # held at the start pose, standing
    start = np.array(states[-1].position)

    def send(goal: np.ndarray, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            publisher.publish(trajectory_message(goal, node.get_clock().now().to_msg()))  # type: ignore[attr-defined]
            harness.executor.spin_once(timeout_sec=0.005)

    tilt = start.copy()
    tilt[[0, 6]] += 0.25  # left legs abduct, right legs stay: the torso rolls
    tilt[[3, 9]] += 0.25
    send(tilt, 3.0)
    harness.spin_until(
        lambda: any("attitude" in s.message for d in diagnostics for s in d.status), 5.0
    )
    messages = [s.message for d in diagnostics for s in d.status]
    assert any("attitude" in m for m in messages), messages[-4:]
    assert harness.terminate(process) == 0
