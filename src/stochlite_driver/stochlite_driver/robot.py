"""The StochLite's joints as the driver and the nodes name and address them (no ROS).

Joint names are the URDF's (``<leg>_<joint>``, legs FL, FR, BL, BR, joints abduction, hip,
knee: the order of ``mdemorl_core.envs.stochlite_gait``); servo ids on the RS-485 bus are
leg x 10 + joint with legs and joints counted from 1 (11 ... 43), as on StochLab's robot.
"""

from __future__ import annotations

from mdemorl_core.envs.stochlite_estimator import quaternion_roll_pitch
from mdemorl_core.envs.stochlite_gait import JOINTS_PER_LEG, LEG_NAMES, StochLiteParams

JOINT_NAMES: tuple[str, ...] = tuple(
    f"{leg}_{joint}" for leg in LEG_NAMES for joint in JOINTS_PER_LEG
)
SERVO_IDS: tuple[int, ...] = tuple(
    10 * (leg + 1) + joint + 1
    for leg in range(len(LEG_NAMES))
    for joint in range(len(JOINTS_PER_LEG))
)
NUM_JOINTS = len(JOINT_NAMES)


def joint_limits(params: StochLiteParams) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Lower and upper limits (rad) of the 12 joints in ``JOINT_NAMES`` order."""
    legs = len(LEG_NAMES)
    return tuple(params.joint_lower) * legs, tuple(params.joint_upper) * legs


roll_pitch = quaternion_roll_pitch
"""Roll and pitch (rad, ZYX Euler angles) of the orientation quaternion (x, y, z, w): the env's
own conversion (``stochlite_estimator.quaternion_roll_pitch``)."""
