"""Host side of the MIT protocol over python-can: N motors on one bus, one exchange per tick.

Each :meth:`MotorBus.exchange` sends one command frame per motor, then collects the replies until
all motors answered or ``reply_timeout`` passed. Missing replies, send errors, malformed frames
and replies from unknown ids are counted (for ``/diagnostics``), never raised: the control loop
must keep running and the safety layer decides what to do with a motor that went quiet.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import can
import numpy as np

from leg2r_driver.mit_protocol import (
    ENTER_MOTOR_MODE,
    EXIT_MOTOR_MODE,
    SET_ZERO_POSITION,
    MotorCommand,
    MotorRanges,
    MotorReply,
    pack_command,
    unpack_reply,
)

SPECIAL_REPLY_TIMEOUT = 0.02  # s; mode changes are rare, so wait for every motor to confirm


@dataclass(frozen=True)
class MotorSpec:
    """One joint's motor: CAN id, encoding ranges, and the sign from motor to joint frame."""

    joint_name: str
    can_id: int
    ranges: MotorRanges
    direction: float = 1.0  # +1 or -1

    def __post_init__(self) -> None:
        if not 0 < self.can_id < 0x7FF:
            raise ValueError(f"MotorSpec {self.joint_name}: can_id {self.can_id} not in 1..0x7FE")
        if self.direction not in (1.0, -1.0):
            raise ValueError(f"MotorSpec {self.joint_name}: direction must be +1 or -1")


@dataclass(frozen=True)
class JointMeasurement:
    """Joint-frame state from the latest replies, arrays [N]; ``fresh`` marks this tick's replies."""

    position: np.ndarray
    velocity: np.ndarray
    torque: np.ndarray
    fresh: np.ndarray  # bool [N]


class MotorBus:
    """Commands N motors on one python-can bus (SocketCAN on the robot, virtual in tests)."""

    def __init__(
        self,
        bus: can.BusABC,
        motors: Sequence[MotorSpec],
        reply_timeout: float = 0.001,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        ids = [m.can_id for m in motors]
        if not motors or len(set(ids)) != len(ids):
            raise ValueError(f"MotorBus needs at least one motor and distinct CAN ids, got {ids}")
        self._bus = bus
        self.motors = tuple(motors)
        self.reply_timeout = reply_timeout
        self._clock = clock
        self._slot = {m.can_id: i for i, m in enumerate(self.motors)}
        n = len(self.motors)
        self._position = np.zeros(n)
        self._velocity = np.zeros(n)
        self._torque = np.zeros(n)
        self.counters: Counter[str] = Counter()
        # Ticks since each motor last answered (late answers count): a silent motor is a fault.
        self.consecutive_misses = np.zeros(n, dtype=np.int64)
        self.last_error = ""

    def _send(self, can_id: int, data: bytes) -> bool:
        try:
            self._bus.send(can.Message(arbitration_id=can_id, data=data, is_extended_id=False))
        except can.CanError as error:
            self.counters["bus_errors"] += 1
            self.last_error = str(error)
            return False
        return True

    def _broadcast(self, frame: bytes) -> JointMeasurement:
        self._drain()
        sent = [m.can_id for m in self.motors if self._send(m.can_id, frame)]
        return self._collect(sent, max(self.reply_timeout, SPECIAL_REPLY_TIMEOUT))

    def enter_motor_mode(self) -> JointMeasurement:
        return self._broadcast(ENTER_MOTOR_MODE)

    def exit_motor_mode(self) -> JointMeasurement:
        return self._broadcast(EXIT_MOTOR_MODE)

    def set_zero(self) -> JointMeasurement:
        """Make the current positions the encoder zero (firmware needs ~1.5 s afterwards)."""
        return self._broadcast(SET_ZERO_POSITION)

    def exchange(self, torque: np.ndarray, damping: np.ndarray) -> JointMeasurement:
        """Send tau_ff [N] (joint frame, N*m) and kd [N]; returns the replies gathered this tick."""
        self._drain()
        sent = []
        for i, motor in enumerate(self.motors):
            command = MotorCommand(kd=float(damping[i]), torque=motor.direction * float(torque[i]))
            if self._send(motor.can_id, pack_command(command, motor.ranges)):
                sent.append(motor.can_id)
        self.counters["frames_sent"] += len(sent)
        measurement = self._collect(sent)
        # A motor whose command could not be sent (bus off, adaptor gone) did not answer either.
        for i, motor in enumerate(self.motors):
            if motor.can_id not in sent:
                self.consecutive_misses[i] += 1
        return measurement

    def _drain(self) -> None:
        """Absorb replies that arrived after the previous tick's timeout (counted as late).

        Without this a late reply would be taken for an answer to the next command.
        """
        while True:
            try:
                message = self._bus.recv(timeout=0.0)
            except can.CanError as error:
                self.counters["bus_errors"] += 1
                self.last_error = str(error)
                return
            if message is None:
                return
            reply = self._decode(message)
            if reply is not None:
                self._store(reply)
                self.counters["late_replies"] += 1

    def _store(self, reply: MotorReply) -> int:
        slot = self._slot[reply.motor_id]
        self.consecutive_misses[slot] = 0
        direction = self.motors[slot].direction
        self._position[slot] = direction * reply.position
        self._velocity[slot] = direction * reply.velocity
        self._torque[slot] = direction * reply.torque
        return slot

    def _collect(self, expected_ids: list[int], timeout: float | None = None) -> JointMeasurement:
        fresh = np.zeros(len(self.motors), dtype=bool)
        waiting = set(expected_ids)
        deadline = self._clock() + (self.reply_timeout if timeout is None else timeout)
        while waiting:
            remaining = deadline - self._clock()
            if remaining <= 0.0:
                break
            try:
                message = self._bus.recv(timeout=remaining)
            except can.CanError as error:
                self.counters["bus_errors"] += 1
                self.last_error = str(error)
                continue
            if message is None:
                break
            reply = self._decode(message)
            if reply is None:
                continue
            fresh[self._store(reply)] = True
            waiting.discard(reply.motor_id)
        self.counters["reply_timeouts"] += len(waiting)
        for motor_id in waiting:
            self.consecutive_misses[self._slot[motor_id]] += 1
        return JointMeasurement(
            self._position.copy(), self._velocity.copy(), self._torque.copy(), fresh
        )

    def _decode(self, message: can.Message) -> MotorReply | None:
        if message.is_error_frame:
            self.counters["error_frames"] += 1
            return None
        if len(message.data) != 6:
            self.counters["malformed_frames"] += 1
            return None
        motor_id = message.data[0]
        if motor_id not in self._slot:
            self.counters["unknown_replies"] += 1
            return None
        return unpack_reply(bytes(message.data), self.motors[self._slot[motor_id]].ranges)

    def shutdown(self) -> None:
        self._bus.shutdown()
