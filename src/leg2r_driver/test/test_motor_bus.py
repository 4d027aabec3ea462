"""MotorBus against the simulated firmware on a python-can virtual bus (no ROS)."""

import uuid
from collections.abc import Iterator

import can
import numpy as np
import pytest

from leg2r_driver.mit_protocol import TORQUE_BITS, MotorRanges, resolution
from leg2r_driver.motor_bus import MotorBus, MotorSpec
from leg2r_driver.safety import SafetyConfig, SafetyGate
from leg2r_driver.simulated_motor import SimulatedJoint, SimulatedMotorFirmware

RANGES = MotorRanges()


@pytest.fixture
def rig() -> Iterator[tuple[MotorBus, SimulatedMotorFirmware]]:
    channel = f"motor-bus-{uuid.uuid4().hex}"
    firmware = SimulatedMotorFirmware.on_virtual_channel(
        channel, [SimulatedJoint(can_id=1, ranges=RANGES), SimulatedJoint(can_id=2, ranges=RANGES)]
    )
    bus = MotorBus(
        can.Bus(interface="virtual", channel=channel),
        [MotorSpec("hip", 1, RANGES), MotorSpec("knee", 2, RANGES, direction=-1.0)],
        reply_timeout=0.05,
    )
    yield bus, firmware
    bus.shutdown()
    firmware.close()


def test_enter_and_exit_motor_mode(rig: tuple[MotorBus, SimulatedMotorFirmware]) -> None:
    bus, firmware = rig
    measurement = bus.enter_motor_mode()
    assert measurement.fresh.all()
    assert firmware.joint(1).motor_mode and firmware.joint(2).motor_mode
    bus.exit_motor_mode()
    assert not firmware.joint(1).motor_mode


def test_joint_follows_commanded_torque_direction(
    rig: tuple[MotorBus, SimulatedMotorFirmware],
) -> None:
    bus, firmware = rig
    bus.enter_motor_mode()
    start = bus.exchange(np.zeros(2), np.zeros(2))
    for _ in range(100):
        measurement = bus.exchange(np.array([0.5, 0.5]), np.zeros(2))
    assert measurement.fresh.all()
    # Positive joint torque moves both joints positively; the knee motor is mounted reversed.
    assert measurement.position[0] > start.position[0] + 1e-3
    assert measurement.position[1] > start.position[1] + 1e-3
    assert measurement.velocity[0] > 0 and measurement.velocity[1] > 0
    assert firmware.joint(2).position < 0  # the motor itself turned the other way
    np.testing.assert_allclose(measurement.torque, [0.5, 0.5], atol=0.01)


def test_commands_outside_motor_mode_are_ignored(
    rig: tuple[MotorBus, SimulatedMotorFirmware],
) -> None:
    bus, firmware = rig
    for _ in range(20):
        measurement = bus.exchange(np.array([1.0, 1.0]), np.zeros(2))
    assert np.all(measurement.torque == pytest.approx(0.0, abs=0.01))
    assert firmware.joint(1).velocity == 0.0


def test_silent_motor_counts_timeouts_and_keeps_last_state(
    rig: tuple[MotorBus, SimulatedMotorFirmware],
) -> None:
    bus, firmware = rig
    bus.enter_motor_mode()
    bus.reply_timeout = 0.005
    firmware.silent_ids.add(2)
    measurement = bus.exchange(np.zeros(2), np.zeros(2))
    assert measurement.fresh.tolist() == [True, False]
    assert bus.counters["reply_timeouts"] == 1
    for _ in range(3):
        bus.exchange(np.zeros(2), np.zeros(2))
    assert bus.consecutive_misses.tolist() == [0, 4]
    firmware.silent_ids.clear()
    bus.exchange(np.zeros(2), np.zeros(2))
    assert bus.consecutive_misses.tolist() == [0, 0]


def test_motors_count_as_silent_while_their_commands_cannot_be_sent(
    rig: tuple[MotorBus, SimulatedMotorFirmware], monkeypatch: pytest.MonkeyPatch
) -> None:
    bus, _ = rig
    bus.enter_motor_mode()

    def bus_off(message: can.Message, timeout: float | None = None) -> None:
        raise can.CanOperationError("bus off")

    monkeypatch.setattr(bus._bus, "send", bus_off)
    for _ in range(3):
        measurement = bus.exchange(np.zeros(2), np.zeros(2))
    assert measurement.fresh.tolist() == [False, False]
    assert bus.consecutive_misses.tolist() == [3, 3]
    assert bus.counters["bus_errors"] == 6 and "bus off" in bus.last_error
    monkeypatch.undo()
    bus.exchange(np.zeros(2), np.zeros(2))
    assert bus.consecutive_misses.tolist() == [0, 0]


def test_safety_gate_watchdog_zeroes_the_motor(
    rig: tuple[MotorBus, SimulatedMotorFirmware],
) -> None:
    bus, firmware = rig
    now = [0.0]
    gate = SafetyGate(
        SafetyConfig(("hip", "knee"), (2.0, 2.0), (-10.0, -10.0), (10.0, 10.0)), lambda: now[0]
    )
    bus.enter_motor_mode()
    gate.submit(["hip", "knee"], [1.0, -1.0], stamp_age=0.0)
    measurement = bus.exchange(np.zeros(2), np.zeros(2))
    out = gate.output(measurement.position, measurement.velocity)
    bus.exchange(out.torque, out.damping)
    assert firmware.joint(1).applied_torque == pytest.approx(1.0, abs=0.01)
    now[0] += 0.011
    out = gate.output(measurement.position, measurement.velocity)
    bus.exchange(out.torque, out.damping)
    # Zero is not a code of the symmetric 12-bit field: "zero" is within half a step of it.
    half_step = resolution(-RANGES.torque_max, RANGES.torque_max, TORQUE_BITS) / 2
    assert abs(firmware.joint(1).applied_torque) <= half_step + 1e-12
    assert abs(firmware.joint(2).applied_torque) <= half_step + 1e-12


def test_motor_spec_validation() -> None:
    with pytest.raises(ValueError, match="can_id"):
        MotorSpec("hip", 0, RANGES)
    with pytest.raises(ValueError, match="direction"):
        MotorSpec("hip", 1, RANGES, direction=2.0)
