"""gait_controller_node: the StochLite's trajectory generator + IK at the servo rate and the policy
at the policy rate, between ``/joint_states`` + ``/imu/data`` and the joint targets.

All task logic is :class:`gait_core.GaitControllerCore` (the env's trajectory generator and IK,
the measured observation and reward); posture changes for deployment are :mod:`posture`. The
loop runs in its own thread on absolute deadlines (``mdemorl_ros.loop_timing``) at
``params.sim_hz`` of ``task`` (``StochLite-v0`` default, or ``StochLite-v1``: its parameters,
observation and reward, so a transition means what it means in that env).

Outputs per tick: a one-point ``JointTrajectory`` on ``/joint_targets`` (``output:
trajectory``) or ``Float64MultiArray`` on ``/position_controller/commands`` (``output:
ros2_control``). Per policy step: a Transition on ``/mdemorl/transition`` (the leg's message
and protocol: ``protocol`` episodic or async, ``acting_steps`` from each PolicyUpdate).
``/mdemorl/controller_phase`` on every change and at ``diagnostics_rate``, with
``/diagnostics`` and ``/mdemorl/loop_health``. Monitor topics (reliable, every
``monitor_every`` ticks, Float64MultiArray): ``/stochlite/foot_targets`` [12] (x, y, z per foot,
hip frames, m), ``/stochlite/shifts`` [12] m, ``/stochlite/attitude`` [5] (roll, pitch, slope
roll, slope pitch estimated, height estimated).

When an episode terminates (a fall), the core holds the stand pose and the node calls
``reset_service`` (the simulator's ``~/reset``); with no such service (hardware) the episode
resumes after ``reset_hold`` s: a person sets the robot up meanwhile (the driver's attitude guard
has relaxed it).
"""

from __future__ import annotations

import math
import queue
import threading
import time

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.client import Client
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from leg2r_driver.controller_core import STATE_REJECTIONS, StateRejected, select_joint_state
from mdemorl_core.envs.stochlite import ACTION_DIM
from mdemorl_core.envs.stochlite_gait import TASK_PARAMS, task_hash, task_params
from mdemorl_core.limits import Limits
from mdemorl_msgs.msg import ControllerPhase, LoopHealth, PolicyUpdate, Transition
from mdemorl_ros.node_parameters import MIDDLEWARE_PRIORITY, PRIORITY, RATE_HZ, Rule
from mdemorl_ros.node_plumbing import (
    enter_loop_thread,
    publish_diagnostics_array,
    run_loop_node,
    write_statistics_file,
)
from mdemorl_ros.protocol import DEFAULT_ACTIONS, PROTOCOLS, ActingRequest
from mdemorl_ros.ros_common import (
    CONTROLLER_PHASE_TOPIC,
    DIAGNOSTICS_TOPIC,
    EXECUTOR_STRATEGIES,
    IMU_TOPIC,
    JOINT_STATES_TOPIC,
    LOOP_HEALTH_TOPIC,
    MONITOR_QOS,
    PHASE_QOS,
    POLICY_QOS,
    POLICY_TOPIC,
    STATE_QOS,
    TRANSITION_QOS,
    TRANSITION_TOPIC,
    declare,
    diagnostic_status,
    make_control_loop,
    stamp_to_seconds,
    stop_own_executor,
    transition_message,
)
from stochlite_driver.gait_core import (
    GaitConfig,
    GaitControllerCore,
    GaitTick,
)
from stochlite_driver.posture import COMMANDS as POSTURE_COMMANDS
from stochlite_driver.posture import POSTURE_TOPIC, Posture, parse_script, sit_pose
from stochlite_driver.robot import JOINT_NAMES
from stochlite_driver.ros_io import (
    JOINT_TARGETS_TOPIC,
    POSITION_COMMANDS_TOPIC,
    roll_pitch,
    trajectory_message,
)

OUTPUTS = ("trajectory", "ros2_control")
FOOT_TARGETS_TOPIC = "/stochlite/foot_targets"
SHIFTS_TOPIC = "/stochlite/shifts"
ATTITUDE_TOPIC = "/stochlite/attitude"

DEFAULTS: dict[str, object] = {
    "task": "StochLite-v0",  # the env trained for: its params, observation and reward
    "protocol": "async",
    "default_action": "zero",
    "seed": 0,
    "deterministic": True,
    "contact_effort": 0.5,
    "output": "trajectory",
    "posture": "walk",  # start posture: walk (training) | passive (deployment: wait for commands)
    "stand_duration": 2.0,  # s to interpolate into / out of the stand pose
    "posture_script": "",  # e.g. "stand@0 walk@3 sit@12": commands at s after the first tick
    "sit_tilt": 0.0,  # rad of roll or pitch that sits the robot down; 0: off (training)
    "max_state_age": 0.05,  # s; older joint states or IMU samples skip the tick
    "reset_service": "/stochlite_sim_node/reset",  # "" on hardware
    "reset_hold": 5.0,  # s of holding before an episode resumes without a reset service
    "monitor_every": 8,
    "diagnostics_rate": 1.0,
    "idle_period": 0.02,
    "executor_strategy": "inline",
    "realtime_priority": 0,
    "middleware_priority": -1,
    "statistics_file": "",
}
PARAMETER_RULES: dict[str, Rule] = {
    "task": tuple(TASK_PARAMS),
    "protocol": PROTOCOLS,
    "default_action": DEFAULT_ACTIONS,
    "seed": Limits(0, 2**31 - 1),
    "contact_effort": Limits(0.0, 1000.0),
    "output": OUTPUTS,
    "posture": ("walk", "passive"),
    "stand_duration": Limits(0.0, 60.0, low_open=True),
    "sit_tilt": Limits(0.0, math.pi),
    "max_state_age": Limits(0.0, 1.0, low_open=True),
    "reset_hold": Limits(0.0, 3600.0),
    "monitor_every": Limits(1, 1_000_000),
    "diagnostics_rate": RATE_HZ,
    "idle_period": Limits(0.0, 1.0, low_open=True),
    "executor_strategy": EXECUTOR_STRATEGIES,
    "realtime_priority": PRIORITY,
    "middleware_priority": MIDDLEWARE_PRIORITY,
}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


class GaitControllerNode(Node):
    def __init__(self) -> None:
        super().__init__("gait_controller_node")
        s = declare(self, DEFAULTS, PARAMETER_RULES)
        self.settings = s
        if s["output"] not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {s['output']!r}")
        self.params = task_params(s["task"])
        self.core = GaitControllerCore(
            self.params,
            GaitConfig(
                s["protocol"], s["default_action"], s["seed"], s["contact_effort"], s["task"]
            ),
        )
        self.observation_dim = self.core.observer.dim
        self.posture = Posture(
            self.core.stand, sit_pose(self.params), s["stand_duration"], s["posture"], s["sit_tilt"]
        )
        self.script = parse_script(s["posture_script"])
        self.first_tick: float | None = None
        self.lock = threading.Lock()
        self.joint_state: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.imu: tuple[float, float, float, np.ndarray] | None = None
        self.pending: ActingRequest | None = None
        self.counters = dict.fromkeys(
            ("ticks", "skipped_no_state", "transitions", "policies_accepted",
             "policies_rejected", "resets", "imu_rejected_non_finite",
             "posture_rejected_unknown", "posture_refused",
             *(f"states_rejected_{reason}" for reason in STATE_REJECTIONS)), 0,
        )  # fmt: skip
        self.last_error = ""
        self.reset_since: float | None = None
        self.reset_future: Future | None = None
        self.published_phase = ""
        self.phase_seconds = {"acting": 0.0, "holding": 0.0}
        self.phase_since = time.monotonic()
        self.hash = task_hash(self.params)
        self.loop = make_control_loop(self, self.params.sim_dt, s["executor_strategy"])
        if s["output"] == "trajectory":
            self.target_pub = self.create_publisher(JointTrajectory, JOINT_TARGETS_TOPIC, STATE_QOS)
        else:
            self.array_pub = self.create_publisher(
                Float64MultiArray, POSITION_COMMANDS_TOPIC, STATE_QOS
            )
        self.transition_pub = self.create_publisher(Transition, TRANSITION_TOPIC, TRANSITION_QOS)
        self.phase_pub = self.create_publisher(ControllerPhase, CONTROLLER_PHASE_TOPIC, PHASE_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, MONITOR_QOS)
        self.health_pub = self.create_publisher(LoopHealth, LOOP_HEALTH_TOPIC, MONITOR_QOS)
        self.monitor_pubs = {
            topic: self.create_publisher(Float64MultiArray, topic, MONITOR_QOS)
            for topic in (FOOT_TARGETS_TOPIC, SHIFTS_TOPIC, ATTITUDE_TOPIC)
        }
        self.create_subscription(JointState, JOINT_STATES_TOPIC, self.on_joint_state, STATE_QOS)
        self.create_subscription(Imu, IMU_TOPIC, self.on_imu, STATE_QOS)
        self.create_subscription(PolicyUpdate, POLICY_TOPIC, self.on_policy, POLICY_QOS)
        self.create_subscription(String, POSTURE_TOPIC, self.on_posture, MONITOR_QOS)
        self.reset_client: Client | None = (
            self.create_client(Trigger, s["reset_service"]) if s["reset_service"] else None
        )
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_diagnostics)
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_phase)
        self.policy_queue: queue.Queue[PolicyUpdate | None] = queue.Queue()
        self.loader = threading.Thread(target=self.load_policies, name="policy-loader", daemon=True)
        self.loader.start()
        self.running = True
        self.thread = threading.Thread(target=self.control_loop, name="gait-loop", daemon=True)
        self.thread.start()

    def on_joint_state(self, msg: JointState) -> None:
        stamp = stamp_to_seconds(msg.header.stamp)
        age = self.get_clock().now().nanoseconds * 1e-9 - stamp
        try:  # the leg controller's checks: nothing malformed, non-finite or mistimed is used
            q, qd = select_joint_state(
                JOINT_NAMES,
                msg.name,
                msg.position,
                msg.velocity,
                age,
                self.settings["max_state_age"],
            )
        except StateRejected as rejection:
            self.counters[rejection.counter] += 1
            return
        effort = np.zeros(len(q))
        if len(msg.effort) == len(msg.name):
            index = {name: i for i, name in enumerate(msg.name)}
            effort = np.nan_to_num([msg.effort[index[name]] for name in JOINT_NAMES])
        with self.lock:
            self.joint_state = (stamp, q, qd, effort)

    def on_imu(self, msg: Imu) -> None:
        roll, pitch = roll_pitch(msg.orientation)
        w = msg.angular_velocity
        if not all(math.isfinite(v) for v in (roll, pitch, w.x, w.y, w.z)):
            self.counters["imu_rejected_non_finite"] += 1
            return
        with self.lock:
            self.imu = (stamp_to_seconds(msg.header.stamp), roll, pitch, np.array([w.x, w.y, w.z]))

    def on_posture(self, msg: String) -> None:
        with self.lock:
            error = self.posture.command(msg.data, time.monotonic())
            if error:
                known = msg.data in POSTURE_COMMANDS
                self.counters["posture_refused" if known else "posture_rejected_unknown"] += 1
        if error:
            self.get_logger().warning(error[:200], throttle_duration_sec=1.0)

    def on_policy(self, msg: PolicyUpdate) -> None:
        self.policy_queue.put(msg)

    def load_policies(self) -> None:
        while (msg := self.policy_queue.get()) is not None:
            self.load_policy(msg)

    def load_policy(self, msg: PolicyUpdate) -> None:
        """Verify and load the actor in the loader thread; the loop swaps it in at a step."""
        import torch

        from mdemorl_core.policy_io import deserialize_actor

        torch.set_num_threads(1)

        def check_dims(observation_dim: int, action_dim: int) -> None:
            if (observation_dim, action_dim) != (self.observation_dim, ACTION_DIM):
                raise ValueError(
                    f"policy dims ({observation_dim}, {action_dim}) do not match "
                    f"{self.settings['task']} ({self.observation_dim}, {ACTION_DIM})"
                )

        try:
            check_dims(msg.observation_dim, msg.action_dim)
            actor = deserialize_actor(bytes(msg.weights), expected_sha256=msg.checksum)
            # the declared dims may lie: an actor of another task would raise in the warm-up
            # call below and end this thread, so no later policy would ever load
            check_dims(actor.obs_dim, actor.act_dim)
        except ValueError as error:
            self.counters["policies_rejected"] += 1
            self.last_error = str(error)
            self.get_logger().error(f"policy version {msg.version} rejected: {error}")
            return
        deterministic = bool(self.settings["deterministic"])

        def policy(obs: np.ndarray) -> np.ndarray:
            return actor.act_numpy(obs, deterministic=deterministic)

        policy(np.zeros(self.observation_dim, dtype=np.float32))
        request = ActingRequest(
            policy, int(msg.version), int(msg.acting_steps), bool(msg.explore_uniform)
        )
        with self.lock:
            self.pending = request
        self.counters["policies_accepted"] += 1
        self.get_logger().info(f"policy version {msg.version} ({msg.algorithm}) loaded")

    def control_loop(self) -> None:
        s = self.settings
        enter_loop_thread(self, self.loop, s)
        while self.running:
            self.loop.wait()
            try:
                ticked = self.tick()
                if self.core.reported_phase != self.published_phase:
                    self.publish_phase()
                if not ticked:
                    self.loop.pause(s["idle_period"])
            except ValueError as error:
                self.core.policy = None  # a policy producing garbage is dropped
                self.last_error = str(error)
                self.counters["policies_rejected"] += 1
                self.get_logger().error(f"policy dropped: {error}")

    def tick(self) -> bool:
        """One control tick; False when skipped for want of fresh joint states and IMU."""
        with self.lock:
            state, imu, pending = self.joint_state, self.imu, self.pending
            self.pending = None
        if pending is not None:
            self.core.request(pending)
        now = self.get_clock().now()
        now_s = now.nanoseconds * 1e-9
        age = self.settings["max_state_age"]
        if state is None or imu is None or now_s - state[0] > age or now_s - imu[0] > age:
            self.counters["skipped_no_state"] += 1
            return False
        _, q, qd, effort = state
        _, roll, pitch, rates = imu
        self.counters["ticks"] += 1
        mono = time.monotonic()
        if self.first_tick is None:
            self.first_tick = mono
        while self.script and mono - self.first_tick >= self.script[0][0]:
            self.on_posture(String(data=self.script.pop(0)[1]))
        with self.lock:
            if self.posture.attitude(roll, pitch, mono):
                self.get_logger().error(f"tilt {roll:.2f}, {pitch:.2f} rad: sitting down")
            walking = self.posture.walking
        result = self.core.tick(q, qd, effort, roll, pitch, rates) if walking else None
        if result is not None:
            self.handle_reset(result)
        with self.lock:
            targets = self.posture.targets(None if result is None else result.targets, q, mono)
        if targets is not None:
            self.publish_targets(targets, now.to_msg())
        if result is not None and result.transition is not None:
            self.publish_transition(result, now.to_msg())
        if result is not None and self.core.ticks % self.settings["monitor_every"] == 0:
            self.publish_monitors(result, roll, pitch)
        return True

    def handle_reset(self, result: GaitTick) -> None:
        if result.needs_reset:
            self.counters["resets"] += 1
            self.reset_since = time.monotonic()
            if self.reset_client is not None and self.reset_client.service_is_ready():
                self.reset_future = self.reset_client.call_async(Trigger.Request())
        if self.reset_since is None:
            return
        future = self.reset_future
        if future is not None and future.done():
            self.reset_future, self.reset_since = None, None
            self.core.reset_done()
        elif future is None and time.monotonic() - self.reset_since >= self.settings["reset_hold"]:
            self.reset_since = None
            self.core.reset_done()

    def publish_targets(self, targets: np.ndarray, stamp: object) -> None:
        if self.settings["output"] == "trajectory":
            self.target_pub.publish(trajectory_message(targets, stamp))
        else:
            self.array_pub.publish(Float64MultiArray(data=targets.tolist()))

    def publish_transition(self, result: GaitTick, stamp: Time) -> None:
        assert result.transition is not None
        self.transition_pub.publish(transition_message(result.transition, stamp))
        self.counters["transitions"] += 1

    def publish_monitors(self, result: GaitTick, roll: float, pitch: float) -> None:
        values = {
            FOOT_TARGETS_TOPIC: result.feet.reshape(-1),
            SHIFTS_TOPIC: result.shifts.reshape(-1),
            ATTITUDE_TOPIC: np.array([roll, pitch, *result.plane]),
        }
        for topic, data in values.items():
            self.monitor_pubs[topic].publish(Float64MultiArray(data=data.tolist()))

    def publish_phase(self) -> None:
        core = self.core
        phase = core.reported_phase
        now = time.monotonic()
        with self.lock:
            kind = "acting" if self.published_phase == "acting" else "holding"
            if self.published_phase:
                self.phase_seconds[kind] += now - self.phase_since
            self.phase_since, self.published_phase = now, phase
            acting, holding = self.phase_seconds["acting"], self.phase_seconds["holding"]
        msg = ControllerPhase(
            phase=phase if phase != "resetting" else "holding",
            protocol=self.settings["protocol"],
            policy_version=core.policy_version,
            episode=core.episode,
            phase_steps=core.phase_steps,
            acting_steps=core.acting_steps,
            task_hash=self.hash,
            acting_seconds=acting,
            holding_seconds=holding,
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.phase_pub.publish(msg)

    def publish_diagnostics(self) -> None:
        stats = self.loop.statistics.summary()
        status = diagnostic_status(
            "gait_controller_node",
            "stochlite",
            DiagnosticStatus.WARN if stats.missed else DiagnosticStatus.OK,
            f"{self.core.reported_phase}, posture {self.posture.state}, "
            f"policy v{self.core.policy_version}",
            {
                "phase": self.core.reported_phase,
                "posture": self.posture.state,
                "episode": self.core.episode,
                "step": self.core.step,
                "last_error": self.last_error,
                **stats.as_dict(),
                **self.counters,
            },
        )
        stamp = publish_diagnostics_array(self, self.diag_pub, [status])
        health = LoopHealth(node=self.get_name(), ticks=stats.ticks, **stats.as_dict())
        health.header.stamp = stamp
        self.health_pub.publish(health)

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=1.0)
        self.policy_queue.put(None)
        self.loader.join(timeout=5.0)
        stop_own_executor(self)
        write_statistics_file(self.settings["statistics_file"], self.loop, self.counters)


def main(args: list[str] | None = None) -> None:
    run_loop_node(GaitControllerNode, args)


if __name__ == "__main__":
    main()
