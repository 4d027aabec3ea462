"""The servo driver's safety layer for position-controlled joints (no ROS, no bus, injected clock).

The B3M driver and the simulated StochLite put every joint target through a
:class:`ServoSafety`, so both obey the same semantics:

- validation: a target with NaN/Inf, a length mismatch, an unknown or duplicate joint name, or a
  stale (or future) stamp is rejected (the leg driver's :class:`Rejection` reasons), counted and
  never applied;
- joint-limit clamp: accepted targets are clamped to the joint limits (counted when clamped);
- rate limit: the target sent to the servos moves at most ``max_target_rate`` rad/s from the
  previous one (starting at the measured position on the tick the servos are enabled; a gap
  between ticks counts as at most ``command_timeout``), so a jump in the command becomes a ramp;
- watchdog: without a valid target for ``command_timeout`` s the servos HOLD where they are; after
  ``free_timeout`` s more they go FREE (limp), until commands resume;
- limits: a motor temperature above ``temperature_limit`` (degC), or a current magnitude above
  ``current_limit`` (A) for ``current_limit_duration`` s, latches the e-stop;
- attitude guard: a torso roll or pitch beyond ``tilt_limit`` (rad; from the IMU) latches the
  e-stop: a fallen robot relaxes instead of fighting the ground. An IMU sample with NaN/Inf, a
  quaternion whose norm is off 1 by more than ``QUATERNION_NORM_TOLERANCE``, or a stale (older
  than ``max_imu_age``) or future stamp is rejected and counted (:class:`ImuRejection`), never
  used. Once a valid attitude has arrived, none for ``attitude_timeout`` s (IMU silent, or only
  bad samples) latches the e-stop too (:meth:`ServoSafety.check_attitude`, each driver tick): the
  guard is blind, so the robot gets the fall response (limp), as for any other fault; a release
  while the IMU is still bad latches again. Before the first valid sample nothing latches (the
  IMU may start after the driver; the driver's diagnostics warn that the guard is inactive);

- e-stop: latched, with its reason; while active the servos are FREE and targets are ignored
  (counted); after release the layer waits for a fresh target (servos FREE meanwhile), so nothing
  sent before or during the stop is applied.
Before the first valid target the servos are FREE (``WAITING``).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from leg2r_driver.safety import (
    Rejection,
    command_rejection,
    ordered_and_clipped,
    stamp_rejection,
)
from stochlite_driver.b3m import RunMode
from stochlite_driver.robot import roll_pitch

# |norm - 1| a usable orientation quaternion stays within: a BNO055's 14-bit fixed-point
# quaternion is off by ~1e-4; roll and pitch of a far non-unit one are meaningless.
QUATERNION_NORM_TOLERANCE = 0.01


class ImuRejection(enum.Enum):
    """Why an IMU sample was not used by the attitude guard (the value is the counter name)."""

    NON_FINITE = "imu_rejected_non_finite"
    NOT_UNIT = "imu_rejected_not_unit_quaternion"
    STALE = "imu_rejected_stale"
    FUTURE = "imu_rejected_future_stamp"


# How the attitude guard's e-stop reasons begin: tilted beyond the limit, or blind.
TILT_REASON = "attitude: roll"
BLIND_REASON = "attitude: no valid IMU sample"


def imu_rejection(
    quaternion: Sequence[float], stamp_age: float, max_imu_age: float, max_future_skew: float
) -> ImuRejection | None:
    """Why an orientation (x, y, z, w) stamped ``stamp_age`` s ago (now - stamp) is unusable,
    or None."""
    if not all(math.isfinite(v) for v in quaternion):
        return ImuRejection.NON_FINITE
    if abs(math.sqrt(sum(v * v for v in quaternion)) - 1.0) > QUATERNION_NORM_TOLERANCE:
        return ImuRejection.NOT_UNIT
    freshness = stamp_rejection(stamp_age, max_imu_age, max_future_skew)
    if freshness is None:
        return None
    return ImuRejection.STALE if freshness == "stale" else ImuRejection.FUTURE


class ServoPhase(enum.Enum):
    WAITING = "waiting"  # no valid target yet (or since an e-stop release): FREE
    ACTIVE = "active"  # tracking the latest valid target: NORMAL
    WATCHDOG_HOLD = "watchdog_hold"  # targets stopped: HOLD
    WATCHDOG_FREE = "watchdog_free"  # targets stopped for longer: FREE
    ESTOP = "estop"  # latched: FREE


PHASE_RUN_MODES = {
    ServoPhase.WAITING: RunMode.FREE,
    ServoPhase.ACTIVE: RunMode.NORMAL,
    ServoPhase.WATCHDOG_HOLD: RunMode.HOLD,
    ServoPhase.WATCHDOG_FREE: RunMode.FREE,
    ServoPhase.ESTOP: RunMode.FREE,
}


@dataclass(frozen=True)
class ServoSafetyConfig:
    """Joints, their limits (rad, ordered like ``joint_names``) and the safety settings."""

    joint_names: tuple[str, ...]
    position_lower: tuple[float, ...]
    position_upper: tuple[float, ...]
    max_target_rate: float = 6.0  # rad/s
    command_timeout: float = 0.05  # s without a valid target before the servos HOLD
    free_timeout: float = 1.0  # s of HOLD before the servos go FREE
    max_command_age: float = 0.05  # s; older stamps are stale
    max_future_skew: float = 0.01  # s; stamps further in the future are rejected
    temperature_limit: float = 70.0  # degC, motor temperature
    current_limit: float = 4.0  # A, |current| of one servo
    current_limit_duration: float = 0.5  # s the current may stay above the limit
    tilt_limit: float = 1.3  # rad (75 deg), |roll| or |pitch| of the torso
    max_imu_age: float = 0.1  # s; older IMU samples are stale
    attitude_timeout: float = 0.5  # s without a valid attitude (after the first) before e-stop

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n == 0 or len(set(self.joint_names)) != n:
            raise ValueError(
                f"ServoSafetyConfig.joint_names empty or duplicated: {self.joint_names}"
            )
        for field in ("position_lower", "position_upper"):
            values = getattr(self, field)
            if len(values) != n or not all(math.isfinite(v) for v in values):
                raise ValueError(f"ServoSafetyConfig.{field} needs {n} finite values, got {values}")
        if not all(
            lo < hi for lo, hi in zip(self.position_lower, self.position_upper, strict=True)
        ):
            raise ValueError("ServoSafetyConfig position limits need lower < upper")
        for field in (
            "max_target_rate",
            "command_timeout",
            "free_timeout",
            "max_command_age",
            "temperature_limit",
            "current_limit",
            "tilt_limit",
            "max_imu_age",
            "attitude_timeout",
        ):
            if not getattr(self, field) > 0.0:
                raise ValueError(
                    f"ServoSafetyConfig.{field} must be > 0, got {getattr(self, field)}"
                )
        for field in ("max_future_skew", "current_limit_duration"):
            if getattr(self, field) < 0.0:
                raise ValueError(f"ServoSafetyConfig.{field} must be >= 0")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)


@dataclass(frozen=True)
class ServoOutput:
    """What the servos do this tick: one run mode for all, and (NORMAL only) targets [N] rad."""

    phase: ServoPhase
    run_mode: RunMode
    targets: np.ndarray | None


class ServoSafety:
    """Validates joint targets and decides the servos' mode and targets; times from ``clock``."""

    def __init__(self, config: ServoSafetyConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self._clock = clock
        self._index = {name: i for i, name in enumerate(config.joint_names)}
        self._lower = np.asarray(config.position_lower, dtype=np.float64)
        self._upper = np.asarray(config.position_upper, dtype=np.float64)
        self._command = np.zeros(config.num_joints)
        self._sent: np.ndarray | None = None  # last target sent (rate limiter state)
        self._last_valid: float | None = None
        self._last_output: float | None = None
        self._over_current_since: float | None = None
        self._last_attitude: float | None = None  # clock time of the last valid attitude
        self.estop_reason = ""
        self._untaken_latch = ""  # a latch's reason until take_new_latch() hands it out
        self.counters: Counter[str] = Counter()
        self._was_active = False

    @property
    def estop_active(self) -> bool:
        return bool(self.estop_reason)

    def submit(
        self, names: Sequence[str], positions: Sequence[float], stamp_age: float
    ) -> Rejection | None:
        """Offer targets (rad); None when accepted, else why not. ``stamp_age``: now - stamp (s)."""
        reason = self._validate(names, positions, stamp_age)
        if reason is not None:
            self.counters[reason.value] += 1
            return reason
        clipped, clamped = ordered_and_clipped(
            names, positions, self._index, self._lower, self._upper
        )
        if clamped:
            self.counters["clamped"] += 1
        self._command = clipped
        self._last_valid = self._clock()
        self.counters["accepted"] += 1
        return None

    def _validate(
        self, names: Sequence[str], positions: Sequence[float], stamp_age: float
    ) -> Rejection | None:
        c = self.config
        return command_rejection(
            names,
            positions,
            stamp_age,
            self._index,
            c.max_command_age,
            c.max_future_skew,
            self.estop_active,
        )

    def latch_estop(self, reason: str) -> None:
        """Latch the e-stop (the first reason is kept until release)."""
        if not self.estop_active:
            self.counters["estop_activations"] += 1
            self.estop_reason = reason
            self._untaken_latch = reason

    def take_new_latch(self) -> str:
        """The reason of the latest latch, once (then ""): what a node logs, whichever of its
        callbacks or its tick latched."""
        reason, self._untaken_latch = self._untaken_latch, ""
        return reason

    def release_estop(self) -> None:
        """Release; the servos stay FREE until a fresh target arrives."""
        self.estop_reason = ""
        self._last_valid = None
        self._sent = None
        self._over_current_since = None

    def submit_imu(self, quaternion: Sequence[float], stamp_age: float) -> ImuRejection | None:
        """An IMU orientation (x, y, z, w) stamped ``stamp_age`` s ago into the attitude guard;
        None when used, else why not (counted)."""
        c = self.config
        reason = imu_rejection(quaternion, stamp_age, c.max_imu_age, c.max_future_skew)
        if reason is not None:
            self.counters[reason.value] += 1
            return reason
        self.update_attitude(*roll_pitch(*quaternion))
        return None

    def update_attitude(self, roll: float, pitch: float) -> None:
        """Torso roll and pitch (rad) from the IMU: the attitude guard."""
        if not (math.isfinite(roll) and math.isfinite(pitch)):
            self.counters[ImuRejection.NON_FINITE.value] += 1
            return
        self._last_attitude = self._clock()
        limit = self.config.tilt_limit
        if abs(roll) > limit or abs(pitch) > limit:
            self.latch_estop(f"{TILT_REASON} {roll:.2f}, pitch {pitch:.2f} rad beyond {limit:.2f}")

    def check_attitude(self) -> None:
        """Latch the e-stop when a guard that had a valid attitude has had none for
        ``attitude_timeout`` s (a driver tick calls this: a silent IMU calls nothing)."""
        if self._last_attitude is None:
            return
        blind = self._clock() - self._last_attitude
        if blind > self.config.attitude_timeout:
            self.latch_estop(f"{BLIND_REASON} for {blind:.2f} s > {self.config.attitude_timeout} s")

    def check_servos(self, temperatures: np.ndarray, currents: np.ndarray) -> None:
        """Latest motor temperatures (degC) and currents (A), both [N] (NaN: not measured yet)."""
        cfg = self.config
        hot = np.flatnonzero(np.nan_to_num(temperatures, nan=-np.inf) > cfg.temperature_limit)
        if hot.size:
            i = int(hot[0])
            self.latch_estop(
                f"temperature: {cfg.joint_names[i]} {temperatures[i]:.1f} degC > {cfg.temperature_limit}"
            )
        over = np.flatnonzero(np.abs(np.nan_to_num(currents)) > cfg.current_limit)
        now = self._clock()
        if not over.size:
            self._over_current_since = None
            return
        if self._over_current_since is None:
            self._over_current_since = now
        if now - self._over_current_since >= cfg.current_limit_duration:
            i = int(over[0])
            self.latch_estop(
                f"current: {cfg.joint_names[i]} {currents[i]:.2f} A > {cfg.current_limit} A "
                f"for {cfg.current_limit_duration} s"
            )

    def phase(self) -> ServoPhase:
        if self.estop_active:
            return ServoPhase.ESTOP
        if self._last_valid is None:
            return ServoPhase.WAITING
        silent = self._clock() - self._last_valid
        if silent <= self.config.command_timeout:
            return ServoPhase.ACTIVE
        if silent <= self.config.command_timeout + self.config.free_timeout:
            return ServoPhase.WATCHDOG_HOLD
        return ServoPhase.WATCHDOG_FREE

    def output(self, measured: np.ndarray) -> ServoOutput:
        """This tick's mode and (rate-limited) targets, given the measured positions [N] rad."""
        n = self.config.num_joints
        q = np.asarray(measured, dtype=np.float64)
        if q.shape != (n,):
            raise ValueError(f"measured positions must have shape ({n},), got {q.shape}")
        now = self._clock()
        dt = 0.0 if self._last_output is None else now - self._last_output
        # A stalled caller must not turn its gap into one large step.
        dt = min(dt, self.config.command_timeout)
        self._last_output = now
        phase = self.phase()
        if phase is ServoPhase.WATCHDOG_HOLD and self._was_active:
            self.counters["watchdog_trips"] += 1
        self._was_active = phase is ServoPhase.ACTIVE
        if phase is not ServoPhase.ACTIVE:
            self._sent = None  # re-enabling ramps from wherever the joints are then
            return ServoOutput(phase, PHASE_RUN_MODES[phase], None)
        if self._sent is None:  # the ramp starts where the joints are, this tick
            start, step = np.clip(q, self._lower, self._upper), 0.0
        else:
            start, step = self._sent, self.config.max_target_rate * dt
        targets = start + np.clip(self._command - start, -step, step)
        if np.any(targets != self._command):
            self.counters["rate_limited_ticks"] += 1
        self._sent = targets
        return ServoOutput(phase, RunMode.NORMAL, targets.copy())


SAFETY_KEYS: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(ServoSafetyConfig)
    if f.name not in ("joint_names", "position_lower", "position_upper")
)
"""Node parameters that map one to one onto ServoSafetyConfig fields (same names)."""

SAFETY_DEFAULTS: dict[str, float] = {
    f.name: float(f.default)  # type: ignore[arg-type]  # every safety field has a float default
    for f in dataclasses.fields(ServoSafetyConfig)
    if f.name in SAFETY_KEYS
}
