"""Bosch BNO055 over UART (115200 8N1): register protocol, device setup and sample decoding.

Protocol: write ``AA 00 <reg> <len> <data>`` -> ``EE <status>`` (``01`` = success); read
``AA 01 <reg> <len>`` -> ``BB <len> <data>`` or ``EE <status>`` on error. The transport is any
object with pyserial's ``read(n)`` / ``write(data)`` / ``reset_input_buffer()``, so the tests drive
the same code against a simulated device on a pseudo-terminal (:mod:`bno055_sim`).

Units with the power-on ``UNIT_SEL`` (0x00): acceleration 1 m/s^2 = 100 LSB, angular rate
1 deg/s = 16 LSB, quaternion 1 = 2^14 LSB. Values are little-endian int16.
The sensor frame is used as ``imu_link`` as is (mount the chip aligned, or add a static transform).
"""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

START = 0xAA
WRITE = 0x00
READ = 0x01
READ_OK = 0xBB
STATUS = 0xEE
WRITE_SUCCESS = 0x01

CHIP_ID_REGISTER = 0x00
CHIP_ID = 0xA0
ACC_DATA = 0x08  # 6 bytes, includes gravity (REP-145: the IMU reports specific force)
GYR_DATA = 0x14  # 6 bytes
QUA_DATA = 0x20  # 8 bytes, w x y z
CALIB_STAT = 0x35
SYS_STATUS = 0x39
SYS_ERR = 0x3A
UNIT_SEL = 0x3B
OPR_MODE = 0x3D
CONFIG_MODE = 0x00
NDOF_MODE = 0x0C

ACCEL_LSB_PER_MPS2 = 100.0
GYRO_LSB_PER_DPS = 16.0
QUATERNION_LSB = float(1 << 14)
SAMPLE_START = ACC_DATA
SAMPLE_LENGTH = QUA_DATA + 8 - ACC_DATA  # acc, mag, gyro, euler, quaternion in one read

STATUS_NAMES = {
    0x01: "write success",
    0x03: "write fail",
    0x04: "regmap invalid address",
    0x05: "regmap write disabled",
    0x06: "wrong start byte",
    0x07: "bus over run",
    0x08: "max length error",
    0x09: "min length error",
    0x0A: "receive character timeout",
}


class SerialPort(Protocol):
    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def reset_input_buffer(self) -> None: ...


class BNO055Error(RuntimeError):
    """The device answered with an error status, garbage, or not at all."""


@dataclass(frozen=True)
class Calibration:
    """CALIB_STAT fields, each 0 (uncalibrated) .. 3 (fully calibrated)."""

    system: int
    gyroscope: int
    accelerometer: int
    magnetometer: int

    @classmethod
    def from_byte(cls, value: int) -> Calibration:
        return cls((value >> 6) & 3, (value >> 4) & 3, (value >> 2) & 3, value & 3)


@dataclass(frozen=True)
class ImuSample:
    """One fused sample: quaternion [4] (x, y, z, w), angular velocity [3] rad/s, accel [3] m/s^2."""

    orientation_xyzw: np.ndarray
    angular_velocity: np.ndarray
    linear_acceleration: np.ndarray


def write_request(register: int, data: bytes) -> bytes:
    if not 0 <= register <= 0x7F or not 1 <= len(data) <= 128:
        raise ValueError(f"bad BNO055 write: register {register:#x}, {len(data)} bytes")
    return bytes([START, WRITE, register, len(data)]) + bytes(data)


def read_request(register: int, length: int) -> bytes:
    if not 0 <= register <= 0x7F or not 1 <= length <= 128:
        raise ValueError(f"bad BNO055 read: register {register:#x}, length {length}")
    return bytes([START, READ, register, length])


def decode_sample(block: bytes) -> ImuSample:
    """Decode the SAMPLE_LENGTH-byte block read from ACC_DATA into SI units."""
    if len(block) != SAMPLE_LENGTH:
        raise ValueError(f"sample block must have {SAMPLE_LENGTH} bytes, got {len(block)}")
    values = struct.unpack(f"<{SAMPLE_LENGTH // 2}h", block)
    accel = np.array(values[0:3], dtype=np.float64) / ACCEL_LSB_PER_MPS2
    gyro = np.radians(np.array(values[6:9], dtype=np.float64) / GYRO_LSB_PER_DPS)
    w, x, y, z = (v / QUATERNION_LSB for v in values[12:16])
    norm = math.sqrt(w * w + x * x + y * y + z * z)
    if norm < 0.5:
        raise BNO055Error(f"quaternion norm {norm:.3f}: fusion not running")
    quaternion = np.array([x, y, z, w]) / norm
    return ImuSample(quaternion, gyro, accel)


class BNO055:
    """Register access and sampling over a serial transport; raises BNO055Error on failures."""

    def __init__(self, port: SerialPort, retries: int = 3) -> None:
        self.port = port
        self.retries = retries
        self.errors = 0

    def _exchange(self, request: bytes, expect_data: bool) -> bytes:
        try:
            return self._attempts(request, expect_data)
        except OSError as error:  # pyserial's SerialException: the adaptor is gone
            self.errors += 1
            raise BNO055Error(f"serial port failed: {error}") from error

    def _attempts(self, request: bytes, expect_data: bool) -> bytes:
        last_error = "no attempt"
        for _ in range(self.retries):
            self.port.write(request)
            header = self.port.read(2)
            if len(header) < 2:
                last_error = "timeout"
            elif header[0] == READ_OK and expect_data and header[1] != request[3]:
                # Line noise that looks like a reply header: not the length that was asked for.
                last_error = f"reply of {header[1]} bytes to a read of {request[3]}"
            elif header[0] == READ_OK and expect_data:
                data = self.port.read(header[1])
                if len(data) == header[1]:
                    return data
                last_error = f"short read ({len(data)} of {header[1]} bytes)"
            elif header[0] == STATUS:
                if header[1] == WRITE_SUCCESS and not expect_data:
                    return b""
                last_error = STATUS_NAMES.get(header[1], f"status {header[1]:#04x}")
            else:
                last_error = f"unexpected reply {header.hex()}"
            self.errors += 1
            self.port.reset_input_buffer()
        raise BNO055Error(f"BNO055 request {request[:4].hex()} failed: {last_error}")

    def read(self, register: int, length: int) -> bytes:
        return self._exchange(read_request(register, length), expect_data=True)

    def write(self, register: int, data: bytes) -> None:
        self._exchange(write_request(register, data), expect_data=False)

    def initialize(self, settle: float = 0.02) -> None:
        """Check the chip id, select default units and start NDOF fusion."""
        chip = self.read(CHIP_ID_REGISTER, 1)[0]
        if chip != CHIP_ID:
            raise BNO055Error(f"BNO055 chip id {chip:#04x}, expected {CHIP_ID:#04x}")
        self.write(OPR_MODE, bytes([CONFIG_MODE]))
        time.sleep(settle)
        self.write(UNIT_SEL, bytes([0x00]))
        self.write(OPR_MODE, bytes([NDOF_MODE]))
        time.sleep(settle)

    def sample(self) -> ImuSample:
        return decode_sample(self.read(SAMPLE_START, SAMPLE_LENGTH))

    def calibration(self) -> Calibration:
        return Calibration.from_byte(self.read(CALIB_STAT, 1)[0])

    def system_status(self) -> tuple[int, int]:
        """(SYS_STATUS, SYS_ERR): 5 = fusion running; error 0 = none."""
        status, error = self.read(SYS_STATUS, 2)
        return status, error
