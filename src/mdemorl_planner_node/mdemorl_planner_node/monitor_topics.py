"""The topics a person watches a training run through: names, types and the QoS to subscribe with.

One table serves the Foxglove bridge, ``mdemorl monitor`` and the layout files' tests. The QoS of
each entry is the publisher's own profile (from :mod:`mdemorl_ros.ros_common`), so a subscriber
built from it always matches: best effort for the 500 Hz state topics, reliable for the monitor
topics that plotting tools need (rqt_plot and PlotJuggler cannot subscribe to best-effort ones),
transient local where a late joiner must get the latest message.
"""

from __future__ import annotations

from dataclasses import dataclass

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from mdemorl_ros.ros_common import (
    CONTROLLER_PHASE_TOPIC,
    DIAGNOSTICS_TOPIC,
    IMU_TOPIC,
    JOINT_STATES_TOPIC,
    LOOP_HEALTH_TOPIC,
    MONITOR_QOS,
    PHASE_QOS,
    STATE_QOS,
    TRACKING_TOPIC,
)

# trainer_node defines it too (test_monitor_layouts checks they agree); importing trainer_node
# here would load torch into the bridge and the dashboard.
TRAINING_STATUS_TOPIC = "/mdemorl/training_status"
ROBOT_DESCRIPTION_TOPIC = "/robot_description"
# robot_state_publisher's profile: a late joiner gets the URDF.
ROBOT_DESCRIPTION_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


@dataclass(frozen=True)
class TopicSpec:
    """A watched topic: ``type_name`` is ``pkg/msg/Name``; ``qos`` is the publisher's profile."""

    type_name: str
    qos: QoSProfile

    @property
    def reliable(self) -> bool:
        return self.qos.reliability == ReliabilityPolicy.RELIABLE


MONITOR_TOPICS: dict[str, TopicSpec] = {
    TRACKING_TOPIC: TopicSpec("mdemorl_msgs/msg/TrackingState", MONITOR_QOS),
    TRAINING_STATUS_TOPIC: TopicSpec("mdemorl_msgs/msg/TrainingStatus", MONITOR_QOS),
    LOOP_HEALTH_TOPIC: TopicSpec("mdemorl_msgs/msg/LoopHealth", MONITOR_QOS),
    CONTROLLER_PHASE_TOPIC: TopicSpec("mdemorl_msgs/msg/ControllerPhase", PHASE_QOS),
    DIAGNOSTICS_TOPIC: TopicSpec("diagnostic_msgs/msg/DiagnosticArray", MONITOR_QOS),
    JOINT_STATES_TOPIC: TopicSpec("sensor_msgs/msg/JointState", STATE_QOS),
    IMU_TOPIC: TopicSpec("sensor_msgs/msg/Imu", STATE_QOS),
    ROBOT_DESCRIPTION_TOPIC: TopicSpec("std_msgs/msg/String", ROBOT_DESCRIPTION_QOS),
}


def select_topics(names: list[str]) -> dict[str, TopicSpec]:
    """The table's entries for ``names`` (all of them for an empty list).

    Raises ValueError naming the unknown topic and the ``topics`` parameter.
    """
    if not names:
        return dict(MONITOR_TOPICS)
    unknown = [name for name in names if name not in MONITOR_TOPICS]
    if unknown:
        raise ValueError(f"topics: unknown topic(s) {unknown}; known: {sorted(MONITOR_TOPICS)}")
    return {name: MONITOR_TOPICS[name] for name in names}
