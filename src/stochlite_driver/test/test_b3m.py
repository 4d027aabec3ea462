"""B3M protocol: framing, and transactions against a simulated bus of 12 servos on a pty."""

import math
import struct
import time
from collections.abc import Iterator

import pytest
import serial

from stochlite_driver.b3m import (
    CURRENT_POSITION,
    DESIRED_POSITION,
    SERVO_MODE,
    B3MBus,
    B3MChecksumError,
    B3MPortError,
    B3MShortReply,
    B3MTimeout,
    Command,
    RunMode,
    checksum,
    decode,
    encode,
    multi_write_request,
    position_request,
    radians_to_centidegrees,
    read_request,
    reset_request,
    write_request,
)
from stochlite_driver.b3m_sim import SimulatedB3MBus
from stochlite_driver.robot import SERVO_IDS

TIMEOUT = 0.25  # s, serial read timeout (generous: the simulated bus shares a busy CPU)


@pytest.fixture
def bus() -> Iterator[tuple[B3MBus, SimulatedB3MBus]]:
    sim = SimulatedB3MBus(SERVO_IDS)
    port = serial.Serial(sim.port_name, 1_500_000, timeout=TIMEOUT)
    yield B3MBus(port), sim
    port.close()
    sim.close()


def test_servo_ids_are_leg_times_ten_plus_joint() -> None:
    assert SERVO_IDS == (11, 12, 13, 21, 22, 23, 31, 32, 33, 41, 42, 43)


def test_framing_size_and_sum() -> None:
    packet = read_request(11, CURRENT_POSITION, 2)
    assert packet == bytes([7, Command.READ, 0, 11, CURRENT_POSITION, 2, checksum(packet[:-1])])
    assert packet[-1] == (7 + 3 + 0 + 11 + 0x2C + 2) & 0xFF
    write = write_request(21, SERVO_MODE, bytes([RunMode.HOLD]))
    assert write[0] == len(write) == 8 and write[-3:-1] == bytes([SERVO_MODE, 1])
    position = position_request(43, -9000, 20)
    assert position[0] == 9 and struct.unpack("<hH", position[4:8]) == (-9000, 20)
    assert reset_request(12)[:5] == bytes([6, Command.RESET, 0, 12, 0])
    multi = multi_write_request(DESIRED_POSITION, [(11, b"\x01\x02"), (12, b"\x03\x04")])
    assert multi[0] == len(multi) == 6 + 2 * 3 and multi[3] == 11 and multi[-2] == 2
    assert decode(encode(0x83, 0, 11, b"\x10\x20")).data == b"\x10\x20"


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="outside"):
        radians_to_centidegrees(math.radians(321.0))
    with pytest.raises(ValueError, match="finite"):
        radians_to_centidegrees(float("nan"))
    with pytest.raises(ValueError, match="servo id"):
        read_request(256, 0x2C, 2)
    with pytest.raises(ValueError, match="same"):
        multi_write_request(DESIRED_POSITION, [(11, b"\x01\x02"), (12, b"\x03")])


def test_decode_rejects_bad_checksum_and_truncation() -> None:
    good = encode(0x84, 0, 11)
    with pytest.raises(B3MChecksumError, match="checksum"):
        decode(good[:-1] + bytes([good[-1] ^ 0xFF]))
    with pytest.raises(B3MShortReply, match="SIZE"):
        decode(good[:-1] + b"\x00" + good[-1:])


def test_read_write_round_trip_on_every_servo(bus: tuple[B3MBus, SimulatedB3MBus]) -> None:
    host, sim = bus
    for servo_id in SERVO_IDS:
        assert host.write(servo_id, DESIRED_POSITION, struct.pack("<h", servo_id * 10)) == 0
        data, status = host.read(servo_id, DESIRED_POSITION, 2)
        assert struct.unpack("<h", data)[0] == servo_id * 10 and status == 0


def test_modes_and_position_control(bus: tuple[B3MBus, SimulatedB3MBus]) -> None:
    host, sim = bus
    assert sim.state(22)[1] == RunMode.FREE
    host.set_run_mode(22, RunMode.NORMAL)
    host.position(22, 0.3)
    deadline = time.monotonic() + 2.0
    while abs(host.read_motion(22).position - 0.3) > 1e-3 and time.monotonic() < deadline:
        time.sleep(0.01)
    motion = host.read_motion(22)
    assert motion.position == pytest.approx(0.3, abs=2e-4)  # 0.01 deg resolution
    host.set_run_mode(22, RunMode.HOLD)
    host.position(22, -0.3)  # a held servo keeps its position
    time.sleep(0.05)
    assert host.read_motion(22).position == pytest.approx(0.3, abs=2e-4)
    host.set_run_mode(22, RunMode.FREE)
    sim.push(22, -0.5)  # a limp servo follows the load
    assert host.position(22, 0.0) == pytest.approx(-0.5, abs=2e-4)
    assert sim.state(22)[1] == RunMode.FREE


def test_multi_write_sets_every_servo_without_reply(bus: tuple[B3MBus, SimulatedB3MBus]) -> None:
    host, sim = bus
    targets = [(servo_id, 0.01 * i) for i, servo_id in enumerate(SERVO_IDS)]
    host.set_desired_positions(targets)
    for servo_id, angle in targets:
        data, _ = host.read(servo_id, DESIRED_POSITION, 2)
        assert struct.unpack("<h", data)[0] == radians_to_centidegrees(angle)


def test_telemetry_units(bus: tuple[B3MBus, SimulatedB3MBus]) -> None:
    host, sim = bus
    sim.set_temperature(31, 61.5)
    telemetry = host.read_telemetry(31)
    assert telemetry.motor_temperature == pytest.approx(61.5)
    assert telemetry.voltage == pytest.approx(11.1)
    assert telemetry.current == 0.0  # limp


def test_faults_are_clear_errors_and_counted(bus: tuple[B3MBus, SimulatedB3MBus]) -> None:
    host, sim = bus
    sim.inject(12, "bad_checksum")
    with pytest.raises(B3MChecksumError, match="id 12"):
        host.read_motion(12)
    sim.inject(12, "short")
    with pytest.raises(B3MShortReply, match="id 12"):
        host.read_motion(12)
    sim.inject(12, "silent")
    with pytest.raises(B3MTimeout, match="id 12"):
        host.read_motion(12)
    with pytest.raises(B3MTimeout, match="id 99"):
        host.read_motion(99)  # nobody on the bus answers id 99
    assert host.counters == {"checksum_errors": 1, "short_replies": 1, "timeouts": 2}
    assert host.read_motion(12).status == 0  # the bus recovers on the next transaction


def test_a_vanished_port_is_a_b3m_error_not_a_serial_exception() -> None:
    sim = SimulatedB3MBus([11, 12])
    port = serial.Serial(sim.port_name, 1_500_000, timeout=TIMEOUT)
    host = B3MBus(port)
    assert host.read_motion(11).status == 0
    sim.close()  # the device side goes away, as an unplugged adaptor does
    with pytest.raises(B3MPortError, match="id 11: serial port failed"):
        host.read_motion(11)
    with pytest.raises(B3MPortError):
        host.set_desired_positions([(11, 0.0), (12, 0.0)])
    assert host.counters["port_errors"] == 2
    port.close()


def test_reset_restarts_the_servo_limp(bus: tuple[B3MBus, SimulatedB3MBus]) -> None:
    host, sim = bus
    host.set_run_mode(41, RunMode.HOLD)
    host.reset(41)
    assert host.read(41, SERVO_MODE, 1)[0] == bytes([RunMode.FREE])
    assert sim.resets[41] == 1


def test_single_servo_target_reads_its_reply(bus: tuple[B3MBus, SimulatedB3MBus]) -> None:
    host, _ = bus
    host.set_desired_positions([(13, 0.2)])  # one id: an ordinary WRITE, which is answered
    data, _ = host.read(13, DESIRED_POSITION, 2)  # no stale reply left on the line
    assert struct.unpack("<h", data)[0] == radians_to_centidegrees(0.2)


class EchoingPort:
    """An adaptor that echoes every transmitted byte before the servo's reply."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.buffer = b""

    def write(self, data: bytes) -> int:
        self.buffer += bytes(data) + self.reply
        return len(data)

    def read(self, size: int = 1) -> bytes:
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def reset_input_buffer(self) -> None:
        self.buffer = b""


def test_echo_is_read_and_discarded() -> None:
    reply = encode(Command.POSITION | 0x80, 0, 21, struct.pack("<h", 1234))
    host = B3MBus(EchoingPort(reply), echo=True)
    assert host.position(21, 0.0) == pytest.approx(math.radians(12.34))
    with pytest.raises(B3MShortReply):
        B3MBus(EchoingPort(reply), echo=False).position(21, 0.0)  # the echo is not a reply
