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
seeded: warm-up exploration data) or ``hold`` (the safe hold, recomputed every tick: joint PD to
``hold_pose`` with ``hold_mode: pd``, zero torque with ``hold_mode: zero``). ``hold`` is not a
held action, so its steps produce no transitions; the others do.

Protocols (``ControllerConfig.protocol``, :mod:`mdemorl_ros.protocol`), fed by
:meth:`Leg2RControllerCore.request`:

- ``async``: each request hot-swaps the policy at the next policy step and the controller acts
  continuously (the default action until the first request). Deployment uses this.
- ``episodic``: the controller holds (``waiting``) until a request arrives; at the next policy
  step it starts a new episode (step 0) and acts ``acting_steps`` policy steps with that version,
  the last transition marked truncated; then it holds (``holding``, no transitions, episode time
  frozen) until the next request. A request arriving while acting waits for the phase to end
  (the newest one wins), so every phase's data comes from one policy version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leg2r_driver.safety import stamp_rejection
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
from mdemorl_ros.protocol import (
    DEFAULT_ACTIONS,
    PROTOCOLS,
    ActingRequest,
    PolicyFn,
    TransitionRecord,
)

HOLD_MODES = ("pd", "zero")


@dataclass(frozen=True)
class ControllerConfig:
    default_action: str = "zero"
    hold_pose: tuple[float, ...] = ()  # rad [2]; empty: IK of the reference's start point
    hold_kp: tuple[float, float] = (8.0, 6.0)  # N*m/rad
    hold_kd: tuple[float, float] = (0.3, 0.2)  # N*m*s/rad
    seed: int = 0
    protocol: str = "async"  # see the module docstring
    hold_mode: str = "pd"  # the safe hold: PD to hold_pose, or zero torque

    def __post_init__(self) -> None:
        if self.default_action not in DEFAULT_ACTIONS:
            raise ValueError(
                f"default_action must be one of {DEFAULT_ACTIONS}, got {self.default_action!r}"
            )
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.hold_mode not in HOLD_MODES:
            raise ValueError(f"hold_mode must be one of {HOLD_MODES}, got {self.hold_mode!r}")
        if len(self.hold_pose) not in (0, 2):
            raise ValueError(f"hold_pose must be empty or have 2 entries, got {self.hold_pose}")


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
        self.explore_uniform = False
        self.plans = PlanBuffer()
        self.use_planner = False
        self._rng = np.random.default_rng(self.config.seed)
        self.ticks = 0
        self.episode = 0
        self.step = 0  # index of the policy step in progress within the episode
        self.episodic = self.config.protocol == "episodic"
        self.phase = "waiting" if self.episodic else "acting"
        self.phase_steps = 0  # policy steps done in the current acting phase
        self.acting_steps = 0  # steps the current phase asks for (0: until the next request)
        self._request: ActingRequest | None = None
        # (obs, action, version) of the step in progress; None when it records no transition.
        self._pending: tuple[np.ndarray, np.ndarray, int] | None = None
        self._torque = np.zeros(ACTION_DIM)
        self._source = "hold" if self.episodic else self.config.default_action

    def set_policy(self, policy: PolicyFn, version: int) -> None:
        """Swap the actor (a request acting until the next one); effective at a policy step."""
        self.request(ActingRequest(policy, version))

    def request(self, request: ActingRequest) -> None:
        """Queue an acting request; it starts at the next policy step it may (module docstring)."""
        self._request = request

    @property
    def request_waiting(self) -> bool:
        return self._request is not None

    @property
    def reported_phase(self) -> str:
        """The phase the robot is in or about to enter: "acting" once a request is queued."""
        return "acting" if self._request is not None else self.phase

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
        # Episodic holds freeze the episode clock: the next phase starts a fresh episode anyway.
        if self.ticks > 0 and (self.phase == "acting" or not self.episodic):
            self.step += 1
            if self._pending is not None:
                obs, held_action, version = self._pending
                self.phase_steps += 1
                phase_done = self.episodic and 0 < self.acting_steps <= self.phase_steps
                next_obs = build_observation(q, qd, self.step * params.policy_dt, params)
                reward = step_reward(q, qd, self.step * params.policy_dt, params)
                transition = TransitionRecord(
                    episode=self.episode,
                    step=self.step - 1,
                    policy_version=version,
                    observation=obs,
                    action=held_action,
                    next_observation=next_obs,
                    reward=reward,
                    terminated=False,
                    truncated=self.step >= params.episode_steps or phase_done,
                )
                if phase_done:
                    self.phase = "holding"
            if self.step >= params.episode_steps:
                self.episode += 1
                self.step = 0
        if self._request is not None and (self.phase != "acting" or not self.episodic):
            self._start(self._request)
        observation = build_observation(q, qd, self.step * params.policy_dt, params)
        action, self._source = self._choose_action(observation)
        if action is None:
            self._pending = None
            self._torque = np.zeros(ACTION_DIM)
        else:
            version = max(self.policy_version, 0)
            self._pending = (observation, action.astype(np.float32), version)
            self._torque = action_to_torque(action, params)
        return transition, (observation if self.phase == "acting" else None)

    def _start(self, request: ActingRequest) -> None:
        self._request = None
        self.policy = request.policy
        self.policy_version = request.version
        self.explore_uniform = request.explore_uniform
        if self.episodic:
            if self.step > 0:
                self.episode += 1
                self.step = 0
            self.phase = "acting"
            self.phase_steps = 0
            self.acting_steps = request.acting_steps

    def _choose_action(self, observation: np.ndarray) -> tuple[np.ndarray | None, str]:
        if self.phase != "acting":
            return None, "hold"
        if self.explore_uniform:
            return self._rng.uniform(-1.0, 1.0, size=ACTION_DIM), "random"
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
        if cfg.hold_mode == "zero":
            return np.zeros(ACTION_DIM)
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


MAX_STATE_FUTURE_SKEW = 0.005  # s; a joint state stamped further ahead is rejected (bad clock)
STATE_REJECTIONS = ("wrong_length", "unknown_joint", "non_finite", "stale", "future_stamp")


class StateRejected(ValueError):
    """A joint state the controller must not act on; ``counter`` names its diagnostics count."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"joint state rejected: {reason}")
        self.counter = f"states_rejected_{reason}"


def select_joint_state(
    joint_names: Sequence[str],
    names: Sequence[str],
    position: Sequence[float],
    velocity: Sequence[float],
    stamp_age: float,
    max_state_age: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The controlled joints' position and velocity (each [len(joint_names)], in that order)
    from a JointState's fields; ``stamp_age`` = now - stamp (s). Raises StateRejected (reason in
    ``STATE_REJECTIONS``) for lengths that differ from ``names`` (or duplicate names), a missing
    joint, NaN/Inf, a stamp older than ``max_state_age`` or ahead by more than
    ``MAX_STATE_FUTURE_SKEW``. Other joints in the message are ignored."""
    if len(position) != len(names) or len(velocity) != len(names) or len(set(names)) != len(names):
        raise StateRejected("wrong_length")
    index = {name: i for i, name in enumerate(names)}
    if any(name not in index for name in joint_names):
        raise StateRejected("unknown_joint")
    q = np.array([position[index[name]] for name in joint_names], dtype=np.float64)
    qd = np.array([velocity[index[name]] for name in joint_names], dtype=np.float64)
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(qd))):
        raise StateRejected("non_finite")
    freshness = stamp_rejection(stamp_age, max_state_age, MAX_STATE_FUTURE_SKEW)
    if freshness is not None:
        raise StateRejected(freshness)
    return q, qd
