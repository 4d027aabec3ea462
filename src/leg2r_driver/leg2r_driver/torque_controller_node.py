"""torque_controller_node: the 500 Hz loop between /joint_states and the joint efforts.

The loop runs in its own thread on absolute deadlines (:mod:`mdemorl_ros.loop_timing`). With
``executor_strategy: inline`` (default) that thread also handles the callbacks while it waits for
the next deadline; with ``thread`` the executor spins in the main thread. Callbacks only store the
latest joint state, queue policy updates (:mod:`mdemorl_ros.policy_loader`'s thread verifies,
deserializes and warms them up; the loop swaps them in at a policy step) and collect planner
replies. All task logic is :class:`controller_core.Leg2RControllerCore` (observation, reward and
episode boundaries are the Gymnasium task's own functions); the parameters are in
:mod:`torque_controller_parameters`.

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
policy step when no request is in flight (:mod:`plan_client`: one unanswered for
``PLAN_TIMEOUT`` is abandoned and counted as failed: a killed planner), and uses the plan's rows
for the following steps; with no usable plan it falls back to the actor, then to the safe
default.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from leg2r_driver.controller_core import (
    STATE_REJECTIONS,
    Leg2RControllerCore,
    StateRejected,
    TickOutput,
    TrackingRecord,
    check_policy_dims,
    select_joint_state,
)
from leg2r_driver.plan_client import PlanClient
from leg2r_driver.torque_controller_parameters import (
    DEFAULTS,
    PARAMETER_RULES,
    controller_setup,
)
from mdemorl_core.envs.task_hash import leg2r_task_hash
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
from mdemorl_ros.node_plumbing import (
    enter_loop_thread,
    run_loop_node,
    start_loop_thread,
    stop_loop_thread,
)
from mdemorl_ros.policy_loader import PolicyLoader
from mdemorl_ros.protocol import ActingRequest
from mdemorl_ros.realtime import GcPauseMonitor, loop_statistics_record
from mdemorl_ros.ros_common import (
    CONTROLLER_PHASE_TOPIC,
    DIAGNOSTICS_TOPIC,
    EFFORT_COMMAND_TOPIC,
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
    stamp_to_seconds,
    transition_message,
)

# s without a fresh joint state before /diagnostics says ERROR: longer than the gap between the
# states a paused sim robot still publishes (paused_state_rate 2 Hz), so a pause is no error.
STATE_LOST_AFTER = 1.0


class TorqueControllerNode(Node):
    def __init__(self) -> None:
        super().__init__("torque_controller_node")
        s = declare(self, DEFAULTS, PARAMETER_RULES)
        self.settings = s
        self.params, config = controller_setup(s)
        self.core = Leg2RControllerCore(self.params, config)
        self.core.use_planner = s["mode"] == "mpc"
        self.joint_names = list(s["joint_names"])
        self.lock = threading.Lock()
        self.latest_state: tuple[float, np.ndarray, np.ndarray] | None = None
        self.pending_policy: ActingRequest | None = None
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
        self.planner = PlanClient(self.create_client(PlanActions, s["planner_service"]))
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_diagnostics)
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_phase)
        self.policy_loader = PolicyLoader(
            check_policy_dims, bool(s["deterministic"]), self.accept_policy, self.reject_policy
        )
        self.policy_loader.start()
        start_loop_thread(self, self.control_loop, "control-loop")
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
        self.policy_loader.put(msg)

    def accept_policy(self, request: ActingRequest, msg: PolicyUpdate) -> None:
        """A loaded actor (loader thread): the loop swaps it in at the next policy step."""
        with self.lock:
            self.pending_policy = request
        self.counters["policies_accepted"] += 1
        self.get_logger().info(f"policy version {msg.version} ({msg.algorithm}) loaded")

    def reject_policy(self, msg: PolicyUpdate, error: ValueError) -> None:
        self.counters["policies_rejected"] += 1
        self.last_policy_error = str(error)
        self.get_logger().error(f"policy version {msg.version} rejected: {error}")

    def control_loop(self) -> None:
        s = self.settings
        enter_loop_thread(self, self.loop, s)
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
            self.transition_pub.publish(transition_message(out.transition, now.to_msg()))
            self.counters["transitions"] += 1
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
        outcome = self.planner.request(observation, self.core.episode, self.core.step)
        if outcome is not None:
            self.counters[outcome] += 1

    def collect_plan(self) -> None:
        outcome, error = self.planner.collect(self.core.plans)
        if outcome is not None:
            self.counters[outcome] += 1
        if error:
            self.get_logger().warning(f"unusable plan: {error}")

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
        stop_loop_thread(self)
        self.policy_loader.stop()
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


def main(args: list[str] | None = None) -> None:
    run_loop_node(TorqueControllerNode, args)


if __name__ == "__main__":
    main()
