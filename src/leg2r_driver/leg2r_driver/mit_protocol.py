"""The MIT mini-cheetah CAN protocol spoken by T-Motor AK / CubeMars style BLDC controllers.

Pure functions, no bus access: the driver node and the simulated firmware both use them, so the
test double cannot drift from the real encoding.

Frames (classic CAN, 11-bit id per motor):
- special 8-byte frames: ``FF x7`` followed by ``FC`` (enter motor mode), ``FD`` (exit), ``FE``
  (set the current position as zero);
- command, 8 bytes, big-endian bit fields: position 16 bits, velocity 12, kp 12, kd 12, torque 12
  (``p[15:8] | p[7:0] | v[11:4] | v[3:0] kp[11:8] | kp[7:0] | kd[11:4] | kd[3:0] t[11:8] | t[7:0]``);
- reply, 6 bytes: ``id | p[15:8] | p[7:0] | v[11:4] | v[3:0] i[11:8] | i[7:0]``.

Every value is mapped linearly from its range to an unsigned integer and saturated at the ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ENTER_MOTOR_MODE = bytes([0xFF] * 7 + [0xFC])
EXIT_MOTOR_MODE = bytes([0xFF] * 7 + [0xFD])
SET_ZERO_POSITION = bytes([0xFF] * 7 + [0xFE])
SPECIAL_FRAMES = {ENTER_MOTOR_MODE: "enter", EXIT_MOTOR_MODE: "exit", SET_ZERO_POSITION: "zero"}

POSITION_BITS = 16
VELOCITY_BITS = 12
GAIN_BITS = 12
TORQUE_BITS = 12


@dataclass(frozen=True)
class MotorRanges:
    """Encoding ranges of one motor model (they differ per model and firmware).

    All ranges are symmetric except the gains, which start at 0.
    """

    position_max: float = 12.5  # rad, position range is [-position_max, position_max]
    velocity_max: float = 76.0  # rad/s
    torque_max: float = 12.0  # N*m (also the range of the reply's current/torque field)
    kp_max: float = 500.0  # N*m/rad
    kd_max: float = 5.0  # N*m*s/rad

    def __post_init__(self) -> None:
        for name in ("position_max", "velocity_max", "torque_max", "kp_max", "kd_max"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"MotorRanges.{name} must be finite and > 0, got {value!r}")


MOTOR_MODELS: dict[str, MotorRanges] = {
    "AK80-6": MotorRanges(velocity_max=76.0, torque_max=12.0),
    "AK80-9": MotorRanges(velocity_max=25.64, torque_max=18.0),
}


@dataclass(frozen=True)
class MotorCommand:
    """One MIT command: torque = kp (position - p) + kd (velocity - v) + torque."""

    position: float = 0.0
    velocity: float = 0.0
    kp: float = 0.0
    kd: float = 0.0
    torque: float = 0.0


ZERO_TORQUE = MotorCommand()


@dataclass(frozen=True)
class MotorReply:
    """Decoded 6-byte reply. ``torque`` is the current/torque field in the torque range."""

    motor_id: int
    position: float
    velocity: float
    torque: float


def float_to_uint(value: float, low: float, high: float, bits: int) -> int:
    """Map ``value`` from [low, high] to an unsigned ``bits``-bit integer, saturating outside.

    NaN is rejected (ValueError): it has no meaningful saturated value.
    """
    if math.isnan(value):
        raise ValueError(f"cannot encode NaN in [{low}, {high}]")
    if not high > low:
        raise ValueError(f"empty range [{low}, {high}]")
    top = (1 << bits) - 1
    clipped = min(max(value, low), high)
    return min(top, max(0, int(round((clipped - low) * top / (high - low)))))


def uint_to_float(raw: int, low: float, high: float, bits: int) -> float:
    """Inverse of :func:`float_to_uint` (exact at the range ends)."""
    top = (1 << bits) - 1
    if not 0 <= raw <= top:
        raise ValueError(f"raw value {raw} does not fit in {bits} bits")
    return low + raw * (high - low) / top


def resolution(low: float, high: float, bits: int) -> float:
    """Quantisation step of a field, i.e. the round-trip error bound is half of it."""
    return (high - low) / ((1 << bits) - 1)


def pack_command(command: MotorCommand, ranges: MotorRanges) -> bytes:
    """Encode a command into the 8-byte frame (out-of-range values saturate)."""
    p = float_to_uint(command.position, -ranges.position_max, ranges.position_max, POSITION_BITS)
    v = float_to_uint(command.velocity, -ranges.velocity_max, ranges.velocity_max, VELOCITY_BITS)
    kp = float_to_uint(command.kp, 0.0, ranges.kp_max, GAIN_BITS)
    kd = float_to_uint(command.kd, 0.0, ranges.kd_max, GAIN_BITS)
    t = float_to_uint(command.torque, -ranges.torque_max, ranges.torque_max, TORQUE_BITS)
    return bytes(
        [
            p >> 8,
            p & 0xFF,
            v >> 4,
            ((v & 0xF) << 4) | (kp >> 8),
            kp & 0xFF,
            kd >> 4,
            ((kd & 0xF) << 4) | (t >> 8),
            t & 0xFF,
        ]
    )


def unpack_command(data: bytes, ranges: MotorRanges) -> MotorCommand:
    """Decode an 8-byte command frame (what the firmware does)."""
    if len(data) != 8:
        raise ValueError(f"command frame must have 8 bytes, got {len(data)}")
    if bytes(data) in SPECIAL_FRAMES:
        raise ValueError(f"frame {bytes(data).hex()} is a special frame, not a command")
    p = (data[0] << 8) | data[1]
    v = (data[2] << 4) | (data[3] >> 4)
    kp = ((data[3] & 0xF) << 8) | data[4]
    kd = (data[5] << 4) | (data[6] >> 4)
    t = ((data[6] & 0xF) << 8) | data[7]
    return MotorCommand(
        position=uint_to_float(p, -ranges.position_max, ranges.position_max, POSITION_BITS),
        velocity=uint_to_float(v, -ranges.velocity_max, ranges.velocity_max, VELOCITY_BITS),
        kp=uint_to_float(kp, 0.0, ranges.kp_max, GAIN_BITS),
        kd=uint_to_float(kd, 0.0, ranges.kd_max, GAIN_BITS),
        torque=uint_to_float(t, -ranges.torque_max, ranges.torque_max, TORQUE_BITS),
    )


def pack_reply(reply: MotorReply, ranges: MotorRanges) -> bytes:
    """Encode the 6-byte reply (what the firmware sends)."""
    if not 0 <= reply.motor_id <= 0xFF:
        raise ValueError(f"motor id {reply.motor_id} does not fit in one byte")
    p = float_to_uint(reply.position, -ranges.position_max, ranges.position_max, POSITION_BITS)
    v = float_to_uint(reply.velocity, -ranges.velocity_max, ranges.velocity_max, VELOCITY_BITS)
    i = float_to_uint(reply.torque, -ranges.torque_max, ranges.torque_max, TORQUE_BITS)
    return bytes([reply.motor_id, p >> 8, p & 0xFF, v >> 4, ((v & 0xF) << 4) | (i >> 8), i & 0xFF])


def unpack_reply(data: bytes, ranges: MotorRanges) -> MotorReply:
    """Decode a 6-byte reply frame."""
    if len(data) != 6:
        raise ValueError(f"reply frame must have 6 bytes, got {len(data)}")
    p = (data[1] << 8) | data[2]
    v = (data[3] << 4) | (data[4] >> 4)
    i = ((data[4] & 0xF) << 8) | data[5]
    return MotorReply(
        motor_id=data[0],
        position=uint_to_float(p, -ranges.position_max, ranges.position_max, POSITION_BITS),
        velocity=uint_to_float(v, -ranges.velocity_max, ranges.velocity_max, VELOCITY_BITS),
        torque=uint_to_float(i, -ranges.torque_max, ranges.torque_max, TORQUE_BITS),
    )


def commanded_torque(command: MotorCommand, position: float, velocity: float) -> float:
    """Torque the firmware's impedance law produces for ``command`` at the given state."""
    return (
        command.kp * (command.position - position)
        + command.kd * (command.velocity - velocity)
        + command.torque
    )
