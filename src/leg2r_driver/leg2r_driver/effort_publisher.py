"""A minimal stand-in for the torque controller: constant efforts on /effort_command at a rate.

Used by the tests (kill it and watch the driver's watchdog) and handy on the robot for a first
motor check::

    python -m leg2r_driver.effort_publisher --ros-args -p effort:="[0.5, 0.0]" -p rate:=500.0
"""

from __future__ import annotations

import threading

from rclpy.node import Node

from mdemorl_msgs.msg import EffortCommand
from mdemorl_ros.loop_timing import DeadlineLoop
from mdemorl_ros.ros_common import EFFORT_COMMAND_TOPIC, STATE_QOS, declare, run_node


class EffortPublisher(Node):
    """Publishes the ``effort`` parameter for ``joint_names`` every 1/``rate`` seconds."""

    def __init__(self) -> None:
        super().__init__("effort_publisher")
        s = declare(self, {"joint_names": ["hip", "knee"], "effort": [0.5, 0.5], "rate": 500.0})
        if len(s["joint_names"]) != len(s["effort"]):
            raise ValueError("parameters joint_names and effort must have the same length")
        self.names = list(s["joint_names"])
        self.effort = [float(e) for e in s["effort"]]
        self.publisher = self.create_publisher(EffortCommand, EFFORT_COMMAND_TOPIC, STATE_QOS)
        self.loop = DeadlineLoop(1.0 / s["rate"])
        self.sequence = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, name="effort-loop", daemon=True)
        self.thread.start()

    def run(self) -> None:
        self.loop.start()
        while self.running:
            self.loop.wait()
            msg = EffortCommand(name=self.names, effort=self.effort, sequence=self.sequence)
            msg.header.stamp = self.get_clock().now().to_msg()
            self.publisher.publish(msg)
            self.sequence += 1

    def stop(self) -> None:
        self.running = False
        self.thread.join(timeout=1.0)


def _shutdown(node: Node) -> None:
    assert isinstance(node, EffortPublisher)
    node.stop()


def main(args: list[str] | None = None) -> None:
    run_node(EffortPublisher, args, on_shutdown=_shutdown)


if __name__ == "__main__":
    main()
