"""Plumbing shared by the loop nodes of every robot driver: the loop's diagnostics entry, the
stamped DiagnosticArray, the statistics file and the loop-thread stop.

A module of its own (not ``ros_common``) so that other robots' drivers can import it without the
leg2r nodes that still carry their own copies having to change at the same time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.publisher import Publisher

from leg2r_driver.loop_timing import DeadlineLoop
from leg2r_driver.realtime import loop_statistics_record
from leg2r_driver.ros_common import diagnostic_status, stop_own_executor


def loop_status(name: str, hardware_id: str, loop: DeadlineLoop) -> DiagnosticStatus:
    """The loop's diagnostics entry: WARN once a deadline was missed, its rate as the message,
    the window statistics and the re-anchor count as values."""
    stats = loop.statistics.summary()
    return diagnostic_status(
        name,
        hardware_id,
        DiagnosticStatus.WARN if stats.missed else DiagnosticStatus.OK,
        f"{stats.rate_hz:.1f} Hz",
        {**stats.as_dict(), "reanchors": loop.reanchors},
    )


def publish_diagnostics_array(
    node: Node, publisher: Publisher, statuses: Sequence[DiagnosticStatus]
) -> Time:
    """Publish ``statuses`` as one DiagnosticArray stamped now; returns the stamp."""
    array = DiagnosticArray(status=list(statuses))
    array.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(array)
    return array.header.stamp


def write_statistics_file(
    path: str, loop: DeadlineLoop, extra: Mapping[str, object] | None = None
) -> None:
    """Write the loop's statistics record (plus ``extra``) as JSON to ``path``; "" writes
    nothing (the parameter's default)."""
    if path:
        record = {**loop_statistics_record(loop), **(extra or {})}
        Path(path).write_text(json.dumps(record, indent=2))


def stop_loop_thread(node: Node) -> None:
    """Stop a node's loop thread (``node.running``, ``node.thread``) and its own executor."""
    node.running = False  # type: ignore[attr-defined]
    node.thread.join(timeout=1.0)  # type: ignore[attr-defined]
    stop_own_executor(node)
