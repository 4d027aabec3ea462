"""A test double of MIT-protocol motor firmware on a python-can bus (usually ``virtual``).

Each simulated motor answers like the firmware: special frames switch motor mode or re-zero the
encoder, a command frame (only obeyed in motor mode) sets the impedance law, and every frame sent
to the motor's id is answered with a 6-byte reply (id, position, velocity, torque). Between
frames the joint integrates ``J qdd = tau - b qd`` with semi-implicit Euler sub-steps over the
elapsed time, so a commanded torque moves the joint in its direction.

python-can's virtual bus is in-process only: the firmware must live in the process that drives
it (the motor driver node can spawn it with ``simulate_motors: true``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import can

from leg2r_driver.mit_protocol import (
    SPECIAL_FRAMES,
    ZERO_TORQUE,
    MotorCommand,
    MotorRanges,
    MotorReply,
    commanded_torque,
    pack_reply,
    unpack_command,
)

MAX_INTEGRATION_STEP = 0.0005  # s; keeps kd/J * dt well inside the stable range
MAX_ELAPSED = 0.05  # s; a long silence is not integrated in one go (the joint is at rest anyway)


@dataclass
class SimulatedJoint:
    """Firmware state of one motor plus its (very simple) load."""

    can_id: int
    ranges: MotorRanges = field(default_factory=MotorRanges)
    inertia: float = 0.01  # kg*m^2 at the output
    viscous_friction: float = 0.05  # N*m*s/rad
    position: float = 0.0  # rad, relative to the encoder zero
    velocity: float = 0.0
    motor_mode: bool = False
    command: MotorCommand = ZERO_TORQUE
    applied_torque: float = 0.0
    frames_received: int = 0

    def integrate(self, elapsed: float) -> None:
        """Advance the joint by ``elapsed`` seconds under the current command."""
        remaining = min(max(elapsed, 0.0), MAX_ELAPSED)
        while remaining > 1e-9:
            dt = min(MAX_INTEGRATION_STEP, remaining)
            tau = self.current_torque()
            self.velocity += dt * (tau - self.viscous_friction * self.velocity) / self.inertia
            self.position += dt * self.velocity
            remaining -= dt

    def current_torque(self) -> float:
        """Torque the firmware applies now (zero outside motor mode), saturated to its range."""
        if not self.motor_mode:
            self.applied_torque = 0.0
            return 0.0
        tau = commanded_torque(self.command, self.position, self.velocity)
        limit = self.ranges.torque_max
        self.applied_torque = min(max(tau, -limit), limit)
        return self.applied_torque


class SimulatedMotorFirmware:
    """Runs simulated motors on ``bus`` in a background thread; call :meth:`close` when done.

    ``silent_ids`` can be changed at run time to simulate motors that stop replying.
    ``realtime_priority`` > 0 serves under SCHED_FIFO (refusal ignored): real motors do not share
    the host's CPU, so a simulated one must not go silent when the driver's process is starved.
    """

    def __init__(
        self,
        bus: can.BusABC,
        joints: Sequence[SimulatedJoint],
        clock: Callable[[], float] = time.monotonic,
        realtime_priority: int = 0,
    ) -> None:
        ids = [joint.can_id for joint in joints]
        if len(set(ids)) != len(ids):
            raise ValueError(f"simulated motors need distinct CAN ids, got {ids}")
        self._bus = bus
        self._clock = clock
        self._joints = {joint.can_id: joint for joint in joints}
        self._lock = threading.Lock()
        self._last_update = clock()
        self._stop = threading.Event()
        self.silent_ids: set[int] = set()
        self._priority = realtime_priority
        self._thread = threading.Thread(target=self._serve, name="simulated-motors", daemon=True)
        self._thread.start()

    @classmethod
    def on_virtual_channel(
        cls, channel: str, joints: Sequence[SimulatedJoint], realtime_priority: int = 0
    ) -> SimulatedMotorFirmware:
        """Convenience: open an in-process virtual bus on ``channel`` and serve it."""
        bus = can.Bus(interface="virtual", channel=channel)
        return cls(bus, joints, realtime_priority=realtime_priority)

    def joint(self, can_id: int) -> SimulatedJoint:
        """A snapshot copy of one motor's state (thread-safe)."""
        with self._lock:
            self._advance()
            source = self._joints[can_id]
            return SimulatedJoint(**{k: getattr(source, k) for k in source.__dataclass_fields__})

    def _advance(self) -> None:
        now = self._clock()
        for joint in self._joints.values():
            joint.integrate(now - self._last_update)
        self._last_update = now

    def _serve(self) -> None:
        if self._priority > 0:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self._priority))
        while not self._stop.is_set():
            try:
                message = self._bus.recv(timeout=0.05)
            except can.CanError:
                continue
            if message is None or message.is_extended_id:
                continue
            reply = self._handle(message.arbitration_id, bytes(message.data))
            if reply is not None:
                try:
                    self._bus.send(can.Message(arbitration_id=0, data=reply, is_extended_id=False))
                except can.CanError:
                    continue

    def _handle(self, can_id: int, data: bytes) -> bytes | None:
        with self._lock:
            joint = self._joints.get(can_id)
            if joint is None or len(data) != 8:
                return None
            self._advance()
            joint.frames_received += 1
            special = SPECIAL_FRAMES.get(data)
            if special == "enter":
                joint.motor_mode = True
                joint.command = ZERO_TORQUE
            elif special == "exit":
                joint.motor_mode = False
                joint.command = ZERO_TORQUE
            elif special == "zero":
                joint.position = 0.0
            elif joint.motor_mode:
                joint.command = unpack_command(data, joint.ranges)
            tau = joint.current_torque()
            if can_id in self.silent_ids:
                return None
            reply = MotorReply(can_id, joint.position, joint.velocity, tau)
            return pack_reply(reply, joint.ranges)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        self._bus.shutdown()
