"""Shared types of the algorithm modules: a transition batch and the callables the planner uses.

Shapes: ``N`` rows, ``O`` observation dimension, ``A`` action dimension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class TransitionBatch:
    """A batch of transitions as tensors on one device.

    obs ``N x O``, act ``N x A``, rew ``N``, next_obs ``N x O``, done ``N`` (1.0 = terminal, the
    bootstrap is cut; time-limit truncations are NOT terminal).
    """

    obs: torch.Tensor
    act: torch.Tensor
    rew: torch.Tensor
    next_obs: torch.Tensor
    done: torch.Tensor

    def __len__(self) -> int:
        return int(self.obs.shape[0])


class DynamicsFn(Protocol):
    """One model step: ``(obs N x O, act N x A, generator) -> (next_obs N x O, reward N)``."""

    def __call__(
        self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class PolicyFn(Protocol):
    """The outer-loop policy: ``(obs N x O, generator, deterministic) -> action N x A in [-1, 1]``."""

    def __call__(
        self, obs: torch.Tensor, generator: torch.Generator, deterministic: bool
    ) -> torch.Tensor: ...


class ValueFn(Protocol):
    """Terminal value ``V(x)``: ``(obs N x O, generator) -> value N``."""

    def __call__(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...
