"""The deployment posture state machine: passive -> stand up -> walk -> sit down (no ROS).

Commands (``std_msgs/String`` on ``/stochlite/posture_command``): ``stand``, ``walk``, ``sit``,
``passive``. States and what they send to the servos:

- ``passive``: nothing (the driver's watchdog holds, then relaxes the servos);
- ``standing_up`` / ``sitting_down``: a straight joint-space interpolation over ``duration`` s
  from where the joints were when the command came to the stand / sit pose; ``standing`` holds
  the stand pose; a finished sit-down becomes ``passive``;
- ``walking``: the gait controller's targets. ``walk`` is accepted only from ``standing``.
The soft attitude guard (:meth:`Posture.attitude`, deployment; ``sit_tilt`` 0 turns it off, as
in training, where a fall ends the episode instead): a tilt beyond ``sit_tilt`` while walking or
standing sits the robot down at once (the driver's harder limit relaxes it if that fails).
"""

from __future__ import annotations

import numpy as np

from mdemorl_core.envs.stochlite_gait import LEG_SIDES, StochLiteParams, leg_inverse_kinematics

POSTURE_TOPIC = "/stochlite/posture_command"
COMMANDS = ("passive", "stand", "walk", "sit")
STATES = ("passive", "standing_up", "standing", "walking", "sitting_down")
SIT_HEIGHT = 0.09  # m, hip to foot with the legs folded (the torso rests near the ground)


def sit_pose(params: StochLiteParams) -> np.ndarray:
    """Joints [12] rad with each foot below its hip at ``SIT_HEIGHT``."""
    lateral = params.abduction_offset + params.foot_lateral_offset
    feet = np.array([[0.0, lateral * side, -SIT_HEIGHT] for side in LEG_SIDES])
    return leg_inverse_kinematics(feet, params).reshape(12)


class Posture:
    """Where the robot is in the deployment sequence; ``initial``: ``walk`` (training: the
    gait controller acts from the start) or ``passive``."""

    def __init__(
        self,
        stand: np.ndarray,
        sit: np.ndarray,
        duration: float,
        initial: str = "walk",
        sit_tilt: float = 0.6,
    ) -> None:
        if not duration > 0.0 or sit_tilt < 0.0:
            raise ValueError(f"duration must be > 0, sit_tilt >= 0, got {duration}, {sit_tilt}")
        if initial not in ("walk", "passive"):
            raise ValueError(f"initial posture must be 'walk' or 'passive', got {initial!r}")
        self.stand = np.asarray(stand, dtype=np.float64)
        self.sit = np.asarray(sit, dtype=np.float64)
        self.duration = duration
        self.sit_tilt = sit_tilt
        self.state = "walking" if initial == "walk" else "passive"
        self._goal: np.ndarray | None = None
        self._start: np.ndarray | None = None
        self._since = 0.0
        self.guard_trips = 0

    def command(self, name: str, now: float) -> str:
        """Apply a command; returns "" or why it was refused."""
        if name not in COMMANDS:
            shown = name if len(name) <= 40 else name[:40] + f"... ({len(name)} characters)"
            return f"unknown posture command {shown!r} (one of {COMMANDS})"
        if name == "passive":
            self.state = "passive"
        elif name == "stand":
            self._move("standing_up", self.stand, now)
        elif name == "sit":
            self._move("sitting_down", self.sit, now)
        elif self.state == "standing":
            self.state = "walking"
        elif self.state != "walking":
            return f"walk refused while {self.state}: stand first"
        return ""

    def _move(self, state: str, goal: np.ndarray, now: float) -> None:
        self.state, self._goal, self._start, self._since = state, goal, None, now

    def attitude(self, roll: float, pitch: float, now: float) -> bool:
        """The soft attitude guard; True when it just started a sit-down."""
        limit = self.sit_tilt
        tilted = limit > 0.0 and (abs(roll) > limit or abs(pitch) > limit)
        if tilted and self.state in ("walking", "standing", "standing_up"):
            self.guard_trips += 1
            self._move("sitting_down", self.sit, now)
            return True
        return False

    @property
    def walking(self) -> bool:
        return self.state == "walking"

    def targets(
        self, gait: np.ndarray | None, measured: np.ndarray, now: float
    ) -> np.ndarray | None:
        """Joint targets [12] this tick (``gait``: the gait controller's), None when passive."""
        if self.state == "passive":
            return None
        if self.state == "walking":
            return None if gait is None else np.asarray(gait, dtype=np.float64)
        if self.state == "standing":
            return self.stand.copy()
        assert self._goal is not None
        if self._start is None:
            self._start = np.asarray(measured, dtype=np.float64).copy()
        alpha = min(1.0, (now - self._since) / self.duration)
        targets = self._start + alpha * (self._goal - self._start)
        if alpha >= 1.0:
            self.state = "standing" if self.state == "standing_up" else "passive"
        return targets


def parse_script(text: str) -> list[tuple[float, str]]:
    """``"stand@0 walk@3 sit@12"`` -> [(0.0, "stand"), (3.0, "walk"), (12.0, "sit")]: posture
    commands at seconds after the controller's first tick (demos and launch tests)."""
    script = []
    for item in text.split():
        name, _, at = item.partition("@")
        try:
            seconds = float(at)
        except ValueError:
            raise ValueError(f"posture_script item {item!r} is not COMMAND@SECONDS") from None
        if name not in COMMANDS or seconds < 0.0:
            raise ValueError(f"posture_script item {item!r}: command one of {COMMANDS}, time >= 0")
        script.append((seconds, name))
    return sorted(script)
