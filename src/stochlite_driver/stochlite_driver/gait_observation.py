"""What the StochLite can measure of the StochLite-v0 task's observation and reward (no ROS).

The env (``mdemorl_core.envs.stochlite``) observes, as a [10] float32 vector: torso roll and
pitch, body angular rates [3], torso height above the ground, the ground's roll and pitch, and
sin/cos of the gait phase; its reward uses the torso's world forward velocity. A robot has no
true height, slope or world velocity, so here (same layout, same bounds, same reward formula):

- roll, pitch and rates come from the IMU;
- the support plane is fitted through the feet in contact (at least three; otherwise the last
  estimate stands): each foot's position from the leg forward kinematics (the env's
  ``leg_forward_kinematics``) at its hip, rotated by the IMU roll and pitch into a
  gravity-aligned, heading-aligned frame; the plane's roll and pitch are the slope estimate
  (the env's slope for a robot heading along world +x), the torso origin's distance to it plus
  the foot radius the height estimate. A foot is in contact when its leg's hip and knee effort
  (norm) exceeds ``contact_effort``: the servos carry the body's weight only through stance legs.
  Measured on the env's zero-shift gait (test_gait_observation, 100 policy steps): with the
  simulator's true contacts the slope error is ~0.01 rad; the effort-based contacts are the
  weak part (errors of several 0.01 rad), a better contact detector is the place to improve;
- forward velocity is leg odometry: the mean fore-aft displacement of the feet that stay in
  stance, negated, over the step.
"""

from __future__ import annotations

import math

import numpy as np

from mdemorl_core.envs.stochlite_gait import (
    StochLiteParams,
    ellipse_angles,
    leg_forward_kinematics,
    leg_phases,
)

OBSERVATION_BOUND = np.array(
    [math.pi, math.pi, 100.0, 100.0, 100.0, 10.0, 0.5, 0.5, 1.0, 1.0], dtype=np.float32
)
"""The env's observation bounds (StochLiteEnv.observation_space), in its order."""


def tilt_rotation(roll: float, pitch: float) -> np.ndarray:
    """Body -> gravity-aligned frame rotation [3 x 3] (R_y(pitch) R_x(roll), no yaw)."""
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    return ry @ rx


def in_stance(gait_phase: float, params: StochLiteParams) -> np.ndarray:
    """Which feet [4] the trajectory generator has on the ground at ``gait_phase``."""
    return ellipse_angles(leg_phases(gait_phase), params.duty_factor) >= math.pi


def feet_in_body(joints: np.ndarray, params: StochLiteParams) -> np.ndarray:
    """Foot centres [4 x 3] m in the body frame from the joint angles [12]."""
    legs = np.asarray(joints, dtype=np.float64).reshape(4, 3)
    return leg_forward_kinematics(legs, params) + np.asarray(params.hip_positions)


def fit_plane(points: np.ndarray, foot_radius: float) -> tuple[float, float, float]:
    """(roll, pitch, height) of the plane through foot centres ``points`` [K x 3] (K >= 3,
    gravity-aligned frame, torso origin at 0); height is to the ground, a foot radius below."""
    design = np.column_stack([points[:, 0], points[:, 1], np.ones(len(points))])
    (a, b, c), *_ = np.linalg.lstsq(design, points[:, 2], rcond=None)
    normal = np.array([-a, -b, 1.0]) / math.sqrt(a * a + b * b + 1.0)
    # The env's ground normal for Euler (roll, pitch, 0) is (sin p cos r, -sin r, cos p cos r).
    slope_roll = -math.asin(max(-1.0, min(1.0, normal[1])))
    slope_pitch = math.atan2(normal[0], normal[2])
    return slope_roll, slope_pitch, float(-c * normal[2] + foot_radius)


class SupportPlaneEstimator:
    """Slope roll, pitch and torso height from joints, IMU attitude and foot contacts."""

    def __init__(self, params: StochLiteParams, contact_effort: float = 0.5) -> None:
        if not contact_effort > 0.0:
            raise ValueError(f"contact_effort must be > 0, got {contact_effort}")
        self.params = params
        self.contact_effort = contact_effort
        self.estimate: tuple[float, float, float] | None = None
        self.updates = 0

    def contacts(self, effort: np.ndarray) -> np.ndarray:
        """Feet [4] in contact, from the joint efforts [12] (hip and knee of each leg)."""
        legs = np.abs(np.nan_to_num(np.asarray(effort, dtype=np.float64))).reshape(4, 3)
        return np.linalg.norm(legs[:, 1:], axis=1) > self.contact_effort

    def update(
        self, joints: np.ndarray, roll: float, pitch: float, contacts: np.ndarray
    ) -> tuple[float, float, float]:
        """Refit with the feet in ``contacts`` [4] (all four before the first fit)."""
        mask = np.asarray(contacts, dtype=bool)
        if self.estimate is None:
            mask = np.ones(4, dtype=bool)
        if mask.sum() >= 3:
            points = feet_in_body(joints, self.params)[mask] @ tilt_rotation(roll, pitch).T
            self.estimate = fit_plane(points, self.params.foot_radius)
            self.updates += 1
        assert self.estimate is not None
        return self.estimate


def build_observation(
    roll: float,
    pitch: float,
    body_rates: np.ndarray,
    plane: tuple[float, float, float],
    gait_phase: float,
) -> np.ndarray:
    """The task observation [10] float32 from the IMU roll/pitch and rates [3], the support
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


def stance_displacement(
    before: np.ndarray, after: np.ndarray, stance: np.ndarray, params: StochLiteParams
) -> float:
    """Body forward displacement (m) between two joint readings [12], from the feet in
    ``stance`` [4] at both (0 when none is)."""
    if not np.any(stance):
        return 0.0
    dx = feet_in_body(after, params)[stance, 0] - feet_in_body(before, params)[stance, 0]
    return float(-np.mean(dx))


def step_reward(
    observation: np.ndarray, forward_velocity: float, mean_power: float, params: StochLiteParams
) -> float:
    """The env's reward formula on the measured observation [10], velocity (m/s), power (W)."""
    roll, pitch, roll_rate, pitch_rate = (
        observation[0],
        observation[1],
        observation[2],
        observation[3],
    )
    slope_roll, slope_pitch = observation[6], observation[7]
    tilt_sq = (roll - slope_roll) ** 2 + (pitch - slope_pitch) ** 2
    return float(
        params.progress_weight * forward_velocity
        - params.orientation_weight * tilt_sq
        - params.angular_rate_weight * (roll_rate**2 + pitch_rate**2)
        - params.energy_weight * mean_power
    )


def terminated(observation: np.ndarray, params: StochLiteParams) -> bool:
    """The env's termination on the measured observation: tilt from the slope, or too low."""
    tilt = np.abs(observation[0:2] - observation[6:8])
    return bool(np.any(tilt > params.max_tilt) or observation[5] < params.min_height)
