"""Topics and message conversions shared by the StochLite nodes (driver, simulation, gait).

Joint targets arrive in either of two forms, both handled by :func:`targets_from_trajectory` /
:func:`targets_from_array`:
- ``trajectory_msgs/JointTrajectory`` on ``/joint_targets`` with exactly one point (StochLab's
  stack and CHAMP send the next setpoint this way); its ``header.stamp`` feeds the staleness check;
- ``std_msgs/Float64MultiArray`` on ``/position_controller/commands`` (a ros2_control position
  controller's interface): 12 positions in ``JOINT_NAMES`` order, unstamped, so it counts as
  fresh when it arrives.
QoS: best effort like ``/joint_states`` (``mdemorl_ros.ros_common.STATE_QOS``): a late
setpoint is worthless.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Quaternion
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from mdemorl_ros.ros_common import stamp_to_seconds
from stochlite_driver.robot import JOINT_NAMES
from stochlite_driver.robot import roll_pitch as quaternion_roll_pitch

JOINT_TARGETS_TOPIC = "/joint_targets"
POSITION_COMMANDS_TOPIC = "/position_controller/commands"
ROBOT_DESCRIPTION_TOPIC = "/robot_description"


class BadTargets(ValueError):
    """A target message that cannot be read as one set of joint positions."""


def targets_from_trajectory(msg: JointTrajectory) -> tuple[list[str], list[float], float]:
    """(names, positions rad, stamp s) of a one-point trajectory; BadTargets otherwise."""
    if len(msg.points) != 1:
        raise BadTargets(f"JointTrajectory must have exactly one point, got {len(msg.points)}")
    return list(msg.joint_names), list(msg.points[0].positions), stamp_to_seconds(msg.header.stamp)


def targets_from_array(msg: Float64MultiArray) -> tuple[list[str], list[float]]:
    """(names, positions rad) of a position-controller command (``JOINT_NAMES`` order)."""
    return list(JOINT_NAMES), list(msg.data)


def trajectory_message(positions: np.ndarray, stamp: Time) -> JointTrajectory:
    """One-point JointTrajectory of 12 positions [12] rad in ``JOINT_NAMES`` order."""
    msg = JointTrajectory(joint_names=list(JOINT_NAMES))
    msg.header.stamp = stamp
    msg.points = [JointTrajectoryPoint(positions=np.asarray(positions, float).tolist())]
    return msg


def joint_state_message(
    stamp: Time, position: np.ndarray, velocity: np.ndarray, effort: np.ndarray
) -> JointState:
    """``/joint_states`` of the 12 joints; NaN (never measured) entries are sent as NaN."""
    msg = JointState(name=list(JOINT_NAMES))
    msg.header.stamp = stamp
    msg.position = np.asarray(position, float).tolist()
    msg.velocity = np.asarray(velocity, float).tolist()
    msg.effort = np.asarray(effort, float).tolist()
    return msg


def roll_pitch(q: Quaternion) -> tuple[float, float]:
    """Roll and pitch (rad) of an orientation message."""
    return quaternion_roll_pitch(q.x, q.y, q.z, q.w)
