"""The torque controller's per-tick logic for the Leg2R task, without ROS.

Called once per control tick with the measured joint state, it reproduces what ``Leg2REnv`` does
in simulation, using the same ``leg2r_task`` functions:

- every ``params.decimation`` ticks a policy step ends and the next begins: the observation is
  built at episode time ``step * policy_dt`` (``build_observation``), the finished step's reward is
  ``step_reward`` of the state at its end, and a transition (x, u, r, x') is emitted; after
  ``episode_steps`` steps the episode is truncated (never terminated, like the task) and the next
  episode starts at episode time 0 from wherever the leg is;
- the action (planner plan row, else the policy, else the safe default) is held for the whole
  step as ``action_to_torque(action)``, exactly like the task holds it.

Safe defaults before any policy arrives: ``zero`` (zero torque), ``random`` (uniform actions,
seeded: warm-up exploration data) or ``hold`` (joint PD to ``hold_pose``, recomputed every tick).
``hold`` is not a held action, so its steps produce no transitions; the others do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mdemorl_core.envs.leg2r_task import (
    ACTION_DIM,
    OBSERVATION_DIM,
    Leg2RParams,
    action_to_torque,
    build_observation,
    foot_velocity,
    forward_kinematics,
    inverse_kinematics,
    reference,
    step_reward,
    tracking_reward,
)

DEFAULT_ACTIONS = ("zero", "random", "hold")

PolicyFn = Callable[[np.ndarray], np.ndarray]
"""obs [OBSERVATION_DIM] float32 -> action [ACTION_DIM] in [-1, 1]."""


@dataclass(frozen=True)
class ControllerConfig:
    default_action: str = "zero"
    hold_pose: tuple[float, ...] = ()  # rad [2]; empty: IK of the reference's start point
    hold_kp: tuple[float, float] = (8.0, 6.0)  # N*m/rad
    hold_kd: tuple[float, float] = (0.3, 0.2)  # N*m*s/rad
    seed: int = 0

    def __post_init__(self) -> None:
        if self.default_action not in DEFAULT_ACTIONS:
            raise ValueError(
                f"default_action must be one of {DEFAULT_ACTIONS}, got {self.default_action!r}"
            )
        if len(self.hold_pose) not in (0, 2):
            raise ValueError(f"hold_pose must be empty or have 2 entries, got {self.hold_pose}")


@dataclass(frozen=True)
class TransitionRecord:
    """One policy step: observation/next_observation [OBSERVATION_DIM], action [ACTION_DIM]."""

    episode: int
    step: int
    observation: np.ndarray
    action: np.ndarray
    next_observation: np.ndarray
    reward: float
    terminated: bool
    truncated: bool


@dataclass(frozen=True)
class TrackingRecord:
    """Foot tracking at one tick: positions [2] m, velocities [2] m/s, error m, reward."""

    desired_position: np.ndarray
    actual_position: np.ndarray
    desired_velocity: np.ndarray
    actual_velocity: np.ndarray
    tracking_error: float
    reward: float


@dataclass(frozen=True)
class TickOutput:
    torque: np.ndarray  # [2] N*m to command this tick
    tracking: TrackingRecord | None  # None when the tick was asked not to compute it
    transition: TransitionRecord | None  # set on ticks that end a recorded policy step
    observation: np.ndarray | None  # set on ticks that start a policy step (for the planner)
    action_source: str  # "policy", "planner", or the default action's name


class PlanBuffer:
    """The latest planner reply: a [H x ACTION_DIM] sequence for steps start_step.. of an episode."""

    def __init__(self) -> None:
        self._actions: np.ndarray | None = None
        self._episode = -1
        self._start = 0

    def store(self, actions: np.ndarray, episode: int, start_step: int) -> None:
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != ACTION_DIM or len(actions) == 0:
            raise ValueError(f"plan must have shape [H, {ACTION_DIM}], got {actions.shape}")
        if not np.all(np.isfinite(actions)):
            raise ValueError("plan contains non-finite actions")
        self._actions, self._episode, self._start = actions, episode, start_step

    def action(self, episode: int, step: int) -> np.ndarray | None:
        """The planned action for (episode, step), or None if no plan covers it."""
        if self._actions is None or episode != self._episode:
            return None
        offset = step - self._start
        if not 0 <= offset < len(self._actions):
            return None
        return np.clip(self._actions[offset], -1.0, 1.0)


class Leg2RControllerCore:
    """Tick-by-tick controller state machine; feed it measured q, qd [2] at the control rate."""

    def __init__(self, params: Leg2RParams, config: ControllerConfig | None = None) -> None:
        self.params = params
        self.config = config if config is not None else ControllerConfig()
        if self.config.hold_pose:
            self.hold_pose = np.asarray(self.config.hold_pose, dtype=np.float64)
        else:
            self.hold_pose = inverse_kinematics(reference(0.0, params)[0], params)
        self.policy: PolicyFn | None = None
        self.policy_version = -1
        self.plans = PlanBuffer()
        self.use_planner = False
        self._rng = np.random.default_rng(self.config.seed)
        self.ticks = 0
        self.episode = 0
        self.step = 0  # index of the policy step in progress within the episode
        self._pending: tuple[np.ndarray, np.ndarray] | None = None  # (obs, action) of that step
        self._torque = np.zeros(ACTION_DIM)
        self._source = self.config.default_action

    def set_policy(self, policy: PolicyFn, version: int) -> None:
        """Swap the actor; takes effect at the next policy step."""
        self.policy = policy
        self.policy_version = version

    @property
    def episode_time(self) -> float:
        tick_in_step = self.ticks % self.params.decimation
        return self.step * self.params.policy_dt + tick_in_step * self.params.control_dt

    def tick(self, q: np.ndarray, qd: np.ndarray, with_tracking: bool = True) -> TickOutput:
        """One control tick; ``with_tracking=False`` skips the (costly) tracking record."""
        q = np.asarray(q, dtype=np.float64)
        qd = np.asarray(qd, dtype=np.float64)
        transition: TransitionRecord | None = None
        observation: np.ndarray | None = None
        if self.ticks % self.params.decimation == 0:
            transition, observation = self._policy_boundary(q, qd)
        torque = self._hold_torque(q, qd) if self._source == "hold" else self._torque
        tracking = self._tracking(q, qd, self.episode_time) if with_tracking else None
        self.ticks += 1
        return TickOutput(torque.copy(), tracking, transition, observation, self._source)

    def _policy_boundary(
        self, q: np.ndarray, qd: np.ndarray
    ) -> tuple[TransitionRecord | None, np.ndarray]:
        params = self.params
        transition = None
        if self.ticks > 0:
            self.step += 1
            if self._pending is not None:
                obs, held_action = self._pending
                next_obs = build_observation(q, qd, self.step * params.policy_dt, params)
                reward = step_reward(q, qd, self.step * params.policy_dt, params)
                transition = TransitionRecord(
                    episode=self.episode,
                    step=self.step - 1,
                    observation=obs,
                    action=held_action,
                    next_observation=next_obs,
                    reward=reward,
                    terminated=False,
                    truncated=self.step >= params.episode_steps,
                )
            if self.step >= params.episode_steps:
                self.episode += 1
                self.step = 0
        observation = build_observation(q, qd, self.step * params.policy_dt, params)
        action, self._source = self._choose_action(observation)
        if action is None:
            self._pending = None
            self._torque = np.zeros(ACTION_DIM)
        else:
            self._pending = (observation, action.astype(np.float32))
            self._torque = action_to_torque(action, params)
        return transition, observation

    def _choose_action(self, observation: np.ndarray) -> tuple[np.ndarray | None, str]:
        if self.use_planner:
            planned = self.plans.action(self.episode, self.step)
            if planned is not None:
                return planned, "planner"
        if self.policy is not None:
            action = np.asarray(self.policy(observation), dtype=np.float64).reshape(-1)
            if action.shape != (ACTION_DIM,) or not np.all(np.isfinite(action)):
                raise ValueError(f"policy returned a bad action {action}")
            return np.clip(action, -1.0, 1.0), "policy"
        default = self.config.default_action
        if default == "zero":
            return np.zeros(ACTION_DIM), default
        if default == "random":
            return self._rng.uniform(-1.0, 1.0, size=ACTION_DIM), default
        return None, default

    def _hold_torque(self, q: np.ndarray, qd: np.ndarray) -> np.ndarray:
        cfg = self.config
        torque = np.asarray(cfg.hold_kp) * (self.hold_pose - q) - np.asarray(cfg.hold_kd) * qd
        limit = np.asarray(self.params.torque_limit)
        return np.clip(torque, -limit, limit)

    def _tracking(self, q: np.ndarray, qd: np.ndarray, t: float) -> TrackingRecord:
        p_d, v_d = reference(t, self.params)
        p = forward_kinematics(q, self.params)
        v = foot_velocity(q, qd, self.params)
        return TrackingRecord(
            desired_position=p_d,
            actual_position=p,
            desired_velocity=v_d,
            actual_velocity=v,
            tracking_error=float(np.linalg.norm(p - p_d)),
            reward=tracking_reward(p, v, p_d, v_d, self.params),
        )


def check_policy_dims(observation_dim: int, action_dim: int) -> None:
    """Raise ValueError unless an actor fits the Leg2R task's observation/action sizes."""
    if (observation_dim, action_dim) != (OBSERVATION_DIM, ACTION_DIM):
        raise ValueError(
            f"policy dims ({observation_dim}, {action_dim}) do not match Leg2R "
            f"({OBSERVATION_DIM}, {ACTION_DIM})"
        )
