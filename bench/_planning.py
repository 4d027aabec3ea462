"""The DMD-MPC stack the planner benchmarks time: ensemble model, SAC actor (policy) and critic
(terminal value), wired into `DMDMPCPlanner` exactly as the agent wires them, with row counters.

The networks have their default sizes (ensemble: 7 members, 5 elites, 4 x 200 SiLU; SAC: 2 x 256)
and random weights: the planner's cost does not depend on what the weights are, only on shapes.

FLOP counting (documented here because every planner benchmark uses it): a dense layer
``in -> out`` costs ``2 * in * out`` FLOPs per row (one multiply and one add per weight); bias,
activations and normalisation are O(out) per row and are left out. One TS-1 model step sends each
row through ONE elite member, so a model step costs ``2 * sum_layers(in * out)`` FLOPs per row,
independent of the ensemble size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from mdemorl_core.agents.sac import SAC, SACConfig
from mdemorl_core.models.ensemble import DynamicsEnsemble, EnsembleConfig, EnsembleLinear
from mdemorl_core.models.model_env import ModelEnv
from mdemorl_core.planning.dmd_mpc import DMDMPCPlanner, PlannerConfig, PlanResult


@dataclass
class RowCounter:
    """Rows that went through the model, the policy and the value function since `reset`."""

    model_rows: int = 0
    model_calls: int = 0
    policy_rows: int = 0
    value_rows: int = 0

    def reset(self) -> None:
        self.model_rows = self.model_calls = self.policy_rows = self.value_rows = 0


@dataclass
class PlanningStack:
    """Planner plus the model/policy/value callables it is given, on one device."""

    planner: DMDMPCPlanner
    model: DynamicsEnsemble
    sac: SAC
    device: torch.device
    generator: torch.Generator
    counter: RowCounter = field(default_factory=RowCounter)

    def dynamics(
        self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """TS-1 ensemble step, ``N x O``, ``N x A`` -> (``N x O``, ``N``), counted."""
        self.counter.model_rows += int(obs.shape[0])
        self.counter.model_calls += 1
        return self.model.step(obs, act, generator, self.planner.config.sample_model_noise)

    def policy(
        self, obs: torch.Tensor, generator: torch.Generator, deterministic: bool
    ) -> torch.Tensor:
        """Actor action ``N x A``, counted."""
        self.counter.policy_rows += int(obs.shape[0])
        return self.sac.actor.policy_action(obs, generator, deterministic)

    def value(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Soft value ``N`` from the twin critic, counted."""
        self.counter.value_rows += int(obs.shape[0])
        return self.sac.soft_value(obs, generator)

    def plan(self, start_obs: torch.Tensor, horizon: int) -> PlanResult:
        """One DMD-MPC plan from ``B x O`` start states, through the same model environment as
        the agent's (here: the reward head, no termination, the critic's value)."""
        return self.planner.plan(
            start_obs,
            horizon,
            ModelEnv(self.dynamics, value_fn=self.value),
            self.policy,
            self.generator,
        )

    def random_start_states(self, count: int) -> torch.Tensor:
        """``count x O`` standard-normal start states on the stack's device."""
        return torch.randn(
            (count, self.model.obs_dim), generator=self.generator, device=self.device
        )


def build_stack(
    obs_dim: int,
    act_dim: int,
    num_samples: int,
    device: torch.device,
    seed: int,
    chunk_size: int | None = None,
) -> PlanningStack:
    """Default-sized ensemble + SAC + planner with M = `num_samples` on `device`."""
    torch.manual_seed(seed)
    planner_config = PlannerConfig(num_samples=num_samples)
    if chunk_size is not None:
        planner_config.chunk_size = chunk_size
    model = DynamicsEnsemble(obs_dim, act_dim, EnsembleConfig()).to(device)
    model.eval()
    sac = SAC(obs_dim, act_dim, SACConfig(), device)
    generator = torch.Generator(device=device).manual_seed(seed)
    return PlanningStack(DMDMPCPlanner(planner_config), model, sac, device, generator)


def layer_shapes(module: torch.nn.Module) -> list[tuple[int, int]]:
    """(in, out) of every dense layer of `module` in order (ensemble or plain Linear layers)."""
    shapes = []
    for layer in module.modules():
        if isinstance(layer, EnsembleLinear):
            shapes.append((int(layer.weight.shape[1]), int(layer.weight.shape[2])))
        elif isinstance(layer, torch.nn.Linear):
            shapes.append((layer.in_features, layer.out_features))
    return shapes


def flops_per_row(module: torch.nn.Module) -> int:
    """``2 * sum(in * out)``: FLOPs of one row through one member of `module` (see module doc)."""
    return 2 * sum(inputs * outputs for inputs, outputs in layer_shapes(module))


def rows_per_elite(rows: int, num_elites: int) -> int:
    """Rows one elite member processes in a TS-1 step of `rows` rows (balanced partition)."""
    return math.ceil(rows / num_elites)
