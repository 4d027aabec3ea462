"""StochLite low level: robot geometry, trot foot-trajectory generator and leg inverse kinematics.

Pure numpy, shared by ``StochLiteEnv`` and the quadruped bringup. Frames: body frame x forward,
y left, z up. Legs in the order FL, FR, BL, BR; each has an abduction joint (about body x) at its
hip point, then hip and knee pitch joints (about -y, so positive swings the distal link forward),
thigh and shank of ``thigh_length`` / ``shank_length``. Joint order per
leg: (abduction, hip, knee); the knee works on the negative ("knee-forward") branch. With an
``abduction_offset`` d (0 in StochLite-v0, 0.096 m in StochLite-v1) the sagittal leg plane sits d
outward of the abduction axis (+y on the left legs, -y on the right), as on StochLite.

Foot trajectory per leg (in the leg's hip frame, metres): with the leg's phase phi,
  x = x_shift - (step_length / 2) cos(phi),   y = y_nominal + y_shift,
  z = -standing_height + z_shift + step_height max(sin(phi), 0)
with y_nominal = side x (abduction_offset + foot_lateral_offset), i.e. a semi-ellipse: swing arc
for phi in [0, pi), flat stance stroke (foot moving back, the body moving forward) for phi in
[pi, 2 pi). Trot: FL and BR share a phase, FR and BL are half a period later. The policy's per-foot (x, y, z) shifts move the ellipse (``shift_limits`` scale [-1, 1]).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass

import numpy as np

LEG_NAMES: tuple[str, ...] = ("FL", "FR", "BL", "BR")
JOINTS_PER_LEG: tuple[str, ...] = ("abduction", "hip", "knee")
LEG_SIDES: tuple[float, ...] = (1.0, -1.0, 1.0, -1.0)  # +1 on the left (+y), -1 on the right
TROT_PHASE_OFFSETS: tuple[float, ...] = (0.0, math.pi, math.pi, 0.0)


PROGRESS_SOURCES = ("world", "odometry")
"""What the reward's progress term measures (``StochLiteParams.progress_from``)."""


@dataclass(frozen=True)
class StochLiteParams:
    """Geometry, actuators, gait and task parameters of StochLite-v0 (SI units; StochLite-v1's
    are ``STOCHLITE_V1`` below).

    The defaults' geometry and actuator values equal ``assets/stochlite.urdf`` (tests check): a
    3.4 kg robot, 2.0 kg torso box 0.30 x 0.16 x 0.06 m, 12 hobby-class digital servos (4 N m
    stall, 7 rad/s no-load speed). Simulation at 240 Hz; the trajectory generator and IK run every
    sim step; the policy acts every ``decimation`` = 8 sim steps (30 Hz). An episode is
    ``episode_steps`` = 1000 policy steps (33 s, ~83 gait cycles; ~2.5 s of CPU on one core).

    Gait defaults (chosen by sweeping period, duty factor and stance width with zero shifts): a
    walking trot, period 0.4 s, duty factor 0.7 (each diagonal pair swings for 0.12 s, with
    four-foot support in between), 8 cm stride, 4 cm swing height, feet 2 cm outside the hips.
    With a 50 % duty factor the narrow, tall robot tips over its diagonal support line within a
    second; with these defaults it walks ~9 m in a 1000-step episode on flat ground.
    """

    hip_positions: tuple[tuple[float, float, float], ...] = (
        (0.12, 0.07, 0.0),
        (0.12, -0.07, 0.0),
        (-0.12, 0.07, 0.0),
        (-0.12, -0.07, 0.0),
    )  # m, abduction axis points in the body frame (FL, FR, BL, BR)
    abduction_offset: float = 0.0  # m, abduction axis to the sagittal leg plane (outward)
    thigh_length: float = 0.12  # m
    shank_length: float = 0.12  # m, knee axis to foot sphere centre
    foot_radius: float = 0.015  # m
    joint_lower: tuple[float, float, float] = (-0.5, -1.2, -2.6)  # rad (abduction, hip, knee)
    joint_upper: tuple[float, float, float] = (0.5, 1.6, -0.2)  # rad
    servo_torque: float = 4.0  # N m, stall torque of each servo
    servo_speed: float = 7.0  # rad/s, no-load speed
    servo_position_gain: float = 0.3  # PyBullet POSITION_CONTROL gain (unitless)
    servo_velocity_gain: float = 1.0  # PyBullet POSITION_CONTROL velocity gain (unitless)
    standing_height: float = 0.18  # m, hip to foot centre at mid stance
    foot_lateral_offset: float = 0.02  # m, nominal foot position outward of the hip (left +y)
    step_length: float = 0.08  # m, fore-aft stroke
    step_height: float = 0.04  # m, swing apex above the stance line
    gait_period: float = 0.4  # s, one swing + one stance of a leg
    duty_factor: float = 0.7  # fraction of the period a foot is in stance
    shift_limits: tuple[float, float, float] = (0.05, 0.03, 0.03)  # m, |x|, |y|, |z| per foot
    sim_hz: float = 240.0  # physics rate
    decimation: int = 8  # sim steps per policy step (30 Hz policy)
    episode_steps: int = 1000  # policy steps per episode
    max_slope: float = 0.15  # rad, |incline| of the terrain, drawn per episode in each axis
    max_tilt: float = 0.6  # rad, |roll| or |pitch| from the slope that ends the episode
    min_height: float = 0.08  # m, torso height above the ground that ends the episode
    progress_weight: float = 10.0  # reward per m/s of forward (world +x) body velocity
    orientation_weight: float = 1.0  # penalty per rad^2 of roll/pitch relative to the slope
    angular_rate_weight: float = 0.02  # penalty per (rad/s)^2 of roll and pitch rates
    energy_weight: float = 0.005  # penalty per watt of mechanical power |tau * qd|
    alive_bonus: float = 0.0  # reward per policy step that does not end the episode (v0: none)
    # Speed the progress term pays: "world" (the simulator's torso +x velocity; v0) or
    # "odometry" (leg odometry, observation entry 10: what a robot can compute; v1's default).
    progress_from: str = "world"
    lateral_friction: float = 1.0  # foot-ground friction coefficient

    def __post_init__(self) -> None:
        for name in (
            "thigh_length",
            "shank_length",
            "servo_torque",
            "servo_speed",
            "standing_height",
            "gait_period",
            "sim_hz",
            "max_tilt",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"StochLiteParams.{name} must be finite and > 0, got {value}")
        if self.progress_from not in PROGRESS_SOURCES:
            raise ValueError(
                f"StochLiteParams.progress_from must be one of {PROGRESS_SOURCES}, "
                f"got {self.progress_from!r}"
            )
        for name in ("decimation", "episode_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"StochLiteParams.{name} must be an int >= 1, got {value!r}")
        if len(self.hip_positions) != 4 or any(len(p) != 3 for p in self.hip_positions):
            raise ValueError(
                f"StochLiteParams.hip_positions must be 4 x 3, got {self.hip_positions}"
            )
        if not (math.isfinite(self.abduction_offset) and self.abduction_offset >= 0.0):
            raise ValueError(
                f"StochLiteParams.abduction_offset must be finite and >= 0, got "
                f"{self.abduction_offset}"
            )
        if any(s < 0.0 for s in self.shift_limits) or len(self.shift_limits) != 3:
            raise ValueError("StochLiteParams.shift_limits must be 3 values >= 0")
        if not 0.0 < self.duty_factor < 1.0:
            raise ValueError(
                f"StochLiteParams.duty_factor must be in (0, 1), got {self.duty_factor}"
            )
        if not 0.0 <= self.max_slope < 0.5:
            raise ValueError(
                f"StochLiteParams.max_slope must be in [0, 0.5) rad, got {self.max_slope}"
            )
        reach = self.thigh_length + self.shank_length
        lowest = self.standing_height + max(self.shift_limits[2], 0.0)
        if lowest >= reach:
            raise ValueError(
                f"StochLiteParams.standing_height {self.standing_height} + z shift leaves no knee "
                f"bend (leg reach {reach})"
            )

    @property
    def sim_dt(self) -> float:
        """Physics timestep in seconds."""
        return 1.0 / self.sim_hz

    @property
    def policy_dt(self) -> float:
        """Seconds per policy step."""
        return self.decimation / self.sim_hz


def leg_phases(gait_phase: float) -> np.ndarray:
    """Per-leg phases [4] in [0, 2 pi) for the trot at gait phase (rad)."""
    return (gait_phase + np.asarray(TROT_PHASE_OFFSETS)) % (2.0 * math.pi)


def ellipse_angles(phases: np.ndarray, duty_factor: float) -> np.ndarray:
    """Map leg phases [4] to angles on the semi-ellipse [4]: [0, pi) swing, [pi, 2 pi) stance.

    The swing takes the first (1 - duty_factor) of the period, the stance the rest, so a duty
    factor above 0.5 gives short four-foot support phases between the diagonal pairs' swings.
    """
    swing_end = 2.0 * math.pi * (1.0 - duty_factor)
    in_swing = phases < swing_end
    swing_angle = math.pi * phases / swing_end
    stance_angle = math.pi + math.pi * (phases - swing_end) / (2.0 * math.pi - swing_end)
    return np.where(in_swing, swing_angle, stance_angle)


def foot_targets(gait_phase: float, shifts: np.ndarray, params: StochLiteParams) -> np.ndarray:
    """Foot positions [4 x 3] (m) in each leg's hip frame for the given gait phase and shifts.

    shifts: [4 x 3] in metres (already scaled), added to each foot's ellipse.
    """
    shifts = np.asarray(shifts, dtype=np.float64)
    if shifts.shape != (4, 3):
        raise ValueError(f"foot_targets: shifts must have shape [4, 3], got {shifts.shape}")
    ellipse_angle = ellipse_angles(leg_phases(gait_phase), params.duty_factor)
    x = -0.5 * params.step_length * np.cos(ellipse_angle)
    z = -params.standing_height + params.step_height * np.maximum(np.sin(ellipse_angle), 0.0)
    y = (params.abduction_offset + params.foot_lateral_offset) * np.asarray(LEG_SIDES)
    return np.stack([x, y, z], axis=-1) + shifts


def action_to_shifts(action: np.ndarray, params: StochLiteParams) -> np.ndarray:
    """Policy action [12] in [-1, 1] (per foot x, y, z; legs FL, FR, BL, BR) -> shifts [4 x 3] m."""
    action = np.asarray(action, dtype=np.float64)
    if action.shape != (12,):
        raise ValueError(f"action_to_shifts: action must have shape [12], got {action.shape}")
    if not np.all(np.isfinite(action)):
        raise ValueError(f"action_to_shifts: non-finite action {action}")
    return np.clip(action, -1.0, 1.0).reshape(4, 3) * np.asarray(params.shift_limits)


def _lateral_offsets(shape: tuple[int, ...], params: StochLiteParams) -> np.ndarray | float:
    """Signed abduction offsets broadcastable to joint arrays ``shape`` [..., 4, 3] minus the
    last axis (0 when the leg has no offset: any shape [..., 3] then works)."""
    if params.abduction_offset == 0.0:
        return 0.0
    if shape[-2:] != (4, 3):
        raise ValueError(
            f"with abduction_offset > 0 the legs' sides are needed: joints/feet must be "
            f"[..., 4, 3] (legs FL, FR, BL, BR), got {shape}"
        )
    return params.abduction_offset * np.asarray(LEG_SIDES)


def leg_forward_kinematics(joints: np.ndarray, params: StochLiteParams) -> np.ndarray:
    """Foot positions in the hip frames. joints: [..., 3] (abduction, hip, knee) -> [..., 3] m
    ([..., 4, 3], legs in ``LEG_NAMES`` order, when ``abduction_offset`` > 0)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape[-1:] != (3,):
        raise ValueError(f"leg_forward_kinematics: joints must be [..., 3], got {joints.shape}")
    lateral = _lateral_offsets(joints.shape, params)
    abduction, hip, knee = joints[..., 0], joints[..., 1], joints[..., 2]
    l1, l2 = params.thigh_length, params.shank_length
    forward = l1 * np.sin(hip) + l2 * np.sin(hip + knee)
    down = l1 * np.cos(hip) + l2 * np.cos(hip + knee)
    # The abduction joint rotates the sagittal leg plane (offset ``lateral``) about body x.
    cos_a, sin_a = np.cos(abduction), np.sin(abduction)
    return np.stack(
        [forward, lateral * cos_a + down * sin_a, lateral * sin_a - down * cos_a], axis=-1
    )


def leg_inverse_kinematics(feet: np.ndarray, params: StochLiteParams) -> np.ndarray:
    """Joint angles [..., 3] reaching foot positions feet: [..., 3] (hip frames, m; [..., 4, 3]
    when ``abduction_offset`` > 0).

    Targets beyond the leg's reach are pulled in to 99.9 % of it (a trajectory generator should
    degrade gracefully rather than raise mid-step); angles are clipped to the joint limits.
    """
    feet = np.asarray(feet, dtype=np.float64)
    if feet.shape[-1:] != (3,):
        raise ValueError(f"leg_inverse_kinematics: feet must be [..., 3], got {feet.shape}")
    lateral = _lateral_offsets(feet.shape, params)
    l1, l2 = params.thigh_length, params.shank_length
    x, y, z = feet[..., 0], feet[..., 1], feet[..., 2]
    if params.abduction_offset == 0.0:
        abduction = np.arctan2(y, -z)
        down = np.sqrt(y**2 + z**2)
    else:
        # (y, z) is the leg-plane point (lateral, -down) turned by the abduction angle.
        down = np.sqrt(np.maximum(y**2 + z**2 - params.abduction_offset**2, 1e-12))
        turn = np.arctan2(z, y) - np.arctan2(-down, lateral)
        abduction = (turn + math.pi) % (2.0 * math.pi) - math.pi
    reach = np.sqrt(x**2 + down**2)
    max_reach = 0.999 * (l1 + l2)
    min_reach = 1.001 * abs(l1 - l2) + 1e-6
    scale = np.clip(reach, min_reach, max_reach) / np.maximum(reach, 1e-12)
    x, down = x * scale, down * scale
    cos_knee = (x**2 + down**2 - l1**2 - l2**2) / (2.0 * l1 * l2)
    knee = -np.arccos(np.clip(cos_knee, -1.0, 1.0))
    hip = np.arctan2(x, down) - np.arctan2(l2 * np.sin(knee), l1 + l2 * np.cos(knee))
    joints = np.stack([abduction, hip, knee], axis=-1)
    return np.clip(joints, params.joint_lower, params.joint_upper)


STOCHLITE_V1 = StochLiteParams(
    hip_positions=(
        (0.167, 0.096, 0.0),
        (0.167, -0.096, 0.0),
        (-0.167, 0.096, 0.0),
        (-0.167, -0.096, 0.0),
    ),  # the corners of the 0.334 x 0.192 m body
    abduction_offset=0.096,
    thigh_length=0.146,
    shank_length=0.172,
    servo_torque=7.0,
    servo_speed=10.0,
    standing_height=0.25,
    foot_lateral_offset=0.0,
    step_length=0.08,
    step_height=0.08,
    gait_period=0.4,
    duty_factor=0.7,
    shift_limits=(0.1, 0.05, 0.06),
    sim_hz=200.0,
    decimation=2,
    energy_weight=0.0,
    lateral_friction=0.6,
    alive_bonus=10.0,
    progress_from="odometry",
)
"""StochLite-v1's task (see ``stochlite_v1``): the authors' geometry, timing, gait (2.5 Hz, 0.25 m
walking height, 0.08 m clearance), 7 N m servos and foot friction 0.6; their x shift of 0.1 m,
y and z shifts limited by the leg's reach. Its servo PD gains are ``StochLiteV1Options``' (the
``servo_position_gain`` / ``servo_velocity_gain`` fields are v0's PyBullet position motors).

``alive_bonus`` (added 2026-12-04, task version 2 of the walking study): without it the
discounted return (gamma 0.99) of a lunge, 1.5 m/s of odometry for 50 steps then a fall (what SAC
learned in the first walking-study run), is 15 x 39.5 = 593 against 2.9 x 100 = 290 for walking
on at the trajectory generator's 0.29 m/s. With a bonus b per step the walk wins for b > 5.0;
b = 10 (a step upright is worth 1 m/s of progress) doubles that margin. Fixed before any run on
the new reward.

``progress_from`` is "odometry" here, so the ROS gait controller (which has no other speed)
computes the env's reward; leg odometry counts a stance foot dragged backwards as progress
whether the body moves or not. Training in simulation can pay the simulator's true speed
instead (``progress_from="world"``, as the authors' env pays the true base displacement): the
walking study does, after its version-2 actors earned odometry returns while walking backwards."""

TASK_PARAMS: dict[str, StochLiteParams] = {
    "StochLite-v0": StochLiteParams(),
    "StochLite-v1": STOCHLITE_V1,
}
"""Each StochLite task's parameters, for the nodes that must run the same task as the env."""


def task_params(task: str) -> StochLiteParams:
    """The parameters of ``task`` ("StochLite-v0" or "StochLite-v1"); ValueError otherwise."""
    if task not in TASK_PARAMS:
        raise ValueError(f"unknown StochLite task {task!r}; known: {sorted(TASK_PARAMS)}")
    return TASK_PARAMS[task]


def task_hash(params: StochLiteParams) -> str:
    """Short hash of the StochLite task parameters: the gait controller publishes it with its
    phase, the trainer compares it with its own env's, so data of another task is refused."""
    return hashlib.sha256(repr(sorted(asdict(params).items())).encode()).hexdigest()[:16]
