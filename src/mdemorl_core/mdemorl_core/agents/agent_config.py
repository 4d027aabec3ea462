"""The agent's configuration: every setting of Algorithm 1 and of the baselines, with its checks.

Kept apart from :mod:`mdemorl_core.agent` (the algorithm) so the typed training configuration can
import it without the agent's machinery; ``mdemorl_core.agent`` re-exports it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

from mdemorl_core.agents.sac import SACConfig
from mdemorl_core.envs.task_rewards import TASK_REWARDS
from mdemorl_core.envs.task_terminations import TASK_TERMINATIONS
from mdemorl_core.limits import (
    UNIT,
    FieldValueError,
    Limits,
    above,
    at_least,
    check_choice,
    check_limits,
)
from mdemorl_core.models.ensemble import EnsembleConfig
from mdemorl_core.planning.dmd_mpc import PlannerConfig
from mdemorl_core.planning.schedules import ScheduleConfig

ALGOS = ("mdemorl", "mopac", "mbpo", "sac")
UPDATE_MODES = ("interleaved", "epoch")
ACTORS = ("policy", "planner", "labelled")


@dataclass
class AgentConfig:
    """Everything the agent needs besides the env dimensions.

    ``update_mode``, ``train_every``, ``model_train_every``: see :mod:`mdemorl_core.agent`.
    ``utd_ratio``: SAC gradient steps per new env step.
    ``real_ratio``: share of real (D_ENV) rows in each SAC minibatch once the model is fully
    trusted. ``adaptive_real_ratio``: the model's share is ``(1 - real_ratio) x R^2``, with R^2
    the model's reward prediction quality on the real data that arrived since the last refit,
    measured *before* the model trains on them (a true hold-out on the current policy's state
    distribution, clipped to [0, 1]).
    ``mpc_retain_steps``: D_MPC keeps the model rows planned during the last that many env steps
    (MBPO keeps one epoch of rollouts); ``mpc_buffer_capacity`` is a hard cap on top of that.
    ``initial_random_steps``: uniform random actions until that many transitions were observed.
    ``min_model_data``: D_ENV rows needed before the model is trained.
    ``task_reward``: "" -> rewards in model rollouts come from the model's reward head; a task id
    from ``envs.task_rewards.TASK_REWARDS`` -> that task's known reward of the model's predicted
    next state (the adaptive share then uses the R^2 of that reward).
    ``task_termination``: "" -> model rollouts never terminate; a task id from
    ``envs.task_terminations.TASK_TERMINATIONS`` -> that task's termination function masks the
    rewards and values after a predicted terminal state.
    ``act``: "policy", "planner" or "labelled" (see :meth:`mdemorl_core.agent.Agent.act`);
    ``act_horizon``: H of the acting planner.
    ``distill``: with ``act: planner`` or ``labelled``, every actor step also clones the actor's
    mean action onto actions the acting planner chose (a minibatch of the ``distill_capacity``
    newest), weighted as TD3+BC: ``distill_weight / mean|Q|`` x SAC's actor loss + the BC squared
    error (``distill_weight`` 2.5 is TD3+BC's published value, not tuned here): it pulls π toward
    μ while the critic still shapes it.
    """

    algo: str = "mdemorl"
    sac: SACConfig = field(default_factory=SACConfig)
    model: EnsembleConfig = field(default_factory=EnsembleConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    update_mode: str = "epoch"
    train_every: int = 1
    model_train_every: int = 250
    env_buffer_capacity: int = 1_000_000
    mpc_buffer_capacity: int = 200_000
    mpc_retain_steps: int = 1000
    real_ratio: float = 0.1
    adaptive_real_ratio: bool = True
    utd_ratio: float = 2.0
    initial_random_steps: int = 1000
    min_model_data: int = 200
    task_reward: str = ""
    task_termination: str = ""
    act: str = "policy"
    act_horizon: int = 5
    distill: bool = False
    distill_capacity: int = 10_000
    distill_weight: float = 2.5

    LIMITS: ClassVar[dict[str, Limits]] = {
        "train_every": at_least(1, 10_000_000),
        "model_train_every": at_least(1, 10_000_000),
        "env_buffer_capacity": at_least(1, 100_000_000),
        "mpc_buffer_capacity": at_least(1, 100_000_000),
        "mpc_retain_steps": at_least(1, 100_000_000),
        "real_ratio": UNIT,
        "utd_ratio": at_least(0.0, 1000.0),
        "initial_random_steps": at_least(0, 1_000_000_000),
        "min_model_data": at_least(2, 1_000_000_000),
        "act_horizon": at_least(1, 1000),
        "distill_capacity": at_least(1, 100_000_000),
        "distill_weight": above(0.0, 1_000_000.0),
    }

    def __post_init__(self) -> None:
        check_choice(self, "algo", ALGOS)
        check_choice(self, "update_mode", UPDATE_MODES)
        check_choice(self, "act", ACTORS)
        check_choice(self, "task_reward", ("", *TASK_REWARDS))
        check_choice(self, "task_termination", ("", *TASK_TERMINATIONS))
        if self.act != "policy" and self.algo == "sac":
            raise FieldValueError("act", f"{self.act!r} needs a model: algo 'sac' has none")
        check_limits(self, self.LIMITS)


def planner_config_for(algo: str, planner: PlannerConfig) -> PlannerConfig:
    """The planner settings ``algo`` implies: mdemorl -> elite utility; mopac -> exp utility with
    policy samples. Other fields are kept as configured."""
    if algo == "mopac":
        return dataclasses.replace(planner, utility="exp", sample_policy=True)
    return dataclasses.replace(planner, utility="elite")
