"""Train a policy on the 2R leg with M-DeMoRL: the whole graph of DESIGN.md §3.

    ros2 launch stochlite_bringup train.launch.py [robot:=sim|hardware] [epochs:=10] ...
    launch_runner stochlite_bringup train.launch.py ...        (machines without ros2 launch)

robot:=sim runs the MuJoCo leg in real time (sim_robot_node); robot:=hardware runs the CAN motor
driver and the IMU instead: the controller, trainer and planner cannot tell the difference.
The trainer ends the launch when its last epoch is done.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    driver_config = os.path.join(get_package_share_directory("leg2r_driver"), "config")
    bringup_config = os.path.join(get_package_share_directory("stochlite_bringup"), "config")
    run_dir = LaunchConfiguration("run_dir")
    sim = LaunchConfiguration("sim")
    hardware = LaunchConfiguration("hardware")
    realtime = {"realtime_priority": LaunchConfiguration("realtime_priority")}
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "run_dir",
                default_value="runs/ros_train",
                description="run directory: checkpoints, progress.csv, bag",
            ),
            DeclareLaunchArgument(
                "algo", default_value="mdemorl", choices=["mdemorl", "mbpo", "mopac", "sac"]
            ),
            DeclareLaunchArgument("epochs", default_value="10"),
            DeclareLaunchArgument("steps_per_epoch", default_value="1000"),
            DeclareLaunchArgument("resume", default_value="false", choices=["true", "false"]),
            DeclareLaunchArgument(
                "sim",
                default_value="true",
                choices=["true", "false"],
                description="true: simulated leg; false: use hardware:=true",
            ),
            DeclareLaunchArgument(
                "hardware",
                default_value="false",
                choices=["true", "false"],
                description="run the CAN motor driver and the IMU",
            ),
            DeclareLaunchArgument(
                "trainer_config",
                default_value=os.path.join(bringup_config, "trainer_leg2r.yaml"),
                description="mdemorl train config YAML",
            ),
            DeclareLaunchArgument(
                "realtime_priority",
                default_value="10",
                description="SCHED_FIFO priority of the 500 Hz loops (0: off; without the "
                "privilege the nodes log the refusal and run normally)",
            ),
            DeclareLaunchArgument(
                "trainer_niceness",
                default_value="0",
                description="raise the trainer's nice value by this much (e.g. 10 where the loops "
                "cannot get SCHED_FIFO: its epochs then yield the CPU to them)",
            ),
            Node(
                package="leg2r_driver",
                executable="sim_robot_node",
                name="sim_robot_node",
                parameters=[os.path.join(driver_config, "sim_robot.yaml"), realtime],
                condition=IfCondition(sim),
            ),
            Node(
                package="leg2r_driver",
                executable="motor_driver_node",
                name="motor_driver_node",
                parameters=[os.path.join(driver_config, "motor_driver.yaml"), realtime],
                condition=IfCondition(hardware),
            ),
            Node(
                package="leg2r_driver",
                executable="imu_node",
                name="imu_node",
                parameters=[os.path.join(driver_config, "imu.yaml")],
                condition=IfCondition(hardware),
            ),
            Node(
                package="leg2r_driver",
                executable="torque_controller_node",
                name="torque_controller_node",
                parameters=[
                    os.path.join(driver_config, "torque_controller.yaml"),
                    os.path.join(bringup_config, "training_controller.yaml"),
                    realtime,
                ],
            ),
            Node(
                package="mdemorl_planner_node",
                executable="trainer_node",
                name="trainer_node",
                parameters=[
                    {
                        "run_dir": run_dir,
                        "algo": LaunchConfiguration("algo"),
                        "epochs": LaunchConfiguration("epochs"),
                        "steps_per_epoch": LaunchConfiguration("steps_per_epoch"),
                        "resume": LaunchConfiguration("resume"),
                        "config_file": LaunchConfiguration("trainer_config"),
                        "niceness": LaunchConfiguration("trainer_niceness"),
                    }
                ],
                on_exit=Shutdown(),
            ),
            Node(
                package="mdemorl_planner_node",
                executable="planner_node",
                name="planner_node",
                parameters=[{"run_dir": run_dir}],
            ),
        ]
    )
