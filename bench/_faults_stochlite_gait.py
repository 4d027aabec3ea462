"""gait_controller_node's faults (bench/_faults_stochlite.py): corrupted inputs, and SIGKILL of it
next to a running servo_driver_node.

Inputs (the controller in its own process, fed by a probe): corrupted /joint_states while valid
IMU samples stream, corrupted /imu/data while valid joint states stream, each kind ``repeats``
times 50 ms apart with the other input valid; the controller's /diagnostics counter for the kind
must grow by exactly ``repeats``, and it must publish no joint target meanwhile (it has no other
fresh input, so any target came from a corrupted one); corrupted PolicyUpdates must each be
rejected (``policies_rejected`` +1, nothing accepted). Afterwards valid inputs must bring
targets back and a valid PolicyUpdate must be accepted (``alive``). Corrupted posture commands
(/stochlite/posture_command: unknown, empty, differently cased or padded names, a 90 000
character string), sent while the controller walks on valid inputs, must each be counted
(``posture_rejected_unknown``) and leave the posture at ``walking`` with targets still flowing.

SIGKILL (:class:`_faults_stochlite_rig.DriverRig` in this process, the controller walking it
over /joint_targets): per kill, the time from the kill and from the driver's last valid target
to every simulated servo in HOLD (the watchdog's ``command_timeout``), and to every servo FREE
(``free_timeout`` later), as servo_safety documents; then a relaunch must be tracked again.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from typing import Any

from _faults_ros_common import (
    count_tracebacks,
    diagnostic_values,
    fault_record,
    policy_update_cases,
    record_for,
    summary,
)
from _faults_stochlite_rig import DriverRig, poses

SPACING = 0.05  # s between corrupted messages
SETTLE = 0.3  # s after a valid input stops: the controller's cached one is stale (0.05 s)
# reset_service "" (YAML ''): no simulator to reset, the hardware setting
GAIT_PARAMETERS: dict[str, Any] = {"reset_service": "''", "diagnostics_rate": 20.0}
OBSERVATION_DIM = 10  # StochLite-v0's, the controller's default task
START_TIMEOUT = 90.0  # s for a controller to start acting (torch import on a loaded machine)


def state_cases() -> dict[str, tuple[str, dict[str, Any]]]:
    """kind -> (the controller's counter, JointState fields overriding the valid ones)."""
    from stochlite_driver.robot import JOINT_NAMES

    names, q = list(JOINT_NAMES), poses()[0].tolist()
    zeros = [0.0] * len(names)
    return {
        "nan_position": ("states_rejected_non_finite", {"position": [math.nan, *q[1:]]}),
        "inf_velocity": ("states_rejected_non_finite", {"velocity": [*zeros[:-1], math.inf]}),
        "short_position": ("states_rejected_wrong_length", {"position": q[:11]}),
        "no_velocity": ("states_rejected_wrong_length", {"velocity": []}),
        "unknown_joints": ("states_rejected_unknown_joint", {"name": [f"j{i}" for i in range(12)]}),
        "missing_joint": (
            "states_rejected_unknown_joint",
            {"name": names[1:], "position": q[1:], "velocity": zeros[1:], "effort": zeros[1:]},
        ),
        "stale_stamp": ("states_rejected_stale", {"offset": -1.0}),
        "future_stamp": ("states_rejected_future_stamp", {"offset": 1.0}),
    }


IMU_CASES = {
    "nan_orientation": {"orientation": (math.nan, 0.0, 0.0, 1.0)},
    "inf_angular_velocity": {"rates": (0.0, math.inf, 0.0)},
}


def policy_cases() -> tuple[dict[str, Callable[[int], Any]], Callable[[int], Any]]:
    """The leg's PolicyUpdate corruptions (:func:`policy_update_cases`) for StochLite-v0."""
    from mdemorl_core.envs.stochlite import ACTION_DIM

    return policy_update_cases(OBSERVATION_DIM, ACTION_DIM, hidden=16, acting_steps=50)


class GaitProbe:
    """Feeds a controller (valid states and IMU by timer, each switchable) and records it."""

    def __init__(self, harness: Any) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Imu, JointState
        from trajectory_msgs.msg import JointTrajectory

        from mdemorl_ros.ros_common import (
            IMU_TOPIC,
            JOINT_STATES_TOPIC,
            MONITOR_QOS,
            STATE_QOS,
        )
        from stochlite_driver.ros_io import JOINT_TARGETS_TOPIC

        self.harness = harness
        self.node = harness.node("stochlite_gait_faults_probe")
        self.state_pub = self.node.create_publisher(JointState, JOINT_STATES_TOPIC, STATE_QOS)
        self.imu_pub = self.node.create_publisher(Imu, IMU_TOPIC, STATE_QOS)
        self.targets = 0
        self.diagnostics: list[Any] = []
        self.node.create_subscription(
            JointTrajectory, JOINT_TARGETS_TOPIC, self._on_target, STATE_QOS
        )
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self.diagnostics.append, MONITOR_QOS
        )
        self.valid_states = self.valid_imu = True
        self.node.create_timer(0.01, self._feed)

    def _on_target(self, msg: Any) -> None:
        self.targets += 1

    def _feed(self) -> None:
        if self.valid_states:
            self.state_pub.publish(self.state())
        if self.valid_imu:
            self.imu_pub.publish(self.imu())

    def stamp(self, offset: float = 0.0) -> Any:
        from rclpy.duration import Duration

        return (self.node.get_clock().now() + Duration(nanoseconds=int(offset * 1e9))).to_msg()

    def state(self, **fields: Any) -> Any:
        from sensor_msgs.msg import JointState

        from stochlite_driver.robot import JOINT_NAMES

        zeros = [0.0] * len(JOINT_NAMES)
        values = {"name": list(JOINT_NAMES), "position": poses()[0].tolist()}
        values.update(velocity=zeros, effort=zeros)
        offset = fields.pop("offset", 0.0)
        values.update(fields)
        msg = JointState(**values)
        msg.header.stamp = self.stamp(offset)
        return msg

    def imu(self, orientation: tuple[float, ...] = (0.0, 0.0, 0.0, 1.0), rates: tuple[float, ...] = (0.0, 0.0, 0.0)) -> Any:  # fmt: skip
        from sensor_msgs.msg import Imu

        msg = Imu()
        o, w = msg.orientation, msg.angular_velocity
        o.x, o.y, o.z, o.w = orientation
        w.x, w.y, w.z = rates
        msg.header.stamp = self.stamp()
        return msg

    def wait(self, seconds: float) -> None:
        self.harness.spin_for(seconds)

    def counters(self, timeout: float = 3.0) -> dict[str, str]:
        self.diagnostics.clear()
        self.harness.spin_until(
            lambda: diagnostic_values(self.diagnostics, "gait_controller_node") is not None,
            timeout,
        )
        return diagnostic_values(self.diagnostics, "gait_controller_node") or {}


def _inject(
    probe: GaitProbe,
    cases: dict[str, tuple[str, Callable[[], Any]]],
    publisher: Any,
    repeats: int,
) -> tuple[dict[str, dict[str, int]], int]:
    per_case, applied = {}, 0
    for kind, (counter, make) in cases.items():
        before = int(probe.counters().get(counter, "0"))
        targets = probe.targets
        for _ in range(repeats):
            publisher.publish(make())
            probe.wait(SPACING)
        probe.wait(0.1)
        counted = int(probe.counters().get(counter, "0")) - before
        applied += probe.targets - targets
        per_case[kind] = {"sent": repeats, "counted": counted}
    return per_case, applied


POSTURE_CASES = {
    "unknown": "jump",
    "empty": "",
    "upper_case": "SIT",
    "padded": " sit",
    "trailing_newline": "passive\n",
    "huge": "sit" * 30_000,
}


def _posture_faults(probe: GaitProbe, repeats: int) -> tuple[dict[str, dict[str, int]], int]:
    """Each corrupted posture command ``repeats`` times while the controller walks; the
    second value counts the cases after which the posture was no longer ``walking``."""
    from std_msgs.msg import String

    from mdemorl_ros.ros_common import MONITOR_QOS
    from stochlite_driver.posture import POSTURE_TOPIC

    publisher = probe.node.create_publisher(String, POSTURE_TOPIC, MONITOR_QOS)
    per_case, applied = {}, 0
    for kind, text in POSTURE_CASES.items():
        before = int(probe.counters().get("posture_rejected_unknown", "0"))
        for _ in range(repeats):
            publisher.publish(String(data=text))
            probe.wait(SPACING)
        probe.wait(0.1)
        values = probe.counters()
        counted = int(values.get("posture_rejected_unknown", "0")) - before
        applied += values.get("posture") != "walking"
        per_case[kind] = {"sent": repeats, "counted": counted}
    return per_case, applied


def _policy_faults(probe: GaitProbe) -> dict[str, dict[str, int]]:
    """Each corrupted PolicyUpdate once (waiting for its verdict), then the valid one."""
    from mdemorl_msgs.msg import PolicyUpdate
    from mdemorl_ros.ros_common import POLICY_QOS, POLICY_TOPIC

    publisher = probe.node.create_publisher(PolicyUpdate, POLICY_TOPIC, POLICY_QOS)
    cases, valid = policy_cases()
    per_case = {}
    for version, (kind, make) in enumerate([*cases.items(), ("valid", valid)], start=1):
        before = probe.counters()
        publisher.publish(make(version))
        key = "policies_accepted" if kind == "valid" else "policies_rejected"
        grown = probe.harness.spin_until(
            lambda key=key, before=before: (
                int(probe.counters(0.2).get(key, "0")) > int(before.get(key, "0"))
            ),
            10.0,
        )
        after = probe.counters()
        per_case[kind] = {
            "sent": 1,
            "counted": int(grown),
            "accepted": int(after.get("policies_accepted", "0"))
            - int(before.get("policies_accepted", "0")),
        }
    return per_case


def gait_input_faults(repeats: int, salt: int) -> list[dict[str, Any]]:
    from mdemorl_ros.ros_testing import RosHarness

    harness = RosHarness(salt=salt)
    try:
        probe = GaitProbe(harness)
        process = harness.start("stochlite_driver.gait_controller_node", GAIT_PARAMETERS)
        if not harness.spin_until(lambda: probe.targets > 20, START_TIMEOUT):
            raise RuntimeError(
                "gait controller never published targets: " + harness.output(process)
            )
        probe.valid_states = False
        probe.wait(SETTLE)
        state_cases_ = {
            kind: (counter, lambda fields=fields: probe.state(**dict(fields)))
            for kind, (counter, fields) in state_cases().items()
        }
        states, states_applied = _inject(probe, state_cases_, probe.state_pub, repeats)
        probe.valid_states, probe.valid_imu = True, False
        probe.wait(SETTLE)
        imu_cases = {
            kind: ("imu_rejected_non_finite", lambda fields=fields: probe.imu(**fields))
            for kind, fields in IMU_CASES.items()
        }
        imus, imu_applied = _inject(probe, imu_cases, probe.imu_pub, repeats)
        probe.valid_imu = True
        mark = probe.targets
        probe.wait(0.5)
        inputs_alive = probe.targets > mark
        postures, postures_applied = _posture_faults(probe, repeats)
        mark = probe.targets
        probe.wait(0.5)
        walking_alive = probe.targets > mark and probe.counters().get("posture") == "walking"
        policies = _policy_faults(probe)
        tracebacks = count_tracebacks(harness.output(process))
        exit_code = harness.terminate(process)
    finally:
        harness.close()
    valid = policies.pop("valid")
    records = [
        record_for(
            name,
            "gait_controller_node",
            per_case,
            applied,
            acted_note="targets or policies came of corrupted input",
            ignored_note="valid input afterwards was not acted on",
            alive=alive,
            tracebacks=tracebacks,
        )
        for name, per_case, applied, alive in (
            ("corrupted /joint_states", states, states_applied, inputs_alive),
            ("corrupted /imu/data", imus, imu_applied, inputs_alive),
            ("corrupted posture command", postures, postures_applied, walking_alive),
            (
                "corrupted PolicyUpdate",
                policies,
                sum(c["accepted"] for c in policies.values()),
                bool(valid["counted"]),
            ),
        )
    ]
    if exit_code != 0:
        records[-1]["misbehaving"].append(f"SIGTERM exit code {exit_code}")
    return records


def _all(rig: DriverRig, mode: int) -> bool:
    return all(m == mode for m in rig.modes())


def gait_kill_series(kills: int, salt: int) -> dict[str, Any]:
    from mdemorl_ros.ros_testing import RosHarness
    from stochlite_driver.b3m import RunMode

    harness = RosHarness(salt=salt)
    rig = DriverRig(int(harness.env["ROS_DOMAIN_ID"]))
    per_kill: list[dict[str, Any]] = []
    outputs: list[str] = []
    misbehaving: list[str] = []
    try:
        timeout, free_timeout = (rig.node.settings[k] for k in ("command_timeout", "free_timeout"))
        for index in range(kills):
            gait = harness.start("stochlite_driver.gait_controller_node", GAIT_PARAMETERS)
            started = time.monotonic()
            if not rig.wait_for(lambda: rig.phase() == "active", START_TIMEOUT, 0.01):
                raise RuntimeError(
                    "the driver never tracked the controller: " + harness.output(gait)
                )
            relaunch_to_active = time.monotonic() - started
            rig.wait_for(lambda: False, 0.5, 0.01)  # walk a little
            killed = time.monotonic()
            gait.send_signal(signal.SIGKILL)
            held = rig.wait_for(lambda: _all(rig, RunMode.HOLD), 2.0, 0.0002)
            hold_at = time.monotonic()
            last_valid = rig.node.safety._last_valid
            freed = rig.wait_for(lambda: _all(rig, RunMode.FREE), free_timeout + 2.0, 0.0005)
            free_at = time.monotonic()
            gait.wait()
            outputs.append(harness.output(gait))
            one = {
                "servos_held": held,
                "servos_freed": freed,
                "kill_to_hold_ms": (hold_at - killed) * 1e3,
                "last_target_to_hold_ms": (hold_at - last_valid) * 1e3 if last_valid else None,
                "hold_to_free_ms": (free_at - hold_at) * 1e3,
                "relaunch_to_tracking_s": relaunch_to_active,
            }
            per_kill.append(one)
            misbehaving += [f"kill {index}: servos not all HOLD"] if not held else []
            misbehaving += [f"kill {index}: servos not all FREE"] if not freed else []
        thread_faults = list(rig.faults.caught)
    finally:
        rig.close()
        harness.close()
    ok = [k for k in per_kill if k["servos_held"] and k["servos_freed"]]
    misbehaving += [f"exception in a thread: {text}" for text in thread_faults]
    return fault_record(
        "SIGKILL gait_controller_node (servo_driver_node on the simulated B3M bus)",
        "servo_driver_node",
        kills,
        outcomes={
            "servos_hold_then_free": len(ok),
            "not": kills - len(ok),
        },
        figures={
            "kill_to_hold": summary([k["kill_to_hold_ms"] / 1e3 for k in ok]),
            "last_target_to_hold": summary(
                [k["last_target_to_hold_ms"] / 1e3 for k in ok if k["last_target_to_hold_ms"]]
            ),
            "hold_to_free": summary([k["hold_to_free_ms"] / 1e3 for k in ok]),
        },
        expected_ms={
            "hold_after_last_target": timeout * 1e3,
            "free_after_hold": free_timeout * 1e3,
        },
        per_kill=per_kill,
        tracebacks=sum(count_tracebacks(text) for text in outputs) + len(thread_faults),
        misbehaving=misbehaving,
    )
