"""Quick CI subset of the fault-injection suite: the ROS family (bench/_faults_ros.py).

Runs ``run(quick=True)`` (3 controller kills idle and 3 loaded against the motor driver on the
simulated CAN bus, every kind of corrupted message into each subscribing node (out-of-order and
duplicated effort commands, corrupted controller phases too), CAN bus and IMU
failures; the same code ``bench/faults.py`` runs in full) and asserts the reliability claims:
no corrupted or stale command ever acted, no unhandled traceback in any node, every corrupted
message counted on /diagnostics, zero torque after every kill, every bus fault latched and
reported. Timings are recorded in the result, never asserted.
"""

from __future__ import annotations

import json
from typing import Any

import _faults_ros
import pytest

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return _faults_ros.run(quick=True)


def _records(result: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    found = [r for r in result["faults"] if r["fault"].startswith(prefix)]
    assert found, f"no {prefix!r} fault in {[r['fault'] for r in result['faults']]}"
    return found


def test_no_harness_errors_and_nothing_misbehaves(result: dict[str, Any]) -> None:
    errors = [
        r["fault"] + ": " + r["harness_error"] for r in result["faults"] if "harness_error" in r
    ]
    assert not errors, "\n".join(errors)
    assert result["misbehaving"] == [], json.dumps(result["misbehaving"], indent=1)


def test_zero_bad_commands_applied_and_zero_tracebacks(result: dict[str, Any]) -> None:
    assert result["injections"] > 100
    assert result["bad_applied"] == 0
    assert result["tracebacks"] == 0
    for record in result["faults"]:
        assert record["bad_applied"] == 0 and record["tracebacks"] == 0, record["fault"]


def test_every_corrupted_message_is_counted_and_the_node_keeps_running(
    result: dict[str, Any],
) -> None:
    prefixes = (
        "corrupted /effort_command",
        "corrupted /joint_states",
        "corrupted Policy",
        "corrupted /mdemorl/controller_phase",
    )
    for prefix in prefixes:
        for record in _records(result, prefix):
            for kind, case in record["cases"].items():
                assert case["sent"] > 0 and case["counted"] == case["sent"], (record["fault"], kind)
            assert record["alive"], record["fault"]
    targets = {r["target"] for r in _records(result, "corrupted /effort_command")}
    assert targets == {"motor_driver_node", "sim_robot_node"}
    for record in _records(result, "corrupted /effort_command"):
        assert {"older_stamp", "duplicate"} <= set(record["cases"]), record["target"]
    targets = {r["target"] for r in _records(result, "corrupted /mdemorl/controller_phase")}
    assert targets == {"sim_robot_node", "trainer_node"}
    transitions = _records(result, "corrupted Transition")[0]
    assert all(c["counted"] == c["sent"] for c in transitions["cases"].values())


def test_every_controller_kill_ends_in_zero_torque(result: dict[str, Any]) -> None:
    for record in _records(result, "SIGKILL torque_controller_node"):
        assert record["outcomes"] == {"zero_torque": record["injections"]}, record["outcomes"]
        assert record["figures"]["trip_delay"]["samples"] == record["injections"]
        assert record["figures"]["kill_to_zero"]["samples"] == record["injections"]


def test_bus_faults_latch_and_report(result: dict[str, Any]) -> None:
    for prefix in ("CAN: silent motor", "CAN: bus off", "CAN: adaptor unplugged"):
        outcome = _records(result, prefix)[0]["outcomes"]
        assert outcome["fault_reported_error"], prefix
        assert outcome["zero_after_bus_recovered_until_release"], prefix
        assert outcome["resumed_after_release"], prefix
    garbage = _records(result, "CAN: garbage")[0]["outcomes"]
    assert garbage["undecodable_counted"] == garbage["undecodable_sent"] > 0
    imu = _records(result, "serial IMU")[0]
    assert imu["outcomes"]["unplugged_error_reported"]
