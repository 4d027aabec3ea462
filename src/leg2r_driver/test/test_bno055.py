"""BNO055 UART protocol against a simulated device on a pseudo-terminal."""

import math
from collections.abc import Iterator

import numpy as np
import pytest
import serial

from leg2r_driver.bno055 import (
    BNO055,
    NDOF_MODE,
    OPR_MODE,
    BNO055Error,
    Calibration,
    decode_sample,
    read_request,
    write_request,
)
from leg2r_driver.bno055_sim import SimulatedBNO055


@pytest.fixture
def device() -> Iterator[tuple[BNO055, SimulatedBNO055]]:
    sim = SimulatedBNO055()
    port = serial.Serial(sim.port_name, 115200, timeout=0.2)
    yield BNO055(port), sim
    port.close()
    sim.close()


def test_request_framing() -> None:
    assert write_request(0x3D, bytes([0x0C])).hex() == "aa003d010c"
    assert read_request(0x20, 8).hex() == "aa012008"
    with pytest.raises(ValueError, match="length"):
        read_request(0x20, 0)


def test_initialize_starts_fusion(device: tuple[BNO055, SimulatedBNO055]) -> None:
    imu, sim = device
    imu.initialize(settle=0.0)
    assert sim.registers[OPR_MODE] == NDOF_MODE
    assert imu.system_status() == (5, 0)


def test_sample_decodes_to_si_units(device: tuple[BNO055, SimulatedBNO055]) -> None:
    imu, sim = device
    imu.initialize(settle=0.0)
    half = math.radians(30.0) / 2
    sim.set_motion(
        np.array([math.cos(half), 0.0, 0.0, math.sin(half)]),  # 30 deg yaw
        np.array([0.1, -0.2, 1.5]),
        np.array([0.5, -0.25, 9.81]),
    )
    sample = imu.sample()
    np.testing.assert_allclose(
        sample.orientation_xyzw, [0, 0, math.sin(half), math.cos(half)], atol=1e-4
    )
    np.testing.assert_allclose(sample.angular_velocity, [0.1, -0.2, 1.5], atol=math.radians(1 / 16))
    np.testing.assert_allclose(sample.linear_acceleration, [0.5, -0.25, 9.81], atol=0.01)


def test_no_fusion_before_ndof_is_an_error(device: tuple[BNO055, SimulatedBNO055]) -> None:
    imu, _ = device
    with pytest.raises(BNO055Error, match="fusion"):
        imu.sample()


def test_calibration_status(device: tuple[BNO055, SimulatedBNO055]) -> None:
    imu, sim = device
    sim.set_calibration(3, 2, 1, 0)
    assert imu.calibration() == Calibration(system=3, gyroscope=2, accelerometer=1, magnetometer=0)


def test_error_replies_are_retried_then_raised(device: tuple[BNO055, SimulatedBNO055]) -> None:
    imu, sim = device
    sim.error_replies = 2
    assert imu.read(0x00, 1) == bytes([0xA0])
    assert imu.errors == 2
    sim.error_replies = 10
    with pytest.raises(BNO055Error, match="bus over run"):
        imu.read(0x00, 1)


def test_decode_checks_length() -> None:
    with pytest.raises(ValueError, match="bytes"):
        decode_sample(bytes(4))


class ScriptedPort:
    """A serial port that answers every read from a script; an exception in it is raised."""

    def __init__(self, script: list[bytes | Exception]) -> None:
        self.script = script

    def write(self, data: bytes) -> int:
        return len(data)

    def read(self, size: int = 1) -> bytes:
        item = self.script.pop(0) if self.script else b""
        if isinstance(item, Exception):
            raise item
        return item[:size]

    def reset_input_buffer(self) -> None:
        pass


def test_line_noise_and_a_lost_port_raise_bno055_errors() -> None:
    noisy = BNO055(ScriptedPort([bytes([0xBB, 1]), bytes([0xBB, 2]), b"\x05\x00"]))
    assert noisy.read(0x39, 2) == b"\x05\x00"  # the 1-byte "reply" to a 2-byte read is retried
    assert noisy.errors == 1
    with pytest.raises(BNO055Error, match="reply of 1 bytes to a read of 2"):
        BNO055(ScriptedPort([bytes([0xBB, 1])] * 3), retries=3).read(0x39, 2)
    gone = BNO055(ScriptedPort([serial.SerialException("device disconnected")]))
    with pytest.raises(BNO055Error, match="serial port failed: device disconnected"):
        gone.sample()
    assert gone.errors == 1
