"""One servo-loop tick of the StochLite's B3M bus, without ROS.

Per tick (:meth:`ServoDriverCore.tick`): the safety layer's output for the last measured
positions decides the run mode; a servo whose mode differs from the wanted one gets a mode write
(entering NORMAL, its desired position is first set to where it is, so it does not jump); in
NORMAL one multi-write sends all 12 targets (no reply, the cheapest way to address the bus);
then every servo's motion block (position and velocity) is read, and ``telemetry_per_tick``
servos, in turn, have their telemetry block (temperatures, current, voltage) read. At 1.5 Mbaud
one tick moves about 12 x 20 + 40 bytes, ~2 ms of wire time, inside a 5 ms period.

Joint angle = ``direction`` x servo angle + ``offset`` per joint (mounting). A servo that has not
answered ``max_missed_replies`` ticks in a row latches the e-stop (``bus: ...``); a single
failed reply keeps its last reading and is counted per servo. Until every servo's position
has been read once, all stay FREE (no ramp could start from an unknown position).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stochlite_driver.b3m import B3MBus, B3MError, RunMode
from stochlite_driver.servo_safety import ServoOutput, ServoPhase, ServoSafety


@dataclass(frozen=True)
class JointState12:
    """Measured joint positions (rad), velocities (rad/s) and currents (A), each [N]."""

    position: np.ndarray
    velocity: np.ndarray
    current: np.ndarray


class ServoDriverCore:
    """Drives the servos ``servo_ids`` (ordered like the safety layer's joints)."""

    def __init__(
        self,
        bus: B3MBus,
        safety: ServoSafety,
        servo_ids: Sequence[int],
        directions: Sequence[float] | None = None,
        offsets: Sequence[float] | None = None,
        telemetry_per_tick: int = 1,
        max_missed_replies: int = 20,
    ) -> None:
        n = safety.config.num_joints
        if len(servo_ids) != n:
            raise ValueError(f"servo_ids has {len(servo_ids)} entries, the joints are {n}")
        self.directions = np.ones(n) if directions is None else np.asarray(directions, float)
        self.offsets = np.zeros(n) if offsets is None else np.asarray(offsets, float)
        if self.directions.shape != (n,) or not np.all(np.abs(self.directions) == 1.0):
            raise ValueError(f"directions must be {n} values of +1 or -1, got {directions}")
        if self.offsets.shape != (n,) or not np.all(np.isfinite(self.offsets)):
            raise ValueError(f"offsets must be {n} finite values, got {offsets}")
        if not 0 <= telemetry_per_tick <= n or max_missed_replies < 1:
            raise ValueError("telemetry_per_tick must be in 0..N and max_missed_replies >= 1")
        self.bus = bus
        self.safety = safety
        self.servo_ids = list(servo_ids)
        self.telemetry_per_tick = telemetry_per_tick
        self.max_missed_replies = max_missed_replies
        self.position = np.full(n, np.nan)
        self.velocity = np.zeros(n)
        self.current = np.full(n, np.nan)
        self.temperature = np.full(n, np.nan)
        self.voltage = np.full(n, np.nan)
        self.status = np.zeros(n, dtype=np.int64)  # last error status byte per servo
        self.missed = np.zeros(n, dtype=np.int64)  # consecutive ticks without a reply
        self.errors: list[Counter[str]] = [Counter() for _ in range(n)]
        self.modes: list[RunMode | None] = [None] * n  # None: unknown, (re)write it
        self.last_output: ServoOutput | None = None
        self.unknown_position_ticks = 0
        self._telemetry_next = 0

    def to_servo(self, joints: np.ndarray) -> np.ndarray:
        return (np.asarray(joints) - self.offsets) * self.directions

    def to_joint(self, servo_angles: np.ndarray) -> np.ndarray:
        return self.directions * np.asarray(servo_angles) + self.offsets

    def start(self) -> None:
        """Read every servo once and put them FREE (so the first tick knows where they are)."""
        for i in range(len(self.servo_ids)):
            self._set_mode(i, RunMode.FREE, self.position)
        self._read_motion()

    def stop(self) -> None:
        """Leave every servo FREE (limp), on shutdown."""
        for i in range(len(self.servo_ids)):
            self._set_mode(i, RunMode.FREE, self.position)

    def tick(self) -> JointState12:
        measured = self.position.copy()
        if np.any(np.isnan(measured)):
            # A servo never read: no ramp can start from its position, so all stay limp.
            self.unknown_position_ticks += 1
            output = ServoOutput(ServoPhase.WAITING, RunMode.FREE, None)
        else:
            output = self.safety.output(measured)
        self.last_output = output
        for i in range(len(self.servo_ids)):
            if self.modes[i] is not output.run_mode:
                self._set_mode(i, output.run_mode, measured)
        if output.targets is not None:
            servo_targets = self.to_servo(output.targets)
            try:
                self.bus.set_desired_positions(
                    list(zip(self.servo_ids, servo_targets, strict=True))
                )
            except B3MError as error:  # the port failed: the reads below count the misses
                for i in range(len(self.servo_ids)):
                    self._failed(i, error)
        self._read_motion()
        self._read_telemetry()
        self.safety.check_servos(self.temperature, self.current)
        self.safety.check_attitude()
        return JointState12(self.position.copy(), self.velocity.copy(), self.current.copy())

    def _set_mode(self, i: int, mode: RunMode, measured: np.ndarray) -> None:
        servo_id = self.servo_ids[i]
        try:
            if mode is RunMode.NORMAL and np.isfinite(measured[i]):
                self.bus.set_desired_positions([(servo_id, float(self.to_servo(measured)[i]))])
            self.status[i] = self.bus.set_run_mode(servo_id, mode)
            self.modes[i] = mode
        except B3MError as error:
            # Only the reply may have been lost: the servo may be in the new mode or the old
            # one, so the mode is unknown and written again next tick.
            self.modes[i] = None
            self._failed(i, error)

    def _read_motion(self) -> None:
        for i, servo_id in enumerate(self.servo_ids):
            try:
                motion = self.bus.read_motion(servo_id)
            except B3MError as error:
                self._failed(i, error)
                self._missed_reply(i, error)
                continue
            self.missed[i] = 0
            self.position[i] = self.directions[i] * motion.position + self.offsets[i]
            self.velocity[i] = self.directions[i] * motion.velocity
            self.status[i] = motion.status
            if motion.status:
                self.errors[i]["error_status_replies"] += 1

    def _read_telemetry(self) -> None:
        n = len(self.servo_ids)
        for _ in range(self.telemetry_per_tick):
            i = self._telemetry_next
            self._telemetry_next = (i + 1) % n
            try:
                telemetry = self.bus.read_telemetry(self.servo_ids[i])
            except B3MError as error:
                self._failed(i, error)
                continue
            self.temperature[i] = telemetry.motor_temperature
            self.current[i] = self.directions[i] * telemetry.current
            self.voltage[i] = telemetry.voltage

    def _failed(self, i: int, error: B3MError) -> None:
        self.errors[i][type(error).__name__] += 1

    def _missed_reply(self, i: int, error: B3MError) -> None:
        self.missed[i] += 1
        if self.missed[i] >= self.max_missed_replies:
            self.safety.latch_estop(
                f"bus: servo {self.servo_ids[i]} missed {self.missed[i]} replies ({error})"
            )
