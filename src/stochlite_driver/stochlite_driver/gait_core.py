"""The StochLite gait controller's per-tick logic, without ROS.

Called once per servo tick (the env's sim rate, ``params.sim_hz``) with the measured joints and
IMU, it does what ``StochLiteEnv.step`` does, with the env's own trajectory generator and IK
(``stochlite_gait``): each tick the gait phase advances by ``2 pi dt / gait_period``, the feet
follow ``foot_targets(phase, shifts)`` and ``leg_inverse_kinematics`` turns them into the 12
joint targets. Every ``params.decimation`` ticks a policy step ends and the next begins: the
observation and reward are measured (:mod:`gait_observation`: ``GaitConfig.task``'s observer; for
StochLite-v1 the env's own, so a transition is the env's for the same readings), a transition (x, u, r, x') is
emitted, and the policy's action becomes the shifts held for the next step. After
``episode_steps`` steps the episode is truncated; when the measured state meets the env's
termination (tilt from the slope, torso too low) the transition is terminated and the core
asks for a reset (``needs_reset``), holding the stand pose until :meth:`reset_done`.

Protocols (:mod:`mdemorl_ros.protocol`, with its ActingRequest and TransitionRecord) as the leg's
controller: ``async`` acts continuously (the default action until the first request) and
swaps the policy at the next policy step; ``episodic`` holds the stand pose (``waiting``) until a
request, acts ``acting_steps`` policy steps with it in a new episode (the last transition
truncated), then holds (``holding``, no transitions) until the next request. The stand pose is
the trajectory generator's pose at phase 0 with zero shifts: the env's start pose, where every
episode starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mdemorl_core.envs.stochlite import ACTION_DIM
from mdemorl_core.envs.stochlite_gait import (
    StochLiteParams,
    action_to_shifts,
    foot_targets,
    leg_inverse_kinematics,
)
from mdemorl_ros.protocol import DEFAULT_ACTIONS, PROTOCOLS, ActingRequest, TransitionRecord
from stochlite_driver.gait_observation import observer_for_task, step_outcome


@dataclass(frozen=True)
class GaitConfig:
    protocol: str = "async"
    default_action: str = "zero"  # before any request (async): zero shifts, random, or stand
    seed: int = 0
    contact_effort: float = 0.5  # leg effort norm above which a foot is in contact (v0)
    task: str = "StochLite-v0"  # the env whose observation and reward the core measures

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.default_action not in DEFAULT_ACTIONS:
            raise ValueError(
                f"default_action must be one of {DEFAULT_ACTIONS}, got {self.default_action!r}"
            )


@dataclass(frozen=True)
class GaitTick:
    """One tick: joint targets [12] rad, foot targets [4 x 3] m (hip frames), shifts [4 x 3] m,
    the transition ending here (or None), the observation starting a step (or None), what chose
    the action, the support-plane estimate (roll, pitch, height) and whether to reset the robot."""

    targets: np.ndarray
    feet: np.ndarray
    shifts: np.ndarray
    transition: TransitionRecord | None
    observation: np.ndarray | None
    source: str
    plane: tuple[float, float, float]
    needs_reset: bool


def stand_pose(params: StochLiteParams) -> np.ndarray:
    """The env's start pose [12] rad: the trajectory generator at phase 0, zero shifts."""
    return leg_inverse_kinematics(foot_targets(0.0, np.zeros((4, 3)), params), params).reshape(12)


class GaitControllerCore:
    """Tick-by-tick gait controller; feed it measured q, qd, effort [12] and the IMU."""

    def __init__(self, params: StochLiteParams, config: GaitConfig | None = None) -> None:
        self.params = params
        self.config = config if config is not None else GaitConfig()
        self.observer = observer_for_task(self.config.task, params, self.config.contact_effort)
        self.stand = stand_pose(params)
        self._rng = np.random.default_rng(self.config.seed)
        self.policy: ActingRequest | None = None
        self._request: ActingRequest | None = None
        self.episodic = self.config.protocol == "episodic"
        self.phase = "waiting" if self.episodic else "acting"
        self.ticks = 0
        self.episode = 0
        self.step = 0
        self.phase_steps = 0
        self.gait_phase = 0.0
        self.shifts = np.zeros((4, 3))
        self.source = "hold" if self.episodic else self.config.default_action
        self._pending: tuple[np.ndarray, np.ndarray, int] | None = None
        self._reset_asked = False

    def request(self, request: ActingRequest) -> None:
        self._request = request

    @property
    def reported_phase(self) -> str:
        return "acting" if self._request is not None else self.phase

    @property
    def policy_version(self) -> int:
        return self.policy.version if self.policy is not None else 0

    @property
    def acting_steps(self) -> int:
        return self.policy.acting_steps if self.policy is not None else 0

    def reset_done(self) -> None:
        """The robot stands again after a termination: a new episode starts at the next step."""
        if self.phase == "resetting":
            self.phase = "acting"
            self.observer.reset()  # the robot was set up again: no odometry across it
            self._new_episode()

    def _new_episode(self) -> None:
        if self.step > 0 or self._pending is not None:
            self.episode += 1
        self.step = 0
        self.gait_phase = 0.0
        self._pending = None

    def tick(
        self,
        q: np.ndarray,
        qd: np.ndarray,
        effort: np.ndarray,
        roll: float,
        pitch: float,
        rates: np.ndarray,
    ) -> GaitTick:
        p = self.params
        plane = self.observer.tick(q, qd, effort, roll, pitch, rates, self.gait_phase)
        transition = observation = None
        needs_reset = False
        if self.ticks % p.decimation == 0:
            observation, velocity, power = self.observer.observe(self.gait_phase)
            transition = self._finish_step(observation, velocity, power)
            if transition is not None and transition.terminated:
                self.phase = "resetting"
                needs_reset = True
            self._begin_step(observation)
        self.ticks += 1
        if self.phase != "acting" or self.source == "hold":
            feet = foot_targets(0.0, np.zeros((4, 3)), p)
            return GaitTick(
                self.stand.copy(),
                feet,
                np.zeros((4, 3)),
                transition,
                None,
                "hold",
                plane,
                needs_reset,
            )
        self.gait_phase = (self.gait_phase + 2.0 * math.pi * p.sim_dt / p.gait_period) % (
            2.0 * math.pi
        )
        feet = foot_targets(self.gait_phase, self.shifts, p)
        targets = leg_inverse_kinematics(feet, p).reshape(12)
        return GaitTick(
            targets, feet, self.shifts.copy(), transition, observation, self.source, plane, False
        )

    def _finish_step(
        self, next_observation: np.ndarray, velocity: float, power: float
    ) -> TransitionRecord | None:
        p = self.params
        if self._pending is None or self.phase != "acting":
            return None
        observation, action, version = self._pending
        self._pending = None
        self.step += 1
        self.phase_steps += 1
        reward, done = step_outcome(self.observer, next_observation, velocity, power)
        phase_done = self.episodic and 0 < self.acting_steps <= self.phase_steps
        record = TransitionRecord(
            episode=self.episode,
            step=self.step - 1,
            policy_version=version,
            observation=observation,
            action=action,
            next_observation=next_observation,
            reward=reward,
            terminated=done,
            truncated=not done and (self.step >= p.episode_steps or phase_done),
        )
        if phase_done:
            self.phase = "holding"
        if self.step >= p.episode_steps and not done:
            self._new_episode()
        return record

    def _begin_step(self, observation: np.ndarray) -> None:
        if self._request is not None and (
            self.phase in ("waiting", "holding") or not self.episodic
        ):
            request, self._request = self._request, None
            self.policy = request
            if self.episodic:
                self._new_episode()
                self.phase = "acting"
                self.phase_steps = 0
        action, self.source = self._choose_action(observation)
        if action is None:
            self._pending = None
            self.shifts = np.zeros((4, 3))
            return
        self._pending = (observation, action.astype(np.float32), self.policy_version)
        self.shifts = action_to_shifts(action, self.params)

    def _choose_action(self, observation: np.ndarray) -> tuple[np.ndarray | None, str]:
        if self.phase != "acting":
            return None, "hold"
        request = self.policy
        if request is not None and (request.explore_uniform or request.policy is None):
            return self._rng.uniform(-1.0, 1.0, size=ACTION_DIM), "random"
        if request is not None and request.policy is not None:
            action = np.asarray(request.policy(observation), dtype=np.float64).reshape(-1)
            if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
                raise ValueError(f"policy returned a bad action {action}")
            return np.clip(action, -1.0, 1.0), "policy"
        default = self.config.default_action
        if default == "zero":
            return np.zeros(ACTION_DIM), default
        if default == "random":
            return self._rng.uniform(-1.0, 1.0, size=ACTION_DIM), default
        return None, default
