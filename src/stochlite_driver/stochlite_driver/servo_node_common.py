"""What servo_driver_node and stochlite_sim_node share: the safety and loop parameters, the
:class:`servo_safety.ServoSafety` built from them, and the joint-target and e-stop callbacks.

The simulation stands in for the driver with the same topics and safety semantics, so these
pieces are one piece of code, not two that could drift apart.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from mdemorl_core.envs.stochlite_gait import TASK_PARAMS, StochLiteParams
from mdemorl_core.limits import Limits
from mdemorl_ros.node_parameters import MIDDLEWARE_PRIORITY, PRIORITY, RATE_HZ, TIMEOUT_S, Rule
from mdemorl_ros.ros_common import EXECUTOR_STRATEGIES, STATE_QOS
from stochlite_driver.robot import JOINT_NAMES, joint_limits
from stochlite_driver.ros_io import (
    JOINT_TARGETS_TOPIC,
    POSITION_COMMANDS_TOPIC,
    BadTargets,
    targets_from_array,
    targets_from_trajectory,
)
from stochlite_driver.servo_safety import (
    SAFETY_DEFAULTS,
    SAFETY_KEYS,
    ServoSafety,
    ServoSafetyConfig,
)

SERVO_NODE_DEFAULTS: dict[str, object] = {
    **SAFETY_DEFAULTS,
    "task": "StochLite-v0",  # StochLite-v0 | StochLite-v1: the robot's parameters
    "diagnostics_rate": 1.0,
    "executor_strategy": "thread",  # inline: a tick that never sleeps never runs a callback
    "realtime_priority": 0,
    "middleware_priority": -1,
    "statistics_file": "",
}
"""Parameters both nodes declare after their own: safety, diagnostics and loop thread."""

SERVO_NODE_RULES: dict[str, Rule] = {
    "max_target_rate": Limits(0.0, 1000.0, low_open=True),
    "command_timeout": TIMEOUT_S,
    "free_timeout": Limits(0.0, 3600.0, low_open=True),
    "max_command_age": TIMEOUT_S,
    "max_future_skew": Limits(0.0, 10.0),
    "temperature_limit": Limits(0.0, 150.0, low_open=True),
    "current_limit": Limits(0.0, 100.0, low_open=True),
    "current_limit_duration": Limits(0.0, 60.0),
    "tilt_limit": Limits(0.0, math.pi, low_open=True),
    "max_imu_age": TIMEOUT_S,
    "attitude_timeout": TIMEOUT_S,
    "task": tuple(TASK_PARAMS),
    "diagnostics_rate": RATE_HZ,
    "executor_strategy": EXECUTOR_STRATEGIES,
    "realtime_priority": PRIORITY,
    "middleware_priority": MIDDLEWARE_PRIORITY,
}
"""The value rules of SERVO_NODE_DEFAULTS (node_parameters), enforced by ros_common.declare."""


def make_servo_safety(settings: Mapping[str, Any], params: StochLiteParams) -> ServoSafety:
    """The safety layer over the robot's joint limits, configured by the ``SAFETY_KEYS``."""
    lower, upper = joint_limits(params)
    config = ServoSafetyConfig(
        JOINT_NAMES, lower, upper, **{key: settings[key] for key in SAFETY_KEYS}
    )
    return ServoSafety(config, time.monotonic)


class ServoTargetsNode(Node):
    """A node whose ``safety`` takes the joint targets and the ``~/estop`` service.

    Subclasses set ``safety``, ``lock`` and ``counters`` (with ``rejected_trajectory``) and then
    call :meth:`serve_targets`. ``log_events``: rejected trajectories and e-stop changes are
    logged (the driver) or only counted (the simulation).
    """

    log_events = False
    safety: ServoSafety
    lock: threading.Lock
    counters: dict[str, int]

    def serve_targets(self) -> None:
        self.create_subscription(
            JointTrajectory, JOINT_TARGETS_TOPIC, self.on_trajectory, STATE_QOS
        )
        self.create_subscription(
            Float64MultiArray, POSITION_COMMANDS_TOPIC, self.on_array, STATE_QOS
        )

    def serve_estop(self) -> None:
        self.create_service(SetBool, "~/estop", self.on_estop)

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            names, positions, stamp = targets_from_trajectory(msg)
        except BadTargets as error:
            self.counters["rejected_trajectory"] += 1
            if self.log_events:
                self.get_logger().warning(str(error), throttle_duration_sec=1.0)
            return
        with self.lock:
            self.safety.submit(names, positions, self.now_s() - stamp)

    def on_array(self, msg: Float64MultiArray) -> None:
        names, positions = targets_from_array(msg)
        with self.lock:
            self.safety.submit(names, positions, 0.0)

    def on_estop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self.lock:
            if request.data:
                self.safety.latch_estop("service")
                self.safety.take_new_latch()  # the service reports its own latch (below)
            else:
                self.safety.release_estop()
        response.success = True
        response.message = "e-stop latched" if request.data else "e-stop released"
        if self.log_events:
            self.get_logger().warning(response.message)
        return response
