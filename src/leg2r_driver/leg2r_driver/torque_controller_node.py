"""torque_controller_node: the 500 Hz loop between /joint_states and the joint efforts.

The loop runs in its own thread on absolute deadlines (:mod:`loop_timing`). With
``executor_strategy: inline`` (default) that thread also handles the callbacks while it waits for
the next deadline; with ``thread`` the executor spins in the main thread. Callbacks only store the
latest joint state, queue policy updates (a loader thread verifies, deserializes and warms them
up; the loop swaps them in at a policy step) and collect planner replies. All task logic is
:class:`controller_core.Leg2RControllerCore` (observation, reward and episode boundaries are the
Gymnasium task's own functions).

Real-time set-up (README "Loop threading"): ``realtime_priority`` puts the loop thread under
SCHED_FIFO and ``middleware_priority`` (default one below) the process's Fast DDS threads, whose
locks the loop waits on; the garbage collector is collected and frozen before the first tick.
Measured with bench/control_loop_loaded.py (SCHED_FIFO 10, trainer nice 10, 60 s with a trainer
epoch on the shared 2-core machine, load average 5.6-6.6): period p99 2.000 ms in 5 runs, no
period > 4 ms in 4 of them, 14 in the other (before: max 15.1 ms, 28 periods > 4 ms), when the
sim robot's loop stalled too: wake-up latency of this machine (non-preemptible kernel, VM).
The statistics window (``statistics_warmup``, ``statistics_duration``) and the statistics file
(summary, longest periods with where their time went, GC pauses) serve the benchmarks.

Outputs per tick: ``mdemorl_msgs/EffortCommand`` on ``/effort_command`` (``output:
effort_command``) or, for a ros2_control robot, ``std_msgs/Float64MultiArray`` on
``/<ros2_control_controller>/commands`` (``output: ros2_control``, an effort
JointGroupEffortController; joint order = ``joint_names``). Per policy step: a Transition on
``/mdemorl/transition``. Every ``tracking_every`` ticks: a TrackingState on ``/mdemorl/tracking``.
At ``diagnostics_rate``: ``/diagnostics`` and a LoopHealth on ``/mdemorl/loop_health`` (the loop
statistics as plain numbers, for plotting tools).

``protocol`` (:mod:`mdemorl_ros.protocol`): ``async`` acts continuously with the latest policy;
``episodic`` holds the safe pose (``hold_mode``: ``pd`` to ``hold_pose`` or ``zero`` torque)
until a PolicyUpdate arrives, acts its ``acting_steps`` policy steps in a new episode, then
holds again, publishing no transitions while it holds; so with no trainer (absent or killed) the
leg is held. ``/mdemorl/controller_phase`` (ControllerPhase) reports the phase on every change
and at the diagnostics rate. While it holds and no fresh joint state arrives (the sim robot pauses
its physics during a hold) the loop idles in ``idle_period`` steps instead of ticking at 500 Hz.

``mode: mpc`` asks ``planner_service`` (``mdemorl_msgs/srv/PlanActions``) asynchronously at each
policy step when no request is in flight (one unanswered for ``PLAN_TIMEOUT`` is abandoned and
counted as failed: a killed planner), and uses the plan's rows for the following steps; with no
usable plan it falls back to the actor, then to the safe default.
"""

from __future__ import annotations

import gc
import json
import queue
import threading
import time
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.client import Client
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from leg2r_driver.controller_core import (
    HOLD_MODES,
    STATE_REJECTIONS,
    ControllerConfig,
    Leg2RControllerCore,
    StateRejected,
    TickOutput,
    TrackingRecord,
    check_policy_dims,
    select_joint_state,
)
from mdemorl_core.envs.leg2r_task import Leg2RParams
from mdemorl_core.envs.task_hash import leg2r_task_hash
from mdemorl_core.limits import Limits
from mdemorl_msgs.msg import (
    ControllerPhase,
    EffortCommand,
    LoopHealth,
    PolicyUpdate,
    TrackingState,
    Transition,
)
from mdemorl_msgs.srv import PlanActions
from mdemorl_ros.loop_timing import MeasurementWindow
from mdemorl_ros.node_parameters import (
    MIDDLEWARE_PRIORITY,
    PRIORITY,
    RATE_HZ,
    REQUIRED,
    Rule,
)
from mdemorl_ros.protocol import DEFAULT_ACTIONS, PROTOCOLS, ActingRequest
from mdemorl_ros.realtime import GcPauseMonitor, loop_statistics_record, prepare_loop_thread
from mdemorl_ros.ros_common import (
    CONTROL_SWITCH_INTERVAL,
    CONTROLLER_PHASE_TOPIC,
    DIAGNOSTICS_TOPIC,
    EFFORT_COMMAND_TOPIC,
    EXECUTOR_STRATEGIES,
    JOINT_STATES_TOPIC,
    LOOP_HEALTH_TOPIC,
    MONITOR_QOS,
    PHASE_QOS,
    POLICY_QOS,
    POLICY_TOPIC,
    STATE_QOS,
    TRACKING_TOPIC,
    TRANSITION_QOS,
    TRANSITION_TOPIC,
    declare,
    diagnostic_status,
    make_control_loop,
    run_node,
    stamp_to_seconds,
    stop_own_executor,
)

MODES = ("policy", "mpc")
PLAN_TIMEOUT = 0.5  # s; a plan request unanswered this long is abandoned (a plan is stale by then)
OUTPUTS = ("effort_command", "ros2_control")
# s without a fresh joint state before /diagnostics says ERROR: longer than the gap between the
# states a paused sim robot still publishes (paused_state_rate 2 Hz), so a pause is no error.
STATE_LOST_AFTER = 1.0

DEFAULTS: dict[str, object] = {
    "mode": "policy",
    "protocol": "async",  # async: act continuously | episodic: act one request's steps, hold
    "hold_mode": "pd",  # the safe hold: pd (to hold_pose) | zero (zero torque)
    "idle_period": 0.02,  # s; loop step while holding without fresh joint states
    "output": "effort_command",
    "ros2_control_controller": "effort_controller",
    "joint_names": ["hip", "knee"],
    "control_rate": 500.0,
    "policy_decimation": 5,
    "episode_steps": 1000,
    "default_action": "zero",
    "hold_pose": [0.0],  # rad [2]; a single entry means "IK of the reference start point"
    "hold_kp": [8.0, 6.0],
    "hold_kd": [0.3, 0.2],
    "seed": 0,
    "deterministic": True,
    "max_state_age": 0.02,  # s; older joint states stop the output (the driver's watchdog acts)
    "tracking_every": 5,
    "planner_service": "/planner_node/plan",
    "diagnostics_rate": 1.0,
    "realtime_priority": 0,  # SCHED_FIFO priority of the loop thread (1..99), 0 = normal
    "middleware_priority": -1,  # SCHED_FIFO of the dds.* threads; -1: realtime_priority - 1
    "executor_strategy": "inline",  # inline: the loop thread spins | thread: main thread spins
    "statistics_warmup": 0.0,  # s; loop statistics restart after this (benchmarks skip start-up)
    "statistics_duration": 0.0,  # s; >0: the statistics window closes this long after opening
    "statistics_file": "",  # write the loop statistics as JSON here at shutdown (benchmarks)
}
PARAMETER_RULES: dict[str, Rule] = {
    "mode": MODES,
    "protocol": PROTOCOLS,
    "hold_mode": HOLD_MODES,
    "idle_period": Limits(0.0, 1.0, low_open=True),
    "output": OUTPUTS,
    "ros2_control_controller": REQUIRED,
    "joint_names": REQUIRED,
    "control_rate": RATE_HZ,
    "policy_decimation": Limits(1, 1000),
    "episode_steps": Limits(1, 10_000_000),
    "default_action": DEFAULT_ACTIONS,
    "hold_pose": Limits(-10.0, 10.0),
    "hold_kp": Limits(0.0, 1000.0),
    "hold_kd": Limits(0.0, 100.0),
    "seed": Limits(0, 2**31 - 1),
    "max_state_age": Limits(0.0, 1.0, low_open=True),
    "tracking_every": Limits(1, 1_000_000),
    "planner_service": REQUIRED,
    "diagnostics_rate": RATE_HZ,
    "realtime_priority": PRIORITY,
    "middleware_priority": MIDDLEWARE_PRIORITY,
    "executor_strategy": EXECUTOR_STRATEGIES,
    "statistics_warmup": Limits(0.0, 3600.0),
    "statistics_duration": Limits(0.0, 86_400.0),
}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


class TorqueControllerNode(Node):
    def __init__(self) -> None:
        super().__init__("torque_controller_node")
        s = declare(self, DEFAULTS, PARAMETER_RULES)
        self.settings = s
        if s["mode"] not in MODES or s["output"] not in OUTPUTS:
            raise ValueError(f"mode must be in {MODES} and output in {OUTPUTS}")
        self.params = Leg2RParams(
            control_hz=s["control_rate"],
            decimation=s["policy_decimation"],
            episode_steps=s["episode_steps"],
        )
        hold = tuple(s["hold_pose"]) if len(s["hold_pose"]) == 2 else ()
        self.core = Leg2RControllerCore(
            self.params,
            ControllerConfig(
                default_action=s["default_action"],
                hold_pose=hold,
                hold_kp=tuple(s["hold_kp"]),
                hold_kd=tuple(s["hold_kd"]),
                seed=s["seed"],
                protocol=s["protocol"],
                hold_mode=s["hold_mode"],
            ),
        )
        self.core.use_planner = s["mode"] == "mpc"
        self.joint_names = list(s["joint_names"])
        self.lock = threading.Lock()
        self.latest_state: tuple[float, np.ndarray, np.ndarray] | None = None
        self.pending_policy: ActingRequest | None = None
        self.plan_future: Future | None = None
        self.plan_sent_at = 0.0
        self.counters = {
            "ticks": 0,
            "skipped_no_state": 0,
            "policies_accepted": 0,
            "policies_rejected": 0,
            "plans_used": 0,
            "plans_failed": 0,
            "transitions": 0,
            **{f"states_rejected_{reason}": 0 for reason in STATE_REJECTIONS},
        }
        self.last_policy_error = ""
        self.torch_frozen = False
        self.statistics_snapshot: dict[str, object] | None = None
        self.sequence = 0
        self.loop = make_control_loop(self, 1.0 / s["control_rate"], s["executor_strategy"])
        self.gc_monitor = GcPauseMonitor()
        self.gc_monitor.install()

        if s["output"] == "ros2_control":
            topic = f"/{s['ros2_control_controller']}/commands"
            self.array_pub = self.create_publisher(Float64MultiArray, topic, 10)
        else:
            self.effort_pub = self.create_publisher(EffortCommand, EFFORT_COMMAND_TOPIC, STATE_QOS)
        self.transition_pub = self.create_publisher(Transition, TRANSITION_TOPIC, TRANSITION_QOS)
        self.tracking_pub = self.create_publisher(TrackingState, TRACKING_TOPIC, MONITOR_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, MONITOR_QOS)
        self.health_pub = self.create_publisher(LoopHealth, LOOP_HEALTH_TOPIC, MONITOR_QOS)
        self.phase_pub = self.create_publisher(ControllerPhase, CONTROLLER_PHASE_TOPIC, PHASE_QOS)
        self.phase_seconds = {"acting": 0.0, "holding": 0.0}
        self.task_hash = leg2r_task_hash(self.params)
        self.phase_since = time.monotonic()
        self.published_phase = ""
        self.create_subscription(JointState, JOINT_STATES_TOPIC, self.on_joint_state, STATE_QOS)
        self.create_subscription(PolicyUpdate, POLICY_TOPIC, self.on_policy, POLICY_QOS)
        self.planner: Client = self.create_client(PlanActions, s["planner_service"])
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_diagnostics)
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_phase)
        self.policy_queue: queue.Queue[PolicyUpdate | None] = queue.Queue()
        self.policy_loader = threading.Thread(
            target=self.load_policies, name="policy-loader", daemon=True
        )
        self.policy_loader.start()
        self.running = True
        self.thread = threading.Thread(target=self.control_loop, name="control-loop", daemon=True)
        self.thread.start()
        self.get_logger().info(
            f"{s['mode']} control at {s['control_rate']} Hz, policy every "
            f"{s['policy_decimation']} ticks, output {s['output']}"
        )

    def on_joint_state(self, msg: JointState) -> None:
        stamp = stamp_to_seconds(msg.header.stamp)
        age = self.get_clock().now().nanoseconds * 1e-9 - stamp
        try:
            q, qd = select_joint_state(
                self.joint_names,
                msg.name,
                msg.position,
                msg.velocity,
                age,
                self.settings["max_state_age"],
            )
        except StateRejected as rejection:
            self.counters[rejection.counter] += 1
            return
        with self.lock:
            self.latest_state = (stamp, q, qd)

    def on_policy(self, msg: PolicyUpdate) -> None:
        """Hand the update to the loader thread: loading takes far longer than a period."""
        self.policy_queue.put(msg)

    def load_policies(self) -> None:
        last: tuple[int, int, int] | None = None
        while (msg := self.policy_queue.get()) is not None:
            # A latched update delivered again (rediscovery) must not start a second phase.
            key = (int(msg.version), int(msg.header.stamp.sec), int(msg.header.stamp.nanosec))
            if key != last:
                self.load_policy(msg)
                last = key

    def load_policy(self, msg: PolicyUpdate) -> None:
        """Verify, load and warm up the actor (loader thread); the loop swaps it in at the next
        policy step.

        torch is imported on the first policy only, and limited to one thread: the actor is a
        small MLP evaluated on one observation, where a thread pool adds only jitter.
        """
        import torch

        from mdemorl_core.policy_io import deserialize_actor

        torch.set_num_threads(1)

        try:
            check_policy_dims(msg.observation_dim, msg.action_dim)
            actor = deserialize_actor(bytes(msg.weights), expected_sha256=msg.checksum)
            check_policy_dims(actor.obs_dim, actor.act_dim)
        except ValueError as error:
            self.counters["policies_rejected"] += 1
            self.last_policy_error = str(error)
            self.get_logger().error(f"policy version {msg.version} rejected: {error}")
            return
        deterministic = bool(self.settings["deterministic"])

        def policy(obs: np.ndarray) -> np.ndarray:
            return actor.act_numpy(obs, deterministic=deterministic)

        policy(np.zeros(actor.obs_dim, dtype=np.float32))  # first call allocates; not in a tick
        if not self.torch_frozen:
            # torch's import left ~10^5 young objects: a full collection traversing them would
            # hold the GIL for tens of ms. gc.freeze is O(1) (no traversal, unlike gc.collect).
            gc.freeze()
            self.torch_frozen = True

        request = ActingRequest(
            policy, int(msg.version), int(msg.acting_steps), bool(msg.explore_uniform)
        )
        with self.lock:
            self.pending_policy = request
        self.counters["policies_accepted"] += 1
        self.get_logger().info(f"policy version {msg.version} ({msg.algorithm}) loaded")

    def control_loop(self) -> None:
        s = self.settings
        for line in prepare_loop_thread(s["realtime_priority"], s["middleware_priority"]):
            self.get_logger().info(line)
        self.loop.start()
        window = MeasurementWindow(
            self.settings["statistics_warmup"], self.settings["statistics_duration"]
        )
        while self.running:
            self.loop.wait()
            event = window.advance(time.monotonic(), has_data=self.counters["ticks"] > 0)
            if event == "open":
                self.loop.statistics.reset()
                self.counters = dict.fromkeys(self.counters, 0)
            elif event == "close":
                self.statistics_snapshot = self.statistics_record(window_closed=True)
            try:
                ticked = self.tick()
                if self.core.reported_phase != self.published_phase:
                    self.publish_phase()
                if not ticked and self.core.reported_phase != "acting":
                    self.loop.pause(s["idle_period"])
            except ValueError as error:
                # A policy that produces garbage is dropped; the safe default takes over.
                self.core.policy = None
                self.last_policy_error = str(error)
                self.counters["policies_rejected"] += 1
                self.get_logger().error(f"policy dropped: {error}")

    def tick(self) -> bool:
        """One control tick; False when it was skipped for want of a fresh joint state."""
        with self.lock:
            state, pending = self.latest_state, self.pending_policy
            self.pending_policy = None
        if pending is not None:
            self.core.request(pending)
        now = self.get_clock().now()
        now_s = now.nanoseconds * 1e-9
        if state is None or now_s - state[0] > self.settings["max_state_age"]:
            self.counters["skipped_no_state"] += 1
            return False
        self.collect_plan()
        with_tracking = self.core.ticks % self.settings["tracking_every"] == 0
        out = self.core.tick(state[1], state[2], with_tracking=with_tracking)
        self.counters["ticks"] += 1
        self.publish_command(out, now.to_msg())
        if out.transition is not None:
            self.publish_transition(out, now.to_msg())
        if out.tracking is not None:
            self.publish_tracking(out.tracking, now.to_msg())
        if out.observation is not None and self.core.use_planner and not self.core.explore_uniform:
            self.request_plan(out.observation)
        return True

    def publish_command(self, out: TickOutput, stamp: Time) -> None:
        if self.settings["output"] == "ros2_control":
            self.array_pub.publish(Float64MultiArray(data=out.torque.tolist()))
            return
        msg = EffortCommand(
            name=self.joint_names, effort=out.torque.tolist(), sequence=self.sequence
        )
        msg.header.stamp = stamp
        self.sequence += 1
        self.effort_pub.publish(msg)

    def publish_transition(self, out: TickOutput, stamp: Time) -> None:
        record = out.transition
        assert record is not None
        msg = Transition(
            episode=record.episode,
            step=record.step,
            policy_version=record.policy_version,
            observation=record.observation.tolist(),
            action=record.action.tolist(),
            next_observation=record.next_observation.tolist(),
            reward=float(record.reward),
            terminated=record.terminated,
            truncated=record.truncated,
        )
        msg.header.stamp = stamp
        self.transition_pub.publish(msg)
        self.counters["transitions"] += 1

    def publish_tracking(self, t: TrackingRecord, stamp: Time) -> None:
        msg = TrackingState(
            desired_position=t.desired_position.tolist(),
            actual_position=t.actual_position.tolist(),
            desired_velocity=t.desired_velocity.tolist(),
            actual_velocity=t.actual_velocity.tolist(),
            tracking_error=t.tracking_error,
            reward=t.reward,
        )
        msg.header.stamp = stamp
        self.tracking_pub.publish(msg)

    def request_plan(self, observation: np.ndarray) -> None:
        if self.plan_future is not None:
            if time.monotonic() - self.plan_sent_at < PLAN_TIMEOUT:
                return
            # The planner died (or stalls) with this request in flight: its answer would never
            # come, and waiting for it would keep a relaunched planner unused forever.
            self.planner.remove_pending_request(self.plan_future)
            self.plan_future = None
            self.counters["plans_failed"] += 1
        if not self.planner.service_is_ready():
            return
        request = PlanActions.Request(observation=observation.tolist())
        self.plan_request_at = (self.core.episode, self.core.step)
        self.plan_sent_at = time.monotonic()
        self.plan_future = self.planner.call_async(request)

    def collect_plan(self) -> None:
        future = self.plan_future
        if future is None or not future.done():
            return
        self.plan_future = None
        response = future.result()
        if response is None or not response.success:
            self.counters["plans_failed"] += 1
            return
        try:
            actions = np.asarray(response.actions, dtype=np.float64).reshape(
                response.horizon, response.action_dim
            )
            episode, step = self.plan_request_at
            self.core.plans.store(actions, episode, step)
        except ValueError as error:
            self.counters["plans_failed"] += 1
            self.get_logger().warning(f"unusable plan: {error}")
            return
        self.counters["plans_used"] += 1

    def publish_phase(self) -> None:
        """ControllerPhase now (loop thread on a change, timer otherwise); accumulates the time
        spent in the phase that ends."""
        core = self.core
        phase = core.reported_phase
        now = time.monotonic()
        with self.lock:
            kind = "acting" if self.published_phase == "acting" else "holding"
            if self.published_phase:
                self.phase_seconds[kind] += now - self.phase_since
            self.phase_since = now
            self.published_phase = phase
            acting, holding = self.phase_seconds["acting"], self.phase_seconds["holding"]
        msg = ControllerPhase(
            phase=phase,
            protocol=self.settings["protocol"],
            policy_version=max(core.policy_version, 0),
            episode=core.episode,
            phase_steps=core.phase_steps,
            acting_steps=core.acting_steps,
            task_hash=self.task_hash,
            acting_seconds=acting,
            holding_seconds=holding,
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.phase_pub.publish(msg)

    def publish_diagnostics(self) -> None:
        stats = self.loop.statistics.summary()
        phase = self.core.reported_phase
        waiting = self.core.policy is None and phase == "acting" and not self.core.explore_uniform
        level = DiagnosticStatus.WARN if stats.missed or waiting else DiagnosticStatus.OK
        message = (
            "waiting for a policy"
            if waiting
            else f"{phase}, policy v{max(self.core.policy_version, 0)}"
        )
        with self.lock:
            state = self.latest_state
        state_age = None if state is None else self.get_clock().now().nanoseconds * 1e-9 - state[0]
        if state_age is None or state_age > STATE_LOST_AFTER:
            # The robot side is gone (killed driver or sim): nothing is commanded or learned.
            level = DiagnosticStatus.ERROR
            message = (
                "no joint states received"
                if state_age is None
                else f"no fresh joint states for {state_age:.1f} s"
            )
        status = diagnostic_status(
            "torque_controller_node",
            "leg2r",
            level,
            message,
            {
                "phase": phase,
                "protocol": self.settings["protocol"],
                **stats.as_dict(),
                "reanchors": self.loop.reanchors,
                "policy_version": self.core.policy_version,
                "episode": self.core.episode,
                "step": self.core.step,
                "last_policy_error": self.last_policy_error,
                "joint_state_age": -1.0 if state_age is None else state_age,
                **self.counters,
            },
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)
        health = LoopHealth(node=self.get_name(), ticks=stats.ticks, **stats.as_dict())
        health.header.stamp = array.header.stamp
        self.health_pub.publish(health)

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=1.0)
        self.policy_queue.put(None)
        self.policy_loader.join(timeout=5.0)
        stop_own_executor(self)
        record = self.statistics_snapshot or self.statistics_record(window_closed=False)
        self.get_logger().info(
            "loop statistics: "
            + str({k: record[k] for k in ("rate_hz", "period_p99_ms", "period_max_ms", "missed")})
        )
        if self.settings["statistics_file"]:
            Path(self.settings["statistics_file"]).write_text(json.dumps(record, indent=2))

    def statistics_record(self, window_closed: bool) -> dict[str, object]:
        """Loop statistics and counters of the window; ``window_closed``: it closed after
        ``statistics_duration`` (False: the shutdown ended it)."""
        record = loop_statistics_record(self.loop, self.gc_monitor)
        return {**record, **self.counters, "window_closed": window_closed}


def _shutdown(node: Node) -> None:
    assert isinstance(node, TorqueControllerNode)
    node.stop()


def main(args: list[str] | None = None) -> None:
    run_node(
        TorqueControllerNode, args, on_shutdown=_shutdown, switch_interval=CONTROL_SWITCH_INTERVAL
    )


if __name__ == "__main__":
    main()
