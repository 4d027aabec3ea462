"""foxglove_bridge against a short sim run (sim robot, torque controller, trainer; ~15 s in all).

A WebSocket client written here from the Foxglove protocol (subprotocol ``foxglove.sdk.v1``: JSON
``serverInfo``/``advertise``, a ``subscribe`` op, binary message frames of opcode 1 with the
subscription id and a timestamp) subscribes to ``/mdemorl/tracking``, decodes each CDR payload with
the ``ros2msg`` schema the bridge advertised (mcap_ros2's decoder, not the bridge's code), and the
values must equal those of the messages an rclpy probe received from the controller itself.
The bridge is bound to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from ament_index_python.packages import get_package_share_directory
from mcap.records import Schema
from mcap_ros2.decoder import DecoderFactory
from rclpy.qos import QoSProfile, ReliabilityPolicy

from mdemorl_msgs.msg import TrackingState
from mdemorl_planner_node.monitor_topics import MONITOR_TOPICS
from mdemorl_ros.ros_testing import RosHarness
from stochlite_bringup.monitor_layouts import layout_signals

pytestmark = pytest.mark.ros

SUBPROTOCOL = "foxglove.sdk.v1"
MESSAGE_DATA_OPCODE = 1
WANTED = 30


def _stamp(sec: int, nanosec: int) -> int:
    return sec * 1_000_000_000 + nanosec


class FoxgloveClient:
    """Subscribes to one topic and keeps (advertised channel, decoded messages) in a thread."""

    def __init__(self, url: str, topic: str, wanted: int) -> None:
        self.url, self.topic, self.wanted = url, topic, wanted
        self.server_info: dict[str, Any] = {}
        self.channel: dict[str, Any] = {}
        self.frames: list[tuple[int, int, bytes]] = []  # (subscription id, log time, payload)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(asyncio.wait_for(self._session(), timeout=20.0))
        except BaseException as error:  # reported by the test thread
            self.error = error

    async def _session(self) -> None:
        async with websockets.connect(self.url, subprotocols=[SUBPROTOCOL]) as ws:
            while not self.channel:
                message = await ws.recv()
                if isinstance(message, bytes):
                    continue
                body = json.loads(message)
                if body["op"] == "serverInfo":
                    self.server_info = body
                elif body["op"] == "advertise":
                    for channel in body["channels"]:
                        if channel["topic"] == self.topic:
                            self.channel = channel
            subscription = {"id": 7, "channelId": self.channel["id"]}
            await ws.send(json.dumps({"op": "subscribe", "subscriptions": [subscription]}))
            while len(self.frames) < self.wanted:
                message = await ws.recv()
                if isinstance(message, bytes) and message[0] == MESSAGE_DATA_OPCODE:
                    subscription_id, log_time = struct.unpack_from("<IQ", message, 1)
                    self.frames.append((subscription_id, log_time, message[13:]))


@pytest.fixture(scope="module")
def graph(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RosHarness, dict[int, TrackingState], str]]:
    harness = RosHarness(salt=61)
    probe = harness.node("tracking_probe")
    published: dict[int, TrackingState] = {}

    def keep(msg: TrackingState) -> None:
        published[_stamp(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg

    # A deep reader history: a probe stalled by a loaded machine must not drop what it compares.
    deep = QoSProfile(depth=5000, reliability=ReliabilityPolicy.RELIABLE)
    probe.create_subscription(TrackingState, "/mdemorl/tracking", keep, deep)
    harness.start("leg2r_driver.sim_robot_node")
    harness.start("leg2r_driver.torque_controller_node")
    # A trainer that never reaches the end of its epoch: here for its publishers' QoS.
    trainer_parameters = {
        "run_dir": str(tmp_path_factory.mktemp("bridge") / "run"),
        "env_id": "Leg2R-v0",
        "protocol": "async",
        "epochs": 1,
        "steps_per_epoch": 1_000_000,
        "record_bag": False,
    }
    harness.start("mdemorl_planner_node.trainer_node", trainer_parameters)
    bridge = harness.start(
        "mdemorl_planner_node.foxglove_bridge", {"port": 0, "diagnostics_rate": 4.0}
    )
    url = ""

    def bridge_ready() -> bool:
        nonlocal url
        found = re.search(r"foxglove bridge on (ws://\S+):", harness.output(bridge))
        url = found.group(1) if found else ""
        return bool(url) and bool(published)

    try:
        assert harness.spin_until(bridge_ready, timeout=20.0), harness.output(bridge)
        yield harness, published, url
    finally:
        harness.close()


def test_client_decodes_what_the_controller_published(
    graph: tuple[RosHarness, dict[int, TrackingState], str],
) -> None:
    harness, published, url = graph
    assert url.startswith("ws://127.0.0.1:")
    client = FoxgloveClient(url, "/mdemorl/tracking", WANTED)
    client.thread.start()
    harness.spin_until(lambda: not client.thread.is_alive(), timeout=25.0)
    harness.spin_for(0.2)  # the probe's copy of the last frames
    assert client.error is None, repr(client.error)
    assert client.server_info["name"] == "mdemorl"
    channel = client.channel
    assert channel["encoding"] == "cdr"
    assert channel["schemaName"] == "mdemorl_msgs/msg/TrackingState"
    assert channel["schemaEncoding"] == "ros2msg"
    schema = Schema(
        id=1, name=channel["schemaName"], encoding="ros2msg", data=channel["schema"].encode()
    )
    decode = DecoderFactory().decoder_for("cdr", schema)
    assert decode is not None
    assert len(client.frames) == WANTED
    for subscription_id, log_time, payload in client.frames:
        assert subscription_id == 7
        assert log_time > 0
        decoded = decode(payload)
        original = published[_stamp(decoded.header.stamp.sec, decoded.header.stamp.nanosec)]
        for field in ("desired_position", "actual_position", "desired_velocity", "actual_velocity"):
            assert list(getattr(decoded, field)) == list(getattr(original, field)), field
        assert decoded.tracking_error == original.tracking_error
        assert decoded.reward == original.reward


def test_plotted_topics_are_published_reliable(
    graph: tuple[RosHarness, dict[int, TrackingState], str],
) -> None:
    """Every live publisher of every topic the shipped layouts plot (and of /diagnostics, which
    the rqt perspective's monitor shows) offers reliable QoS."""
    harness, _, _ = graph
    config = Path(get_package_share_directory("stochlite_bringup")) / "config"
    topics = {
        s.topic for signals in layout_signals(config, MONITOR_TOPICS).values() for s in signals
    }
    assert {"/mdemorl/tracking", "/mdemorl/training_status", "/mdemorl/loop_health"} <= topics
    probe = harness.node("qos_probe")
    for topic in sorted(topics | {"/diagnostics"}):
        deadline = time.monotonic() + 15.0
        while not probe.get_publishers_info_by_topic(topic) and time.monotonic() < deadline:
            harness.spin_for(0.1)
        infos = probe.get_publishers_info_by_topic(topic)
        assert infos, f"nobody publishes {topic}"
        for info in infos:
            assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE, (
                topic,
                info.node_name,
            )
