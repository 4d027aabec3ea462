"""Shared pieces of the ROS fault-injection suite (bench/_faults_ros.py): the recording probe,
a trainer-like CPU load, load averages, traceback counting and the per-fault record.

Every fault record is a plain dict: ``fault`` (what was injected), ``target`` (the node that must
cope), ``injections`` (how many), ``outcomes`` (counts per observed outcome), ``figures``
(timings, each with its sample count), ``loadavg`` (os.getloadavg() next to the figures),
``bad_applied`` (corrupted or stale commands that reached a joint: must be 0), ``tracebacks``
(unhandled tracebacks in the nodes' output: must be 0), ``misbehaving`` (what went wrong) and,
where they apply, ``limits`` (what no host software can do) and ``timing_outliers``.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import latency_summary_ms

ZERO_TOLERANCE = 0.01  # N*m; well below the 12-bit torque quantum of an AK80-6 (0.006 N*m)

# A trainer epoch as the CPU sees it: float32 matmuls on one torch thread, forever.
LOAD_SCRIPT = (
    "import torch\n"
    "torch.set_num_threads(1)\n"
    "a = torch.randn(256, 256)\n"
    "while True:\n"
    "    b = torch.tanh(a @ a.T) * 0.01\n"
    "    a = a + b\n"
)


REALTIME_PRIORITY = 10  # as train.launch.py starts the 500 Hz loops


def config_dir(package: str) -> Path:
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(package)) / "config"


def driver_parameters() -> dict[str, Any]:
    """Overrides of motor_driver.yaml for the simulated bus (limits wide: no soft-limit torque)."""
    return {
        "can_interface": "virtual",
        "can_channel": f"faults-{uuid.uuid4().hex[:8]}",
        "simulate_motors": True,
        "position_lower": [-100.0, -100.0],
        "position_upper": [100.0, 100.0],
        "diagnostics_rate": 5.0,
        "realtime_priority": REALTIME_PRIORITY,
    }


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(value, 2) for value in os.getloadavg()]


def start_cpu_load() -> subprocess.Popen[bytes]:
    """A separate process running a one-thread torch matmul loop (the trainer-like load)."""
    return subprocess.Popen(
        [sys.executable, "-c", LOAD_SCRIPT], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def count_tracebacks(text: str) -> int:
    return text.count("Traceback (most recent call last)")


def stamp_seconds(stamp: Any) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def summary(durations_s: Sequence[float]) -> dict[str, float | int]:
    """p50/p99/max (ms) of the durations, or just ``samples: 0``."""
    if not durations_s:
        return {"samples": 0}
    return latency_summary_ms(list(durations_s))


def fault_record(fault: str, target: str, injections: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "fault": fault,
        "target": target,
        "injections": injections,
        "outcomes": {},
        "figures": {},
        "loadavg": loadavg(),
        "bad_applied": 0,
        "tracebacks": 0,
        "misbehaving": [],
    }
    record.update(fields)
    return record


def policy_update_cases(
    obs_dim: int, act_dim: int, hidden: int, acting_steps: int = 0
) -> tuple[dict[str, Callable[[int], Any]], Callable[[int], Any]]:
    """kind -> corrupted PolicyUpdate factory (argument: a unique version) for an actor of
    ``obs_dim`` -> ``act_dim`` with ``hidden`` units, and the valid factory; ``acting_steps``
    goes into every message (0: the async protocol's "act until the next one")."""
    import torch

    from mdemorl_core.agents.sac import TanhGaussianActor
    from mdemorl_core.policy_io import serialize_actor, sha256_hex
    from mdemorl_msgs.msg import PolicyUpdate

    torch.manual_seed(0)
    actor = TanhGaussianActor(obs_dim, act_dim, hidden_size=hidden)
    blob = serialize_actor(actor, algorithm="sac", version=1)
    foreign = serialize_actor(TanhGaussianActor(5, act_dim, hidden), algorithm="sac", version=1)
    # An architecture that promises `hidden` units and weights of twice that (a mixed-up upload).
    payload = torch.load(io.BytesIO(blob), weights_only=True)
    payload["state_dict"] = TanhGaussianActor(obs_dim, act_dim, 2 * hidden).state_dict()
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    mismatched = buffer.getvalue()

    def update(weights: bytes, checksum: str | None = None, dims: int = obs_dim) -> Any:
        def make(version: int) -> Any:
            msg = PolicyUpdate(version=version, algorithm="sac", action_dim=act_dim)
            msg.observation_dim, msg.acting_steps, msg.weights = dims, acting_steps, list(weights)
            msg.checksum = sha256_hex(weights) if checksum is None else checksum
            return msg

        return make

    half = blob[: len(blob) // 2]
    cases = {
        "bad_checksum": update(blob, "0" * 64),
        "wrong_declared_dims": update(blob, dims=obs_dim + 1),
        "truncated_weights": update(half, sha256_hex(blob)),
        "truncated_weights_matching_checksum": update(half),
        "empty_weights": update(b""),
        "actor_of_another_task": update(foreign),
        "weights_not_fitting_architecture": update(mismatched),
    }
    return cases, update(blob)


def record_for(
    fault: str,
    target: str,
    per_case: dict[str, dict[str, int]],
    bad: int,
    acted_note: str = "corrupted messages acted",
    ignored_note: str = "a valid message afterwards was not obeyed",
    **fields: Any,
) -> dict[str, Any]:
    """The record of a corrupted-input fault: ``per_case`` kind -> {"sent", "counted", ...},
    ``bad`` corrupted inputs acted on. Misbehaving: a case not counted as often as it was sent,
    ``bad`` > 0 (``acted_note``), ``alive`` False in ``fields`` (``ignored_note``: valid input
    afterwards was not acted on), ``tracebacks`` > 0 in ``fields``."""
    sent = sum(c["sent"] for c in per_case.values())
    counted = sum(min(c["counted"], c["sent"]) for c in per_case.values())
    misbehaving = [
        f"{kind}: {c['counted']} of {c['sent']} counted"
        for kind, c in per_case.items()
        if c["counted"] != c["sent"]
    ]
    if bad:
        misbehaving.append(f"{bad} {acted_note}")
    if not fields.get("alive", True):
        misbehaving.append(ignored_note)
    if fields.get("tracebacks"):
        misbehaving.append(f"{fields['tracebacks']} tracebacks")
    outcomes = {"counted": counted, "not_counted": sent - counted, "applied": bad}
    return fault_record(
        fault,
        target,
        sent,
        outcomes=outcomes,
        cases=per_case,
        bad_applied=bad,
        misbehaving=misbehaving,
        **fields,
    )


def diagnostic_values(arrays: Sequence[Any], name_suffix: str) -> dict[str, str] | None:
    """Key/values of the latest status whose name ends with ``name_suffix``, or None."""
    for array in reversed(arrays):
        for status in array.status:
            if status.name.endswith(name_suffix):
                return {kv.key: kv.value for kv in status.values}
    return None


def diagnostic_level(arrays: Sequence[Any], name_suffix: str) -> int | None:
    for array in reversed(arrays):
        for status in array.status:
            if status.name.endswith(name_suffix):
                return int.from_bytes(status.level, "little")
    return None


class Recorder:
    """A probe node in a RosHarness that keeps what the scenarios look at, with arrival times.

    ``/joint_states`` and ``/effort_command`` are subscribed best effort with a deep queue, so a
    probe that falls behind for a moment loses nothing (the publishers' stamps time the events).
    """

    def __init__(self, harness: Any, name: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState

        from mdemorl_msgs.msg import EffortCommand
        from mdemorl_ros.ros_common import MONITOR_QOS

        deep = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=500, reliability=ReliabilityPolicy.BEST_EFFORT
        )
        self.harness = harness
        self.node = harness.node(name)
        self.states: list[tuple[float, list[float]]] = []  # (driver stamp, efforts)
        self.commands: list[tuple[float, int]] = []  # (controller stamp, sequence)
        self.diagnostics: list[Any] = []
        self.node.create_subscription(JointState, "/joint_states", self._on_state, deep)
        self.node.create_subscription(EffortCommand, "/effort_command", self._on_command, deep)
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self.diagnostics.append, MONITOR_QOS
        )

    def _on_state(self, msg: Any) -> None:
        self.states.append((stamp_seconds(msg.header.stamp), list(msg.effort)))

    def _on_command(self, msg: Any) -> None:
        self.commands.append((stamp_seconds(msg.header.stamp), int(msg.sequence)))

    def fresh_diagnostics(self, suffix: str, timeout: float = 5.0) -> dict[str, str] | None:
        """The next status ``suffix`` published after this call (None on timeout)."""
        self.diagnostics.clear()
        self.harness.spin_until(
            lambda: diagnostic_values(self.diagnostics, suffix) is not None, timeout
        )
        return diagnostic_values(self.diagnostics, suffix)

    def wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.harness.executor.spin_once(timeout_sec=0.005)
