"""motor_driver_node in-process: a motor that stops answering zeroes every torque and latches a
fault; torque returns only after the e-stop release."""

import os
import tempfile
import time
import uuid

import numpy as np
import pytest
import rclpy
from std_srvs.srv import SetBool

from leg2r_driver.motor_driver_node import MotorDriverNode
from mdemorl_msgs.msg import EffortCommand
from mdemorl_ros.ros_testing import pick_domain_id

pytestmark = pytest.mark.ros


def send(node: MotorDriverNode, efforts: list[float], seconds: float) -> None:
    """Feed commands straight into the node's callback about every 2 ms."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msg = EffortCommand(name=["hip", "knee"], effort=efforts)
        msg.header.stamp = node.get_clock().now().to_msg()
        node.on_command(msg)
        time.sleep(0.002)


def test_silent_motor_zeroes_all_torques_and_latches_until_released() -> None:
    os.environ["ROS_LOG_DIR"] = tempfile.mkdtemp(prefix="leg2r_fault_log_")
    args = ["--ros-args"]
    for parameter in (
        "can_interface:=virtual",
        f"can_channel:=fault-{uuid.uuid4().hex[:8]}",
        "simulate_motors:=true",
        "position_lower:=[-100.0, -100.0]",
        "position_upper:=[100.0, 100.0]",
        "command_timeout:=0.05",
        "max_command_age:=0.05",
        "max_missed_replies:=5",
    ):
        args += ["-p", parameter]
    rclpy.init(args=args, domain_id=pick_domain_id(salt=89))
    node = MotorDriverNode()
    try:
        firmware = node.firmware
        assert firmware is not None
        send(node, [0.5, 0.5], 0.3)
        assert firmware.joint(1).applied_torque == pytest.approx(0.5, abs=0.01)
        firmware.silent_ids.add(2)
        send(node, [0.5, 0.5], 0.3)
        assert node.motor_fault()
        assert node.fault_ticks > 0
        assert abs(firmware.joint(1).applied_torque) < 0.01  # the healthy motor gets no torque
        firmware.silent_ids.clear()
        send(node, [0.5, 0.5], 0.3)
        assert not node.motor_fault()  # it answers again, but the fault stays latched
        assert node.fault_latched and node.fault_latches == 1
        assert abs(firmware.joint(1).applied_torque) < 0.01
        assert abs(firmware.joint(2).applied_torque) < 0.01
        node.on_estop(SetBool.Request(data=False), SetBool.Response())
        send(node, [0.5, 0.5], 0.3)
        assert not node.fault_latched
        np.testing.assert_allclose(
            [firmware.joint(1).applied_torque, firmware.joint(2).applied_torque], 0.5, atol=0.01
        )
    finally:
        node.stop()
        node.destroy_node()
        rclpy.try_shutdown()
