"""An independent probe node for launch tests: isolated environment, recording subscriptions,
spinning until a condition, the launch runner as a child process and its exit lines.

rclpy is imported only once the isolated environment is in ``os.environ`` (the domain id and
discovery range are read when rclpy starts), and the environment is restored on exit.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from stochlite_bringup.ros_test_env import isolated_ros_env

EXIT_LINE = re.compile(r"\[launch_runner\] (\S+) exited with (-?\d+)")


def launch_exits(output: str) -> list[tuple[str, str]]:
    """(process name, exit code as text) for each process the launch runner reported."""
    return EXIT_LINE.findall(output)


def reliable(depth: int) -> Any:
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


def latched() -> Any:
    """Reliable, transient local, depth 1: a late subscriber gets the latest message."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )


class LaunchProbe:
    """``with LaunchProbe(tmp_path, salt, name) as probe:`` a node in its own ROS domain.

    On exit, every launch started with :meth:`launch` that still runs is killed, the node is
    destroyed, rclpy shut down and ``os.environ`` restored.
    """

    def __init__(self, tmp_path: Path, salt: int, name: str) -> None:
        self.env = isolated_ros_env(tmp_path / "ros_log", salt=salt)
        self.name = name
        self.launches: list[subprocess.Popen[str]] = []

    def __enter__(self) -> LaunchProbe:
        self.saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        import rclpy

        rclpy.init()
        self.node = rclpy.create_node(self.name)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        import rclpy

        for launch in self.launches:
            if launch.poll() is None:
                launch.kill()
        self.node.destroy_node()
        rclpy.try_shutdown()
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def record(self, msg_type: type, topic: str, qos: Any) -> list[Any]:
        """Subscribe ``topic``; returns the list its messages are appended to."""
        messages: list[Any] = []
        self.node.create_subscription(msg_type, topic, messages.append, qos)
        return messages

    def record_timed(self, msg_type: type, topic: str, qos: Any) -> list[tuple[float, Any]]:
        """As :meth:`record`, each message with its ``time.monotonic()`` arrival time."""
        messages: list[tuple[float, Any]] = []
        self.node.create_subscription(
            msg_type, topic, lambda m: messages.append((time.monotonic(), m)), qos
        )
        return messages

    def spin_once(self) -> None:
        import rclpy

        rclpy.spin_once(self.node, timeout_sec=0.05)

    def spin_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Spin until ``condition()`` or ``timeout`` seconds; returns ``condition()``."""
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            self.spin_once()
        return condition()

    def spin_times(self, count: int) -> None:
        """Spin ``count`` more times (messages still in flight)."""
        for _ in range(count):
            self.spin_once()

    def launch(self, launch_file: str, arguments: list[str]) -> subprocess.Popen[str]:
        """``stochlite_bringup``'s ``launch_file`` under the launch runner, in this domain,
        stdout and stderr together as text."""
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stochlite_bringup.runner",
                "stochlite_bringup",
                launch_file,
                *arguments,
            ],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.launches.append(process)
        return process
