"""ROS fault families of issue 14, against the leg's nodes on this machine (see bench/faults.py).

``run(quick)`` injects, one at a time:

- SIGKILL of the torque controller next to the motor driver on the simulated CAN bus, idle and
  with a trainer-like CPU load (bench/_faults_ros_kill.py): kill-to-zero-torque figures;
- corrupted /effort_command (motor driver, sim robot; out-of-order and duplicated commands
  too), /joint_states (torque controller), PolicyUpdate (torque controller), Transition
  (trainer) and /mdemorl/controller_phase (sim robot, trainer) messages
  (bench/_faults_ros_inputs.py, bench/_faults_ros_learning.py, bench/_faults_ros_phase.py):
  every one counted on /diagnostics, none acting;
- the CAN bus and the serial IMU failing mid-run (bench/_faults_ros_bus.py);
- SIGKILL of the sim robot (and, full run only, of the motor driver) under a running torque
  controller, relaunched (bench/_faults_ros_robot_kill.py): stale states detected, nothing
  commanded or learned meanwhile, ERROR on /diagnostics, recovery;
- full run only: SIGKILL of the planner (mode mpc) and of the trainer with a resumed relaunch
  (bench/_faults_ros_graph.py).

Returns ``{"suite": "ros", "quick", "seconds", "injections", "faults": [record, ...],
"misbehaving": [...], "timing_outliers": [...], "limits": [...], "not_covered": [...], "fixed",
"open"}``: misbehaving is what went functionally wrong, timing_outliers the kills whose zero
torque came later than _faults_ros_kill.OUTLIER_MS (figures, which tests never assert); each
record is described in
bench/_faults_ros_common.py. A scenario whose harness fails is recorded with ``harness_error``
(and counted as misbehaving), so one broken scenario never hides the others.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from _faults_ros_bus import can_faults, imu_faults
from _faults_ros_graph import planner_kill, trainer_kill_and_resume
from _faults_ros_inputs import corrupt_sim_efforts
from _faults_ros_kill import kill_series
from _faults_ros_learning import corrupt_controller, corrupt_transitions
from _faults_ros_robot_kill import robot_kill

NOT_COVERED = [
    "the monitor and Foxglove nodes' subscriptions (display only: they act on nothing; the "
    "monitor shows a corrupted /mdemorl/controller_phase as it came)",
    "the motors' side of a SIGKILLed motor driver: with the driver gone nothing sends them a "
    "command, so only the motors' firmware CAN timeout stops them (HARDWARE.md); the controller's "
    "side is covered",
    "a real SocketCAN bus and a real BNO055: the bus and IMU faults are simulated (python-can "
    "virtual bus, pty)",
]
FULL_ONLY = [
    "SIGKILL planner_node (mode mpc): full run only",
    "SIGKILL trainer_node + resume: full run only",
    "SIGKILL motor_driver_node under the controller: full run only (quick: the sim robot, once)",
]
# What this suite found misbehaving, and the fix (so the report says why a fault now passes).
FIXED = [
    "torque_controller_node: a JointState with fewer positions than names raised IndexError in "
    "the callback and killed the 500 Hz loop thread (no command, no diagnostics); NaN/Inf, "
    "unknown joints, stale and future stamps were not counted, and a future-stamped state was "
    "acted on: now controller_core.select_joint_state rejects them, counted as "
    "states_rejected_* on /diagnostics",
    "torque_controller_node: a PolicyUpdate whose weights do not fit its own architecture raised "
    "RuntimeError in the policy loader thread, which died: no later policy was ever loaded; "
    "policy_io.deserialize_actor now raises ValueError (rejected and counted)",
    "torque_controller_node: a SIGKILLed sim robot or motor driver left it on WARN (missed "
    "periods) on /diagnostics, never ERROR, while it commanded and learned nothing; now ERROR "
    "'no fresh joint states' after STATE_LOST_AFTER (1 s), cleared when states return",
    "torque_controller_node (mode mpc): a planner killed with a request in flight left it "
    "pending forever, so a relaunched planner was never used; the request is now abandoned "
    "after PLAN_TIMEOUT (0.5 s) and counted as a failed plan",
    "motor_driver_node: bus off / adaptor unplugged was counted (bus_errors) but never a fault "
    "(an unsent command was not a missed reply) and nothing latched; now an unsent command "
    "counts as a missed reply, torque is zeroed after max_missed_replies ticks and the fault "
    "latches the e-stop after fault_latch_timeout (0.1 s) until ~/estop false; garbage frames "
    "make the bus status WARN",
    "motor_driver_node, sim_robot_node: an EffortCommand delivered after a newer one (older "
    "stamp, still within max_command_age) or twice (same stamp and sequence) was applied, "
    "putting an old torque back for a tick; freshness was judged by the stamp's age only. Now "
    "the safety gate rejects it (rejected_out_of_order on /diagnostics): order by the stamp, "
    "the sequence only tells a duplicate, so a restarted controller (sequence 0) is accepted",
    "sim_robot_node: any /mdemorl/controller_phase other than 'acting' (an unknown string, an "
    "empty one) started the hold timer and paused the physics; trainer_node took any report "
    "into its diagnostics and robot-time accounting (NaN or negative seconds into "
    "TrainingStatus); neither counted anything. Now mdemorl_ros.protocol.phase_rejection "
    "rejects unknown phases and protocols and NaN/Inf/negative seconds (also in "
    "stochlite_sim_node), counted as phase_rejected_* on /diagnostics",
    "imu_node: line noise that looked like a short reply raised ValueError and an unplugged "
    "port raised SerialException out of the timer callback, killing the node; bno055 now turns "
    "both into BNO055Error (retried, counted, ERROR on /diagnostics)",
    "motor_driver_node, sim_robot_node: the watchdog counted command_timeout from a command's "
    "delivery, so a command queued while the controller died and delivered after the trip (still "
    "fresh by max_command_age) put its torque back for another command_timeout: 2 watchdog trips "
    "in 2 of 20 idle controller kills (2026-12-02). The watchdog now counts from the command's "
    "stamp, and a trip is final for every command stamped before it (rejected_before_trip on "
    "/diagnostics)",
]


# Seen by earlier runs of this suite, not fixed; a given run may or may not reproduce it.
OPEN = [
    "motor_driver_node's 500 Hz loop stalled about 1 s right after a controller SIGKILL in 2 "
    "of the 180 kills run here on 2026-12-02 with the default transports (one idle, one "
    "loaded: /joint_states gap 1001 ms, watchdog trip 1002 ms), so the motors kept the last "
    "command for 1 s. Suspected: Fast DDS's shared-memory transport (rmw_fastrtps adds it under "
    "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) health-checks a port left inoperative by a "
    "process killed while using it for healthy_check_timeout_ms (default 1000 ms) in the "
    "thread that uses it. Not confirmed: with UDP only (ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET, "
    "FASTDDS_BUILTIN_TRANSPORTS=UDPv4; under LOCALHOST neither that variable nor an XML profile "
    "removes the shared-memory transport) 0 of 60 loaded kills stalled, but so did 0 of 60 with "
    "shared memory right after. Independent of the host: the motors' firmware CAN timeout",
    "the driver's last-valid-command-to-zero-torque p99 varied between full runs before "
    "2026-12-02 15:00 (20 kills each): 11.4-18.4 ms loaded, 12.0-14.8 ms idle, the late trips "
    "coming with 5-18 ms stalls of the driver's loop right after the kill (/joint_states gaps) in "
    "1-4 of 20 kills (the 14:00 run: 4 idle, 1 loaded). The four runs since the watchdog counts "
    "from the stamp (2026-12-02 15:01-16:24): p99 11.9 / 11.8, 12.0 / 11.8, 12.0 / 12.0 and "
    "11.9 / 11.9 ms (idle / loaded), no /joint_states gap over 4.8 ms in their 160 kills. The stamp rule cannot remove a loop stall, so "
    "whether the stalls are gone or did not happen is not established; 10 ms of the figure is "
    "command_timeout",
    "2 watchdog trips counted for one controller kill in 2 of 20 loaded kills of the full run of "
    "2026-12-02 16:13 (kills 0 and 1, right after the load process started), after the fix of "
    "re-arming by late commands; not seen in the 140 other kills since. The counting window "
    "starts at the driver's status before the kill, so a trip while the controller still ran "
    "(its commands stalled for command_timeout) would count too; the harness now tells such "
    "trips apart (pre_kill_trips, from zero-torque joint states before the kill) but no run "
    "since has had one, so the cause is not established",
]


def _guarded(name: str, scenario: Callable[[], Any]) -> list[dict[str, Any]]:
    """The scenario's record(s), or one record saying how its harness failed."""
    try:
        result = scenario()
    except Exception as error:  # the harness itself broke: report it, keep going
        return [
            {
                "fault": name,
                "target": "",
                "injections": 0,
                "outcomes": {},
                "figures": {},
                "bad_applied": 0,
                "tracebacks": 0,
                "harness_error": f"{type(error).__name__}: {error}",
                "detail": traceback.format_exc()[-1500:],
                "misbehaving": [f"harness error: {type(error).__name__}: {error}"],
            }
        ]
    return result if isinstance(result, list) else [result]


def run(quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    kills = 3 if quick else 20
    repeats = 2 if quick else 10  # each corrupted message waits for its count (≤ 1 status period)
    scenarios: list[tuple[str, Callable[[], Any]]] = [
        ("SIGKILL torque_controller_node", lambda: kill_series(kills, repeats, 21)),
        ("corrupted /effort_command (sim)", lambda: corrupt_sim_efforts(repeats, 24)),
        ("corrupted /joint_states, PolicyUpdate", lambda: corrupt_controller(repeats, 1 if quick else 3, 25)),
        ("corrupted Transition", lambda: corrupt_transitions(repeats, 27)),
        ("CAN bus faults", lambda: can_faults(28)),
        ("serial IMU faults", lambda: imu_faults(29)),
        ("SIGKILL sim_robot_node", lambda: robot_kill("sim_robot_node", 1 if quick else 10, 31)),
    ]  # fmt: skip
    if not quick:
        scenarios += [
            ("SIGKILL planner_node (mode mpc)", lambda: planner_kill(30)),
            ("SIGKILL trainer_node + resume", trainer_kill_and_resume),
            ("SIGKILL motor_driver_node", lambda: robot_kill("motor_driver_node", 10, 32)),
        ]
    faults: list[dict[str, Any]] = []
    for name, scenario in scenarios:
        began = time.perf_counter()
        for record in _guarded(name, scenario):
            record["seconds"] = round(time.perf_counter() - began, 1)
            faults.append(record)
    misbehaving = [
        {"fault": record["fault"], "what": what}
        for record in faults
        for what in record.get("misbehaving", [])
    ]
    outliers = [
        {"fault": record["fault"], "what": what}
        for record in faults
        for what in record.get("timing_outliers", [])
    ]
    limits = [
        {"fault": record["fault"], "what": what}
        for record in faults
        for what in record.get("limits", [])
    ]
    return {
        "suite": "ros",
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "injections": sum(int(record["injections"]) for record in faults),
        "bad_applied": sum(int(record.get("bad_applied", 0)) for record in faults),
        "tracebacks": sum(int(record.get("tracebacks", 0)) for record in faults),
        "faults": faults,
        "misbehaving": misbehaving,
        "timing_outliers": outliers,
        "limits": limits,
        "not_covered": NOT_COVERED + (FULL_ONLY if quick else []),
        "fixed": FIXED,
        "open": OPEN,
    }
