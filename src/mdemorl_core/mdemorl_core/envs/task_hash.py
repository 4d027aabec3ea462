"""The task hash a robot's controller publishes and the trainer checks (no ROS here).

Each controller publishes the hash of the task it computes transitions for with its phase; the
trainer computes the hash of its own env's task with :func:`task_hash_of` and refuses the data of
a controller whose hash differs (the controller's launch arguments and the trainer's config name
the task separately, this catches a mismatch).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict

from mdemorl_core.envs import stochlite_gait
from mdemorl_core.envs.leg2r_task import Leg2RParams
from mdemorl_core.envs.stochlite_gait import StochLiteParams

# Leg2RParams fields that decide what a transition means: the observation, action scaling and
# reward (geometry, rates, reference, scales). Masses and friction are the physics', not the task's.
LEG2R_TASK_FIELDS = (
    "thigh_length",
    "shank_length",
    "torque_limit",
    "control_hz",
    "decimation",
    "ref_centre",
    "ref_semi_axes",
    "ref_period",
    "position_scale",
    "velocity_scale",
    "joint_velocity_scale",
)


def leg2r_task_hash(params: Leg2RParams) -> str:
    """Short hash of the Leg2R task definition (``LEG2R_TASK_FIELDS``)."""
    values = asdict(params)
    text = repr([(name, values[name]) for name in LEG2R_TASK_FIELDS])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def task_hash_of(params: object) -> str:
    """The hash a controller of this task publishes: the leg's (``Leg2RParams``) or the
    quadruped's (``StochLiteParams``); "" for the params of a task no controller checks."""
    if isinstance(params, Leg2RParams):
        return leg2r_task_hash(params)
    if isinstance(params, StochLiteParams):
        return stochlite_gait.task_hash(params)
    return ""
