"""Corrupted /mdemorl/controller_phase into its subscribers: the sim robot (it pauses its physics
while the controller holds) and the trainer node (robot-time accounting, the phase on its
/diagnostics), each already running in a RosHarness with a :class:`Recorder`.

A valid "acting" report comes first. Every corrupted report (unknown phase strings, an unknown
protocol, NaN, infinite or negative accumulated seconds) names a phase other than "acting", so
one that were taken would show: the sim robot paused, the trainer's ``controller_phase`` changed.
/mdemorl/controller_phase is reliable keep-last-1 (transient local), so each report goes out
once the node has counted the one before (or after COUNT_WAIT). Per kind the node's
``phase_rejected_*`` counter must grow by exactly ``repeats``, nothing may have been taken
(``bad_applied``), and a valid "holding" report afterwards must be (``alive``), then "acting"
again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from _faults_ros_common import Recorder, count_tracebacks, record_for

COUNT_WAIT = 2.0  # s for one count to show on /diagnostics (the nodes publish them at 5 Hz)


def phase_message(
    node: Any,
    phase: str,
    protocol: str = "episodic",
    acting_seconds: float = 1.0,
    holding_seconds: float = 1.0,
) -> Any:
    from mdemorl_msgs.msg import ControllerPhase

    msg = ControllerPhase(phase=phase, protocol=protocol, task_hash="")
    msg.acting_seconds, msg.holding_seconds = acting_seconds, holding_seconds
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg


def phase_cases() -> dict[str, tuple[str, dict[str, Any]]]:
    """kind -> (the subscriber's counter, ControllerPhase fields); none of them "acting"."""
    unknown_phase, protocol, seconds = (
        "phase_rejected_unknown_phase",
        "phase_rejected_unknown_protocol",
        "phase_rejected_bad_seconds",
    )
    return {
        "unknown_phase": (unknown_phase, {"phase": "paused"}),
        "empty_phase": (unknown_phase, {"phase": ""}),
        "wrong_case_phase": (unknown_phase, {"phase": "HOLDING"}),
        "unknown_protocol": (protocol, {"phase": "holding", "protocol": "sync"}),
        "nan_seconds": (seconds, {"phase": "holding", "acting_seconds": math.nan}),
        "inf_seconds": (seconds, {"phase": "holding", "holding_seconds": math.inf}),
        "negative_seconds": (seconds, {"phase": "holding", "acting_seconds": -5.0}),
    }


def phase_faults(
    harness: Any,
    recorder: Recorder,
    process: Any,
    repeats: int,
    target: str,
    status_name: str,
    taken: Callable[[dict[str, str]], bool],
) -> dict[str, Any]:
    """The cases into the node ``target``, whose /diagnostics status ``status_name`` has its
    counters; ``taken(values)``: whether that status shows a non-acting phase taken."""
    from mdemorl_msgs.msg import ControllerPhase
    from mdemorl_ros.ros_common import PHASE_QOS

    publisher = recorder.node.create_publisher(
        ControllerPhase, "/mdemorl/controller_phase", PHASE_QOS
    )
    harness.spin_until(lambda: publisher.get_subscription_count() > 0, 30.0)
    output_before = len(harness.output(process))  # earlier tracebacks: the earlier record's

    def status() -> dict[str, str]:
        return recorder.fresh_diagnostics(status_name) or {}

    def settle(phase: str, expect_taken: bool) -> bool:
        publisher.publish(phase_message(recorder.node, phase))
        end = time.monotonic() + COUNT_WAIT
        while time.monotonic() < end:
            if taken(status()) == expect_taken:
                return True
        return False

    settle("acting", False)
    per_case: dict[str, dict[str, int]] = {}
    bad = 0
    for kind, (counter, fields) in phase_cases().items():
        before = int(status().get(counter, "0"))
        counted, took = 0, False
        for sent in range(1, repeats + 1):
            publisher.publish(phase_message(recorder.node, **fields))
            end = time.monotonic() + COUNT_WAIT
            while counted < sent and time.monotonic() < end:
                values = status()
                counted = int(values.get(counter, "0")) - before
                took = took or taken(values)
        values = status()
        counted = int(values.get(counter, "0")) - before
        if took or taken(values):
            bad += 1
            settle("acting", False)  # the next case starts from a taken "acting" again
        per_case[kind] = {"sent": repeats, "counted": counted}
    alive = settle("holding", True)
    settle("acting", False)
    return record_for(
        "corrupted /mdemorl/controller_phase",
        target,
        per_case,
        bad,
        acted_note="kinds of corrupted phase reports taken",
        ignored_note="a valid holding report afterwards was not taken",
        alive=alive,
        tracebacks=count_tracebacks(harness.output(process)[output_before:]),
    )


def sim_paused(values: dict[str, str]) -> bool:
    """The sim robot's status: its physics paused (a hold taken, with pause_after_hold 0)."""
    return values.get("paused") == "True"


def trainer_took_hold(values: dict[str, str]) -> bool:
    """The trainer's status: the controller phase it reports is not "acting"."""
    return values.get("controller_phase", "acting") != "acting"
