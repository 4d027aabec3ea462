"""imu_node in its own process, reading a simulated BNO055 on a pseudo-terminal."""

from collections.abc import Iterator

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Imu

from leg2r_driver.imu_node import diagonal_covariance
from mdemorl_ros.ros_common import MONITOR_QOS, STATE_QOS
from mdemorl_ros.ros_testing import RosHarness

pytestmark = pytest.mark.ros


def test_diagonal_covariance() -> None:
    assert diagonal_covariance(-1.0)[0] == -1.0
    np.testing.assert_allclose(np.reshape(diagonal_covariance(0.1), (3, 3)), np.eye(3) * 0.01)


@pytest.fixture
def harness() -> Iterator[RosHarness]:
    harness = RosHarness(salt=23)
    yield harness
    harness.close()


def test_imu_node_publishes_rep145_imu_and_diagnostics(harness: RosHarness) -> None:
    probe = harness.node("imu_probe")
    samples: list[Imu] = []
    diagnostics: list[DiagnosticArray] = []
    probe.create_subscription(Imu, "/imu/data", samples.append, STATE_QOS)
    probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, MONITOR_QOS)
    node = harness.start(
        "leg2r_driver.imu_node",
        {"port": "sim", "linear_acceleration_stddev": -1.0, "diagnostics_rate": 5.0},
    )
    assert harness.spin_until(lambda: len(samples) > 5 and diagnostics, 20.0), harness.output(node)
    msg = samples[-1]
    assert msg.header.frame_id == "imu_link"
    q = [msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w]
    np.testing.assert_allclose(q, [0, 0, 0, 1], atol=1e-4)
    assert msg.linear_acceleration.z == pytest.approx(9.81, abs=0.01)
    assert msg.orientation_covariance[0] == pytest.approx(0.035**2)
    assert msg.linear_acceleration_covariance[0] == -1.0
    values = {kv.key: kv.value for kv in diagnostics[-1].status[0].values}
    assert values["calibration_system"] == "3"
    assert values["sys_status"] == "5"
    assert harness.terminate(node) == 0
