"""mdemorl_msgs across process boundaries: a Transition publisher and subscriber in two processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stochlite_bringup.ros_test_env import isolated_ros_env

pytestmark = pytest.mark.ros

NUM_MESSAGES = 25

SUBSCRIBER = textwrap.dedent(
    """
    import json, sys
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy
    from mdemorl_msgs.msg import Transition

    expected = int(sys.argv[1])
    received = []
    rclpy.init()
    node = rclpy.create_node("transition_listener")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_LAST)

    def on_transition(msg):
        received.append({
            "episode": msg.episode, "step": msg.step,
            "observation": list(msg.observation), "action": list(msg.action),
            "next_observation": list(msg.next_observation), "reward": msg.reward,
            "terminated": msg.terminated, "truncated": msg.truncated,
        })

    node.create_subscription(Transition, "/mdemorl/transition", on_transition, qos)
    print("READY", flush=True)
    while rclpy.ok() and len(received) < expected:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps(received), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    """
)

PUBLISHER = textwrap.dedent(
    """
    import sys, time
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy
    from mdemorl_msgs.msg import Transition

    count = int(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node("transition_talker")
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                     history=HistoryPolicy.KEEP_LAST)
    pub = node.create_publisher(Transition, "/mdemorl/transition", qos)
    deadline = time.monotonic() + 20.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    for i in range(count):
        msg = Transition()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.episode = i // 10
        msg.step = i % 10
        msg.observation = [float(i), 0.5, -1.0]
        msg.action = [0.25 * (i % 4) - 0.5]
        msg.next_observation = [float(i + 1), 0.5, -1.0]
        msg.reward = 0.1 * i
        msg.terminated = i == count - 1
        msg.truncated = False
        pub.publish(msg)
        time.sleep(0.002)
    time.sleep(1.0)
    node.destroy_node()
    rclpy.shutdown()
    """
)


def test_transition_exchanged_between_two_processes(tmp_path: Path) -> None:
    env = isolated_ros_env(tmp_path / "ros_log")
    listener = subprocess.Popen(
        [sys.executable, "-c", SUBSCRIBER, str(NUM_MESSAGES)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "READY"
        talker = subprocess.run(
            [sys.executable, "-c", PUBLISHER, str(NUM_MESSAGES)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert talker.returncode == 0, talker.stderr
        out, err = listener.communicate(timeout=30)
    finally:
        listener.kill()
    assert listener.returncode == 0, err
    received = json.loads(out.strip().splitlines()[-1])

    assert len(received) == NUM_MESSAGES
    for i, msg in enumerate(received):
        assert msg["episode"] == i // 10 and msg["step"] == i % 10
        assert msg["observation"] == [float(i), 0.5, -1.0]
        assert msg["action"] == [0.25 * (i % 4) - 0.5]
        assert msg["next_observation"] == [float(i + 1), 0.5, -1.0]
        assert msg["reward"] == pytest.approx(0.1 * i, rel=1e-6)
        assert msg["terminated"] == (i == NUM_MESSAGES - 1)
        assert msg["truncated"] is False
