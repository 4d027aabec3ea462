"""sim_robot_node: the Leg2R MuJoCo leg (Leg2RPhysics) stepped in real time, standing in for
the motor driver and the IMU with the very same topics, QoS and safety semantics.

Each tick (period ``1 / (control_rate * real_time_factor)`` of wall time, deadline-based): the
safety gate (the driver's own :mod:`safety`, so watchdog, clamp, soft limits, validation and the
e-stop behave as on the robot) turns the latest ``/effort_command`` into a torque, the physics
advances one control tick, and ``/joint_states`` carries position, velocity and the applied
torque as effort. The watchdog, like the stamps, runs on wall time.

``/imu/data``: the leg's base is fixed, so the simulated IMU (frame ``imu_link``) reports identity
orientation, zero angular velocity and the specific force of a body at rest, +g along z; the
covariances are those of the real BNO055 (``imu_node`` defaults) so consumers see the same numbers.

Pausing while the controller holds (``pause_after_hold`` >= 0): ``/mdemorl/controller_phase``
says when the torque controller holds its safe pose (episodic protocol, between acting phases);
after ``pause_after_hold`` seconds of hold (the PD brings the leg to the pose) the physics stops,
``/joint_states`` repeats the frozen state at ``paused_state_rate`` and the loop idles, leaving
the CPU to the trainer's update; the first non-holding phase resumes the 500 Hz physics.
A real leg cannot pause, so the driver has no such option; in simulation the pause is the
settled hold, without its cost.

Loop timing as in ``torque_controller_node``: ``realtime_priority`` (SCHED_FIFO loop thread),
``middleware_priority`` (the Fast DDS threads, default one below) and a frozen garbage collector;
``statistics_file`` writes the loop statistics (with the longest periods) at shutdown, so the
benchmark can tell a machine-wide stall (both loops at once) from one of the controller's own.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState
from std_srvs.srv import SetBool, Trigger

from leg2r_driver.imu_node import diagonal_covariance
from leg2r_driver.safety import SAFETY_GATE_RULES, Mode, SafetyGate, safety_config_from_settings
from mdemorl_core.envs.leg2r import JOINT_NAMES, Leg2RPhysics
from mdemorl_core.envs.leg2r_task import Leg2RParams
from mdemorl_core.limits import Limits
from mdemorl_msgs.msg import ControllerPhase, EffortCommand
from mdemorl_ros.node_parameters import (
    MIDDLEWARE_PRIORITY,
    PRIORITY,
    RATE_HZ,
    STDDEV,
    Rule,
)
from mdemorl_ros.node_plumbing import (
    enter_loop_thread,
    run_loop_node,
    start_loop_thread,
    stop_loop_thread,
    write_statistics_file,
)
from mdemorl_ros.protocol import PHASE_REJECTIONS
from mdemorl_ros.ros_common import (
    CONTROLLER_PHASE_TOPIC,
    DIAGNOSTICS_TOPIC,
    EFFORT_COMMAND_TOPIC,
    EXECUTOR_STRATEGIES,
    IMU_TOPIC,
    JOINT_STATES_TOPIC,
    MONITOR_QOS,
    PHASE_QOS,
    STATE_QOS,
    controller_phase_rejection,
    declare,
    diagnostic_status,
    make_control_loop,
    stamp_to_nanoseconds,
)

# s; while paused the loop wakes this often to notice the controller's next acting phase.
PAUSED_WAKE_PERIOD = 0.05

DEFAULTS: dict[str, object] = {
    "control_rate": 500.0,
    "real_time_factor": 1.0,
    "initial_pose": [0.0, 0.0],  # rad; only used when use_reference_start is false
    "use_reference_start": True,  # start at the IK of the reference's first point, like the task
    "command_timeout": 0.010,
    "max_command_age": 0.010,
    "watchdog_mode": "zero",
    "watchdog_damping": 0.0,
    "soft_limit_margin": 0.1,
    "soft_limit_stiffness": 20.0,
    "soft_limit_damping": 0.5,
    "publish_imu": True,
    "imu_rate": 100.0,
    "imu_orientation_stddev": 0.035,
    "imu_angular_velocity_stddev": 0.0025,
    "imu_linear_acceleration_stddev": 0.015,
    "diagnostics_rate": 1.0,
    "executor_strategy": "inline",  # inline: the loop thread spins | thread: main thread spins
    "realtime_priority": 0,  # SCHED_FIFO priority of the loop thread (1..99), 0 = normal
    "middleware_priority": -1,  # SCHED_FIFO of the dds.* threads; -1: realtime_priority - 1
    "pause_after_hold": -1.0,  # s of controller hold before the physics pauses; < 0: never
    "paused_state_rate": 2.0,  # Hz of /joint_states while paused (the controller idles)
    "statistics_file": "",  # write the loop statistics as JSON here at shutdown (benchmarks)
}
PARAMETER_RULES: dict[str, Rule] = {
    **SAFETY_GATE_RULES,
    "control_rate": RATE_HZ,
    "real_time_factor": Limits(0.0, 1000.0, low_open=True),
    "initial_pose": Limits(-10.0, 10.0),
    "imu_rate": RATE_HZ,
    "imu_orientation_stddev": STDDEV,
    "imu_angular_velocity_stddev": STDDEV,
    "imu_linear_acceleration_stddev": STDDEV,
    "diagnostics_rate": RATE_HZ,
    "executor_strategy": EXECUTOR_STRATEGIES,
    "realtime_priority": PRIORITY,
    "middleware_priority": MIDDLEWARE_PRIORITY,
    "pause_after_hold": Limits(-1.0, 3600.0),
    "paused_state_rate": RATE_HZ,
}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


class SimRobotNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_robot_node")
        s = declare(self, DEFAULTS, PARAMETER_RULES)
        self.settings = s
        if s["real_time_factor"] <= 0.0:
            raise ValueError(f"real_time_factor must be > 0, got {s['real_time_factor']}")
        self.params = Leg2RParams(control_hz=s["control_rate"])
        self.physics = Leg2RPhysics(self.params)
        self.start_q = self.physics.q if s["use_reference_start"] else np.array(s["initial_pose"])
        self.physics.reset(self.start_q, np.zeros(2))
        p = self.params
        self.gate = SafetyGate(
            safety_config_from_settings(
                s, JOINT_NAMES, p.torque_limit, p.joint_lower, p.joint_upper
            ),
            clock=time.monotonic,
        )
        self.lock = threading.Lock()
        self.mode = Mode.WAITING
        self.imu_every = max(1, round(s["control_rate"] / s["imu_rate"]))
        self.imu_covariances = [
            diagonal_covariance(s[f"imu_{k}_stddev"])
            for k in ("orientation", "angular_velocity", "linear_acceleration")
        ]
        self.loop = make_control_loop(
            self, 1.0 / (s["control_rate"] * s["real_time_factor"]), s["executor_strategy"]
        )
        self.joint_pub = self.create_publisher(JointState, JOINT_STATES_TOPIC, STATE_QOS)
        self.imu_pub = self.create_publisher(Imu, IMU_TOPIC, STATE_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, MONITOR_QOS)
        self.create_subscription(EffortCommand, EFFORT_COMMAND_TOPIC, self.on_command, STATE_QOS)
        self.hold_since: float | None = None  # monotonic time the controller's hold began
        self.phase_counters = dict.fromkeys(PHASE_REJECTIONS, 0)
        self.paused_seconds = 0.0
        if s["pause_after_hold"] >= 0.0:
            self.create_subscription(
                ControllerPhase, CONTROLLER_PHASE_TOPIC, self.on_phase, PHASE_QOS
            )
        self.create_service(SetBool, "~/estop", self.on_estop)
        self.create_service(Trigger, "~/reset", self.on_reset)
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_diagnostics)
        start_loop_thread(self, self.control_loop, "sim-loop")
        self.get_logger().info(
            f"Leg2R simulation at {s['control_rate']} Hz x{s['real_time_factor']} real time"
        )

    def on_command(self, msg: EffortCommand) -> None:
        stamp_ns = stamp_to_nanoseconds(msg.header.stamp)
        age = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-9
        order = (stamp_ns, int(msg.sequence))
        with self.lock:
            self.gate.submit(list(msg.name), list(msg.effort), stamp_age=age, order=order)

    def on_phase(self, msg: ControllerPhase) -> None:
        rejected = controller_phase_rejection(msg)
        if rejected is not None:  # e.g. an unknown phase string must not pause the physics
            self.phase_counters[rejected] += 1
            return
        if msg.phase == "acting":
            self.hold_since = None
        elif self.hold_since is None:
            self.hold_since = time.monotonic()

    def paused(self) -> bool:
        since = self.hold_since
        return since is not None and time.monotonic() - since >= self.settings["pause_after_hold"]

    def on_estop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self.lock:
            self.gate.set_estop(bool(request.data))
        response.success = True
        response.message = "e-stop latched" if request.data else "e-stop released"
        self.get_logger().warning(response.message)
        return response

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self.lock:
            self.physics.reset(self.start_q, np.zeros(2))
        response.success = True
        response.message = f"leg reset to {self.start_q.tolist()}"
        return response

    def control_loop(self) -> None:
        s = self.settings
        enter_loop_thread(self, self.loop, s)
        ticks = 0
        last_paused_state = -math.inf
        while self.running:
            if self.paused():
                now = time.monotonic()
                if now - last_paused_state >= 1.0 / self.settings["paused_state_rate"]:
                    self.publish_state(self.get_clock().now().to_msg())
                    last_paused_state = now
                self.loop.pause(PAUSED_WAKE_PERIOD)
                self.paused_seconds += PAUSED_WAKE_PERIOD
                continue
            self.loop.wait()
            with self.lock:
                q, qd = self.physics.q, self.physics.qd
                output = self.gate.output(q, qd)
                self.physics.step(output.applied_torque(qd))
                q, qd, torque = self.physics.q, self.physics.qd, self.physics.applied_torque
            self.mode = output.mode
            stamp = self.get_clock().now().to_msg()
            self.publish_state(stamp, q, qd, torque)
            if self.settings["publish_imu"] and ticks % self.imu_every == 0:
                self.publish_imu(stamp)
            ticks += 1

    def publish_state(
        self,
        stamp: Time,
        q: np.ndarray | None = None,
        qd: np.ndarray | None = None,
        torque: np.ndarray | None = None,
    ) -> None:
        """``/joint_states`` of the given state, or of the physics' current (frozen) one."""
        if q is None or qd is None or torque is None:
            with self.lock:
                q, qd, torque = self.physics.q, self.physics.qd, self.physics.applied_torque
        state = JointState(name=list(JOINT_NAMES))
        state.header.stamp = stamp
        state.position, state.velocity, state.effort = q.tolist(), qd.tolist(), torque.tolist()
        self.joint_pub.publish(state)

    def publish_imu(self, stamp: Time) -> None:
        msg = Imu()
        msg.header.stamp = stamp
        msg.header.frame_id = "imu_link"
        msg.orientation.w = 1.0
        msg.linear_acceleration.z = self.params.gravity
        msg.orientation_covariance = self.imu_covariances[0]
        msg.angular_velocity_covariance = self.imu_covariances[1]
        msg.linear_acceleration_covariance = self.imu_covariances[2]
        self.imu_pub.publish(msg)

    def publish_diagnostics(self) -> None:
        with self.lock:
            counts = dict(self.gate.counters)
            estop = self.gate.estop_active
        stats = self.loop.statistics.summary()
        level = (
            DiagnosticStatus.WARN if estop or self.mode is Mode.WATCHDOG else DiagnosticStatus.OK
        )
        status = diagnostic_status(
            "sim_robot_node: safety",
            "leg2r_sim",
            level,
            f"mode {self.mode.value}" + (", paused (controller holds)" if self.paused() else ""),
            {
                "mode": self.mode.value,
                "estop": estop,
                "paused": self.paused(),
                "paused_seconds": self.paused_seconds,
                **counts,
                **self.phase_counters,
            },
        )
        loop = diagnostic_status(
            "sim_robot_node: control loop",
            "leg2r_sim",
            DiagnosticStatus.WARN if stats.missed else DiagnosticStatus.OK,
            f"{stats.rate_hz:.1f} Hz",
            {**stats.as_dict(), "reanchors": self.loop.reanchors},
        )
        array = DiagnosticArray(status=[status, loop])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def stop(self) -> None:
        stop_loop_thread(self)
        write_statistics_file(self.settings["statistics_file"], self.loop)


def main(args: list[str] | None = None) -> None:
    run_loop_node(SimRobotNode, args)


if __name__ == "__main__":
    main()
