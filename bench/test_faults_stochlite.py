"""Quick CI subset of the fault-injection suite: the StochLite family (bench/_faults_stochlite.py).

Runs ``run(quick=True)`` (every kind of corrupted joint target twice into servo_driver_node, the
simulated B3M bus failing in seven ways, every kind of corrupted /imu/data into its attitude
guard and the IMU lost (silent, NaN only), every kind of corrupted /joint_states, /imu/data and
posture commands and PolicyUpdate into gait_controller_node, two SIGKILLs of the gait controller next to the driver;
the same code ``bench/faults.py --only stochlite`` runs in full) and asserts the reliability
claims: nothing corrupted ever moved a servo or reached the controller's output, no unhandled
traceback, every corrupted message counted on /diagnostics, every persistent bus fault latched,
reported and relaxed, the watchdog's HOLD then FREE after every kill. Timings are recorded in
the result, never asserted.
"""

from __future__ import annotations

import json
from typing import Any

import _faults_stochlite
import pytest

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return _faults_stochlite.run(quick=True)


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


def test_zero_bad_targets_applied_and_zero_tracebacks(result: dict[str, Any]) -> None:
    assert result["injections"] > 50
    assert result["bad_applied"] == 0
    assert result["tracebacks"] == 0


def test_every_corrupted_message_is_counted_and_the_node_keeps_running(
    result: dict[str, Any],
) -> None:
    for prefix in (
        "corrupted joint targets",
        "corrupted /joint_states",
        "corrupted /imu/data",
        "corrupted posture command",
        "corrupted PolicyUpdate",
    ):
        for record in _records(result, prefix):
            for kind, case in record["cases"].items():
                assert case["sent"] > 0 and case["counted"] == case["sent"], (record["fault"], kind)
            assert record["alive"], record["fault"]


def test_the_attitude_guard_rejects_bad_imu_samples_and_latches_on_a_lost_imu(
    result: dict[str, Any],
) -> None:
    targets = {r["target"] for r in _records(result, "corrupted /imu/data")}
    assert targets == {"gait_controller_node", "servo_driver_node"}
    lost = _records(result, "IMU: ")
    assert len(lost) == 2
    for record in lost:
        assert all(record["outcomes"].values()), (record["fault"], record["outcomes"])


def test_bus_faults_are_counted_or_latched_and_relaxed(result: dict[str, Any]) -> None:
    for record in _records(result, "B3M: "):
        outcome = record["outcomes"]
        if "x3" in record["fault"]:
            assert outcome["failures_counted"] >= 3 and not outcome["estop_latched"]
        elif "until cleared" in record["fault"]:
            assert outcome["estop_latched"] and outcome["reported_error"], record["fault"]
            assert outcome["servos_free"] and outcome["tracking_after_release"], record["fault"]
        elif "garbage" in record["fault"]:
            assert outcome["failures_counted"] > 0 and not outcome["targets_moved"]
            assert outcome["servo_modes_as_driver_wants"]
        else:
            assert outcome["estop_latched"] and outcome["loop_running"], record["fault"]


def test_every_gait_controller_kill_holds_then_frees_the_servos(result: dict[str, Any]) -> None:
    record = _records(result, "SIGKILL gait_controller_node")[0]
    assert record["outcomes"]["servos_hold_then_free"] == record["injections"] > 0
    assert record["figures"]["kill_to_hold"]["samples"] == record["injections"]
