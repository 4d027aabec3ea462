"""StochLite fault family of issue 14 (see bench/faults.py): the quadruped's driver and gait
controller, on the simulated B3M bus (issue 12).

``run(quick)`` injects, one at a time:

- corrupted joint targets into servo_driver_node (JointTrajectory and Float64MultiArray: NaN/Inf,
  wrong lengths, unknown and duplicate joints, stale, future and missing stamps, no or two
  points), the simulated B3M bus failing mid-run (a servo silent, bad checksums, short replies,
  for 3 requests and until cleared; garbage bytes on the line; the pty closed)
  (bench/_faults_stochlite_driver.py, the driver in this process: bench/_faults_stochlite_rig.py);
- corrupted /imu/data into servo_driver_node's attitude guard (NaN/Inf, non-unit quaternions,
  stale, future and missing stamps) and the IMU lost (silent, or only NaN samples, for longer
  than attitude_timeout) (bench/_faults_stochlite_imu.py);
- corrupted /joint_states, /imu/data and PolicyUpdate into gait_controller_node, and SIGKILL of
  the gait controller walking the servo driver: the watchdog's HOLD, then FREE
  (bench/_faults_stochlite_gait.py).

Returns the same record layout as the ``ros`` family (bench/_faults_ros.py,
bench/_faults_ros_common.py): ``{"suite": "stochlite", "quick", "seconds", "injections",
"bad_applied", "tracebacks", "faults", "misbehaving", "limits", "not_covered", "fixed", "open"}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from _faults_ros import _guarded
from _faults_stochlite_driver import bus_faults, target_faults
from _faults_stochlite_gait import gait_input_faults, gait_kill_series
from _faults_stochlite_imu import imu_faults, imu_loss_faults
from _faults_stochlite_rig import DriverRig

NOT_COVERED = [
    "stochlite_sim_node's joint-target callbacks: the same ServoTargetsNode code and ServoSafety "
    "as servo_driver_node (bench/_faults_stochlite_driver.py exercises them in the driver)",
    "SIGKILL of servo_driver_node itself: with the driver gone nothing talks to the servos, and "
    "the simulated B3M has no command timeout and HARDWARE.md names none for the real servo: "
    "they keep their last mode",
    "stochlite_sim_node's /mdemorl/controller_phase (its physics pause): the leg's sim robot "
    "runs the same check (controller_phase_rejection) and is covered in the ros family",
    "the reset service of gait_controller_node (std_srvs/Trigger: no payload to corrupt)",
    "a real RS-485 adaptor and real B3M servos: the bus faults are injected into the simulated "
    "bus on a pty, in the driver's own process (a late simulated reply also counts as a failure "
    "on a loaded machine)",
]
FIXED = [
    "gait_controller_node: an unknown or refused /stochlite/posture_command was only logged, "
    "whole (a 90 000-character command went into the log as it came), and counted nowhere; "
    "now counted as posture_rejected_unknown / posture_refused on /diagnostics, the log line "
    "truncated and throttled",
    "servo_driver_node: the pty closed (an unplugged USB/RS-485 adaptor) raised SerialException "
    "(read) and termios.error (flushing the input) out of the servo loop, which died: no "
    "/joint_states, no e-stop; B3MBus now raises B3MPortError, counted per servo, and the missed "
    "replies latch the e-stop (bus: ...) after max_missed_replies ticks",
    "servo_driver_node: a mode write whose reply was lost (garbage, bad checksum, timeout) kept "
    "the mode the driver believed in, although the servo may have taken the write: after a "
    "watchdog HOLD whose reply was garbled a servo stayed in HOLD while the driver tracked (seen "
    "with garbage bytes on the line); the mode is now unknown and rewritten next tick",
    "gait_controller_node: a JointState with fewer positions or velocities than names raised "
    "IndexError in the callback; NaN/Inf states, future stamps and NaN IMU samples were used "
    "and nothing was counted; now rejected (leg2r_driver.controller_core.select_joint_state) "
    "and counted as states_rejected_* / imu_rejected_non_finite on /diagnostics",
    "servo_driver_node: corrupted /imu/data went straight into the attitude guard, nothing "
    "counted: a NaN or Inf in x or y came out as a clamped pitch of 90 deg and latched the "
    "e-stop (a NaN roll alone never would), a non-unit quaternion's meaningless roll and pitch "
    "were used, and stale or future samples were trusted; nothing "
    "noticed an IMU that went silent or bad (the guard blind while the robot walked). Now "
    "servo_safety rejects them, counted as imu_rejected_* on /diagnostics, and no valid "
    "attitude for attitude_timeout (0.5 s) once one has arrived latches the e-stop (servos FREE)",
    "gait_controller_node: a PolicyUpdate declaring the right dims for an actor of other dims "
    "raised in the policy loader thread's warm-up call and ended the thread: no later policy was "
    "loaded; the actor's own dims are now checked (rejected and counted)",
]


def _driver_faults(repeats: int, salt: int) -> list[dict[str, Any]]:
    """Targets and the IMU first, then the bus faults (the pty closed last: it cannot be
    undone)."""
    from mdemorl_ros.ros_testing import RosHarness

    harness = RosHarness(salt=salt)
    rig = DriverRig(int(harness.env["ROS_DOMAIN_ID"]))
    try:
        records = [
            target_faults(rig, repeats),
            imu_faults(rig, repeats),
            *imu_loss_faults(rig),
            *bus_faults(rig),
        ]
        caught = list(rig.faults.caught)
    finally:
        rig.close()
        harness.close()
    # Which scenario a thread died in is not known: all on the first record, counted once.
    records[0]["tracebacks"] = len(caught)
    records[0]["misbehaving"] += [f"exception in a thread: {text}" for text in caught]
    return records


def run(quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    repeats = 2 if quick else 10
    kills = 2 if quick else 20
    scenarios: list[tuple[str, Callable[[], Any]]] = [
        ("servo_driver_node: targets and B3M bus", lambda: _driver_faults(repeats, 41)),
        ("gait_controller_node: corrupted inputs", lambda: gait_input_faults(repeats, 42)),
        ("SIGKILL gait_controller_node", lambda: gait_kill_series(kills, 43)),
    ]
    faults: list[dict[str, Any]] = []
    for name, scenario in scenarios:
        began = time.perf_counter()
        for record in _guarded(name, scenario):
            record["seconds"] = round(time.perf_counter() - began, 1)
            faults.append(record)

    def gather(key: str) -> list[dict[str, str]]:
        return [{"fault": r["fault"], "what": what} for r in faults for what in r.get(key, [])]

    return {
        "suite": "stochlite",
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "injections": sum(int(record["injections"]) for record in faults),
        "bad_applied": sum(int(record.get("bad_applied", 0)) for record in faults),
        "tracebacks": sum(int(record.get("tracebacks", 0)) for record in faults),
        "faults": faults,
        "misbehaving": gather("misbehaving"),
        "timing_outliers": [],
        "limits": gather("limits"),
        "not_covered": NOT_COVERED,
        "fixed": FIXED,
        "open": [],
    }


if __name__ == "__main__":
    import json
    import sys

    json.dump(run(quick="--quick" in sys.argv), sys.stdout, indent=1, default=str)
