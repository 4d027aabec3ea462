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

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
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
