"""Run a finished run's policy on the robot, with no trainer.

    ros2 launch stochlite_bringup deploy.launch.py run_dir:=RUN [backend:=sim|hardware]
        [mode:=policy|mpc]
    launch_runner stochlite_bringup deploy.launch.py run_dir:=RUN ...

RUN is any run directory (`mdemorl train`, train.launch.py, `mdemorl retrain --bag`). The
policy_publisher node publishes the actor of its last checkpoint; the torque controller holds the
safe pose until it arrives, then acts continuously with the deterministic actor (mode:=policy),
or with the planner node's DMD-MPC plans (mode:=mpc, the actor as fallback). No transitions are
learned from; Ctrl-C stops every node.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    driver_config = os.path.join(get_package_share_directory("leg2r_driver"), "config")
    arg = LaunchConfiguration
    backend, mode = arg("backend"), arg("mode")
    realtime = {"realtime_priority": arg("realtime_priority")}
    arguments = [
        DeclareLaunchArgument("run_dir", description="the run whose policy to deploy"),
        DeclareLaunchArgument("robot", default_value="leg2r", choices=["leg2r"]),
        DeclareLaunchArgument("backend", default_value="sim", choices=["sim", "hardware"]),
        DeclareLaunchArgument("mode", default_value="policy", choices=["policy", "mpc"]),
        DeclareLaunchArgument(
            "hold_mode",
            default_value="pd",
            choices=["pd", "zero"],
            description="safe hold until the policy arrives: PD to the hold pose, or zero torque",
        ),
        DeclareLaunchArgument(
            "realtime_priority",
            default_value="10",
            description="SCHED_FIFO priority of the 500 Hz loops (0: off)",
        ),
    ]
    nodes = [
        Node(
            package="leg2r_driver",
            executable="sim_robot_node",
            name="sim_robot_node",
            parameters=[os.path.join(driver_config, "sim_robot.yaml"), realtime],
            condition=IfCondition(EqualsSubstitution(backend, "sim")),
        ),
        Node(
            package="leg2r_driver",
            executable="motor_driver_node",
            name="motor_driver_node",
            parameters=[os.path.join(driver_config, "motor_driver.yaml"), realtime],
            condition=IfCondition(EqualsSubstitution(backend, "hardware")),
        ),
        Node(
            package="leg2r_driver",
            executable="imu_node",
            name="imu_node",
            parameters=[os.path.join(driver_config, "imu.yaml")],
            condition=IfCondition(EqualsSubstitution(backend, "hardware")),
        ),
        Node(
            package="leg2r_driver",
            executable="torque_controller_node",
            name="torque_controller_node",
            parameters=[
                os.path.join(driver_config, "torque_controller.yaml"),
                {
                    "mode": mode,
                    "protocol": "async",
                    "default_action": "hold",
                    "hold_mode": arg("hold_mode"),
                    "deterministic": True,
                },
                realtime,
            ],
        ),
        Node(
            package="mdemorl_planner_node",
            executable="policy_publisher",
            name="policy_publisher",
            parameters=[{"run_dir": arg("run_dir")}],
        ),
        Node(
            package="mdemorl_planner_node",
            executable="planner_node",
            name="planner_node",
            parameters=[{"run_dir": arg("run_dir")}],
            condition=IfCondition(EqualsSubstitution(mode, "mpc")),
        ),
    ]
    return LaunchDescription(arguments + nodes)
