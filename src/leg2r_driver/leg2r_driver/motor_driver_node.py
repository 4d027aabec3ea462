"""motor_driver_node: N MIT-protocol motors over python-can, behind the safety gate.

Thin ROS wiring around :mod:`motor_bus` (CAN exchange) and :mod:`safety` (validation, clamp, soft
limits, watchdog, e-stop). The control loop runs in its own thread on absolute deadlines
(:mod:`loop_timing`); the executor thread only moves messages in and out.

Each tick: safety output from the latest measurement -> one command frame per motor -> replies ->
``/joint_states`` (position, velocity, and effort = the torque the motors report applying, so a
subscriber sees the applied torque drop to zero when the watchdog trips).

A motor that stays silent for more than ``max_missed_replies`` ticks (or whose commands cannot be
sent: bus off, adaptor gone) zeroes every torque; silent for ``fault_latch_timeout`` it latches
the e-stop (a fault, like moteus' after its watchdog): torque stays zero after the bus recovers
until ``~/estop`` is released (``data: false``); /diagnostics reports ERROR meanwhile.

With ``can_interface: virtual`` and ``simulate_motors: true`` the node runs the simulated firmware
(:mod:`simulated_motor`) in-process on the same virtual channel, for tests without hardware.
"""

from __future__ import annotations

import threading
import time

import can
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from leg2r_driver.mit_protocol import MOTOR_MODELS, MotorRanges
from leg2r_driver.motor_bus import JointMeasurement, MotorBus, MotorSpec
from leg2r_driver.safety import SAFETY_GATE_RULES, Mode, SafetyGate, safety_config_from_settings
from leg2r_driver.simulated_motor import SimulatedJoint, SimulatedMotorFirmware
from mdemorl_core.limits import Limits
from mdemorl_msgs.msg import EffortCommand
from mdemorl_ros.node_parameters import (
    MIDDLEWARE_PRIORITY,
    PRIORITY,
    RATE_HZ,
    REQUIRED,
    Rule,
)
from mdemorl_ros.node_plumbing import (
    enter_loop_thread,
    run_loop_node,
    start_loop_thread,
    stop_loop_thread,
)
from mdemorl_ros.ros_common import (
    DIAGNOSTICS_TOPIC,
    EFFORT_COMMAND_TOPIC,
    EXECUTOR_STRATEGIES,
    JOINT_STATES_TOPIC,
    MONITOR_QOS,
    STATE_QOS,
    declare,
    diagnostic_status,
    make_control_loop,
    stamp_to_nanoseconds,
)

ESTOP_ACTIONS = ("zero_torque", "exit_motor_mode")
# Bus counters whose growth makes the bus status WARN (garbage is counted, not latched).
BUS_PROBLEMS = ("bus_errors", "malformed_frames", "unknown_replies", "error_frames")

DEFAULTS: dict[str, object] = {
    "joint_names": ["hip", "knee"],
    "can_ids": [1, 2],
    "motor_models": ["AK80-6", "AK80-6"],
    "directions": [1.0, 1.0],
    "can_interface": "socketcan",
    "can_channel": "can0",
    "simulate_motors": False,
    "control_rate": 500.0,
    "reply_timeout": 0.0008,
    "torque_limits": [3.0, 3.0],
    "position_lower": [-1.57, -2.6],
    "position_upper": [1.57, -0.2],
    "soft_limit_margin": 0.1,
    "soft_limit_stiffness": 20.0,
    "soft_limit_damping": 0.5,
    "command_timeout": 0.010,
    "max_command_age": 0.010,
    "watchdog_mode": "zero",
    "watchdog_damping": 0.0,
    "estop_action": "zero_torque",
    "max_missed_replies": 5,  # ticks a motor may stay silent before all torques are zeroed
    "fault_latch_timeout": 0.1,  # s of silence after which the fault latches the e-stop
    "diagnostics_rate": 1.0,
    "executor_strategy": "inline",  # inline: the loop thread spins | thread: main thread spins
    "realtime_priority": 0,  # SCHED_FIFO priority of the loop thread (1..99), 0 = normal
    "middleware_priority": -1,  # SCHED_FIFO of the dds.* threads; -1: realtime_priority - 1
}
PARAMETER_RULES: dict[str, Rule] = {
    "joint_names": REQUIRED,
    "can_ids": Limits(1, 0x7FF),
    "motor_models": tuple(MOTOR_MODELS),
    "directions": Limits(-1.0, 1.0),
    "can_interface": REQUIRED,
    "can_channel": REQUIRED,
    "control_rate": RATE_HZ,
    "reply_timeout": Limits(0.0, 0.1, low_open=True),
    "torque_limits": Limits(0.0, 100.0),
    "position_lower": Limits(-1000.0, 1000.0),
    "position_upper": Limits(-1000.0, 1000.0),
    **SAFETY_GATE_RULES,
    "estop_action": ESTOP_ACTIONS,
    "max_missed_replies": Limits(0, 100_000),
    "fault_latch_timeout": Limits(0.0, 60.0, low_open=True),
    "diagnostics_rate": RATE_HZ,
    "executor_strategy": EXECUTOR_STRATEGIES,
    "realtime_priority": PRIORITY,
    "middleware_priority": MIDDLEWARE_PRIORITY,
}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


class MotorDriverNode(Node):
    """Publishes /joint_states, obeys /effort_command, serves ~/estop, reports /diagnostics."""

    def __init__(self) -> None:
        super().__init__("motor_driver_node")
        self.settings = declare(self, DEFAULTS, PARAMETER_RULES)
        s = self.settings
        if s["estop_action"] not in ESTOP_ACTIONS:
            raise ValueError(
                f"estop_action must be one of {ESTOP_ACTIONS}, got {s['estop_action']}"
            )
        if not s["fault_latch_timeout"] > 0.0:
            raise ValueError(f"fault_latch_timeout must be > 0, got {s['fault_latch_timeout']}")
        names = tuple(s["joint_names"])
        n = len(names)
        for key in ("can_ids", "motor_models", "directions"):
            if len(s[key]) != n:
                raise ValueError(f"parameter {key} has {len(s[key])} entries, expected {n}")
        unknown = set(s["motor_models"]) - set(MOTOR_MODELS)
        if unknown:
            raise ValueError(f"unknown motor_models {sorted(unknown)}; known: {list(MOTOR_MODELS)}")
        ranges: list[MotorRanges] = [MOTOR_MODELS[m] for m in s["motor_models"]]
        motors = [
            MotorSpec(name, int(cid), r, float(d))
            for name, cid, r, d in zip(names, s["can_ids"], ranges, s["directions"], strict=True)
        ]
        self.gate = SafetyGate(
            safety_config_from_settings(
                s, names, s["torque_limits"], s["position_lower"], s["position_upper"]
            ),
            clock=time.monotonic,
        )
        self.firmware: SimulatedMotorFirmware | None = None
        if s["simulate_motors"]:
            if s["can_interface"] != "virtual":
                raise ValueError("simulate_motors needs can_interface: virtual")
            joints = [SimulatedJoint(can_id=m.can_id, ranges=m.ranges) for m in motors]
            self.firmware = SimulatedMotorFirmware.on_virtual_channel(
                s["can_channel"], joints, realtime_priority=s["realtime_priority"]
            )
        bus = can.Bus(interface=s["can_interface"], channel=s["can_channel"])
        self.bus = MotorBus(bus, motors, reply_timeout=s["reply_timeout"])
        self.lock = threading.Lock()
        self.loop = make_control_loop(self, 1.0 / s["control_rate"], s["executor_strategy"])
        self.measurement = self.bus.enter_motor_mode()
        self.motor_mode = True
        self.applied = np.zeros(n)
        self.mode = Mode.WAITING
        self.fault_ticks = 0
        self.fault_latched = False  # a motor fault latches the e-stop until ~/estop false
        self.silent_since: float | None = None  # monotonic time the current motor fault began
        self.fault_latches = 0
        self.reported_bus_errors = 0

        self.joint_pub = self.create_publisher(JointState, JOINT_STATES_TOPIC, STATE_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, MONITOR_QOS)
        self.create_subscription(EffortCommand, EFFORT_COMMAND_TOPIC, self.on_command, STATE_QOS)
        self.create_service(SetBool, "~/estop", self.on_estop)
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_diagnostics)
        start_loop_thread(self, self.control_loop, "motor-loop")
        self.get_logger().info(
            f"driving {list(names)} on {s['can_interface']}:{s['can_channel']} "
            f"at {s['control_rate']} Hz (simulated motors: {s['simulate_motors']})"
        )

    def on_command(self, msg: EffortCommand) -> None:
        stamp_ns = stamp_to_nanoseconds(msg.header.stamp)
        age = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-9
        order = (stamp_ns, int(msg.sequence))
        with self.lock:
            reason = self.gate.submit(list(msg.name), list(msg.effort), stamp_age=age, order=order)
        if reason is not None:
            self.get_logger().debug(f"command {msg.sequence} rejected: {reason.value}")

    def on_estop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        with self.lock:
            self.gate.set_estop(bool(request.data))
            if not request.data:
                self.fault_latched = False
        response.success = True
        response.message = "e-stop latched" if request.data else "e-stop released"
        self.get_logger().warning(response.message)
        return response

    def control_loop(self) -> None:
        s = self.settings
        enter_loop_thread(self, self.loop, s)
        while self.running:
            self.loop.wait()
            self.tick()

    def tick(self) -> None:
        with self.lock:
            output = self.gate.output(self.measurement.position, self.measurement.velocity)
        self.mode = output.mode
        exit_on_estop = self.settings["estop_action"] == "exit_motor_mode"
        if output.mode is Mode.ESTOP and exit_on_estop:
            if self.motor_mode:
                self.bus.exit_motor_mode()
                self.motor_mode = False
            return
        if not self.motor_mode:
            self.measurement = self.bus.enter_motor_mode()
            self.motor_mode = True
        torque, damping = output.torque, output.damping
        if self.motor_fault():
            # A silent motor makes the measured state unreliable: nobody gets torque.
            self.fault_ticks += 1
            torque, damping = np.zeros_like(torque), np.zeros_like(damping)
        measurement = self.bus.exchange(torque, damping)
        now = time.monotonic()
        if not self.motor_fault():
            self.silent_since = None
        elif self.silent_since is None:
            self.silent_since = now
        latch_due = self.silent_since is not None and (
            now - self.silent_since >= self.settings["fault_latch_timeout"]
        )
        if latch_due and not self.fault_latched:
            # Latched (moteus' fault mode): a motor that answers again gets no torque until an
            # explicit release; a release while it is still silent latches again.
            with self.lock:
                self.fault_latched = True
                self.gate.set_estop(True)
            self.fault_latches += 1
            self.get_logger().error("motor fault latched: zero torque until ~/estop false")
        self.measurement = measurement
        self.applied = measurement.torque
        self.publish_joint_state(measurement)

    def motor_fault(self) -> bool:
        """True while some motor has not answered for more than ``max_missed_replies`` ticks."""
        return bool(np.any(self.bus.consecutive_misses > self.settings["max_missed_replies"]))

    def publish_joint_state(self, measurement: JointMeasurement) -> None:
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = list(self.gate.config.joint_names)
        msg.position = measurement.position.tolist()
        msg.velocity = measurement.velocity.tolist()
        msg.effort = measurement.torque.tolist()
        self.joint_pub.publish(msg)

    def publish_diagnostics(self) -> None:
        with self.lock:
            safety_counts = dict(self.gate.counters)
            estop = self.gate.estop_active
            trip_delay_ms = self.gate.last_trip_delay * 1e3
        stats = self.loop.statistics.summary()
        rejected = sum(v for k, v in safety_counts.items() if k.startswith("rejected"))
        bus_counts = dict(self.bus.counters)
        fault = self.motor_fault() or self.fault_latched
        problems = sum(bus_counts.get(key, 0) for key in BUS_PROBLEMS)
        new_bus_errors = problems > self.reported_bus_errors
        self.reported_bus_errors = problems
        level = DiagnosticStatus.OK
        message = f"mode {self.mode.value}"
        if estop:
            level, message = DiagnosticStatus.WARN, message + ", e-stop latched"
        if self.mode is Mode.WATCHDOG:
            level, message = DiagnosticStatus.WARN, message + ", no valid commands"
        if fault:
            level, message = DiagnosticStatus.ERROR, message + ", motor fault latched: zero torque"
        safety = diagnostic_status(
            "motor_driver_node: safety",
            "leg2r",
            level,
            message,
            {
                "mode": self.mode.value,
                "estop": estop,
                "motor_fault": fault,
                "fault_latches": self.fault_latches,
                "rejected_total": rejected,
                **safety_counts,
                "applied_torque": self.applied.tolist(),
                "watchdog_trip_delay_ms": trip_delay_ms,
            },
        )
        bus_level = DiagnosticStatus.OK
        if new_bus_errors or np.any(self.bus.consecutive_misses > 0):
            bus_level = DiagnosticStatus.WARN
        if fault:
            bus_level = DiagnosticStatus.ERROR
        bus = diagnostic_status(
            "motor_driver_node: can bus",
            f"{self.settings['can_interface']}:{self.settings['can_channel']}",
            bus_level,
            self.bus.last_error or ("motor silent" if fault else "ok"),
            {
                **bus_counts,
                "consecutive_misses": self.bus.consecutive_misses.tolist(),
                "fault_ticks": self.fault_ticks,
                "motor_mode": self.motor_mode,
            },
        )
        loop = diagnostic_status(
            "motor_driver_node: control loop",
            "leg2r",
            DiagnosticStatus.WARN if stats.missed else DiagnosticStatus.OK,
            f"{stats.rate_hz:.1f} Hz",
            {**stats.as_dict(), "reanchors": self.loop.reanchors},
        )
        array = DiagnosticArray(status=[safety, bus, loop])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def stop(self) -> None:
        """Stop the loop thread, take the motors out of motor mode, release the bus."""
        stop_loop_thread(self)
        self.bus.exit_motor_mode()
        self.bus.shutdown()
        if self.firmware is not None:
            ids = [m.can_id for m in self.bus.motors]
            modes = [self.firmware.joint(i).motor_mode for i in ids]
            self.get_logger().info(f"simulated motors in motor mode: {modes}")
            self.firmware.close()
        self.get_logger().info("motors out of motor mode, bus closed")


def main(args: list[str] | None = None) -> None:
    run_loop_node(MotorDriverNode, args)


if __name__ == "__main__":
    main()
