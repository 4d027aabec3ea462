"""The model environment: the one place every model rollout steps through (mbrl-lib's ``ModelEnv``).

The DMD-MPC inner loop, ``Agent.plan`` (MPC mode and the planner node's service), the acting
planner, MBPO rollouts and the benchmarks all step the learned model through a :class:`ModelEnv`,
so a plan a robot receives is scored exactly like the plans of the inner loop. One step is:

1. the raw dynamics (the ensemble's TS-1 step): next state and the reward head's reward;
2. the task's known reward of the transition instead of the head's, where one is given
   (``envs.task_rewards``);
3. the task's termination function, where one is given (``envs.task_terminations``): a model
   trajectory that enters a terminal state earns nothing after it;
4. the terminal value ``V(x_H)`` that closes a finite-horizon return (zero unless given, e.g. before
   the critic has trained).

Shapes: ``N`` rows, ``O`` observation and ``A`` action dimension.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mdemorl_core.types import DynamicsFn, ValueFn

TransitionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class ModelEnv:
    """Learned (or, in tests, exact) dynamics with injected reward, termination and value.

    ``dynamics(obs N x O, act N x A, generator) -> (next_obs N x O, reward N)``;
    ``reward_fn(obs, act, next_obs) -> N`` replaces the dynamics' reward when given;
    ``termination_fn(obs, act, next_obs) -> N`` (bool) marks terminal next states (none when None);
    ``value_fn(obs, generator) -> N`` is the terminal value (zeros when None).
    """

    def __init__(
        self,
        dynamics: DynamicsFn,
        reward_fn: TransitionFn | None = None,
        termination_fn: TransitionFn | None = None,
        value_fn: ValueFn | None = None,
    ) -> None:
        self.dynamics = dynamics
        self.reward_fn = reward_fn
        self.termination_fn = termination_fn
        self.value_fn = value_fn

    def step(
        self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``N x O``, ``N x A`` -> (next_obs ``N x O``, reward ``N``, terminated ``N`` bool)."""
        next_obs, reward = self.dynamics(obs, act, generator)
        if self.reward_fn is not None:
            reward = self.reward_fn(obs, act, next_obs)
        if self.termination_fn is None:
            terminated = torch.zeros(obs.shape[0], dtype=torch.bool, device=obs.device)
        else:
            terminated = self.termination_fn(obs, act, next_obs).to(torch.bool).reshape(-1)
        return next_obs, reward, terminated

    def terminal_value(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``N x O`` -> ``N`` value of the states where a finite rollout ends."""
        if self.value_fn is None:
            return torch.zeros(obs.shape[0], device=obs.device, dtype=obs.dtype)
        return self.value_fn(obs, generator)
