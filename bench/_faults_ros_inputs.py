"""Corrupted messages on the subscribed topics of the leg's nodes, each node in its own process.

Per node, every kind of corrupted message is sent ``repeats`` times, each once the one before was
counted (or after COUNT_WAIT), so that a keep-last-1 subscription never drops one; then the node's /diagnostics counter for that kind must have grown
by exactly ``repeats`` (``counted``), nothing corrupted may have acted (``bad_applied``: joint
torque while only corrupted commands arrive, controller commands while only corrupted joint
states arrive, a policy loaded or a transition stored from a corrupted message), and a valid
message afterwards must still be obeyed (``alive``: the node keeps running).

Out-of-order /effort_command (:func:`order_faults`) needs a command accepted first: each case
sends a valid one, waits until the joint states show it applied, then the corrupted one (older
stamp, or a duplicate), all inside the 10 ms max_command_age. The valid commands afterwards have
sequence 0 again (a restarted controller) and must be obeyed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from _faults_ros_common import Recorder, count_tracebacks, record_for

SPACING = 0.05  # s between corrupted messages: ≫ a 2 ms loop's callback latency
# s for a node to count one corrupted message: on a loaded machine a node's executor can be busy
# for longer than SPACING, and the next message would then replace the queued one (keep-last-1)
COUNT_WAIT = 2.0
JOINTS = ["hip", "knee"]
# Out-of-order cases: the accepted command is stamped LEAD ahead (within the gates' 5 ms
# max_future_skew) so the corrupted one, stamped before it, stays fresh for longer; one whose
# accepted command is not seen applied within CONFIRM_WITHIN is not sent (it could go stale).
LEAD = 0.004  # s
CONFIRM_WITHIN = 0.006  # s
GOOD_HIP, BAD_HIP = 0.3, -1.5  # N*m: the accepted command's hip torque, the corrupted one's
# Each attempt's accepted command has a hip torque of its own (GOOD_HIP + k * GOOD_STEP), so a
# state still showing the previous attempt's (delivered late to the probe, or a late command
# applied) is not taken for this one's.
GOOD_STEP, GOOD_VALUES = 0.05, 5


def _stamp(node: Any, offset: float) -> Any:
    from rclpy.duration import Duration

    return (node.get_clock().now() + Duration(nanoseconds=int(offset * 1e9))).to_msg()


def effort_cases() -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """kind -> (the gate's counter, message factory); efforts stand out if ever applied."""
    from mdemorl_msgs.msg import EffortCommand

    def command(names: list[str], efforts: list[float], offset: float = 0.0) -> Any:
        def make(node: Any) -> Any:
            msg = EffortCommand(name=names, effort=efforts)
            msg.header.stamp = _stamp(node, offset)
            return msg

        return make

    return {
        "nan": ("rejected_non_finite", command(JOINTS, [math.nan, 2.0])),
        "inf": ("rejected_non_finite", command(JOINTS, [2.0, -math.inf])),
        "too_short": ("rejected_wrong_length", command(["hip"], [2.0])),
        "too_long": ("rejected_wrong_length", command(JOINTS + ["ankle"], [2.0, 2.0, 2.0])),
        "names_values_mismatch": ("rejected_wrong_length", command(JOINTS, [2.0])),
        "unknown_joint": ("rejected_unknown_joint", command(["hip", "ankle"], [2.0, 2.0])),
        "duplicate_joint": ("rejected_duplicate_joint", command(["hip", "hip"], [2.0, 2.0])),
        "stale_stamp": ("rejected_stale", command(JOINTS, [2.0, 2.0], offset=-1.0)),
        "future_stamp": ("rejected_future_stamp", command(JOINTS, [2.0, 2.0], offset=1.0)),
    }


def state_cases() -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """kind -> (the controller's counter, JointState factory)."""
    from sensor_msgs.msg import JointState

    def state(names: list[str], q: list[float], qd: list[float], offset: float = 0.0) -> Any:
        def make(node: Any) -> Any:
            msg = JointState(name=names, position=q, velocity=qd)
            msg.header.stamp = _stamp(node, offset)
            return msg

        return make

    good_q, good_qd = [0.3, -1.2], [0.0, 0.0]
    return {
        "nan_position": ("states_rejected_non_finite", state(JOINTS, [math.nan, -1.2], good_qd)),
        "inf_velocity": ("states_rejected_non_finite", state(JOINTS, good_q, [0.0, math.inf])),
        "short_position": ("states_rejected_wrong_length", state(JOINTS, [0.3], good_qd)),
        "no_velocity": ("states_rejected_wrong_length", state(JOINTS, good_q, [])),
        "unknown_joints": ("states_rejected_unknown_joint", state(["a", "b"], good_q, good_qd)),
        "missing_joint": ("states_rejected_unknown_joint", state(["hip"], [0.3], [0.0])),
        "stale_stamp": ("states_rejected_stale", state(JOINTS, good_q, good_qd, offset=-1.0)),
        "future_stamp": ("states_rejected_future_stamp", state(JOINTS, good_q, good_qd, 1.0)),
    }


def inject(
    recorder: Recorder,
    publisher: Any,
    cases: dict[str, tuple[str, Callable[[Any], Any]]],
    status_suffix: str,
    repeats: int,
    applied: Callable[[], int],
) -> tuple[dict[str, dict[str, int]], int]:
    """Send every case ``repeats`` times; per case sent/counted, and the total ``applied()``."""
    per_case: dict[str, dict[str, int]] = {}
    bad = 0
    values = recorder.fresh_diagnostics(status_suffix) or {}
    for kind, (counter, make) in cases.items():
        before = int(values.get(counter, "0"))
        start = applied()
        counted = 0
        for sent in range(1, repeats + 1):
            publisher.publish(make(recorder.node))
            recorder.wait(SPACING)
            end = time.monotonic() + COUNT_WAIT
            while counted < sent and time.monotonic() < end:
                values = recorder.fresh_diagnostics(status_suffix, timeout=COUNT_WAIT) or values
                counted = int(values.get(counter, "0")) - before
        bad += applied() - start
        per_case[kind] = {"sent": repeats, "counted": counted}
    return per_case, bad


def _command(node: Any, hip: float, stamp: Any, sequence: int) -> Any:
    from mdemorl_msgs.msg import EffortCommand

    msg = EffortCommand(name=JOINTS, effort=[hip, 0.0], sequence=sequence)
    msg.header.stamp = stamp
    return msg


# What a corrupted command arriving too late is rightly rejected as instead of out of order:
# older than max_command_age, or stamped before a watchdog trip that happened meanwhile.
LATE_REJECTIONS = ("rejected_stale", "rejected_before_trip")


def order_faults(
    recorder: Recorder, publisher: Any, repeats: int
) -> tuple[dict[str, dict[str, int]], int]:
    """Per case an accepted command then one delivered out of order after it (``older_stamp``:
        stamped 1 ms before it, ``duplicate``: its stamp and sequence again); per case sent/counted,
        and the corrupted hip torque seen applied. A corrupted command that arrives after
        max_command_age (or stamped before a watchdog trip) is rightly rejected as stale (before the
    trip) instead: reported as ``late``, not as sent; an
        attempt whose accepted command was not seen applied in time as ``skipped_unconfirmed``."""
    from rclpy.duration import Duration
    from rclpy.time import Time

    per_case: dict[str, dict[str, int]] = {}
    bad = 0
    values = recorder.fresh_diagnostics("safety") or {}
    for kind in ("older_stamp", "duplicate"):
        before = {
            key: int(values.get(key, "0")) for key in ("rejected_out_of_order", *LATE_REJECTIONS)
        }
        sent = skipped = 0
        for attempt in range(20 * repeats):
            if sent == repeats:
                break
            sequence = 1_000_000 + attempt  # far from the restarted controller's 0 afterwards
            good = GOOD_HIP + GOOD_STEP * (attempt % GOOD_VALUES)
            stamp = _stamp(recorder.node, LEAD)
            mark = len(recorder.states)
            published_at = time.time()
            publisher.publish(_command(recorder.node, good, stamp, sequence))
            began = time.monotonic()
            seen = False
            while not seen and time.monotonic() - began < CONFIRM_WITHIN:
                recorder.harness.executor.spin_once(timeout_sec=0.0005)
                seen = any(
                    abs(e[0] - good) < GOOD_STEP / 3 and s >= published_at
                    for s, e in recorder.states[mark:]
                )
            if seen:
                if kind == "older_stamp":
                    earlier = Time.from_msg(stamp) - Duration(nanoseconds=1_000_000)
                    stamp, sequence = earlier.to_msg(), sequence + 1
                publisher.publish(_command(recorder.node, BAD_HIP, stamp, sequence))
                sent += 1
            else:
                skipped += 1
            recorder.wait(SPACING)
            bad += sum(e[0] < BAD_HIP / 2 for _, e in recorder.states[mark:])
        recorder.wait(0.1)
        values = recorder.fresh_diagnostics("safety") or {}
        grown = {key: int(values.get(key, "0")) - n for key, n in before.items()}
        # A late rejection may be an accepted-to-be command's: only as many as out-of-order
        # counts are missing are the corrupted ones' (a corrupted command acted on shows as
        # ``bad`` either way).
        late_rejections = sum(grown[key] for key in LATE_REJECTIONS)
        late = min(late_rejections, max(sent - grown["rejected_out_of_order"], 0))
        per_case[kind] = {
            "sent": sent - late,
            "counted": grown["rejected_out_of_order"],
            "late": late,
            "skipped_unconfirmed": skipped,
        }
    return per_case, bad


def effort_faults(
    harness: Any, recorder: Recorder, process: Any, repeats: int, node: str
) -> dict[str, Any]:
    """Corrupted /effort_command into ``node`` (motor driver or sim robot, already publishing
    joint states to ``recorder``), then 0.3 s of valid commands."""
    from mdemorl_msgs.msg import EffortCommand
    from mdemorl_ros.ros_common import STATE_QOS

    publisher = recorder.node.create_publisher(EffortCommand, "/effort_command", STATE_QOS)
    harness.spin_until(lambda: publisher.get_subscription_count() > 0, 10.0)

    def torque_states() -> int:
        return sum(any(abs(e) > 0.01 for e in efforts) for _, efforts in recorder.states)

    per_case, bad = inject(recorder, publisher, effort_cases(), "safety", repeats, torque_states)
    order_cases, order_bad = order_faults(recorder, publisher, repeats)
    per_case, bad = {**per_case, **order_cases}, bad + order_bad
    mark = len(recorder.states)
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        msg = EffortCommand(name=JOINTS, effort=[0.5, 0.5])
        msg.header.stamp = _stamp(recorder.node, 0.0)
        publisher.publish(msg)
        recorder.wait(0.002)
    alive = any(abs(e[0] - 0.5) < 0.05 for _, e in recorder.states[mark:])
    tracebacks = count_tracebacks(harness.output(process))
    return record_for(
        "corrupted /effort_command", node, per_case, bad, alive=alive, tracebacks=tracebacks
    )


def corrupt_sim_efforts(repeats: int, salt: int) -> list[dict[str, Any]]:
    """:func:`effort_faults`, then the corrupted controller phases of
    :func:`_faults_ros_phase.phase_faults`, against the sim robot in its own process (pausing
    as soon as the controller holds; nothing reports a phase before those cases)."""
    from _faults_ros_phase import phase_faults, sim_paused

    from mdemorl_ros.ros_testing import RosHarness

    harness = RosHarness(salt=salt)
    try:
        recorder = Recorder(harness, "faults_effort_probe")
        process = harness.start(
            # 20 Hz statuses: each corrupted message waits for the status that counts it
            "leg2r_driver.sim_robot_node",
            {"diagnostics_rate": 20.0, "pause_after_hold": 0.0},
        )
        harness.spin_until(lambda: len(recorder.states) > 10, 60.0)
        return [
            effort_faults(harness, recorder, process, repeats, "sim_robot_node"),
            phase_faults(
                harness,
                recorder,
                process,
                repeats,
                "sim_robot_node",
                "sim_robot_node: safety",
                sim_paused,
            ),
        ]
    finally:
        harness.close()


def joint_state_faults(
    harness: Any, recorder: Recorder, process: Any, repeats: int
) -> dict[str, Any]:
    """Corrupted /joint_states into a torque controller (random default action) that has no
    other state source, then 0.5 s of valid states: it must command again."""
    from sensor_msgs.msg import JointState

    from mdemorl_ros.ros_common import STATE_QOS

    publisher = recorder.node.create_publisher(JointState, "/joint_states", STATE_QOS)
    harness.spin_until(lambda: publisher.get_subscription_count() > 0, 60.0)
    recorder.fresh_diagnostics("torque_controller_node", 30.0)
    per_case, bad = inject(
        recorder,
        publisher,
        state_cases(),
        "torque_controller_node",
        repeats,
        lambda: len(recorder.commands),
    )
    mark = len(recorder.commands)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        msg = JointState(name=JOINTS, position=[0.3, -1.2], velocity=[0.0, 0.0])
        msg.header.stamp = _stamp(recorder.node, 0.0)
        publisher.publish(msg)
        recorder.wait(0.004)
    alive = len(recorder.commands) > mark
    tracebacks = count_tracebacks(harness.output(process))
    return record_for(
        "corrupted /joint_states",
        "torque_controller_node",
        per_case,
        bad,
        alive=alive,
        tracebacks=tracebacks,
    )
