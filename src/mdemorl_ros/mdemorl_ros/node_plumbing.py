"""The skeleton every loop node shares (the leg's motor driver, sim robot and torque controller,
the quadruped's servo driver, sim and gait controller): the loop thread's start
(:func:`start_loop_thread`), its first steps (:func:`enter_loop_thread`) and stop
(:func:`stop_loop_thread`), ``main`` (:func:`run_loop_node`), the loop's diagnostics entry, the
stamped DiagnosticArray and the statistics file.

A node creates its loop (``ros_common.make_control_loop``) and everything it publishes,
subscribes and serves, then calls :func:`start_loop_thread` last, so that the middleware threads
exist when the loop thread promotes them; its loop function begins with
:func:`enter_loop_thread` and runs ``while node.running``; its ``stop()`` begins with
:func:`stop_loop_thread` and then releases what the node holds (bus, simulator, files).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.publisher import Publisher

from mdemorl_ros.loop_timing import DeadlineLoop
from mdemorl_ros.realtime import loop_statistics_record, prepare_loop_thread
from mdemorl_ros.ros_common import (
    CONTROL_SWITCH_INTERVAL,
    diagnostic_status,
    run_node,
    stop_own_executor,
)


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


def start_loop_thread(node: Node, target: Callable[[], None], name: str) -> None:
    """Start the node's loop thread (``node.thread``, a daemon running ``target``) with
    ``node.running`` set; ``target`` loops while it stays true."""
    node.running = True  # type: ignore[attr-defined]
    node.thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[attr-defined]
    node.thread.start()  # type: ignore[attr-defined]


def stop_loop_thread(node: Node) -> None:
    """Stop a node's loop thread (``node.running``, ``node.thread``) and its own executor."""
    node.running = False  # type: ignore[attr-defined]
    node.thread.join(timeout=1.0)  # type: ignore[attr-defined]
    stop_own_executor(node)


def enter_loop_thread(node: Node, loop: DeadlineLoop, settings: Mapping[str, Any]) -> None:
    """First thing in a loop thread: its priorities (``realtime_priority``,
    ``middleware_priority``), logged, then the loop's schedule anchored."""
    for line in prepare_loop_thread(settings["realtime_priority"], settings["middleware_priority"]):
        node.get_logger().info(line)
    loop.start()


def run_loop_node(make_node: Callable[[], Node], args: list[str] | None) -> None:
    """:func:`ros_common.run_node` for a node with a loop thread: the control switch interval,
    and the node's ``stop()`` on shutdown."""

    def stop(node: Node) -> None:
        node.stop()  # type: ignore[attr-defined]

    run_node(make_node, args, on_shutdown=stop, switch_interval=CONTROL_SWITCH_INTERVAL)
