"""Record topics into a rosbag2 (metadata v9, MCAP storage, CDR) from raw subscriptions.

``ros2 bag`` is not installable from PyPI, so the trainer records its own bag with ``rosbags``:
each subscription hands the CDR bytes straight to the writer (no deserialisation), and the
project's own message definitions are read from the installed ``mdemorl_msgs`` share directory.
The rosbags MCAP writer buffers up to 1 MiB per chunk: a recorder killed with SIGKILL loses at
most that tail (the trainer's checkpoints keep D_ENV regardless); SIGINT/SIGTERM close the bag.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

from ament_index_python.packages import get_package_share_directory
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from mdemorl_ros.ros_common import (
    EFFORT_COMMAND_TOPIC,
    IMU_TOPIC,
    JOINT_STATES_TOPIC,
    TRANSITION_QOS,
    TRANSITION_TOPIC,
)

PROJECT_INTERFACES = "mdemorl_msgs"
# The loop topics are listened to best effort (as their publishers offer them), with a deep queue.
RECORD_STATE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.BEST_EFFORT
)
TRAINING_TOPICS: dict[str, tuple[str, QoSProfile]] = {
    TRANSITION_TOPIC: ("mdemorl_msgs/msg/Transition", TRANSITION_QOS),
    JOINT_STATES_TOPIC: ("sensor_msgs/msg/JointState", RECORD_STATE_QOS),
    EFFORT_COMMAND_TOPIC: ("mdemorl_msgs/msg/EffortCommand", RECORD_STATE_QOS),
    IMU_TOPIC: ("sensor_msgs/msg/Imu", RECORD_STATE_QOS),
}
"""What the trainer records (topic -> message type and subscription QoS): what a retrain reads,
and the robot's own streams next to it."""


def message_class(type_name: str) -> Any:
    """``pkg/msg/Name`` -> the generated Python class."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def _offered_qos(profile: QoSProfile) -> Qos:
    reliable = profile.reliability == ReliabilityPolicy.RELIABLE
    infinite = QosTime(sec=0x7FFFFFFF, nsec=0xFFFFFFFF)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=profile.depth,
        reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        durability=QosDurability.VOLATILE,
        deadline=infinite,
        lifespan=infinite,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=infinite,
        avoid_ros_namespace_conventions=False,
    )


class BagRecorder:
    """Subscribes ``node`` to ``topics`` ({topic: (type name, QoS)}) and writes a bag at ``path``."""

    def __init__(self, node: Node, path: Path, topics: dict[str, tuple[str, QoSProfile]]) -> None:
        typestore = get_typestore(Stores.ROS2_KILTED)
        share = Path(get_package_share_directory(PROJECT_INTERFACES)) / "msg"
        for definition in sorted(share.glob("*.msg")):
            type_name = f"{PROJECT_INTERFACES}/msg/{definition.stem}"
            typestore.register(get_types_from_msg(definition.read_text(), type_name))
        self.lock = threading.Lock()
        self.node = node
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.connections = {}
        self.counts = dict.fromkeys(topics, 0)
        for topic, (type_name, qos) in topics.items():
            self.connections[topic] = self.writer.add_connection(
                topic, type_name, typestore=typestore, offered_qos_profiles=[_offered_qos(qos)]
            )
            node.create_subscription(
                message_class(type_name),
                topic,
                lambda data, topic=topic: self.write(topic, data),
                qos,
                raw=True,
            )
        self.closed = False

    def write(self, topic: str, data: bytes) -> None:
        stamp = self.node.get_clock().now().nanoseconds
        with self.lock:
            if self.closed:
                return
            self.writer.write(self.connections[topic], stamp, data)
            self.counts[topic] += 1

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                self.writer.close()
