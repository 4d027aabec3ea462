"""SIGKILL of the robot side itself (sim_robot_node, or motor_driver_node on the simulated CAN
bus) under a running torque controller: what the controller does, and whether it recovers.

A torque controller (the shipped YAML, random actions, async protocol: it acts and publishes
transitions continuously) runs against the robot node; each injection kills the robot node with
SIGKILL, watches the controller for ``STALE_WINDOW`` and relaunches the robot node. Per kill:

- ``commands_stopped``: no ``/effort_command`` stamped later than ``max_state_age`` (+ one
  diagnostics margin) after the kill: the controller saw the joint states go stale;
- ``transitions_stopped``: no ``/mdemorl/transition`` stamped later than that (no experience
  made of stale states reaches the trainer);
- ``stale_counted``: the controller's ``skipped_no_state`` on /diagnostics grew;
- ``diagnostics_error``: a controller status after the kill had level ERROR;
- ``controller_alive``, ``recovered`` (commands and transitions stamped after the relaunch) and
  ``error_cleared`` (its latest status since then is below ERROR), with ``kill_to_last_command``
  and ``relaunch_to_commands`` as figures.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from _faults_ros_common import (
    Recorder,
    config_dir,
    count_tracebacks,
    driver_parameters,
    fault_record,
    stamp_seconds,
    summary,
)

# s watched after each kill: the controller reports ERROR from STATE_LOST_AFTER (1 s) on, so
# this leaves 2 s of 5 Hz statuses for it (1.5 s left 0.5 s, and one kill of 10 in a full run,
# 2026-12-02, saw no controller status at all in its window while the controller lived on)
STALE_WINDOW = 3.0
MARGIN = 0.05  # s past max_state_age after which a command or transition counts as stale
RECOVER_TIMEOUT = 30.0  # s for a relaunched robot node to be acted on again
ERROR = 2  # DiagnosticStatus.ERROR


def _controller_statuses(recorder: Recorder, since: float) -> list[tuple[int, dict[str, str]]]:
    found = []
    for array in recorder.diagnostics:
        if stamp_seconds(array.header.stamp) <= since:
            continue
        for status in array.status:
            if status.name == "torque_controller_node":
                values = {kv.key: kv.value for kv in status.values}
                found.append((int.from_bytes(status.level, "little"), values))
    return found


def _start_robot(harness: Any, target: str, channel: str) -> Any:
    if target == "sim_robot_node":
        return harness.start(
            "leg2r_driver.sim_robot_node",
            {"diagnostics_rate": 5.0},
            params_file=config_dir("leg2r_driver") / "sim_robot.yaml",
        )
    return harness.start(
        "leg2r_driver.motor_driver_node",
        {**driver_parameters(), "can_channel": channel, "realtime_priority": 0},
        params_file=config_dir("leg2r_driver") / "motor_driver.yaml",
    )


def _kill_once(
    harness: Any,
    recorder: Recorder,
    transitions: list[float],
    robot: Any,
    controller: Any,
    relaunch: Any,
    max_state_age: float,
) -> tuple[dict[str, Any], Any]:
    """One SIGKILL of the robot node, the watch, the relaunch; the outcome and the new robot."""
    recorder.wait(0.5)
    before = _controller_statuses(recorder, time.time() - 2.0)
    skipped_before = int(before[-1][1].get("skipped_no_state", "0")) if before else 0
    killed_at = time.time()
    robot.send_signal(signal.SIGKILL)
    robot.wait()
    recorder.wait(STALE_WINDOW)
    stale_after = killed_at + max_state_age + MARGIN
    commands = [s for s, _ in recorder.commands if s > killed_at - 1.0]
    after_kill = [s for s in commands if s <= stale_after]
    statuses = _controller_statuses(recorder, killed_at + max_state_age)
    skipped_after = max((int(v.get("skipped_no_state", "0")) for _, v in statuses), default=0)
    result: dict[str, Any] = {
        "commands_stopped": not [s for s in commands if s > stale_after],
        "transitions_stopped": not [s for s in transitions if s > stale_after],
        # the counters restart with the statistics window; growth or any count after the kill
        "stale_counted": skipped_after > skipped_before or (skipped_after > 0 and not before),
        "diagnostics_error": any(level >= ERROR for level, _ in statuses),
        "diagnostics_levels": sorted({level for level, _ in statuses}),
        "controller_alive": controller.poll() is None,
    }
    if after_kill:
        result["kill_to_last_command"] = max(after_kill) - killed_at
    relaunched_at = time.time()
    robot = relaunch()
    recovered = harness.spin_until(
        lambda: (
            any(s > relaunched_at for s, _ in recorder.commands[-50:])
            and any(s > relaunched_at for s in transitions[-50:])
        ),
        RECOVER_TIMEOUT,
    )
    result["recovered"] = recovered
    result["error_cleared"] = False
    if recovered:
        first = min(s for s, _ in recorder.commands if s > relaunched_at)
        result["relaunch_to_commands"] = first - relaunched_at
        recorder.wait(0.5)  # two 5 Hz diagnostics periods
        levels = [level for level, _ in _controller_statuses(recorder, first + 0.05)]
        result["error_cleared"] = bool(levels) and levels[-1] < ERROR
    return result, robot


CHECKS = (
    "commands_stopped",
    "transitions_stopped",
    "stale_counted",
    "diagnostics_error",
    "controller_alive",
    "recovered",
    "error_cleared",
)


def robot_kill(target: str, kills: int, salt: int) -> dict[str, Any]:
    """``kills`` SIGKILLs of ``target`` (sim_robot_node | motor_driver_node) under a running
    torque controller, each followed by a relaunch; one fault record."""
    from leg2r_driver.torque_controller_parameters import DEFAULTS
    from mdemorl_msgs.msg import Transition
    from mdemorl_ros.ros_common import TRANSITION_QOS, TRANSITION_TOPIC
    from mdemorl_ros.ros_testing import RosHarness

    harness = RosHarness(salt=salt)
    recorder = Recorder(harness, "faults_robot_kill_probe")
    transitions: list[float] = []
    recorder.node.create_subscription(
        Transition,
        TRANSITION_TOPIC,
        lambda msg: transitions.append(stamp_seconds(msg.header.stamp)),
        TRANSITION_QOS,
    )
    channel = driver_parameters()["can_channel"]
    outcomes = dict.fromkeys(CHECKS, 0)
    figures: dict[str, list[float]] = {"kill_to_last_command": [], "relaunch_to_commands": []}
    per_kill: list[dict[str, Any]] = []
    misbehaving: list[str] = []
    outputs: list[str] = []
    try:
        robot = _start_robot(harness, target, channel)
        controller = harness.start(
            "leg2r_driver.torque_controller_node",
            {"default_action": "random", "diagnostics_rate": 5.0},
            params_file=config_dir("leg2r_driver") / "torque_controller.yaml",
        )
        if not harness.spin_until(lambda: len(transitions) > 20, 60.0):
            raise RuntimeError(
                "controller never acted: " + harness.output(controller) + harness.output(robot)
            )
        for index in range(kills):
            outputs.append(harness.output(robot))
            one, robot = _kill_once(
                harness,
                recorder,
                transitions,
                robot,
                controller,
                lambda: _start_robot(harness, target, channel),
                float(DEFAULTS["max_state_age"]),  # type: ignore[arg-type]  # a float default
            )
            per_kill.append(one)
            for check in CHECKS:
                outcomes[check] += int(bool(one[check]))
                if not one[check]:
                    misbehaving.append(f"kill {index}: not {check}")
            for name in figures:
                if name in one:
                    figures[name].append(one[name])
        outputs += [harness.output(robot), harness.output(controller)]
        if harness.terminate(controller) != 0:
            misbehaving.append("torque controller did not exit cleanly on SIGTERM")
    finally:
        harness.close()
    return fault_record(
        f"SIGKILL {target}, relaunched",
        "torque_controller_node",
        kills,
        outcomes=outcomes,
        figures={name: summary(values) for name, values in figures.items()},
        per_kill=per_kill,
        tracebacks=sum(count_tracebacks(text) for text in outputs),
        misbehaving=misbehaving,
    )


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(robot_kill(sys.argv[1], int(sys.argv[2]), 41), indent=1, default=str))
