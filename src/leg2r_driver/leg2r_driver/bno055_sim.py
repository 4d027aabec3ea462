"""A simulated BNO055 answering the UART register protocol on a pseudo-terminal (os.openpty).

The device side holds a 128-byte register page: chip id, the operating mode, calibration status,
and the data registers, which are filled from :meth:`SimulatedBNO055.set_motion` only while NDOF
fusion runs (as the real chip does). Faults can be injected (``error_replies``) to exercise the
driver's retry path. The host opens :attr:`SimulatedBNO055.port_name` with pyserial.
"""

from __future__ import annotations

import math
import os
import struct
import threading

import numpy as np

from leg2r_driver.bno055 import (
    ACC_DATA,
    ACCEL_LSB_PER_MPS2,
    CALIB_STAT,
    CHIP_ID,
    CHIP_ID_REGISTER,
    GYR_DATA,
    GYRO_LSB_PER_DPS,
    NDOF_MODE,
    OPR_MODE,
    QUA_DATA,
    QUATERNION_LSB,
    READ,
    READ_OK,
    START,
    STATUS,
    SYS_STATUS,
    WRITE,
    WRITE_SUCCESS,
)
from leg2r_driver.pty_device import PtyDevice

BUS_OVER_RUN = 0x07


def _int16(value: float) -> int:
    return int(max(-32768, min(32767, round(value))))


class SimulatedBNO055(PtyDevice):
    """Device side of a pty pair; the host side is ``port_name``. Call :meth:`close` when done."""

    def __init__(self) -> None:
        self._open_pty()
        self.registers = bytearray(0x80)
        self.registers[CHIP_ID_REGISTER] = CHIP_ID
        self.registers[CALIB_STAT] = 0xFF
        self.error_replies = 0
        self.requests = 0
        self._motion = (np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(3), np.array([0.0, 0.0, 9.81]))
        self._lock = threading.Lock()
        self._start_serving("simulated-bno055")

    def set_motion(
        self, quaternion_wxyz: np.ndarray, angular_velocity: np.ndarray, acceleration: np.ndarray
    ) -> None:
        """Set what the sensor measures: unit quaternion, rad/s [3], m/s^2 [3] (with gravity)."""
        with self._lock:
            self._motion = (
                np.asarray(quaternion_wxyz, dtype=np.float64),
                np.asarray(angular_velocity, dtype=np.float64),
                np.asarray(acceleration, dtype=np.float64),
            )
            self._refresh()

    def set_calibration(self, system: int, gyro: int, accel: int, mag: int) -> None:
        with self._lock:
            self.registers[CALIB_STAT] = (system << 6) | (gyro << 4) | (accel << 2) | mag

    def _refresh(self) -> None:
        fusion = self.registers[OPR_MODE] == NDOF_MODE
        self.registers[SYS_STATUS] = 5 if fusion else 0
        quaternion, gyro, accel = self._motion
        if not fusion:
            quaternion, gyro, accel = np.zeros(4), np.zeros(3), np.zeros(3)
        acc = [_int16(a * ACCEL_LSB_PER_MPS2) for a in accel]
        gyr = [_int16(math.degrees(g) * GYRO_LSB_PER_DPS) for g in gyro]
        qua = [_int16(q * QUATERNION_LSB) for q in quaternion]
        self.registers[ACC_DATA : ACC_DATA + 6] = struct.pack("<3h", *acc)
        self.registers[GYR_DATA : GYR_DATA + 6] = struct.pack("<3h", *gyr)
        self.registers[QUA_DATA : QUA_DATA + 8] = struct.pack("<4h", *qua)

    def _serve(self) -> None:
        while not self._stop.is_set():
            start = self._read_exact(1)
            if start is None:
                return
            if start[0] != START:
                continue
            header = self._read_exact(3)
            if header is None:
                return
            operation, register, length = header
            payload = b""
            if operation == WRITE:
                payload = self._read_exact(length) or b""
            reply = self._answer(operation, register, length, payload)
            try:
                os.write(self._master, reply)
            except OSError:
                return

    def _answer(self, operation: int, register: int, length: int, payload: bytes) -> bytes:
        with self._lock:
            self.requests += 1
            if self.error_replies > 0:
                self.error_replies -= 1
                return bytes([STATUS, BUS_OVER_RUN])
            if register + length > len(self.registers):
                return bytes([STATUS, 0x04])
            if operation == READ:
                return bytes([READ_OK, length]) + bytes(
                    self.registers[register : register + length]
                )
            if operation == WRITE:
                self.registers[register : register + length] = payload
                self._refresh()
                return bytes([STATUS, WRITE_SUCCESS])
            return bytes([STATUS, 0x06])
