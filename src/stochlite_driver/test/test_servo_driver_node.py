"""servo_driver_node in its own process on its in-process simulated B3M bus.

Covers: one-point JointTrajectory and Float64MultiArray targets move the joints; /diagnostics has
a status per servo; a tilted /imu/data latches the e-stop (servos relaxed, targets ignored) until
released; an IMU that stops after it was seen latches it too; both latches are logged; SIGTERM
exits 0.
"""

import math
import time
from collections.abc import Iterator

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from mdemorl_ros.ros_common import MONITOR_QOS, STATE_QOS
from mdemorl_ros.ros_testing import RosHarness
from stochlite_driver.robot import JOINT_NAMES
from stochlite_driver.ros_io import trajectory_message
from stochlite_driver.servo_safety import BLIND_REASON, TILT_REASON

pytestmark = pytest.mark.ros

GOAL = np.array([0.1, 0.4, -0.8] * 4)


class Probe:
    def __init__(self, harness: RosHarness) -> None:
        self.harness = harness
        self.node = harness.node("servo_probe")
        self.states: list[JointState] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(JointState, "/joint_states", self.states.append, STATE_QOS)
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self.diagnostics.append, MONITOR_QOS
        )
        self.trajectory = self.node.create_publisher(JointTrajectory, "/joint_targets", STATE_QOS)
        self.array = self.node.create_publisher(
            Float64MultiArray, "/position_controller/commands", STATE_QOS
        )
        self.imu = self.node.create_publisher(Imu, "/imu/data", STATE_QOS)
        self.estop = self.node.create_client(SetBool, "/servo_driver_node/estop")
        self.level_imu = False  # send_for also publishes a level /imu/data sample each time

    def send_for(self, seconds: float, goal: np.ndarray, as_array: bool = False) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.level_imu:
                level = Imu()
                level.header.stamp = self.node.get_clock().now().to_msg()
                level.orientation.w = 1.0
                self.imu.publish(level)
            if as_array:
                self.array.publish(Float64MultiArray(data=goal.tolist()))
            else:
                stamp = self.node.get_clock().now().to_msg()
                self.trajectory.publish(trajectory_message(goal, stamp))
            self.harness.executor.spin_once(timeout_sec=0.005)

    def send_until(self, goal: np.ndarray, timeout: float, as_array: bool = False) -> None:
        """Send ``goal`` until the joints report it (within 5 mrad) or ``timeout`` s pass."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.send_for(0.1, goal, as_array)
            if self.states and np.allclose(self.position(), goal, atol=5e-3):
                return

    def position(self) -> np.ndarray:
        return np.array(self.states[-1].position)


@pytest.fixture
def rig() -> Iterator[tuple[RosHarness, Probe, object]]:
    harness = RosHarness(salt=12)
    probe = Probe(harness)
    process = harness.start(
        "stochlite_driver.servo_driver_node",
        {
            "simulate_bus": True,
            "diagnostics_rate": 5.0,
            "tilt_limit": 1.0,
            # Generous: the test machine is shared and loaded; the semantics are unchanged.
            "read_timeout": 0.05,
            "command_timeout": 0.5,
            "max_command_age": 0.5,
        },
    )
    try:
        assert harness.spin_until(lambda: len(probe.states) > 5, 30.0), harness.output(process)
        yield harness, probe, process
    finally:
        harness.close()


def test_targets_move_joints_diagnostics_and_attitude_guard(
    rig: tuple[RosHarness, Probe, object],
) -> None:
    harness, probe, process = rig
    assert list(probe.states[-1].name) == list(JOINT_NAMES)
    probe.send_until(GOAL, 15.0)
    np.testing.assert_allclose(probe.position(), GOAL, atol=5e-3)
    probe.send_until(GOAL * 0.5, 15.0, as_array=True)
    np.testing.assert_allclose(probe.position(), GOAL * 0.5, atol=5e-3)

    harness.spin_until(lambda: any(len(d.status) == 14 for d in probe.diagnostics), 5.0)
    names = {s.name for d in probe.diagnostics for s in d.status}
    assert {f"servo_driver_node: {j}" for j in JOINT_NAMES} <= names
    blind = [s for d in probe.diagnostics for s in d.status if s.name.endswith("safety")]
    assert "no IMU" in blind[-1].message and blind[-1].level == b"\x01"  # the guard is blind

    tilted = Imu()
    tilted.header.stamp = probe.node.get_clock().now().to_msg()
    tilted.orientation.x, tilted.orientation.w = math.sin(0.6), math.cos(0.6)  # roll 1.2 rad
    for _ in range(5):
        probe.imu.publish(tilted)
        harness.spin_for(0.02)
    probe.send_for(0.5, GOAL)  # ignored: the e-stop is latched, the servos are limp
    np.testing.assert_allclose(probe.position(), GOAL * 0.5, atol=5e-3)
    probe.diagnostics.clear()
    harness.spin_until(lambda: len(probe.diagnostics) > 0, 5.0)
    safety = next(s for s in probe.diagnostics[-1].status if s.name.endswith("safety"))
    assert "attitude" in safety.message and safety.level == b"\x02"

    # Once seen, an IMU gone for attitude_timeout latches again: a release needs it back.
    probe.level_imu = True
    probe.send_for(0.2, GOAL)
    assert harness.call(probe.estop, SetBool.Request(data=False)).success
    probe.send_until(GOAL, 15.0)
    np.testing.assert_allclose(probe.position(), GOAL, atol=5e-3)

    probe.level_imu = False
    harness.spin_for(1.0)
    probe.diagnostics.clear()
    harness.spin_until(lambda: len(probe.diagnostics) > 0, 5.0)
    safety = next(s for s in probe.diagnostics[-1].status if s.name.endswith("safety"))
    assert BLIND_REASON in safety.message and safety.level == b"\x02"
    assert harness.terminate(process) == 0  # type: ignore[arg-type]
    # Both latches are in the log: the IMU callback's (tilt) and the tick's (blind guard).
    log = harness.output(process)  # type: ignore[arg-type]
    assert f"e-stop latched: {TILT_REASON}" in log, log
    assert f"e-stop latched: {BLIND_REASON}" in log, log
