"""A simulated B3M bus: servos answering the B3M protocol on a pseudo-terminal (os.openpty).

Each servo holds a 256-byte memory map. Like the firmware, a servo answers a single-id READ,
WRITE or POSITION addressed to it, stays silent for other ids, broadcasts, multi-writes and
RESET, and applies its run mode: NORMAL moves the position towards the desired position at
``speed`` (rad/s), HOLD keeps the position where it was when the mode was entered, FREE leaves it
wherever an external load puts it (:meth:`SimulatedB3MBus.push`). Current is modelled as
proportional to the position error while the servo holds or tracks, zero when limp; temperatures
are set by the test. Faults (``inject``): ``silent`` (no reply), ``bad_checksum``, ``short``
(a truncated reply) for the next n requests to an id. The host opens :attr:`port_name` with
pyserial.
"""

from __future__ import annotations

import math
import os
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable

from leg2r_driver.pty_device import PtyDevice
from stochlite_driver.b3m import (
    BROADCAST_ID,
    CURRENT,
    CURRENT_POSITION,
    CURRENT_VELOCITY,
    DESIRED_POSITION,
    INPUT_VOLTAGE,
    MCU_TEMPERATURE,
    MEMORY_SIZE,
    MOTOR_TEMPERATURE,
    REPLY_FLAG,
    SERVO_MODE,
    STATUS_ERROR,
    Command,
    RunMode,
    checksum,
    encode,
)

FAULTS = ("silent", "bad_checksum", "short")
AMPS_PER_RADIAN = 2.0  # modelled current per rad of position error (A/rad)
CURRENT_CLIP = 5.0  # A


class SimulatedServo:
    """Memory map and motion of one servo; positions in radians internally."""

    def __init__(self, servo_id: int, speed: float, position: float = 0.0) -> None:
        self.servo_id = servo_id
        self.speed = speed
        self.memory = bytearray(MEMORY_SIZE)
        self.memory[SERVO_MODE] = RunMode.FREE  # the firmware starts limp
        self.position = position
        self.velocity = 0.0
        self.desired = position
        self.hold_at = position
        self.mcu_temperature = 30.0
        self.motor_temperature = 30.0
        self.voltage = 11.1
        self._store_desired(position)

    @property
    def run_mode(self) -> int:
        return self.memory[SERVO_MODE] & 0x03

    def _store_desired(self, angle: float) -> None:
        struct.pack_into("<h", self.memory, DESIRED_POSITION, round(math.degrees(angle) * 100))

    def advance(self, dt: float) -> None:
        """Move for ``dt`` seconds under the current run mode and refresh the state registers."""
        desired = math.radians(struct.unpack_from("<h", self.memory, DESIRED_POSITION)[0] / 100)
        mode = self.run_mode
        before = self.position
        if mode == RunMode.NORMAL:
            step = self.speed * dt
            self.position += max(-step, min(step, desired - self.position))
            error = desired - self.position
        elif mode == RunMode.HOLD:
            self.position = self.hold_at
            error = 0.0
        else:
            error = 0.0
        self.velocity = (self.position - before) / dt if dt > 0.0 else 0.0
        current = 0.0 if mode == RunMode.FREE else AMPS_PER_RADIAN * error
        current = max(-CURRENT_CLIP, min(CURRENT_CLIP, current))
        struct.pack_into("<h", self.memory, CURRENT_POSITION, _centi(self.position))
        struct.pack_into("<h", self.memory, CURRENT_VELOCITY, _centi(self.velocity))
        struct.pack_into("<h", self.memory, MCU_TEMPERATURE, round(self.mcu_temperature * 100))
        struct.pack_into("<h", self.memory, MOTOR_TEMPERATURE, round(self.motor_temperature * 100))
        struct.pack_into("<h", self.memory, CURRENT, round(current * 1000))
        struct.pack_into("<H", self.memory, INPUT_VOLTAGE, round(self.voltage * 1000))

    def write(self, address: int, data: bytes) -> None:
        previous_mode = self.run_mode
        self.memory[address : address + len(data)] = data
        if address <= SERVO_MODE < address + len(data) and self.run_mode != previous_mode:
            self.hold_at = self.position


def _centi(angle: float) -> int:
    return max(-32768, min(32767, round(math.degrees(angle) * 100)))


class SimulatedB3MBus(PtyDevice):
    """Device side of a pty pair with servos ``ids``; call :meth:`close` when done."""

    def __init__(self, ids: Iterable[int], speed: float = 7.0) -> None:
        self.servos = {servo_id: SimulatedServo(servo_id, speed) for servo_id in ids}
        self._open_pty()
        self.requests: Counter[int] = Counter()  # per command byte
        self.resets: Counter[int] = Counter()  # per id
        self._faults: dict[int, tuple[str, int]] = {}
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._start_serving("simulated-b3m")

    def inject(self, servo_id: int, fault: str, count: int = 1) -> None:
        """Answer the next ``count`` requests to ``servo_id`` with ``fault`` (see FAULTS)."""
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {fault!r}")
        with self._lock:
            self._faults[servo_id] = (fault, count)

    def push(self, servo_id: int, angle: float) -> None:
        """An external load moves a servo to ``angle`` (rad); only a limp (FREE) servo follows."""
        with self._lock:
            servo = self.servos[servo_id]
            if servo.run_mode == RunMode.FREE:
                servo.position = angle

    def set_temperature(self, servo_id: int, celsius: float) -> None:
        with self._lock:
            self.servos[servo_id].motor_temperature = celsius

    def state(self, servo_id: int) -> tuple[float, int]:
        """(position rad, run mode) of a servo, as the physics has it now."""
        with self._lock:
            self._advance()
            servo = self.servos[servo_id]
            return servo.position, servo.run_mode

    def _advance(self) -> None:
        now = time.monotonic()
        dt, self._last = now - self._last, now
        for servo in self.servos.values():
            servo.advance(dt)

    def _serve(self) -> None:
        while not self._stop.is_set():
            size = self._read_exact(1)
            if size is None:
                return
            rest = self._read_exact(size[0] - 1) if size[0] > 1 else b""
            if rest is None:
                return
            packet = size + rest
            if len(packet) < 5 or checksum(packet[:-1]) != packet[-1]:
                continue  # the firmware drops corrupt packets silently
            reply = self._answer(packet)
            if reply:
                try:
                    os.write(self._master, reply)
                except OSError:
                    return

    def _answer(self, packet: bytes) -> bytes:
        command, option, servo_id, body = packet[1], packet[2], packet[3], packet[4:-1]
        with self._lock:
            self.requests[command] += 1
            self._advance()
            if command == Command.WRITE and body[-1] > 1:
                self._multi_write(servo_id, body)
                return b""
            servo = self.servos.get(servo_id)
            if servo_id == BROADCAST_ID or servo is None:
                return b""
            if command == Command.RESET:
                self.resets[servo_id] += 1
                self.servos[servo_id] = SimulatedServo(servo_id, servo.speed, servo.position)
                return b""
            data = self._execute(servo, command, body)
            if data is None:
                return b""
            status = servo.memory[STATUS_ERROR + (option & 0x07)]
            reply = encode(command | REPLY_FLAG, status, servo_id, data)
            return self._apply_fault(servo_id, reply)

    def _execute(self, servo: SimulatedServo, command: int, body: bytes) -> bytes | None:
        if command == Command.READ:
            address, length = body[0], body[1]
            return bytes(servo.memory[address : address + length])
        if command == Command.WRITE:
            servo.write(body[-2], body[:-2])
            return b""
        if command == Command.POSITION:
            servo.write(DESIRED_POSITION, body[0:2])
            return bytes(servo.memory[CURRENT_POSITION : CURRENT_POSITION + 2])
        if command in (Command.LOAD, Command.SAVE):
            return b""
        return None

    def _multi_write(self, first_id: int, body: bytes) -> None:
        address, count = body[-2], body[-1]
        groups = bytes([first_id]) + body[:-2]
        width = len(groups) // count
        for index in range(count):
            group = groups[index * width : (index + 1) * width]
            servo = self.servos.get(group[0])
            if servo is not None:
                servo.write(address, group[1:])

    def _apply_fault(self, servo_id: int, reply: bytes) -> bytes:
        fault = self._faults.get(servo_id)
        if fault is None:
            return reply
        kind, remaining = fault
        if remaining <= 1:
            del self._faults[servo_id]
        else:
            self._faults[servo_id] = (kind, remaining - 1)
        if kind == "silent":
            return b""
        if kind == "short":
            return reply[: len(reply) - 2]
        return reply[:-1] + bytes([(reply[-1] + 1) & 0xFF])
