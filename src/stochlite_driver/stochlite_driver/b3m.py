"""Kondo B3M serial servo protocol on pyserial (no ROS).

Packets, both directions: ``SIZE COMMAND OPTION ID DATA... SUM``; SIZE is the packet's byte count
and SUM the low byte of the sum of every preceding byte. A reply's COMMAND is the request's plus
0x80 and its OPTION byte is the status register the request's OPTION selected (the error status
by default). Commands (B3M Software Manual):

- READ ``ADDRESS LENGTH`` -> reply data: LENGTH bytes of the servo's memory from ADDRESS;
- WRITE ``DATA... ADDRESS COUNT`` -> reply without data. With COUNT > 1 the request carries
  COUNT ``ID DATA...`` groups (one register block written on several servos) and nobody replies;
- POSITION ``POS(int16) TIME(uint16 ms)`` -> reply data: the servo's current position;
- RESET ``TIME`` -> no reply (the servo restarts after the given delay; 0: at once).

Values are little-endian. Positions are signed 16-bit in 0.01 deg (+-32000), velocities
0.01 deg/s, temperatures 0.01 degC, current mA, voltage mV. The run mode register (0x28) holds
the run mode (NORMAL 0x00, FREE 0x02 = limp, HOLD 0x03 = hold the current position) ORed with
the control mode (position control 0x00). :class:`B3MBus` talks to one RS-485 bus through any
object with pyserial's ``read(n)`` / ``write(data)`` / ``reset_input_buffer()``; errors raise
:class:`B3MError` subclasses naming the servo and what was wrong (a port that fails, as an unplugged
adaptor does, included: :class:`B3MPortError`).
"""

from __future__ import annotations

import enum
import math
import struct
import termios
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from leg2r_driver.bno055 import SerialPort


class Command(enum.IntEnum):
    LOAD = 0x01
    SAVE = 0x02
    READ = 0x03
    WRITE = 0x04
    RESET = 0x05
    POSITION = 0x06


REPLY_FLAG = 0x80
BROADCAST_ID = 0xFF


class RunMode(enum.IntEnum):
    """Run mode bits of the servo mode register (control mode bits: position control, 0)."""

    NORMAL = 0x00
    FREE = 0x02
    HOLD = 0x03


class StatusOption(enum.IntEnum):
    """OPTION byte of a request: which status register the reply's OPTION byte carries."""

    ERROR = 0x00
    SYSTEM = 0x01
    MOTOR = 0x02
    UART = 0x03
    COMMAND = 0x04


# Register addresses (RAM) of the B3M memory map.
SERVO_MODE = 0x28
DESIRED_POSITION = 0x2A
CURRENT_POSITION = 0x2C  # int16 0.01 deg; 0x2E previous position, 0x30 desired velocity
CURRENT_VELOCITY = 0x32  # int16 0.01 deg/s
MCU_TEMPERATURE = 0x44  # int16 0.01 degC
MOTOR_TEMPERATURE = 0x46  # int16 0.01 degC
CURRENT = 0x48  # int16 mA
INPUT_VOLTAGE = 0x4A  # uint16 mV
STATUS_ERROR = 0x9D  # error, system, motor, UART and command status bytes follow
MEMORY_SIZE = 0x100

MOTION_BLOCK = (CURRENT_POSITION, CURRENT_VELOCITY + 2 - CURRENT_POSITION)  # 8 bytes
TELEMETRY_BLOCK = (MCU_TEMPERATURE, INPUT_VOLTAGE + 2 - MCU_TEMPERATURE)  # 8 bytes

POSITION_LIMIT = 32000  # 0.01 deg
HEADER_SIZE = 4  # SIZE COMMAND OPTION ID
MIN_PACKET = HEADER_SIZE + 1  # + SUM


class B3MError(Exception):
    """A transaction with a servo failed (the message names the servo and the reason)."""


class B3MTimeout(B3MError):
    """No reply at all within the port's timeout."""


class B3MShortReply(B3MError):
    """Fewer reply bytes than the request's reply has."""


class B3MChecksumError(B3MError):
    """The reply's SUM does not match its bytes."""


class B3MReplyMismatch(B3MError):
    """A well-formed reply to another command or from another servo."""


class B3MPortError(B3MError):
    """The serial port itself failed (adaptor unplugged, device closed): nothing was exchanged."""


# What pyserial raises when the device goes away: SerialException (an OSError) from read/write,
# termios.error from flushing the input buffer of a closed pty or unplugged USB adaptor.
PORT_ERRORS = (OSError, termios.error)


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def _check_id(servo_id: int) -> None:
    if not 0 <= servo_id <= BROADCAST_ID:
        raise ValueError(f"servo id must be in 0..255, got {servo_id}")


def encode(command: int, option: int, servo_id: int, body: bytes = b"") -> bytes:
    """One packet: SIZE COMMAND OPTION ID body SUM."""
    _check_id(servo_id)
    size = HEADER_SIZE + len(body) + 1
    if size > 0xFF:
        raise ValueError(f"B3M packet of {size} bytes exceeds 255")
    head = bytes([size, command & 0xFF, option & 0xFF, servo_id]) + body
    return head + bytes([checksum(head)])


@dataclass(frozen=True)
class Packet:
    """A decoded packet: command byte, option/status byte, id and the data between ID and SUM."""

    command: int
    option: int
    servo_id: int
    data: bytes


def decode(packet: bytes) -> Packet:
    """Parse and verify one complete packet; raises B3MError on bad framing or checksum."""
    if len(packet) < MIN_PACKET:
        raise B3MShortReply(f"B3M packet of {len(packet)} bytes, at least {MIN_PACKET} expected")
    if packet[0] != len(packet):
        raise B3MShortReply(f"B3M packet SIZE byte {packet[0]} but {len(packet)} bytes received")
    if checksum(packet[:-1]) != packet[-1]:
        raise B3MChecksumError(
            f"B3M checksum mismatch from id {packet[3]}: SUM {packet[-1]:#04x}, "
            f"computed {checksum(packet[:-1]):#04x}"
        )
    return Packet(packet[1], packet[2], packet[3], bytes(packet[4:-1]))


def read_request(servo_id: int, address: int, length: int) -> bytes:
    if not 1 <= length <= 0xFF - MIN_PACKET or not 0 <= address < MEMORY_SIZE:
        raise ValueError(f"B3M read of {length} bytes at {address:#x} is out of range")
    return encode(Command.READ, StatusOption.ERROR, servo_id, bytes([address, length]))


def write_request(servo_id: int, address: int, data: bytes) -> bytes:
    if not data or not 0 <= address < MEMORY_SIZE:
        raise ValueError(f"B3M write of {len(data)} bytes at {address:#x} is out of range")
    return encode(Command.WRITE, StatusOption.ERROR, servo_id, bytes(data) + bytes([address, 1]))


def multi_write_request(address: int, items: Sequence[tuple[int, bytes]]) -> bytes:
    """One WRITE of the same register block on several servos (no reply)."""
    if not items:
        raise ValueError("B3M multi-write needs at least one (id, data) pair")
    length = len(items[0][1])
    if length == 0 or any(len(data) != length for _, data in items):
        raise ValueError("B3M multi-write: every servo's data must have the same, non-zero size")
    for servo_id, _ in items:
        _check_id(servo_id)
    groups = b"".join(bytes([servo_id]) + bytes(data) for servo_id, data in items)
    first, rest = groups[0], groups[1:]
    return encode(Command.WRITE, StatusOption.ERROR, first, rest + bytes([address, len(items)]))


def position_request(servo_id: int, centidegrees: int, time_ms: int = 0) -> bytes:
    check_position(centidegrees)
    if not 0 <= time_ms <= 0xFFFF:
        raise ValueError(f"B3M position time must be 0..65535 ms, got {time_ms}")
    return encode(
        Command.POSITION, StatusOption.ERROR, servo_id, struct.pack("<hH", centidegrees, time_ms)
    )


def reset_request(servo_id: int, delay: int = 0) -> bytes:
    if not 0 <= delay <= 0xFF:
        raise ValueError(f"B3M reset delay must be 0..255, got {delay}")
    return encode(Command.RESET, StatusOption.ERROR, servo_id, bytes([delay]))


def check_position(centidegrees: int) -> None:
    if not -POSITION_LIMIT <= centidegrees <= POSITION_LIMIT:
        raise ValueError(f"B3M position {centidegrees} outside +-{POSITION_LIMIT} (0.01 deg)")


def radians_to_centidegrees(angle: float) -> int:
    """Angle (rad) -> B3M position units (0.01 deg), rounded; ValueError outside the range."""
    if not math.isfinite(angle):
        raise ValueError(f"B3M position must be finite, got {angle}")
    value = round(math.degrees(angle) * 100.0)
    check_position(value)
    return value


def centidegrees_to_radians(value: int) -> float:
    return math.radians(value / 100.0)


@dataclass(frozen=True)
class Motion:
    """Measured position (rad) and velocity (rad/s) of one servo, and its error status byte."""

    position: float
    velocity: float
    status: int


@dataclass(frozen=True)
class Telemetry:
    """Temperatures (degC), current (A; signed, as the firmware reports it), voltage (V)."""

    mcu_temperature: float
    motor_temperature: float
    current: float
    voltage: float
    status: int


class B3MBus:
    """Transactions with the servos of one half-duplex bus; ``echo``: the transceiver echoes
    every transmitted byte back (many USB/RS-485 adaptors do), which is read and discarded.

    ``counters`` count timeouts, short replies, checksum errors and mismatches per kind.
    """

    def __init__(self, port: SerialPort, echo: bool = False) -> None:
        self.port = port
        self.echo = echo
        self.counters: Counter[str] = Counter()

    def send(self, request: bytes) -> None:
        """Write a request that has no reply (multi-write, reset, broadcast)."""
        try:
            self.port.reset_input_buffer()
            self.port.write(request)
            if self.echo:
                self.port.read(len(request))
        except PORT_ERRORS as error:
            raise self._port_failed(request, error) from error

    def _port_failed(self, request: bytes, error: BaseException) -> B3MPortError:
        self.counters["port_errors"] += 1
        return B3MPortError(f"B3M id {request[3]}: serial port failed: {error}")

    def transact(self, request: bytes, reply_data: int) -> Packet:
        """Send ``request`` and read its reply of ``reply_data`` data bytes (verified)."""
        servo_id, command = request[3], request[1]
        self.send(request)
        expected = MIN_PACKET + reply_data
        try:
            reply = self.port.read(expected)
        except PORT_ERRORS as error:
            raise self._port_failed(request, error) from error
        if len(reply) == 0:
            self.counters["timeouts"] += 1
            raise B3MTimeout(f"B3M id {servo_id}: no reply to command {command:#04x}")
        if len(reply) < expected or reply[0] != expected:
            self.counters["short_replies"] += 1
            raise B3MShortReply(
                f"B3M id {servo_id}: reply of {len(reply)} bytes (SIZE {reply[0]}) to command "
                f"{command:#04x}, {expected} expected"
            )
        try:
            packet = decode(reply)
        except B3MChecksumError:
            self.counters["checksum_errors"] += 1
            raise
        if packet.command != command | REPLY_FLAG or packet.servo_id != servo_id:
            self.counters["mismatches"] += 1
            raise B3MReplyMismatch(
                f"B3M id {servo_id}: reply from id {packet.servo_id} to command "
                f"{packet.command:#04x}, expected {command | REPLY_FLAG:#04x}"
            )
        return packet

    def read(self, servo_id: int, address: int, length: int) -> tuple[bytes, int]:
        """``length`` bytes of memory from ``address``, and the error status."""
        packet = self.transact(read_request(servo_id, address, length), length)
        return packet.data, packet.option

    def write(self, servo_id: int, address: int, data: bytes) -> int:
        """Write ``data`` at ``address``; returns the error status."""
        return self.transact(write_request(servo_id, address, data), 0).option

    def write_many(self, address: int, items: Sequence[tuple[int, bytes]]) -> None:
        """One register block on several servos; a single servo's write is an ordinary WRITE
        (the servo replies to it, so its reply is read)."""
        if len(items) == 1:
            self.write(items[0][0], address, items[0][1])
            return
        self.send(multi_write_request(address, items))

    def position(self, servo_id: int, angle: float, time_ms: int = 0) -> float:
        """Command a position (rad) reached in ``time_ms``; returns the current position (rad)."""
        request = position_request(servo_id, radians_to_centidegrees(angle), time_ms)
        packet = self.transact(request, 2)
        return centidegrees_to_radians(struct.unpack("<h", packet.data)[0])

    def reset(self, servo_id: int, delay: int = 0) -> None:
        self.send(reset_request(servo_id, delay))

    def set_run_mode(self, servo_id: int, mode: RunMode) -> int:
        """Run mode with position control; returns the error status."""
        return self.write(servo_id, SERVO_MODE, bytes([int(mode)]))

    def set_desired_positions(self, targets: Sequence[tuple[int, float]]) -> None:
        """Desired position (rad) of several servos in one multi-write (no reply)."""
        items = [
            (servo_id, struct.pack("<h", radians_to_centidegrees(angle)))
            for servo_id, angle in targets
        ]
        self.write_many(DESIRED_POSITION, items)

    def read_motion(self, servo_id: int) -> Motion:
        data, status = self.read(servo_id, *MOTION_BLOCK)
        position, _, _, velocity = struct.unpack("<hhhh", data)
        return Motion(centidegrees_to_radians(position), centidegrees_to_radians(velocity), status)

    def read_telemetry(self, servo_id: int) -> Telemetry:
        data, status = self.read(servo_id, *TELEMETRY_BLOCK)
        mcu, motor, current, voltage = struct.unpack("<hhhH", data)
        return Telemetry(mcu / 100.0, motor / 100.0, current / 1000.0, voltage / 1000.0, status)
