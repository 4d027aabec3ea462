"""The driver's safety layer as a pure state machine (no ROS, no bus, injected clock).

Both the hardware driver and the simulated robot put every effort command through a
:class:`SafetyGate`, so the simulator obeys exactly the semantics the motors get:

- validation: a command with NaN/Inf, a length mismatch, an unknown or duplicate joint name, or a
  stale (or future) stamp is rejected, counted and never applied; so is one delivered out of
  order: stamped before the last accepted command, or a duplicate of it (same stamp and
  sequence). Order is judged by the stamp, the sequence only tells a duplicate from a distinct
  command of the same stamp, so a restarted sender (sequence back at 0) is accepted;
- torque clamp: accepted efforts are clamped to the per-joint limits (and counted when clamped);
- soft joint limits: inside ``soft_limit_margin`` of a position limit a spring-damper torque pushes
  the joint back and damps motion towards the limit (then the total is clamped again);
- watchdog: once the latest valid command's stamp is more than ``command_timeout`` seconds old the
  output is zero torque (kp = kd = tau = 0) or, with ``watchdog_mode="damping"``, pure damping
  (kd = watchdog_damping) until commands resume. The time counts from the stamp, not from
  delivery, so a command delayed in transport buys no extra torque time; and a trip is final for
  every command stamped before it (``rejected_before_trip``): a command that was queued while the
  sender died and is delivered after the trip cannot put its torque back;
- e-stop: latched; while active the output is zero torque and commands are ignored (counted); after
  release the gate waits for a fresh command, so nothing sent before or during the stop is applied.
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mdemorl_core.limits import Limits
from mdemorl_ros.node_parameters import TIMEOUT_S, Rule


class Mode(enum.Enum):
    """What the gate outputs right now."""

    WAITING = "waiting"  # no valid command yet (or since an e-stop release): zero torque
    ACTIVE = "active"  # applying the latest valid command
    WATCHDOG = "watchdog"  # commands stopped for longer than command_timeout
    ESTOP = "estop"  # latched emergency stop


class Rejection(enum.Enum):
    """Why a command was not accepted (the value is the diagnostics counter name)."""

    NON_FINITE = "rejected_non_finite"
    WRONG_LENGTH = "rejected_wrong_length"
    UNKNOWN_JOINT = "rejected_unknown_joint"
    DUPLICATE_JOINT = "rejected_duplicate_joint"
    STALE = "rejected_stale"
    FUTURE = "rejected_future_stamp"
    OUT_OF_ORDER = "rejected_out_of_order"
    BEFORE_TRIP = "rejected_before_trip"  # stamped before the latest watchdog trip
    ESTOP = "ignored_estop"


STAMP_REJECTIONS = {"stale": Rejection.STALE, "future_stamp": Rejection.FUTURE}


def stamp_rejection(stamp_age: float, max_age: float, max_future_skew: float) -> str | None:
    """The freshness rule of every stamped input (commands, joint states, IMU samples):
    ``"stale"`` for an age (now - stamp, s) that is NaN or above ``max_age``, ``"future_stamp"``
    for a stamp more than ``max_future_skew`` ahead of the clock, else None."""
    if not math.isfinite(stamp_age) or stamp_age > max_age:
        return "stale"
    if stamp_age < -max_future_skew:
        return "future_stamp"
    return None


def command_rejection(
    names: Sequence[str],
    values: Sequence[float],
    stamp_age: float,
    index: Mapping[str, int],
    max_command_age: float,
    max_future_skew: float,
    estop: bool,
) -> Rejection | None:
    """Why a command of one value per joint (``index``: joint name -> position) is rejected,
    or None: the checks in order, e-stop first; ``stamp_age`` is now - stamp (s)."""
    if estop:
        return Rejection.ESTOP
    if len(names) != len(values) or len(names) != len(index):
        return Rejection.WRONG_LENGTH
    if not all(math.isfinite(v) for v in values):
        return Rejection.NON_FINITE
    if any(name not in index for name in names):
        return Rejection.UNKNOWN_JOINT
    if len(set(names)) != len(names):
        return Rejection.DUPLICATE_JOINT
    freshness = stamp_rejection(stamp_age, max_command_age, max_future_skew)
    return None if freshness is None else STAMP_REJECTIONS[freshness]


def order_rejection(
    stamp_ns: int,
    sequence: int,
    stamp_age: float,
    last: tuple[int, int] | None,
    max_future_skew: float,
) -> Rejection | None:
    """OUT_OF_ORDER when a command (``stamp_ns``, ``sequence``; ``stamp_age`` = now - stamp, s)
    is older than the last accepted one (``last``: its stamp in ns and sequence; None: nothing
    accepted yet) or a duplicate of it, else None."""
    if last is None:
        return None
    last_ns, last_sequence = last
    # The last accepted stamp was at most max_future_skew ahead of the clock when accepted; if it
    # is further ahead now, the clock stepped back (sim time restarted, NTP step) and the old
    # order means nothing: without this, every later command would be "older" for good.
    if stamp_age + (stamp_ns - last_ns) * 1e-9 < -max_future_skew:
        return None
    if stamp_ns < last_ns or (stamp_ns == last_ns and sequence == last_sequence):
        return Rejection.OUT_OF_ORDER
    return None


def ordered_and_clipped(
    names: Sequence[str],
    values: Sequence[float],
    index: Mapping[str, int],
    lower: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """A valid command in joint order (shape (num_joints,)) clipped to [lower, upper], and
    whether clipping changed it."""
    ordered = np.zeros(len(index))
    for name, value in zip(names, values, strict=True):
        ordered[index[name]] = value
    clipped = np.clip(ordered, lower, upper)
    return clipped, bool(np.any(clipped != ordered))


WATCHDOG_MODES = ("zero", "damping")


@dataclass(frozen=True)
class SafetyConfig:
    """Per-joint limits and watchdog settings; arrays are ordered like ``joint_names`` (N)."""

    joint_names: tuple[str, ...]
    torque_limits: tuple[float, ...]  # N*m, > 0
    position_lower: tuple[float, ...]  # rad
    position_upper: tuple[float, ...]  # rad
    soft_limit_margin: float = 0.1  # rad inside each limit where the soft limit acts
    soft_limit_stiffness: float = 20.0  # N*m/rad per rad of penetration into the margin
    soft_limit_damping: float = 0.5  # N*m*s/rad against motion towards the limit
    command_timeout: float = 0.010  # s without a valid command before the watchdog trips
    max_command_age: float = 0.010  # s; older stamps are stale
    max_future_skew: float = 0.005  # s; stamps further in the future are rejected
    watchdog_mode: str = "zero"
    watchdog_damping: float = 0.0  # kd (N*m*s/rad) in "damping" mode

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if n == 0:
            raise ValueError("SafetyConfig.joint_names must not be empty")
        if len(set(self.joint_names)) != n:
            raise ValueError(f"SafetyConfig.joint_names has duplicates: {self.joint_names}")
        for field in ("torque_limits", "position_lower", "position_upper"):
            values = getattr(self, field)
            if len(values) != n:
                raise ValueError(f"SafetyConfig.{field} has {len(values)} entries, expected {n}")
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"SafetyConfig.{field} must be finite, got {values}")
        if any(limit <= 0.0 for limit in self.torque_limits):
            raise ValueError(f"SafetyConfig.torque_limits must be > 0, got {self.torque_limits}")
        for lo, hi in zip(self.position_lower, self.position_upper, strict=True):
            if not lo < hi:
                raise ValueError(f"SafetyConfig position limits need lower < upper, got {lo}, {hi}")
        for field in ("command_timeout", "max_command_age"):
            if not getattr(self, field) > 0.0:
                raise ValueError(f"SafetyConfig.{field} must be > 0")
        for field in ("soft_limit_margin", "soft_limit_stiffness", "soft_limit_damping"):
            if getattr(self, field) < 0.0:
                raise ValueError(f"SafetyConfig.{field} must be >= 0")
        if self.watchdog_mode not in WATCHDOG_MODES:
            raise ValueError(
                f"SafetyConfig.watchdog_mode must be one of {WATCHDOG_MODES}, "
                f"got {self.watchdog_mode!r}"
            )
        if self.watchdog_damping < 0.0:
            raise ValueError("SafetyConfig.watchdog_damping must be >= 0")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)


@dataclass(frozen=True)
class SafetyOutput:
    """What to send to the joints this tick: tau_ff [N] N*m and damping kd [N] N*m*s/rad."""

    torque: np.ndarray
    damping: np.ndarray
    mode: Mode

    def applied_torque(self, velocity: np.ndarray) -> np.ndarray:
        """Torque the firmware's law produces: tau_ff - kd * qd, [N] (kp is always 0 here)."""
        return self.torque - self.damping * np.asarray(velocity, dtype=np.float64)


TUNABLE_KEYS = (
    "soft_limit_margin",
    "soft_limit_stiffness",
    "soft_limit_damping",
    "command_timeout",
    "max_command_age",
    "watchdog_mode",
    "watchdog_damping",
)
"""Node parameters that map one to one onto SafetyConfig fields (same names)."""


def safety_config_from_settings(
    settings: Mapping[str, Any],
    joint_names: Sequence[str],
    torque_limits: Sequence[float],
    position_lower: Sequence[float],
    position_upper: Sequence[float],
) -> SafetyConfig:
    """The SafetyConfig of a node: its joints and limits plus the ``TUNABLE_KEYS`` parameters."""
    return SafetyConfig(
        joint_names=tuple(joint_names),
        torque_limits=tuple(torque_limits),
        position_lower=tuple(position_lower),
        position_upper=tuple(position_upper),
        **{key: settings[key] for key in TUNABLE_KEYS},
    )


class SafetyGate:
    """Validates commands and decides the joint output; all times from the injected ``clock``."""

    def __init__(self, config: SafetyConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self._clock = clock
        self._index = {name: i for i, name in enumerate(config.joint_names)}
        self._limits = np.asarray(config.torque_limits, dtype=np.float64)
        self._lower = np.asarray(config.position_lower, dtype=np.float64)
        self._upper = np.asarray(config.position_upper, dtype=np.float64)
        self._command = np.zeros(config.num_joints)
        self._last_valid_time: float | None = None
        self._last_order: tuple[int, int] | None = None  # (stamp ns, sequence) last accepted
        self._estop = False
        self._was_active = False
        self._tripped_at: float | None = None  # gate clock time of the latest watchdog trip
        self.counters: Counter[str] = Counter()
        # Seconds from the last valid command's stamp to the first zero-torque output of the
        # latest trip.
        self.last_trip_delay = float("nan")

    @property
    def estop_active(self) -> bool:
        return self._estop

    def submit(
        self,
        names: Sequence[str],
        efforts: Sequence[float],
        stamp_age: float,
        order: tuple[int, int] | None = None,
    ) -> Rejection | None:
        """Offer a command; returns None when accepted, else the reason it was rejected.

        ``stamp_age`` is (receiver now - command stamp) in seconds on a common clock; ``order``
        the command's (stamp in integer ns, sequence) for the order check (None: not checked).
        """
        reason = self._validate(names, efforts, stamp_age)
        if reason is None and order is not None:
            reason = order_rejection(
                *order, stamp_age, self._last_order, self.config.max_future_skew
            )
        # The stamp on the gate's clock (a future stamp, within max_future_skew, counts as now).
        stamped_at = self._clock() - max(stamp_age, 0.0)
        if reason is None and self._tripped_at is not None and stamped_at < self._tripped_at:
            reason = Rejection.BEFORE_TRIP
        if reason is not None:
            self.counters[reason.value] += 1
            return reason
        clipped, clamped = ordered_and_clipped(
            names, efforts, self._index, -self._limits, self._limits
        )
        if clamped:
            self.counters["clamped"] += 1
        self._command = clipped
        self._last_valid_time = stamped_at
        if order is not None:
            self._last_order = order
        self.counters["accepted"] += 1
        return None

    def _validate(
        self, names: Sequence[str], efforts: Sequence[float], stamp_age: float
    ) -> Rejection | None:
        c = self.config
        return command_rejection(
            names,
            efforts,
            stamp_age,
            self._index,
            c.max_command_age,
            c.max_future_skew,
            self._estop,
        )

    def set_estop(self, active: bool) -> None:
        """Latch (True) or release (False) the e-stop. Release waits for a fresh command."""
        if active and not self._estop:
            self.counters["estop_activations"] += 1
        if not active and self._estop:
            self._last_valid_time = None
            self._command = np.zeros(self.config.num_joints)
        self._estop = active

    def mode(self) -> Mode:
        if self._estop:
            return Mode.ESTOP
        if self._last_valid_time is None:
            return Mode.WAITING
        if self._clock() - self._last_valid_time > self.config.command_timeout:
            return Mode.WATCHDOG
        return Mode.ACTIVE

    def output(self, position: np.ndarray, velocity: np.ndarray) -> SafetyOutput:
        """Decide this tick's output from the measured joint state (both [N])."""
        n = self.config.num_joints
        q = np.asarray(position, dtype=np.float64)
        qd = np.asarray(velocity, dtype=np.float64)
        if q.shape != (n,) or qd.shape != (n,):
            raise ValueError(f"position/velocity must have shape ({n},), got {q.shape}, {qd.shape}")
        mode = self.mode()
        if mode is Mode.WATCHDOG and self._was_active:
            self.counters["watchdog_trips"] += 1
            assert self._last_valid_time is not None
            self._tripped_at = self._clock()
            self.last_trip_delay = self._tripped_at - self._last_valid_time
        self._was_active = mode is Mode.ACTIVE
        zeros = np.zeros(n)
        if mode is Mode.ACTIVE:
            torque = np.clip(
                self._command + self.soft_limit_torque(q, qd), -self._limits, self._limits
            )
            return SafetyOutput(torque=torque, damping=zeros, mode=mode)
        if mode is Mode.WATCHDOG and self.config.watchdog_mode == "damping":
            return SafetyOutput(
                torque=zeros, damping=np.full(n, self.config.watchdog_damping), mode=mode
            )
        return SafetyOutput(torque=zeros, damping=zeros, mode=mode)

    def soft_limit_torque(self, position: np.ndarray, velocity: np.ndarray) -> np.ndarray:
        """Spring-damper torque [N] inside the soft-limit margins, zero elsewhere."""
        cfg = self.config
        upper_start = self._upper - cfg.soft_limit_margin
        lower_start = self._lower + cfg.soft_limit_margin
        over = np.maximum(position - upper_start, 0.0)
        under = np.maximum(lower_start - position, 0.0)
        torque = -cfg.soft_limit_stiffness * over + cfg.soft_limit_stiffness * under
        towards_upper = (over > 0.0) & (velocity > 0.0)
        towards_lower = (under > 0.0) & (velocity < 0.0)
        torque = torque - cfg.soft_limit_damping * velocity * (towards_upper | towards_lower)
        return torque


SAFETY_GATE_RULES: dict[str, Rule] = {
    "command_timeout": TIMEOUT_S,
    "max_command_age": TIMEOUT_S,
    "watchdog_mode": WATCHDOG_MODES,
    "watchdog_damping": Limits(0.0, 100.0),
    "soft_limit_margin": Limits(0.0, 10.0),
    "soft_limit_stiffness": Limits(0.0, 10_000.0),
    "soft_limit_damping": Limits(0.0, 1000.0),
}
"""The rules (node_parameters) of the SafetyGate parameters the motor driver and the sim robot share."""
