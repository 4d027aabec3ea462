"""Deploy a walking policy on the StochLite quadruped (simulated or real), with no trainer.

    ros2 launch stochlite_bringup walk.launch.py [run_dir:=RUN|ACTOR_FILE] [backend:=sim|hardware]
        [port:=/dev/ttyUSB0] [posture_script:="stand@0 walk@3 sit@20"]
    launch_runner stochlite_bringup walk.launch.py ...

The gait controller starts passive and follows posture commands (std_msgs/String on
/stochlite/posture_command: stand, walk, sit, passive), or the scripted ones of posture_script:
passive -> stand up -> walk -> sit down. While walking, the trajectory generator's shifts come
from RUN's actor (policy_publisher, deterministic; RUN may be an actor file `mdemorl export`
wrote); with no run_dir it walks the trajectory
generator alone (default_action:=zero) or stands (default_action:=hold). A tilt beyond sit_tilt
sits it down; the driver's attitude guard (tilt_limit) relaxes the servos and latches its e-stop.
backend:=hardware runs servo_driver_node on the RS-485 bus at `port` and the IMU node; sim runs
stochlite_sim_node. task:=StochLite-v1 (default) or StochLite-v0 names the robot the nodes
compute and must be the run's env_id (the gait controller refuses an actor of other sizes). The
task's URDF is published on /robot_description; robot_state_publisher, started only where it is
installed, gets the same task's URDF (one conditional node per task).
"""

import os

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import Node

from stochlite_driver.robot_description_node import default_urdf

DEFAULT_TASK = "StochLite-v1"
TASKS = ("StochLite-v0", "StochLite-v1")


def robot_state_publisher(task: LaunchConfiguration) -> list:
    """One robot_state_publisher per task, each with that task's URDF, started when ``task``
    names it (a launch description cannot read an argument's value, a condition can)."""
    try:
        get_package_share_directory("robot_state_publisher")
    except PackageNotFoundError:
        return []
    return [
        Node(
            package="robot_state_publisher",
            executable="robot_state_publisher",
            name="robot_state_publisher",
            parameters=[{"robot_description": default_urdf(name)}],
            condition=IfCondition(EqualsSubstitution(task, name)),
        )
        for name in TASKS
    ]


def generate_launch_description():
    arg = LaunchConfiguration
    backend, run_dir = arg("backend"), arg("run_dir")
    realtime = {"realtime_priority": arg("realtime_priority")}
    arguments = [
        DeclareLaunchArgument(
            "run_dir",
            default_value="",
            description="run (or actor file from `mdemorl export`) whose actor walks",
        ),
        DeclareLaunchArgument("backend", default_value="sim", choices=["sim", "hardware"]),
        DeclareLaunchArgument(
            "task",
            default_value=DEFAULT_TASK,
            choices=list(TASKS),
            description="the robot the nodes compute: the run's env_id",
        ),
        DeclareLaunchArgument("port", default_value="/dev/ttyUSB0", description="RS-485 adaptor"),
        DeclareLaunchArgument(
            "posture_script",
            default_value="",
            description='posture commands at seconds after start, e.g. "stand@0 walk@3 sit@20"',
        ),
        DeclareLaunchArgument(
            "default_action",
            default_value="hold",
            choices=["hold", "zero"],
            description="while walking before (or without) a policy: stand, or zero shifts",
        ),
        DeclareLaunchArgument("sit_tilt", default_value="0.6", description="rad: sit down"),
        DeclareLaunchArgument("tilt_limit", default_value="1.3", description="rad: relax, e-stop"),
        DeclareLaunchArgument(
            "realtime_priority", default_value="0", description="SCHED_FIFO of the loops (0: off)"
        ),
    ]
    safety = {"tilt_limit": arg("tilt_limit")}
    task = {"task": arg("task")}
    nodes = [
        Node(
            package="stochlite_driver",
            executable="robot_description_node",
            name="robot_description_node",
            parameters=[task],
        ),
        *robot_state_publisher(arg("task")),
        Node(
            package="stochlite_driver",
            executable="stochlite_sim_node",
            name="stochlite_sim_node",
            parameters=[safety, task, realtime],
            condition=IfCondition(EqualsSubstitution(backend, "sim")),
        ),
        Node(
            package="stochlite_driver",
            executable="servo_driver_node",
            name="servo_driver_node",
            parameters=[{"port": arg("port")}, safety, task, realtime],
            condition=IfCondition(EqualsSubstitution(backend, "hardware")),
        ),
        Node(
            package="leg2r_driver",
            executable="imu_node",
            name="imu_node",
            parameters=[
                os.path.join(get_package_share_directory("leg2r_driver"), "config", "imu.yaml")
            ],
            condition=IfCondition(EqualsSubstitution(backend, "hardware")),
        ),
        Node(
            package="stochlite_driver",
            executable="gait_controller_node",
            name="gait_controller_node",
            parameters=[
                {
                    "protocol": "async",
                    "posture": "passive",
                    "posture_script": arg("posture_script"),
                    "default_action": arg("default_action"),
                    "sit_tilt": arg("sit_tilt"),
                    "deterministic": True,
                    "reset_service": "",
                },
                task,
                realtime,
            ],
        ),
        Node(
            package="mdemorl_planner_node",
            executable="policy_publisher",
            name="policy_publisher",
            parameters=[{"run_dir": run_dir}],
            condition=UnlessCondition(EqualsSubstitution(run_dir, "")),
        ),
    ]
    return LaunchDescription(arguments + nodes)
