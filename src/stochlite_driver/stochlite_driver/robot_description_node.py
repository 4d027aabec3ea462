"""robot_description_node: publishes the StochLite URDF on ``/robot_description``.

``std_msgs/String``, reliable and transient local (depth 1), as robot_state_publisher and
visualisers expect: a late subscriber gets it at once. ``urdf_path`` (default "": the URDF the
``task``'s env itself loads: for StochLite-v0 ``mdemorl_core/envs/assets/stochlite.urdf``, the
file the bringup also installs under its share; for StochLite-v1 the URDF generated from its
parameters, ``stochlite_urdf.stochlite_urdf``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rclpy.node import Node
from std_msgs.msg import String

from mdemorl_core.envs.stochlite_gait import task_params
from mdemorl_core.envs.stochlite_urdf import stochlite_urdf
from mdemorl_ros.ros_common import POLICY_QOS, declare, run_node
from stochlite_driver.ros_io import ROBOT_DESCRIPTION_TOPIC


def default_urdf(task: str = "StochLite-v0") -> str:
    """The URDF text ``task``'s env simulates."""
    if task == "StochLite-v1":
        return stochlite_urdf(task_params(task))
    task_params(task)  # ValueError naming the known tasks
    return resources.files("mdemorl_core.envs").joinpath("assets/stochlite.urdf").read_text()


class RobotDescriptionNode(Node):
    def __init__(self) -> None:
        super().__init__("robot_description_node")
        s = declare(self, {"urdf_path": "", "task": "StochLite-v0"})
        path = s["urdf_path"]
        if path and not Path(path).is_file():
            raise ValueError(f"urdf_path {path!r} is not a file")
        text = Path(path).read_text() if path else default_urdf(s["task"])
        # Transient local, depth 1, reliable: the policy topic's profile fits a description.
        self.publisher = self.create_publisher(String, ROBOT_DESCRIPTION_TOPIC, POLICY_QOS)
        self.publisher.publish(String(data=text))
        self.get_logger().info(f"published the URDF ({len(text)} characters)")


def main(args: list[str] | None = None) -> None:
    run_node(RobotDescriptionNode, args)


if __name__ == "__main__":
    main()
