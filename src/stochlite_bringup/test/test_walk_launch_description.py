"""walk.launch.py's description: robot_state_publisher gets the URDF of the task launched."""

from __future__ import annotations

from pathlib import Path

import ament_index_python.packages as ament_packages
import pytest
from ament_index_python.packages import get_package_share_directory

from stochlite_bringup import launch_compat as lc
from stochlite_bringup.runner import load_launch_description, parse_launch_arguments
from stochlite_driver.robot_description_node import default_urdf

pytestmark = pytest.mark.ros


def test_robot_state_publisher_gets_the_launched_tasks_urdf(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = ament_packages.get_package_share_directory

    def share(package: str) -> str:  # robot_state_publisher is not installed on this machine
        return str(tmp_path) if package == "robot_state_publisher" else real(package)

    monkeypatch.setattr(ament_packages, "get_package_share_directory", share)
    path = Path(get_package_share_directory("stochlite_bringup")) / "launch" / "walk.launch.py"
    description = load_launch_description(path)
    declared = [e for e in description.entities if isinstance(e, lc.DeclareLaunchArgument)]
    assert default_urdf("StochLite-v0") != default_urdf("StochLite-v1")
    for task in ("StochLite-v0", "StochLite-v1"):
        context = parse_launch_arguments([f"task:={task}"], declared)
        started = [
            e
            for e in description.entities
            if isinstance(e, lc.Node)
            and e.executable == "robot_state_publisher"
            and (e.condition is None or e.condition.evaluate(context))
        ]
        assert len(started) == 1
        assert started[0].parameters[0]["robot_description"] == default_urdf(task)
