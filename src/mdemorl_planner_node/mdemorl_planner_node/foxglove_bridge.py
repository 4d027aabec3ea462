"""foxglove_bridge — the monitor topics over WebSocket for Foxglove (foxglove-sdk, pip-installable).

A machine without rqt (pip-only ROS) still gets a live view: Foxglove (web or desktop app) opens
``ws://127.0.0.1:8765`` and plots, for example, ``/mdemorl/tracking.tracking_error``. Each topic of
:data:`monitor_topics.MONITOR_TOPICS` (or the ``topics`` parameter's subset) becomes a Foxglove
channel with encoding ``cdr`` and a ``ros2msg`` schema (the full message definition with its
dependencies, as rosbag2's MCAP files carry it). Subscriptions are raw: the CDR bytes go to the
WebSocket clients as they arrived, nothing is deserialised, and nothing is sent for a channel no
client subscribed to, so the bridge costs the robot little.

Parameters: ``address`` ("127.0.0.1": this machine only; any other address is logged as the
explicit choice it is, since the bridge has no authentication), ``port`` (8765, Foxglove's usual
port; 0 picks a free one, logged), ``topics`` (the table's names), ``diagnostics_rate`` (1.0 Hz:
``/diagnostics`` reports the bridge's clients and forwarded messages per topic).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import foxglove
from ament_index_python.packages import get_package_share_directory
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from mdemorl_planner_node.bag_recorder import PROJECT_INTERFACES, message_class
from mdemorl_planner_node.monitor_topics import MONITOR_TOPICS, select_topics
from mdemorl_ros.ros_common import (
    DIAGNOSTICS_TOPIC,
    MONITOR_QOS,
    declare,
    diagnostic_status,
    run_node,
)

LOOPBACK = ("127.0.0.1", "localhost", "::1")

DEFAULTS: dict[str, Any] = {
    "address": "127.0.0.1",
    "port": 8765,
    "topics": list(MONITOR_TOPICS),
    "diagnostics_rate": 1.0,
}


def exposure_warning(address: str) -> str | None:
    """The warning to log when ``address`` makes the bridge reachable from other machines."""
    if address in LOOPBACK:
        return None
    return (
        f"address {address}: the bridge is reachable from other machines "
        "(explicit choice; it has no authentication)"
    )


def project_typestore() -> Any:
    """The Kilted type store with this project's interfaces (from the installed share) added."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    share = Path(get_package_share_directory(PROJECT_INTERFACES)) / "msg"
    for definition in sorted(share.glob("*.msg")):
        type_name = f"{PROJECT_INTERFACES}/msg/{definition.stem}"
        typestore.register(get_types_from_msg(definition.read_text(), type_name))
    return typestore


def ros2msg_schema(typestore: Any, type_name: str) -> foxglove.Schema:
    """The ``ros2msg`` schema of ``type_name``: its definition, then each dependency's."""
    text, _ = typestore.generate_msgdef(type_name, ros_version=2)
    return foxglove.Schema(name=type_name, encoding="ros2msg", data=text.encode())


class FoxgloveBridgeNode(Node):
    def __init__(self) -> None:
        super().__init__("foxglove_bridge")
        s = declare(self, DEFAULTS)
        topics = select_topics([name for name in s["topics"] if name])
        address, port = str(s["address"]), int(s["port"])
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        if s["diagnostics_rate"] <= 0.0:
            raise ValueError(f"diagnostics_rate must be > 0, got {s['diagnostics_rate']}")
        warning = exposure_warning(address)
        if warning is not None:
            self.get_logger().warning(warning)
        self.server = foxglove.start_server(name="mdemorl", host=address, port=port)
        typestore = project_typestore()
        self.forwarded = dict.fromkeys(topics, 0)
        self.channels: dict[str, foxglove.Channel] = {}
        for topic, spec in topics.items():
            channel = foxglove.Channel(
                topic, message_encoding="cdr", schema=ros2msg_schema(typestore, spec.type_name)
            )
            self.channels[topic] = channel
            self.create_subscription(
                message_class(spec.type_name),
                topic,
                partial(self.forward, topic, channel),
                spec.qos,
                raw=True,
            )
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, MONITOR_QOS)
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_diagnostics)
        self.url = f"ws://{address}:{self.server.port}"
        self.get_logger().info(f"foxglove bridge on {self.url}: {', '.join(topics)}")

    def forward(self, topic: str, channel: foxglove.Channel, data: bytes) -> None:
        if not channel.has_sinks():
            return
        channel.log(data, log_time=self.get_clock().now().nanoseconds)
        self.forwarded[topic] += 1

    def publish_diagnostics(self) -> None:
        subscribed = [topic for topic, channel in self.channels.items() if channel.has_sinks()]
        status = diagnostic_status(
            "foxglove_bridge",
            "monitor",
            DiagnosticStatus.OK,
            f"{self.url}, {len(subscribed)} channel(s) subscribed",
            {"url": self.url, "subscribed": subscribed, **self.forwarded},
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def stop(self) -> None:
        self.server.stop()


def _shutdown(node: Node) -> None:
    assert isinstance(node, FoxgloveBridgeNode)
    node.stop()


def main(args: list[str] | None = None) -> None:
    run_node(FoxgloveBridgeNode, args, on_shutdown=_shutdown)


if __name__ == "__main__":
    main()
