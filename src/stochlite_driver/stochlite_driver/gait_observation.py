"""The gait controller's measured observation, reward and termination, per StochLite task.

All the math is ``mdemorl_core.envs.stochlite_estimator`` (no ROS), the code StochLite-v1's env
observes with, so the node and the env cannot drift apart: :func:`observer_for_task` builds the
:class:`StochLiteObserver` that measures ``task`` as the env does, :func:`step_outcome` turns
its observation into the task's reward and termination.

- ``StochLite-v1``: the env's own observer (contacts from the gait schedule, odometry speed in
  the observation [11], termination with the absolute IMU attitude): the node's transitions are
  the env's, entry for entry, for the same joint and IMU readings (test_gait_observation).
- ``StochLite-v0``: the env observes the simulator's true slope, height and world velocity; the
  node measures the same layout [10] with contacts from the legs' effort and leg odometry for
  the reward's speed. Measured on the env's zero-shift gait (test_gait_observation, 100 policy
  steps): with the simulator's true contacts the slope error is ~0.01 rad; the effort-based
  contacts are the weak part (errors of several 0.01 rad).
"""

from __future__ import annotations

import math

import numpy as np

from mdemorl_core.envs.stochlite_estimator import (
    OBSERVATION_BOUND,
    StochLiteObserver,
    SupportPlaneEstimator,
    feet_in_body,
    fit_plane,
    in_stance,
    measured_reward,
    measured_termination,
    stance_displacement,
    tilt_rotation,
)
from mdemorl_core.envs.stochlite_gait import StochLiteParams, task_params

OBSERVERS: dict[str, tuple[str, bool]] = {
    "StochLite-v0": ("effort", False),
    "StochLite-v1": ("schedule", True),
}
"""Per task: the observer's contact source and whether the odometry speed is observed (v1's
termination also checks the absolute attitude)."""


def observer_for_task(
    task: str, params: StochLiteParams | None = None, contact_effort: float = 0.5
) -> StochLiteObserver:
    """The observer measuring ``task`` (``params`` default: the task's own)."""
    task_defaults = task_params(task)  # ValueError naming the known tasks
    contact_source, include_velocity = OBSERVERS[task]
    chosen = params if params is not None else task_defaults
    if include_velocity and chosen.progress_from != "odometry":
        raise ValueError(
            f"{task}: the gait controller pays leg odometry (a robot has no other speed), got "
            f"progress_from={chosen.progress_from!r}"
        )
    return StochLiteObserver(
        chosen,
        contact_source,
        include_velocity,
        contact_effort,
    )


def step_outcome(
    observer: StochLiteObserver, observation: np.ndarray, velocity: float, power: float
) -> tuple[float, bool]:
    """(reward, terminated) of the policy step ending in ``observation``; with the speed in the
    observation (v1) the reward reads it from there, as the env and its known reward do."""
    params = observer.params
    if observer.include_velocity:
        velocity = float(observation[10])
    terminated = measured_termination(observation, params, absolute=observer.include_velocity)
    return measured_reward(observation, velocity, power, params, terminated), terminated


def build_observation(
    roll: float,
    pitch: float,
    body_rates: np.ndarray,
    plane: tuple[float, float, float],
    gait_phase: float,
) -> np.ndarray:
    """The StochLite-v0 layout [10] float32 from the IMU roll/pitch and rates [3], a support
    plane estimate (slope roll, slope pitch, height) and the gait phase (rad)."""
    slope_roll, slope_pitch, height = plane
    observation = np.concatenate(
        [
            [roll, pitch],
            np.asarray(body_rates, dtype=np.float64),
            [height, slope_roll, slope_pitch],
            [math.sin(gait_phase), math.cos(gait_phase)],
        ]
    )
    return np.clip(observation, -OBSERVATION_BOUND, OBSERVATION_BOUND).astype(np.float32)


def terminated(observation: np.ndarray, params: StochLiteParams) -> bool:
    """StochLite-v0's termination on the measured observation: tilt from the slope, too low."""
    return measured_termination(observation, params)


step_reward = measured_reward

__all__ = [
    "OBSERVATION_BOUND",
    "OBSERVERS",
    "StochLiteObserver",
    "SupportPlaneEstimator",
    "build_observation",
    "feet_in_body",
    "fit_plane",
    "in_stance",
    "observer_for_task",
    "stance_displacement",
    "step_outcome",
    "step_reward",
    "terminated",
    "tilt_rotation",
]
