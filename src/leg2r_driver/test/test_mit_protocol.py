"""MIT mini-cheetah protocol: round trips across the full ranges, saturation, frame layout."""

import numpy as np
import pytest

from leg2r_driver.mit_protocol import (
    ENTER_MOTOR_MODE,
    EXIT_MOTOR_MODE,
    GAIN_BITS,
    MOTOR_MODELS,
    POSITION_BITS,
    SET_ZERO_POSITION,
    TORQUE_BITS,
    VELOCITY_BITS,
    MotorCommand,
    MotorRanges,
    MotorReply,
    float_to_uint,
    pack_command,
    pack_reply,
    resolution,
    uint_to_float,
    unpack_command,
    unpack_reply,
)

RANGES = [MotorRanges(), *MOTOR_MODELS.values()]


def test_special_frames_match_the_protocol() -> None:
    assert ENTER_MOTOR_MODE.hex() == "fffffffffffffffc"
    assert EXIT_MOTOR_MODE.hex() == "fffffffffffffffd"
    assert SET_ZERO_POSITION.hex() == "fffffffffffffffe"


@pytest.mark.parametrize("bits", [12, 16])
def test_float_uint_round_trip_is_within_half_a_step(bits: int) -> None:
    low, high = -3.0, 7.0
    step = resolution(low, high, bits)
    for value in np.linspace(low, high, 997):
        raw = float_to_uint(float(value), low, high, bits)
        assert 0 <= raw < 2**bits
        assert abs(uint_to_float(raw, low, high, bits) - value) <= step / 2 + 1e-12
    assert float_to_uint(low, low, high, bits) == 0
    assert float_to_uint(high, low, high, bits) == 2**bits - 1


def test_out_of_range_values_saturate_and_nan_is_refused() -> None:
    assert float_to_uint(1e9, -1.0, 1.0, 12) == 4095
    assert float_to_uint(-np.inf, -1.0, 1.0, 12) == 0
    with pytest.raises(ValueError, match="NaN"):
        float_to_uint(float("nan"), -1.0, 1.0, 12)
    with pytest.raises(ValueError, match="12 bits"):
        uint_to_float(4096, -1.0, 1.0, 12)


@pytest.mark.parametrize("ranges", RANGES)
def test_command_round_trip_over_full_ranges(ranges: MotorRanges) -> None:
    rng = np.random.default_rng(0)
    tol = {
        "position": resolution(-ranges.position_max, ranges.position_max, POSITION_BITS) / 2,
        "velocity": resolution(-ranges.velocity_max, ranges.velocity_max, VELOCITY_BITS) / 2,
        "kp": resolution(0, ranges.kp_max, GAIN_BITS) / 2,
        "kd": resolution(0, ranges.kd_max, GAIN_BITS) / 2,
        "torque": resolution(-ranges.torque_max, ranges.torque_max, TORQUE_BITS) / 2,
    }
    for _ in range(500):
        command = MotorCommand(
            position=rng.uniform(-ranges.position_max, ranges.position_max),
            velocity=rng.uniform(-ranges.velocity_max, ranges.velocity_max),
            kp=rng.uniform(0, ranges.kp_max),
            kd=rng.uniform(0, ranges.kd_max),
            torque=rng.uniform(-ranges.torque_max, ranges.torque_max),
        )
        frame = pack_command(command, ranges)
        assert len(frame) == 8
        decoded = unpack_command(frame, ranges)
        for name, bound in tol.items():
            assert abs(getattr(decoded, name) - getattr(command, name)) <= bound + 1e-9, name


@pytest.mark.parametrize("ranges", RANGES)
def test_command_extremes_are_exact_and_saturate(ranges: MotorRanges) -> None:
    top = MotorCommand(
        ranges.position_max, ranges.velocity_max, ranges.kp_max, ranges.kd_max, ranges.torque_max
    )
    assert pack_command(top, ranges) == bytes([0xFF] * 7 + [0xFF])
    beyond = MotorCommand(1e6, 1e6, 1e6, 1e6, 1e6)
    assert pack_command(beyond, ranges) == pack_command(top, ranges)
    below = MotorCommand(-1e6, -1e6, -5.0, -5.0, -1e6)
    assert pack_command(below, ranges) == bytes(8)
    decoded = unpack_command(pack_command(below, ranges), ranges)
    assert decoded.position == -ranges.position_max
    assert decoded.torque == -ranges.torque_max
    assert decoded.kp == 0.0


def test_command_bit_layout() -> None:
    ranges = MotorRanges(position_max=1.0, velocity_max=1.0, torque_max=1.0, kp_max=1.0, kd_max=1.0)
    # p = 0xABCD, v = 0x123, kp = 0x456, kd = 0x789, t = 0xABC
    command = MotorCommand(
        position=uint_to_float(0xABCD, -1, 1, 16),
        velocity=uint_to_float(0x123, -1, 1, 12),
        kp=uint_to_float(0x456, 0, 1, 12),
        kd=uint_to_float(0x789, 0, 1, 12),
        torque=uint_to_float(0xABC, -1, 1, 12),
    )
    assert pack_command(command, ranges).hex() == "abcd123456789abc"


@pytest.mark.parametrize("ranges", RANGES)
def test_reply_round_trip_and_layout(ranges: MotorRanges) -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        reply = MotorReply(
            motor_id=int(rng.integers(1, 255)),
            position=rng.uniform(-ranges.position_max, ranges.position_max),
            velocity=rng.uniform(-ranges.velocity_max, ranges.velocity_max),
            torque=rng.uniform(-ranges.torque_max, ranges.torque_max),
        )
        frame = pack_reply(reply, ranges)
        assert len(frame) == 6 and frame[0] == reply.motor_id
        decoded = unpack_reply(frame, ranges)
        pos_step = resolution(-ranges.position_max, ranges.position_max, 16)
        assert abs(decoded.position - reply.position) <= pos_step / 2 + 1e-9
        vel_step = resolution(-ranges.velocity_max, ranges.velocity_max, 12)
        assert abs(decoded.velocity - reply.velocity) <= vel_step / 2 + 1e-9
        tq_step = resolution(-ranges.torque_max, ranges.torque_max, 12)
        assert abs(decoded.torque - reply.torque) <= tq_step / 2 + 1e-9
    saturated = unpack_reply(pack_reply(MotorReply(3, 99.0, -999.0, 1e3), ranges), ranges)
    assert saturated.position == ranges.position_max
    assert saturated.velocity == -ranges.velocity_max
    assert saturated.torque == ranges.torque_max


def test_bad_frames_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        unpack_command(bytes(7), MotorRanges())
    with pytest.raises(ValueError, match="special frame"):
        unpack_command(ENTER_MOTOR_MODE, MotorRanges())
    with pytest.raises(ValueError, match="6 bytes"):
        unpack_reply(bytes(8), MotorRanges())
    with pytest.raises(ValueError, match="torque_max"):
        MotorRanges(torque_max=0.0)
