"""Train a policy on the robot with M-DeMoRL: the whole graph of DESIGN.md §3.

    ros2 launch stochlite_bringup train.launch.py [backend:=sim|hardware] [epochs:=10] ...
    launch_runner stochlite_bringup train.launch.py ...        (machines without ros2 launch)

backend:=sim runs the MuJoCo leg in real time (sim_robot_node); backend:=hardware runs the CAN
motor driver and the IMU instead: the controller, trainer and planner cannot tell the difference.
protocol:=episodic (default) acts one epoch with policy version v, holds the safe pose while the
trainer updates, then acts with v+1; protocol:=async acts and learns at once. mode:=mpc drives the
leg with the planner node's DMD-MPC plans (started only then). The trainer ends the launch when
its last epoch is done. Each robot has its own config files (config/trainer_<robot>.yaml).
robot:=stochlite trains the quadruped instead (stochlite_sim_node or servo_driver_node, and the
gait controller; mode:=policy only); its nodes simulate or drive task:=StochLite-v1 (the aligned
robot; StochLite-v0 for runs of the first env), which must be config/trainer_stochlite.yaml's
env_id: the trainer refuses data of a controller with another task hash.
monitor:=true adds monitor.launch.py's Foxglove bridge (ws://127.0.0.1:8765 by default).
"""

import importlib.util
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.conditions import IfCondition
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import Node


def _monitor_launch():
    """monitor.launch.py, next to this file (launch_runner has no IncludeLaunchDescription)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "monitor.launch.py")
    spec = importlib.util.spec_from_file_location("monitor_launch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate_launch_description():
    monitor = _monitor_launch()
    driver_config = os.path.join(get_package_share_directory("leg2r_driver"), "config")
    bringup_config = os.path.join(get_package_share_directory("stochlite_bringup"), "config")
    arg = LaunchConfiguration
    backend, mode, robot = arg("backend"), arg("mode"), arg("robot")
    robot_backend = [robot, "_", backend]  # e.g. "stochlite_sim": the robot's own backend nodes
    realtime = {"realtime_priority": arg("realtime_priority")}
    task = {"task": arg("task")}
    arguments = [
        DeclareLaunchArgument(
            "run_dir", default_value="runs/ros_train", description="checkpoints, progress, bag"
        ),
        DeclareLaunchArgument(
            "robot",
            default_value="leg2r",
            choices=["leg2r", "stochlite"],
            description="leg2r: the 2R leg; stochlite: the quadruped (stochlite_driver nodes)",
        ),
        DeclareLaunchArgument(
            "task",
            default_value="StochLite-v1",
            choices=["StochLite-v0", "StochLite-v1"],
            description="robot:=stochlite: the task its nodes compute (= the trainer's env_id)",
        ),
        DeclareLaunchArgument(
            "backend",
            default_value="sim",
            choices=["sim", "hardware"],
            description="sim: the MuJoCo leg in real time; hardware: CAN motor driver + IMU",
        ),
        DeclareLaunchArgument(
            "mode",
            default_value="policy",
            choices=["policy", "mpc"],
            description="policy: the actor acts; mpc: the planner node's plans act",
        ),
        DeclareLaunchArgument(
            "protocol",
            default_value="episodic",
            choices=["episodic", "async"],
            description="episodic: act an epoch, hold while the trainer updates; async: both",
        ),
        DeclareLaunchArgument(
            "algo", default_value="mdemorl", choices=["mdemorl", "mbpo", "mopac", "sac"]
        ),
        DeclareLaunchArgument("epochs", default_value="-1", description="-1: trainer config's"),
        DeclareLaunchArgument(
            "steps_per_epoch", default_value="-1", description="-1: trainer config's"
        ),
        DeclareLaunchArgument("resume", default_value="false", choices=["true", "false"]),
        DeclareLaunchArgument(
            "hold_mode",
            default_value="pd",
            choices=["pd", "zero"],
            description="safe hold between episodic epochs: PD to the hold pose, or zero torque",
        ),
        DeclareLaunchArgument(
            "trainer_config",
            default_value=[bringup_config, "/trainer_", robot, ".yaml"],
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
    ]
    nodes = [
        Node(
            package="leg2r_driver",
            executable="sim_robot_node",
            name="sim_robot_node",
            parameters=[
                os.path.join(driver_config, "sim_robot.yaml"),
                [bringup_config, "/training_sim_", robot, ".yaml"],
                realtime,
            ],
            condition=IfCondition(EqualsSubstitution(robot_backend, "leg2r_sim")),
        ),
        Node(
            package="leg2r_driver",
            executable="motor_driver_node",
            name="motor_driver_node",
            parameters=[os.path.join(driver_config, "motor_driver.yaml"), realtime],
            condition=IfCondition(EqualsSubstitution(robot_backend, "leg2r_hardware")),
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
                [bringup_config, "/training_controller_", robot, ".yaml"],
                {"mode": mode, "protocol": arg("protocol"), "hold_mode": arg("hold_mode")},
                realtime,
            ],
            condition=IfCondition(EqualsSubstitution(robot, "leg2r")),
        ),
        # The quadruped: its simulator or B3M servo driver, and the gait controller (mode:=policy).
        Node(
            package="stochlite_driver",
            executable="stochlite_sim_node",
            name="stochlite_sim_node",
            parameters=[[bringup_config, "/training_sim_", robot, ".yaml"], task, realtime],
            condition=IfCondition(EqualsSubstitution(robot_backend, "stochlite_sim")),
        ),
        Node(
            package="stochlite_driver",
            executable="servo_driver_node",
            name="servo_driver_node",
            parameters=[task, realtime],
            condition=IfCondition(EqualsSubstitution(robot_backend, "stochlite_hardware")),
        ),
        Node(
            package="stochlite_driver",
            executable="gait_controller_node",
            name="gait_controller_node",
            parameters=[
                [bringup_config, "/training_controller_", robot, ".yaml"],
                {"protocol": arg("protocol")},
                task,
                realtime,
            ],
            condition=IfCondition(EqualsSubstitution(robot, "stochlite")),
        ),
        Node(
            package="mdemorl_planner_node",
            executable="trainer_node",
            name="trainer_node",
            parameters=[
                {
                    "run_dir": arg("run_dir"),
                    "algo": arg("algo"),
                    "epochs": arg("epochs"),
                    "steps_per_epoch": arg("steps_per_epoch"),
                    "resume": arg("resume"),
                    "protocol": arg("protocol"),
                    "config_file": arg("trainer_config"),
                    "niceness": arg("trainer_niceness"),
                }
            ],
            on_exit=Shutdown(),
        ),
        Node(
            package="mdemorl_planner_node",
            executable="planner_node",
            name="planner_node",
            parameters=[{"run_dir": arg("run_dir")}],
            condition=IfCondition(EqualsSubstitution(mode, "mpc")),
        ),
    ]
    arguments.append(
        DeclareLaunchArgument(
            "monitor",
            default_value="false",
            choices=["true", "false"],
            description="also start the Foxglove bridge (monitor.launch.py)",
        )
    )
    arguments += monitor.monitor_arguments()
    nodes += monitor.monitor_nodes(IfCondition(arg("monitor")))
    return LaunchDescription(arguments + nodes)
