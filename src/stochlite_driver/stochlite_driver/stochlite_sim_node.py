"""stochlite_sim_node: the PyBullet StochLite (:mod:`sim_physics`) stepped in real time, standing
in for servo_driver_node and the IMU with the same topics, QoS and safety semantics.

Each tick (period ``sim_dt / real_time_factor`` of wall time, deadline-based): the driver's own
:class:`servo_safety.ServoSafety` turns the latest joint targets into a run mode and targets
(validation, clamp, rate limit, watchdog HOLD then FREE, latched e-stop, and the attitude guard,
fed from the simulated IMU), the physics advances one step, ``/joint_states`` carries position,
velocity and the applied motor torque (N m) as effort. Every ``imu_rate`` Hz ``/imu/data``
(frame ``imu_link``) and ``/sim/torso_pose`` (ground truth, world frame: for tests and plots, not
for controllers) are published.

One difference from the hardware, on purpose: before the first target (``WAITING``) the real
servos are FREE, the simulated robot spawns standing and, with ``waiting_mode: hold`` (default),
is held at its start pose, as if it stood on a stand; ``waiting_mode: free`` lets it collapse.
Services: ``~/estop`` (SetBool), ``~/reset`` (Trigger: respawn standing; releases nothing).

Pausing while the controller holds (``pause_after_hold`` >= 0, as the leg's sim robot): after
that many seconds of a non-acting ``/mdemorl/controller_phase`` (episodic protocol, the trainer
updating) the physics stops and ``/joint_states``, ``/imu/data`` and ``/sim/torso_pose`` repeat
the frozen state (velocities and rates zero) at ``paused_state_rate``, leaving the CPU to the
trainer while a monitor or a late subscriber still sees where the robot is; the first acting phase resumes it, holding
the joints until the controller's next target arrives (no limp tick from a watchdog that ran
while nothing moved). A real robot cannot pause: the driver has no such option.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Imu, JointState
from std_srvs.srv import Trigger

from leg2r_driver.imu_node import diagonal_covariance
from mdemorl_core.envs.stochlite_gait import task_params
from mdemorl_core.limits import Limits
from mdemorl_msgs.msg import ControllerPhase
from mdemorl_ros.node_parameters import RATE_HZ, STDDEV, Rule
from mdemorl_ros.node_plumbing import (
    enter_loop_thread,
    loop_status,
    publish_diagnostics_array,
    run_loop_node,
    stop_loop_thread,
    write_statistics_file,
)
from mdemorl_ros.protocol import PHASE_REJECTIONS
from mdemorl_ros.ros_common import (
    CONTROLLER_PHASE_TOPIC,
    DIAGNOSTICS_TOPIC,
    IMU_TOPIC,
    JOINT_STATES_TOPIC,
    MONITOR_QOS,
    PHASE_QOS,
    STATE_QOS,
    controller_phase_rejection,
    declare,
    diagnostic_status,
    make_control_loop,
)
from stochlite_driver.b3m import RunMode
from stochlite_driver.robot import roll_pitch
from stochlite_driver.ros_io import joint_state_message
from stochlite_driver.servo_node_common import (
    SERVO_NODE_DEFAULTS,
    SERVO_NODE_RULES,
    ServoTargetsNode,
    make_servo_safety,
)
from stochlite_driver.servo_safety import ServoPhase
from stochlite_driver.sim_physics import StochLiteSimulation

TORSO_POSE_TOPIC = "/sim/torso_pose"
WAITING_MODES = ("hold", "free")

DEFAULTS: dict[str, object] = {
    "real_time_factor": 1.0,
    "slope": [0.0, 0.0],  # rad, ground roll and pitch
    "waiting_mode": "hold",
    "pause_after_hold": -1.0,  # s of controller hold before the physics pauses; < 0: never
    "paused_state_rate": 2.0,  # Hz of the frozen /joint_states, /imu/data, pose while paused
    "imu_rate": 100.0,
    "imu_orientation_stddev": 0.035,
    "imu_angular_velocity_stddev": 0.0025,
    "imu_linear_acceleration_stddev": 0.015,
    **SERVO_NODE_DEFAULTS,
}
PARAMETER_RULES: dict[str, Rule] = {
    "real_time_factor": Limits(0.0, 1000.0, low_open=True),
    "slope": Limits(-0.5, 0.5),
    "waiting_mode": WAITING_MODES,
    "pause_after_hold": Limits(-1.0, 3600.0),
    "paused_state_rate": RATE_HZ,
    "imu_rate": RATE_HZ,
    "imu_orientation_stddev": STDDEV,
    "imu_angular_velocity_stddev": STDDEV,
    "imu_linear_acceleration_stddev": STDDEV,
    **SERVO_NODE_RULES,
}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


class StochLiteSimNode(ServoTargetsNode):
    def __init__(self) -> None:
        super().__init__("stochlite_sim_node")
        s = declare(self, DEFAULTS, PARAMETER_RULES)
        self.settings = s
        if s["real_time_factor"] <= 0.0 or s["waiting_mode"] not in WAITING_MODES:
            raise ValueError(
                f"real_time_factor must be > 0 and waiting_mode one of {WAITING_MODES}, got "
                f"{s['real_time_factor']}, {s['waiting_mode']!r}"
            )
        params = task_params(s["task"])
        slope = (float(s["slope"][0]), float(s["slope"][1]))
        self.sim = StochLiteSimulation(params, slope, s["task"])
        self.safety = make_servo_safety(s, params)
        self.lock = threading.Lock()
        self.phase = ServoPhase.WAITING
        self.counters = {
            "rejected_trajectory": 0,
            "resets": 0,
            **dict.fromkeys(PHASE_REJECTIONS, 0),
        }
        self.imu_every = max(1, round(1.0 / (s["imu_rate"] * self.sim.dt)))
        self.covariances = [
            diagonal_covariance(s[f"imu_{k}_stddev"])
            for k in ("orientation", "angular_velocity", "linear_acceleration")
        ]
        self.loop = make_control_loop(
            self, self.sim.dt / s["real_time_factor"], s["executor_strategy"]
        )
        self.joint_pub = self.create_publisher(JointState, JOINT_STATES_TOPIC, STATE_QOS)
        self.imu_pub = self.create_publisher(Imu, IMU_TOPIC, STATE_QOS)
        self.pose_pub = self.create_publisher(PoseStamped, TORSO_POSE_TOPIC, MONITOR_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, MONITOR_QOS)
        self.serve_targets()
        self.hold_since: float | None = None
        self.resuming = False
        self.paused_seconds = 0.0
        if s["pause_after_hold"] >= 0.0:
            self.create_subscription(
                ControllerPhase, CONTROLLER_PHASE_TOPIC, self.on_phase, PHASE_QOS
            )
        self.serve_estop()
        self.create_service(Trigger, "~/reset", self.on_reset)
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_diagnostics)
        self.running = True
        self.thread = threading.Thread(target=self.control_loop, name="sim-loop", daemon=True)
        self.thread.start()
        self.get_logger().info(
            f"StochLite simulation at {1.0 / self.sim.dt:.0f} Hz x{s['real_time_factor']} real "
            f"time, slope {s['slope']}"
        )

    def on_phase(self, msg: ControllerPhase) -> None:
        rejected = controller_phase_rejection(msg)
        if rejected is not None:  # e.g. an unknown phase string must not pause the physics
            self.counters[rejected] += 1
            return
        if msg.phase == "acting":
            if self.paused():
                self.resuming = True
            self.hold_since = None
        elif self.hold_since is None:
            self.hold_since = time.monotonic()

    def paused(self) -> bool:
        since = self.hold_since
        return since is not None and time.monotonic() - since >= self.settings["pause_after_hold"]

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self.lock:
            self.sim.reset()
            self.counters["resets"] += 1
        response.success = True
        response.message = "robot respawned standing"
        return response

    def control_loop(self) -> None:
        s = self.settings
        enter_loop_thread(self, self.loop, s)
        ticks = 0
        while self.running:
            if self.paused():
                with self.lock:
                    q, qd, torque = self.sim.joint_state()
                    quaternion, rates, force = self.sim.imu()
                    position = self.sim.torso()[0]
                stamp = self.get_clock().now().to_msg()
                self.joint_pub.publish(joint_state_message(stamp, q, 0.0 * qd, torque))
                self.publish_imu(stamp, quaternion, 0.0 * rates, force, position)
                self.loop.pause(1.0 / s["paused_state_rate"])
                self.paused_seconds += 1.0 / s["paused_state_rate"]
                continue
            self.loop.wait()
            with self.lock:
                q = self.sim.joint_state()[0]
                output = self.safety.output(q)
                mode = output.run_mode
                if output.phase is ServoPhase.ACTIVE:
                    self.resuming = False
                waiting = output.phase is ServoPhase.WAITING and s["waiting_mode"] == "hold"
                if waiting or (self.resuming and output.phase is not ServoPhase.ESTOP):
                    mode = RunMode.HOLD
                self.sim.step(mode, output.targets)
                q, qd, torque = self.sim.joint_state()
                quaternion, rates, force = self.sim.imu()
                roll, pitch = roll_pitch(*(float(v) for v in quaternion))
                self.safety.update_attitude(roll, pitch)
                position = self.sim.torso()[0]
            self.phase = output.phase
            stamp = self.get_clock().now().to_msg()
            self.joint_pub.publish(joint_state_message(stamp, q, qd, torque))
            if ticks % self.imu_every == 0:
                self.publish_imu(stamp, quaternion, rates, force, position)
            ticks += 1

    def publish_imu(
        self,
        stamp: object,
        quaternion: np.ndarray,
        rates: np.ndarray,
        force: np.ndarray,
        position: np.ndarray,
    ) -> None:
        msg = Imu()
        msg.header.stamp = stamp
        msg.header.frame_id = "imu_link"
        o = msg.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in quaternion)
        w, a = msg.angular_velocity, msg.linear_acceleration
        w.x, w.y, w.z = (float(v) for v in rates)
        a.x, a.y, a.z = (float(v) for v in force)
        msg.orientation_covariance = self.covariances[0]
        msg.angular_velocity_covariance = self.covariances[1]
        msg.linear_acceleration_covariance = self.covariances[2]
        self.imu_pub.publish(msg)
        pose = PoseStamped()
        pose.header.stamp = stamp
        pose.header.frame_id = "world"
        p = pose.pose.position
        p.x, p.y, p.z = (float(v) for v in position)
        pose.pose.orientation = msg.orientation
        self.pose_pub.publish(pose)

    def publish_diagnostics(self) -> None:
        with self.lock:
            counters = {**dict(self.safety.counters), **self.counters}
            reason = self.safety.estop_reason
        level = DiagnosticStatus.ERROR if reason else DiagnosticStatus.OK
        status = diagnostic_status(
            "stochlite_sim_node: safety",
            "stochlite_sim",
            level,
            f"phase {self.phase.value}" + (f", e-stop: {reason}" if reason else ""),
            {
                "phase": self.phase.value,
                "estop_reason": reason,
                "paused": self.paused(),
                "paused_seconds": self.paused_seconds,
                **counters,
            },
        )
        loop = loop_status("stochlite_sim_node: sim loop", "stochlite_sim", self.loop)
        publish_diagnostics_array(self, self.diag_pub, [status, loop])

    def stop(self) -> None:
        stop_loop_thread(self)
        self.sim.close()
        write_statistics_file(self.settings["statistics_file"], self.loop)


def main(args: list[str] | None = None) -> None:
    run_loop_node(StochLiteSimNode, args)


if __name__ == "__main__":
    main()
