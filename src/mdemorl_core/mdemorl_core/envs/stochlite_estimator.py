"""What a StochLite can measure of its task: support plane, height and speed from joints + IMU.

Pure numpy, no ROS: ``StochLiteV1Env`` builds its observation with :class:`StochLiteObserver`
and the gait controller node (``stochlite_driver.gait_core``) feeds the same class from
``/joint_states`` and ``/imu/data``, so the env and the robot observe through one function.

Per servo tick (the env's sim step, ``params.sim_hz``) the observer takes the joint angles,
velocities and efforts [12], the IMU roll and pitch (rad, ZYX Euler angles of the orientation:
:func:`quaternion_roll_pitch`) and body angular rates [3] (rad/s), and the trajectory
generator's gait phase. It

- fits the support plane (:func:`fit_plane`) through the feet in contact: each foot's centre by
  forward kinematics in the body frame (:func:`feet_in_body`), turned by the IMU roll and pitch
  into a gravity-aligned, heading-aligned frame; with fewer than three feet in contact the last
  fit stands (all four feet before the first fit). The plane's roll and pitch are the slope
  estimate (the ground's Euler angles for a robot heading along world +x), the torso origin's
  distance to it plus a foot radius the height estimate. Contacts come from the trajectory
  generator's stance schedule (``contact_source="schedule"``, StochLite-v1: the same in the env
  and on the robot, no sensor) or from the legs' hip + knee effort norm exceeding
  ``contact_effort`` (``"effort"``, the StochLite-v0 node's choice);
- integrates leg odometry: the body's forward displacement is the mean fore-aft displacement,
  negated, of the feet in contact at both ends of a tick;
- integrates the mechanical power sum |tau qd|.

:meth:`StochLiteObserver.observe` closes a policy step: the observation [10] (+1 with
``include_velocity``) float32 is roll, pitch, body rates [3], estimated height (m), estimated
slope roll, pitch (rad), sin and cos of the gait phase, then the odometry forward speed (m/s)
over the step. :func:`measured_reward` and :func:`measured_termination` are the task's reward and
termination on that observation.
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
"""Bounds of the [10] measured observation (StochLite-v0's observation space), in its order."""
VELOCITY_BOUND = 5.0  # m/s, bound of the odometry speed entry
CONTACT_SOURCES = ("schedule", "effort")


def quaternion_roll_pitch(x: float, y: float, z: float, w: float) -> tuple[float, float]:
    """Roll and pitch (rad, ZYX Euler angles) of the orientation quaternion (x, y, z, w)."""
    roll = math.atan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    return roll, math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x))))


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
    # The ground normal for Euler (roll, pitch, 0) is (sin p cos r, -sin r, cos p cos r).
    slope_roll = -math.asin(max(-1.0, min(1.0, normal[1])))
    slope_pitch = math.atan2(normal[0], normal[2])
    return slope_roll, slope_pitch, float(-c * normal[2] + foot_radius)


def stance_displacement(
    before: np.ndarray, after: np.ndarray, stance: np.ndarray, params: StochLiteParams
) -> float:
    """Body forward displacement (m) between two joint readings [12], from the feet in
    ``stance`` [4] at both (0 when none is)."""
    if not np.any(stance):
        return 0.0
    dx = feet_in_body(after, params)[stance, 0] - feet_in_body(before, params)[stance, 0]
    return float(-np.mean(dx))


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


class StochLiteObserver:
    """Tick-by-tick measured observation (see the module docstring)."""

    def __init__(
        self,
        params: StochLiteParams,
        contact_source: str = "schedule",
        include_velocity: bool = True,
        contact_effort: float = 0.5,
    ) -> None:
        if contact_source not in CONTACT_SOURCES:
            raise ValueError(
                f"contact_source must be one of {CONTACT_SOURCES}, got {contact_source!r}"
            )
        self.params = params
        self.contact_source = contact_source
        self.include_velocity = include_velocity
        self.estimator = SupportPlaneEstimator(params, contact_effort)
        bound = [*OBSERVATION_BOUND, VELOCITY_BOUND] if include_velocity else OBSERVATION_BOUND
        self.bound = np.asarray(bound, dtype=np.float32)
        self.plane = (0.0, 0.0, 0.0)
        self._attitude = (0.0, 0.0, np.zeros(3))
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # q, contacts
        self._distance = 0.0
        self._energy = 0.0

    @property
    def dim(self) -> int:
        """Length of the observation vector."""
        return len(self.bound)

    def reset(self) -> None:
        """Forget the plane, the odometry and the power (a new episode)."""
        self.estimator = SupportPlaneEstimator(self.params, self.estimator.contact_effort)
        self._previous = None
        self._distance = self._energy = 0.0

    def tick(
        self,
        q: np.ndarray,
        qd: np.ndarray,
        effort: np.ndarray,
        roll: float,
        pitch: float,
        rates: np.ndarray,
        gait_phase: float,
    ) -> tuple[float, float, float]:
        """One servo tick's measurement: q, qd, effort [12], IMU roll/pitch, rates [3], and the
        phase the last joint targets came from. Returns the plane (roll, pitch, height)."""
        q = np.asarray(q, dtype=np.float64)
        if self.contact_source == "schedule":
            contacts = in_stance(gait_phase, self.params)
        else:
            contacts = self.estimator.contacts(effort)
        self.plane = self.estimator.update(q, roll, pitch, contacts)
        if self._previous is not None:
            both = contacts & self._previous[1]
            self._distance += stance_displacement(self._previous[0], q, both, self.params)
        self._previous = (q, contacts)
        power = float(np.sum(np.abs(np.asarray(qd) * np.nan_to_num(effort))))
        self._energy += power * self.params.sim_dt
        self._attitude = (float(roll), float(pitch), np.asarray(rates, dtype=np.float64))
        return self.plane

    def observe(self, gait_phase: float) -> tuple[np.ndarray, float, float]:
        """Close a policy step: (observation [dim] float32, odometry forward speed m/s, mean
        mechanical power W over the step); the odometry and power restart."""
        dt = self.params.policy_dt
        velocity, power = self._distance / dt, self._energy / dt
        self._distance = self._energy = 0.0
        roll, pitch, rates = self._attitude
        slope_roll, slope_pitch, height = self.plane
        entries = [roll, pitch, *rates, height, slope_roll, slope_pitch]
        entries += [math.sin(gait_phase), math.cos(gait_phase)]
        if self.include_velocity:
            entries.append(velocity)
        observation = np.clip(np.asarray(entries), -self.bound, self.bound).astype(np.float32)
        return observation, velocity, power


def measured_reward(
    observation: np.ndarray,
    forward_velocity: float,
    mean_power: float,
    params: StochLiteParams,
    terminated: bool,
) -> float:
    """The task reward on a measured observation (its first 8 entries), forward velocity (m/s)
    and mean power (W) of a step that ``terminated`` the episode or not: progress - tilt from the
    slope - roll/pitch rates - energy + the alive bonus when it did not."""
    roll, pitch, roll_rate, pitch_rate = (float(v) for v in observation[0:4])
    slope_roll, slope_pitch = float(observation[6]), float(observation[7])
    tilt_sq = (roll - slope_roll) ** 2 + (pitch - slope_pitch) ** 2
    return float(
        params.progress_weight * forward_velocity
        - params.orientation_weight * tilt_sq
        - params.angular_rate_weight * (roll_rate**2 + pitch_rate**2)
        - params.energy_weight * mean_power
        + (0.0 if terminated else params.alive_bonus)
    )


def measured_termination(
    observation: np.ndarray, params: StochLiteParams, absolute: bool = False
) -> bool:
    """Tilt from the estimated slope beyond ``max_tilt`` or estimated height below
    ``min_height``; with ``absolute`` (StochLite-v1) also IMU roll or pitch beyond ``max_tilt``
    (a robot on its side fits its "plane" through feet in the air, tilted with the body)."""
    attitude = np.abs(observation[0:2])
    tilt = np.abs(observation[0:2] - observation[6:8])
    fallen = bool(np.any(tilt > params.max_tilt) or observation[5] < params.min_height)
    return fallen or (absolute and bool(np.any(attitude > params.max_tilt)))
