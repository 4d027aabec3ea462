"""Live monitoring of a training graph: the Foxglove bridge (foxglove-sdk, WebSocket).

    ros2 launch stochlite_bringup monitor.launch.py [foxglove_address:=127.0.0.1] [foxglove_port:=8765]
    launch_runner stochlite_bringup train.launch.py monitor:=true ...   (with the training graph)

Open Foxglove (app or browser) on ws://127.0.0.1:8765. The bridge serves the monitor topics,
/joint_states, /imu/data, /diagnostics and /robot_description. It listens on this machine only
unless foxglove_address says otherwise (the bridge logs that choice: it has no authentication).
The terminal dashboard needs no launch: `mdemorl monitor` attaches to a running graph; rqt and
PlotJuggler read config/monitor.perspective and config/monitor_plotjuggler.xml.

train.launch.py includes this file's :func:`monitor_arguments` and :func:`monitor_nodes` (the
pip-only launch_runner has no IncludeLaunchDescription).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def monitor_arguments():
    return [
        DeclareLaunchArgument(
            "foxglove_address",
            default_value="127.0.0.1",
            description="address the Foxglove bridge listens on (another: reachable from the "
            "network, without authentication)",
        ),
        DeclareLaunchArgument(
            "foxglove_port", default_value="8765", description="Foxglove bridge port (0: any)"
        ),
    ]


def monitor_nodes(condition=None):
    return [
        Node(
            package="mdemorl_planner_node",
            executable="foxglove_bridge",
            name="foxglove_bridge",
            parameters=[
                {
                    "address": LaunchConfiguration("foxglove_address"),
                    "port": LaunchConfiguration("foxglove_port"),
                }
            ],
            condition=condition,
        )
    ]


def generate_launch_description():
    return LaunchDescription(monitor_arguments() + monitor_nodes())
