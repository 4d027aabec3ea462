"""servo_driver_node's faults (bench/_faults_stochlite.py): corrupted joint targets and the
simulated B3M bus failing mid-run, against :class:`_faults_stochlite_rig.DriverRig`.

Targets: while valid targets P0 stream in on one topic (10 ms apart), corrupted targets asking
for P1 go to the other topic, ``repeats`` of each kind, each sent once the driver has counted the
one before (or after COUNT_WAIT): the target topics are best-effort keep-last-1, so a message sent
while the driver's executor is busy would overwrite the one still queued. Per kind, the driver's
/diagnostics counter for it must grow by exactly ``repeats`` (``counted``), and no simulated
servo's desired-position register may leave P0 (``applied``: kinds whose targets moved one);
afterwards a valid JointTrajectory to P2 must be obeyed (``alive``).

Bus (servo_driver_core's documented semantics: a failed reply is counted per servo and keeps
the last reading; ``max_missed_replies`` consecutive misses latch the e-stop, which makes the
servos FREE until ``~/estop false`` and a fresh target): a transient fault (3 requests) must be
counted and change nothing else; a persistent one (silent servo, bad checksums, short replies,
garbage bytes on the line) must latch the e-stop, be reported ERROR on /diagnostics, leave the
reachable servos FREE, and, once the bus works, the release must bring tracking back. The pty
closed (the adaptor unplugged) is last: the e-stop latches and the loop keeps running, but no
servo can be told anything any more.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _faults_ros_common import diagnostic_level, fault_record, record_for, summary
from _faults_stochlite_rig import SAFETY_STATUS, DriverRig, poses

COUNT_WAIT = 2.0  # s for the driver to count one corrupted message (statuses come at 20 Hz)
MOVED = 2e-3  # rad; a desired position this far from P0 means a corrupted target acted
PERSISTENT = 1_000_000  # requests: a fault that lasts until cleared
ERROR = 2
FAILURE_KEYS = ("B3MTimeout", "B3MChecksumError", "B3MShortReply", "B3MReplyMismatch")


def target_cases(rig: DriverRig) -> dict[str, tuple[str, str, Callable[[], Any]]]:
    """kind -> (topic kind, the driver's counter, message factory); all ask for P1."""
    from std_msgs.msg import Float64MultiArray
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from stochlite_driver.robot import JOINT_NAMES

    names, p1 = list(JOINT_NAMES), poses()[1].tolist()

    def trajectory(
        n: list[str], q: list[float], offset: float = 0.0
    ) -> tuple[str, Callable[[], Any]]:
        return "trajectory", lambda: rig.trajectory(n, q, offset)

    def points(count: int) -> tuple[str, Callable[[], Any]]:
        def make() -> Any:
            msg = JointTrajectory(joint_names=names)
            msg.header.stamp = rig.stamp()
            msg.points = [JointTrajectoryPoint(positions=p1) for _ in range(count)]
            return msg

        return "trajectory", make

    def array(data: list[float]) -> tuple[str, Callable[[], Any]]:
        return "array", lambda: Float64MultiArray(data=data)

    def unstamped() -> tuple[str, Callable[[], Any]]:
        def make() -> Any:
            msg = rig.trajectory(names, p1)
            msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0
            return msg

        return "trajectory", make

    cases = {
        "trajectory_nan": ("rejected_non_finite", trajectory(names, [math.nan, *p1[1:]])),
        "trajectory_inf": ("rejected_non_finite", trajectory(names, [*p1[:-1], math.inf])),
        "trajectory_too_short": ("rejected_wrong_length", trajectory(names[:11], p1[:11])),
        "trajectory_too_long": ("rejected_wrong_length", trajectory([*names, "tail"], [*p1, 0.0])),
        "trajectory_names_values_mismatch": ("rejected_wrong_length", trajectory(names, p1[:11])),
        "trajectory_unknown_joint": ("rejected_unknown_joint", trajectory(["tail", *names[1:]], p1)),
        "trajectory_duplicate_joint": ("rejected_duplicate_joint", trajectory([names[1], *names[1:]], p1)),
        "trajectory_stale_stamp": ("rejected_stale", trajectory(names, p1, -1.0)),
        "trajectory_future_stamp": ("rejected_future_stamp", trajectory(names, p1, 1.0)),
        "trajectory_unstamped": ("rejected_stale", unstamped()),
        "trajectory_no_points": ("rejected_trajectory", points(0)),
        "trajectory_two_points": ("rejected_trajectory", points(2)),
        "array_too_short": ("rejected_wrong_length", array(p1[:11])),
        "array_too_long": ("rejected_wrong_length", array([*p1, 0.0])),
        "array_empty": ("rejected_wrong_length", array([])),
        "array_nan": ("rejected_non_finite", array([*p1[:5], math.nan, *p1[6:]])),
        "array_inf": ("rejected_non_finite", array([-math.inf, *p1[1:]])),
    }  # fmt: skip
    return {kind: (topic, counter, make) for kind, (counter, (topic, make)) in cases.items()}


def target_faults(rig: DriverRig, repeats: int) -> dict[str, Any]:
    p0, _, p2 = poses()
    rig.feed_array(p0)
    if not rig.tracking(p0, timeout=10.0):
        raise RuntimeError(f"the driver never tracked P0 (phase {rig.phase()})")
    per_case: dict[str, dict[str, int]] = {}
    applied = 0
    for kind, (topic, counter, make) in target_cases(rig).items():
        # The valid feed goes to the other topic: a keep-last-1 queue never drops a corrupted one.
        (rig.feed_trajectory if topic == "array" else rig.feed_array)(p0)
        publisher = rig.array_pub if topic == "array" else rig.trajectory_pub
        time.sleep(0.05)
        before = int(rig.fresh_status(SAFETY_STATUS).get(counter, "0"))
        moved, counted = 0.0, 0
        for sent in range(1, repeats + 1):
            publisher.publish(make())
            end = time.monotonic() + COUNT_WAIT
            while counted < sent and time.monotonic() < end:
                moved = max(moved, float(np.max(np.abs(rig.desired() - p0))))
                counted = int(rig.latest_status(SAFETY_STATUS).get(counter, "0")) - before
                time.sleep(0.001)
        time.sleep(0.05)
        moved = max(moved, float(np.max(np.abs(rig.desired() - p0))))
        counted = int(rig.fresh_status(SAFETY_STATUS).get(counter, "0")) - before
        applied += moved > MOVED
        per_case[kind] = {"sent": repeats, "counted": counted, "moved_urad": round(moved * 1e6)}
    rig.feed_trajectory(p2)
    alive = rig.tracking(p2, timeout=3.0)
    rig.feed_array(p0)
    return record_for(
        "corrupted joint targets (/joint_targets, /position_controller/commands)",
        "servo_driver_node",
        per_case,
        applied,
        acted_note="kinds of corrupted targets moved a servo",
        ignored_note="a valid JointTrajectory afterwards was not obeyed",
        alive=alive,
    )


def _servo_errors(rig: DriverRig, index: int) -> int:
    """Failed requests counted for servo ``index`` (the driver's per-servo status)."""
    from stochlite_driver.robot import JOINT_NAMES

    values = rig.fresh_status(JOINT_NAMES[index])
    return sum(
        int(values.get(key, "0")) for key in ("B3MTimeout", "B3MChecksumError", "B3MShortReply")
    )


def transient(rig: DriverRig, kind: str, servo_index: int) -> dict[str, Any]:
    """``kind`` for the next 3 requests to one servo: counted, nothing else changes."""
    p0 = poses()[0]
    servo_id = rig.node.core.servo_ids[servo_index]
    rig.tracking(p0)
    before = _servo_errors(rig, servo_index)
    rig.sim.inject(servo_id, kind, count=3)
    time.sleep(0.2)
    counted = _servo_errors(rig, servo_index) - before
    outcome = {
        "failures_counted": counted,
        "estop_latched": rig.node.safety.estop_active,
        "still_tracking": rig.tracking(p0, timeout=0.5),
    }
    # More than 3 is possible: on a loaded machine the in-process simulation can answer late.
    misbehaving = [] if counted >= 3 else [f"{counted} of 3 failed replies counted"]
    misbehaving += ["e-stop latched by 3 failed replies"] if outcome["estop_latched"] else []
    misbehaving += [] if outcome["still_tracking"] else ["stopped tracking"]
    return fault_record(
        f"B3M: {kind} reply x3 (servo {servo_id})",
        "servo_driver_node",
        3,
        outcomes=outcome,
        misbehaving=misbehaving,
    )


def _all_failures(rig: DriverRig) -> tuple[int, int]:
    """(failed requests summed over the servos' statuses, their highest level) on /diagnostics."""
    from stochlite_driver.robot import JOINT_NAMES

    rig.fresh_status(JOINT_NAMES[-1])
    total, level = 0, 0
    for array in rig.diagnostics[-1:]:
        for status in array.status:
            if status.name.split(": ")[-1] in JOINT_NAMES:
                values = {kv.key: kv.value for kv in status.values}
                total += sum(int(values.get(key, "0")) for key in FAILURE_KEYS)
                level = max(level, int.from_bytes(status.level, "little"))
    return total, level


def garbage(rig: DriverRig, seconds: float = 0.5) -> dict[str, Any]:
    """Random bytes on the line from the servos' side every 0.5 ms for ``seconds``, while the
    driver tracks P0: failed replies are counted (a servo missing ``max_missed_replies`` in a row
    may latch the e-stop: also correct), no target moves, and afterwards every servo is in the
    mode the driver wants (a lost mode-write reply must not leave one in the old mode)."""
    from stochlite_driver.b3m import RunMode

    p0 = poses()[0]
    rig.tracking(p0)
    before, _ = _all_failures(rig)
    rng = random.Random(3)
    levels, moved, writes = [], 0.0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        os.write(rig.sim._master, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24))))
        writes += 1
        moved = max(moved, float(np.max(np.abs(rig.desired() - p0))))
        time.sleep(0.0005)
    time.sleep(0.1)
    counted, level = _all_failures(rig)
    latched = rig.node.safety.estop_active
    if latched:
        rig.release_estop()
    tracking = rig.tracking(p0, timeout=3.0)
    time.sleep(0.1)
    consistent = rig.wait_for(lambda: all(m == RunMode.NORMAL for m in rig.modes()), 1.0)
    levels.append(level)
    outcome = {
        "failures_counted": counted - before,
        "estop_latched": latched,
        "targets_moved": moved > MOVED,
        "tracking_after": tracking,
        "servo_modes_as_driver_wants": consistent,
    }
    misbehaving = [] if counted > before else ["no failed reply counted"]
    misbehaving += ["a target moved"] if moved > MOVED else []
    misbehaving += [] if tracking else ["not tracking afterwards"]
    misbehaving += [] if consistent else [f"servo modes {rig.modes()} while the driver tracks"]
    return fault_record(
        f"B3M: garbage bytes on the line for {seconds * 1e3:.0f} ms",
        "servo_driver_node",
        writes,
        outcomes=outcome,
        misbehaving=misbehaving,
        limits=["a garbage reply with a valid size, id, command and checksum is taken as data"],
    )


def await_latch(
    rig: DriverRig, began: float, timeout: float
) -> tuple[float | None, bool, dict[str, str], int | None]:
    """After a fault started at ``began`` (monotonic): seconds until the e-stop latched (None:
    not within ``timeout``), whether every servo went FREE, and the safety status's values and
    level that followed."""
    from stochlite_driver.b3m import RunMode

    latched = rig.wait_for(lambda: rig.node.safety.estop_active, timeout, 0.0005)
    latched_after = time.monotonic() - began if latched else None
    relaxed = rig.wait_for(lambda: all(m == RunMode.FREE for m in rig.modes()), 1.0)
    values = rig.fresh_status(SAFETY_STATUS)
    return latched_after, relaxed, values, diagnostic_level(rig.diagnostics, SAFETY_STATUS)


def persistent(
    rig: DriverRig, name: str, start: Callable[[], None], end: Callable[[], None]
) -> dict[str, Any]:
    """A fault that lasts until ``end()``: latched, ERROR, servos FREE, release resumes."""
    from stochlite_driver.b3m import RunMode

    p0 = poses()[0]
    tracking_before = rig.tracking(p0)
    began = time.monotonic()
    start()
    latched_after, relaxed, values, level = await_latch(rig, began, 2.0)
    latched = latched_after is not None
    end()
    time.sleep(0.2)  # the bus works again, valid targets keep coming: the stop must hold
    held = rig.phase() == "estop" and all(m == RunMode.FREE for m in rig.modes())
    rig.release_estop()
    released = time.monotonic()
    resumed = rig.tracking(p0, timeout=3.0)
    outcome = {
        "tracking_before": tracking_before,
        "estop_latched": latched,
        "reported_error": level == ERROR and values.get("estop_reason", "").startswith("bus:"),
        "servos_free": relaxed,
        "free_until_release": held,
        "tracking_after_release": resumed,
    }
    return fault_record(
        f"B3M: {name}",
        "servo_driver_node",
        1,
        outcomes=outcome,
        figures={
            "fault_to_estop": summary([latched_after] if latched_after is not None else []),
            "release_to_tracking": summary([time.monotonic() - released] if resumed else []),
        },
        estop_reason=values.get("estop_reason", ""),
        misbehaving=[key for key, value in outcome.items() if not value],
    )


def unplugged(rig: DriverRig) -> dict[str, Any]:
    """The pty's device side closed mid-run (irrecoverable: run last)."""
    states = rig.states
    began = time.monotonic()
    rig.sim._stop.set()
    os.close(rig.sim._master)
    rig.sim.close = lambda: None  # its descriptor is gone; the node's stop() must not close it
    latched = rig.wait_for(lambda: rig.node.safety.estop_active, 3.0, 0.0005)
    latched_after = time.monotonic() - began if latched else None
    values = rig.fresh_status(SAFETY_STATUS)
    time.sleep(0.3)
    outcome = {
        "estop_latched": latched,
        "reported_error": values.get("estop_reason", "").startswith("bus:"),
        "loop_running": rig.node.thread.is_alive() and rig.states > states + 10,
    }
    return fault_record(
        "B3M: pty closed (adaptor unplugged)",
        "servo_driver_node",
        1,
        outcomes=outcome,
        figures={"fault_to_estop": summary([latched_after] if latched_after is not None else [])},
        estop_reason=values.get("estop_reason", ""),
        misbehaving=[key for key, value in outcome.items() if not value],
        limits=["with the bus gone no servo can be relaxed: each keeps its last mode and target"],
    )


def bus_faults(rig: DriverRig) -> list[dict[str, Any]]:
    rig.feed_array(poses()[0])
    records = [transient(rig, kind, 4) for kind in ("silent", "bad_checksum", "short")]

    def clear() -> None:
        with rig.sim._lock:
            rig.sim._faults.clear()

    for kind in ("silent", "bad_checksum", "short"):
        servo_id = rig.node.core.servo_ids[7]
        records.append(
            persistent(
                rig,
                f"{kind} servo {servo_id} until cleared",
                lambda kind=kind, servo_id=servo_id: rig.sim.inject(servo_id, kind, PERSISTENT),
                clear,
            )
        )
    records.append(garbage(rig))
    records.append(unplugged(rig))
    return records
