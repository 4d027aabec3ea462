"""servo_driver_node: the StochLite's 12 Kondo B3M servos on one RS-485 bus, at ``loop_rate``.

All bus work and safety is :class:`servo_driver_core.ServoDriverCore` over
:class:`servo_safety.ServoSafety`; this node only moves messages. The loop runs in its own
thread on absolute deadlines (``mdemorl_ros.loop_timing``). ``executor_strategy`` is
``thread`` by default (the main thread runs the callbacks): a tick is mostly bus I/O, which
releases the GIL, and can take most of the period; with ``inline`` a tick that overruns never
sleeps, and the loop thread, which spins the callbacks while it sleeps, would starve them.

Publishes ``/joint_states`` (12 joints; effort = servo current x ``effort_per_amp``, so in
amperes until that is calibrated against the servo's torque curve) and, at
``diagnostics_rate``, ``/diagnostics``: one status per servo (temperature, current, voltage,
error status, reply failures by kind, bus timeouts) plus the safety layer and the loop.
Subscribes joint targets (``ros_io``: one-point JointTrajectory on ``/joint_targets``,
Float64MultiArray on ``/position_controller/commands``) and ``/imu/data`` for the attitude guard
(corrupted samples rejected and counted as ``imu_rejected_*``; an IMU lost for
``attitude_timeout`` latches the e-stop: :mod:`servo_safety`).
Services: ``~/estop`` (SetBool: true latches, false releases). Shutdown leaves the servos FREE.

``simulate_bus: true`` runs a :class:`b3m_sim.SimulatedB3MBus` in this process and opens its
pseudo-terminal instead of ``port``: the whole driver without hardware (tests, benchmarks).
"""

from __future__ import annotations

import math
import threading

import serial
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import Imu, JointState

from mdemorl_core.envs.stochlite_gait import task_params
from mdemorl_core.limits import Limits
from mdemorl_ros.node_parameters import REQUIRED, Rule
from mdemorl_ros.node_plumbing import (
    enter_loop_thread,
    loop_status,
    publish_diagnostics_array,
    run_loop_node,
    stop_loop_thread,
    write_statistics_file,
)
from mdemorl_ros.ros_common import (
    DIAGNOSTICS_TOPIC,
    IMU_TOPIC,
    JOINT_STATES_TOPIC,
    MONITOR_QOS,
    STATE_QOS,
    declare,
    diagnostic_status,
    make_control_loop,
    stamp_to_seconds,
)
from stochlite_driver.b3m import B3MBus
from stochlite_driver.b3m_sim import SimulatedB3MBus
from stochlite_driver.robot import JOINT_NAMES, NUM_JOINTS, SERVO_IDS
from stochlite_driver.ros_io import joint_state_message
from stochlite_driver.servo_driver_core import ServoDriverCore
from stochlite_driver.servo_node_common import (
    SERVO_NODE_DEFAULTS,
    SERVO_NODE_RULES,
    ServoTargetsNode,
    make_servo_safety,
)
from stochlite_driver.servo_safety import ServoPhase

IMU_STALE_AFTER = 1.0  # s without a valid /imu/data sample before the diagnostics warn

DEFAULTS: dict[str, object] = {
    "port": "/dev/ttyUSB0",
    "baudrate": 1_500_000,
    "read_timeout": 0.003,  # s per reply
    "echo": False,  # the RS-485 adaptor echoes transmitted bytes
    "simulate_bus": False,
    "loop_rate": 200.0,
    "servo_ids": list(SERVO_IDS),
    "directions": [1.0] * NUM_JOINTS,
    "offsets": [0.0] * NUM_JOINTS,  # rad, joint angle at servo position 0
    "effort_per_amp": 1.0,
    "telemetry_per_tick": 1,
    "max_missed_replies": 20,
    **SERVO_NODE_DEFAULTS,
}
PARAMETER_RULES: dict[str, Rule] = {
    "port": REQUIRED,
    "baudrate": Limits(1200, 6_000_000),
    "read_timeout": Limits(0.0, 1.0, low_open=True),
    "loop_rate": Limits(0.0, 2000.0, low_open=True),
    "servo_ids": Limits(0, 254),
    "directions": Limits(-1.0, 1.0),
    "offsets": Limits(-2 * math.pi, 2 * math.pi),
    "effort_per_amp": Limits(-1000.0, 1000.0),
    "telemetry_per_tick": Limits(0, NUM_JOINTS),
    "max_missed_replies": Limits(1, 100_000),
    **SERVO_NODE_RULES,
}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


class ServoDriverNode(ServoTargetsNode):
    log_events = True

    def __init__(self) -> None:
        super().__init__("servo_driver_node")
        s = declare(self, DEFAULTS, PARAMETER_RULES)
        self.settings = s
        self.safety = make_servo_safety(s, task_params(s["task"]))
        self.sim_bus = SimulatedB3MBus(s["servo_ids"]) if s["simulate_bus"] else None
        port_name = self.sim_bus.port_name if self.sim_bus is not None else s["port"]
        self.port = serial.Serial(port_name, s["baudrate"], timeout=s["read_timeout"])
        self.core = ServoDriverCore(
            B3MBus(self.port, echo=s["echo"]),
            self.safety,
            s["servo_ids"],
            s["directions"],
            s["offsets"],
            s["telemetry_per_tick"],
            s["max_missed_replies"],
        )
        self.lock = threading.Lock()
        self.counters = {"rejected_trajectory": 0, "imu_messages": 0}
        self.last_imu = float("nan")
        self.loop = make_control_loop(self, 1.0 / s["loop_rate"], s["executor_strategy"])
        self.joint_pub = self.create_publisher(JointState, JOINT_STATES_TOPIC, STATE_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, MONITOR_QOS)
        self.serve_targets()
        self.create_subscription(Imu, IMU_TOPIC, self.on_imu, STATE_QOS)
        self.serve_estop()
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_diagnostics)
        with self.lock:
            self.core.start()
        self.running = True
        self.thread = threading.Thread(target=self.control_loop, name="servo-loop", daemon=True)
        self.thread.start()
        self.get_logger().info(f"B3M bus {port_name} at {s['baudrate']} baud, {s['loop_rate']} Hz")

    def on_imu(self, msg: Imu) -> None:
        o = msg.orientation
        stamp = stamp_to_seconds(msg.header.stamp)
        self.counters["imu_messages"] += 1
        with self.lock:
            if self.safety.submit_imu((o.x, o.y, o.z, o.w), self.now_s() - stamp) is None:
                self.last_imu = stamp  # the age on /diagnostics is that of the guard's attitude
            latched = self.safety.take_new_latch()
        self._log_latch(latched)

    def _log_latch(self, reason: str) -> None:
        if reason:
            self.get_logger().error(f"e-stop latched: {reason}")

    def control_loop(self) -> None:
        s = self.settings
        enter_loop_thread(self, self.loop, s)
        while self.running:
            self.loop.wait()
            with self.lock:
                state = self.core.tick()
                latched = self.safety.take_new_latch()  # IMU blind, temperature, current, bus
            self._log_latch(latched)
            effort = state.current * s["effort_per_amp"]
            stamp = self.get_clock().now().to_msg()
            self.joint_pub.publish(
                joint_state_message(stamp, state.position, state.velocity, effort)
            )

    def publish_diagnostics(self) -> None:
        with self.lock:
            core, safety = self.core, self.safety
            phase = core.last_output.phase if core.last_output else ServoPhase.WAITING
            statuses = [self._servo_status(i) for i in range(NUM_JOINTS)]
            counters = {**dict(safety.counters), **self.counters}
            reason = safety.estop_reason
        level = DiagnosticStatus.OK
        if phase in (ServoPhase.WATCHDOG_HOLD, ServoPhase.WATCHDOG_FREE):
            level = DiagnosticStatus.WARN
        imu_age = self.now_s() - self.last_imu
        imu_stale = not imu_age <= IMU_STALE_AFTER  # NaN: never received
        if imu_stale:
            level = DiagnosticStatus.WARN
        if reason:
            level = DiagnosticStatus.ERROR
        safety_status = diagnostic_status(
            "servo_driver_node: safety",
            "stochlite",
            level,
            f"phase {phase.value}"
            + (f", e-stop: {reason}" if reason else "")
            + (", no IMU: attitude guard inactive" if imu_stale else ""),
            {"phase": phase.value, "estop_reason": reason, "imu_age_s": imu_age, **counters},
        )
        loop = loop_status("servo_driver_node: servo loop", "stochlite", self.loop)
        publish_diagnostics_array(self, self.diag_pub, [safety_status, loop, *statuses])

    def _servo_status(self, i: int) -> DiagnosticStatus:
        core = self.core
        errors = dict(core.errors[i])
        level = DiagnosticStatus.WARN if core.status[i] or core.missed[i] else DiagnosticStatus.OK
        return diagnostic_status(
            f"servo_driver_node: {JOINT_NAMES[i]}",
            f"b3m_{core.servo_ids[i]}",
            level,
            f"{core.temperature[i]:.1f} degC, {core.current[i]:.2f} A",
            {
                "temperature_c": float(core.temperature[i]),
                "current_a": float(core.current[i]),
                "voltage_v": float(core.voltage[i]),
                "error_status": int(core.status[i]),
                "bus_timeouts": errors.get("B3MTimeout", 0),
                "consecutive_missed": int(core.missed[i]),
                **errors,
            },
        )

    def stop(self) -> None:
        stop_loop_thread(self)
        with self.lock:
            self.core.stop()
        self.port.close()
        if self.sim_bus is not None:
            self.sim_bus.close()
        write_statistics_file(self.settings["statistics_file"], self.loop)


def main(args: list[str] | None = None) -> None:
    run_loop_node(ServoDriverNode, args)


if __name__ == "__main__":
    main()
