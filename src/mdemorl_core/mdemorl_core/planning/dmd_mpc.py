"""DMD-MPC with a policy shift model (Algorithm 1, step 4), batched over start states.

For each start state x0 (``B`` of them, processed ``chunk_size`` at a time, never one by one):

1. shift: the nominal sequence μ̃ is the policy's own rollout in the model (eq. 10);
2. sample ``M`` sequences, closed loop ``u_h = clip(π(x_h) + ε_h)`` along each sample's own model
   trajectory (eqs. 11-12), or open loop ``u_h = clip(μ̃_h + ε_h)`` with ``open_loop``; closed
   loop, μ̃ is rolled out as one extra noise-free particle of the first sampling round (it is
   exactly π's rollout), so steps 1 and 2 share one pass through the model;
3. roll them ``H`` steps through the model, return ``R = Σ γ^h r_h + γ^H V(x_H)`` (cost ``-R``);
4. utility weights over the M samples (``elite``: CEM on the ⌈pM⌉ best, ``exp``: MPPI) and
   g = Σ w_i u_i;
5. DMD step μ = (1 - α) μ̃ + α g (eq. 9); ``iterations > 1`` repeats 2-5 around μ;
6. μ is rolled out open loop from x0; those ``B x H`` model transitions go to D_MPC.

Shapes: ``B`` start states, ``b`` start states of one chunk, ``M`` samples, ``H`` horizon, ``O``
observation and ``A`` action dimension. Actions are in ``[-1, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mdemorl_core.types import DynamicsFn, PolicyFn, ValueFn

UTILITIES = ("elite", "exp")
ELITE_WEIGHTINGS = ("uniform", "softmax")
# Keeps the return normalisation finite when all M returns are equal.
_STD_EPS = 1e-8


@dataclass
class PlannerConfig:
    """DMD-MPC settings.

    ``num_samples`` M (100, paper); ``utility`` "elite" (CEM, M-DeMoRL) or "exp" (MPPI, MoPAC);
    ``elite_fraction`` p (0.1: ⌈pM⌉ elites); ``elite_weighting`` "uniform" (plain CEM mean of the
    elites) or "softmax" (softmax of normalised returns over the elites, ``temperature``);
    ``temperature`` also is the MPPI temperature on normalised returns; ``dmd_step`` α of eq. 9;
    ``noise_std`` σ of ε (in action units of the [-1, 1] box); ``open_loop`` samples around μ̃
    instead of around the policy; ``sample_policy`` makes π(x) a policy sample (MoPAC) instead of
    its mean; ``gamma`` discount of the planning return; ``chunk_size`` start states processed at
    once (memory ~ chunk_size x M rows; 0 = :func:`auto_chunk_size` for the device);
    ``sample_model_noise`` adds the member's Gaussian noise to
    model states (off: the random elite per step already carries the epistemic uncertainty).
    """

    num_samples: int = 100
    iterations: int = 1
    utility: str = "elite"
    elite_fraction: float = 0.1
    elite_weighting: str = "uniform"
    temperature: float = 1.0
    dmd_step: float = 0.5
    noise_std: float = 0.3
    open_loop: bool = False
    sample_policy: bool = False
    gamma: float = 0.99
    chunk_size: int = 0
    sample_model_noise: bool = False

    def __post_init__(self) -> None:
        if self.utility not in UTILITIES:
            raise ValueError(f"planner.utility must be one of {UTILITIES}, got {self.utility!r}")
        if self.elite_weighting not in ELITE_WEIGHTINGS:
            raise ValueError(
                f"planner.elite_weighting must be one of {ELITE_WEIGHTINGS}, got {self.elite_weighting!r}"
            )
        if self.num_samples < 1 or self.iterations < 1:
            raise ValueError("planner.num_samples and iterations must be >= 1")
        if self.chunk_size < 0:
            raise ValueError(f"planner.chunk_size must be >= 0 (0: auto), got {self.chunk_size}")
        if not 0.0 < self.elite_fraction <= 1.0:
            raise ValueError(f"planner.elite_fraction must be in (0, 1], got {self.elite_fraction}")
        if not 0.0 <= self.dmd_step <= 1.0:
            raise ValueError(f"planner.dmd_step must be in [0, 1], got {self.dmd_step}")
        if self.temperature <= 0.0 or self.noise_std < 0.0:
            raise ValueError("planner.temperature must be > 0 and planner.noise_std >= 0")


@dataclass
class PlanResult:
    """Planner output: actions ``B x H x A`` (μ), returns ``B`` (predicted, of μ),
    nominal_returns ``B`` (predicted, of the policy's μ̃) and the open-loop model rollout of μ:
    obs ``B x H x O``, rewards ``B x H``, next_obs ``B x H x O``."""

    actions: torch.Tensor
    returns: torch.Tensor
    nominal_returns: torch.Tensor
    obs: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor


def normalized_returns(returns: torch.Tensor) -> torch.Tensor:
    """``b x M`` returns -> ``(R - max R) / std R`` per row: scale-free, <= 0, finite."""
    spread = returns.std(dim=1, unbiased=False, keepdim=True)
    return (returns - returns.max(dim=1, keepdim=True).values) / (spread + _STD_EPS)


def elite_weights(
    returns: torch.Tensor,
    elite_fraction: float,
    weighting: str = "uniform",
    temperature: float = 1.0,
) -> torch.Tensor:
    """CEM utility: ``b x M`` returns -> ``b x M`` weights, non-zero only on the ⌈pM⌉ highest
    returns. Uniform or softmax of *normalised* returns: positive, finite and summing to 1 whatever
    the sign or scale of the returns (raw costs are never used as weights)."""
    num_samples = returns.shape[1]
    num_elites = max(1, math.ceil(elite_fraction * num_samples - 1e-9))
    elite_returns, elite_index = torch.topk(returns, num_elites, dim=1)
    if weighting == "uniform":
        elite_w = torch.full_like(elite_returns, 1.0 / num_elites)
    elif weighting == "softmax":
        elite_w = torch.softmax(
            normalized_returns(returns).gather(1, elite_index) / temperature, dim=1
        )
    else:
        raise ValueError(f"weighting must be one of {ELITE_WEIGHTINGS}, got {weighting!r}")
    return torch.zeros_like(returns).scatter(1, elite_index, elite_w)


def exp_weights(returns: torch.Tensor, temperature: float) -> torch.Tensor:
    """MPPI utility: ``b x M`` -> softmax(normalised returns / temperature), rows sum to 1."""
    return torch.softmax(normalized_returns(returns) / temperature, dim=1)


def dmd_update(shifted: torch.Tensor, target: torch.Tensor, step: float) -> torch.Tensor:
    """Eq. 9: μ = (1 - α) μ̃ + α g, elementwise on ``... x H x A``."""
    return (1.0 - step) * shifted + step * target


class DMDMPCPlanner:
    """Batched DMD-MPC; the model, policy and value are passed per call so a test can inject an
    exact model, the trainer the ensemble and the planner node a snapshot."""

    def __init__(self, config: PlannerConfig) -> None:
        self.config = config
        self.max_rows_per_call = 0

    def _step(
        self, dynamics: DynamicsFn, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.max_rows_per_call = max(self.max_rows_per_call, int(obs.shape[0]))
        return dynamics(obs, act, generator)

    def _open_loop(
        self,
        start: torch.Tensor,
        actions: torch.Tensor,
        dynamics: DynamicsFn,
        value: ValueFn,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Roll ``b x H x A`` from ``b x O``: (return b, obs b x H x O, rewards b x H, next b x H x O)."""
        gamma = self.config.gamma
        horizon = actions.shape[1]
        states = [start]
        rewards = []
        for h in range(horizon):
            next_obs, reward = self._step(dynamics, states[-1], actions[:, h], generator)
            states.append(next_obs)
            rewards.append(reward)
        reward_table = torch.stack(rewards, dim=1)
        discounts = gamma ** torch.arange(horizon, device=start.device, dtype=start.dtype)
        total = (reward_table * discounts).sum(1) + gamma**horizon * value(states[-1], generator)
        all_states = torch.stack(states, dim=1)
        return total, all_states[:, :-1], reward_table, all_states[:, 1:]

    def _nominal(
        self,
        start: torch.Tensor,
        horizon: int,
        dynamics: DynamicsFn,
        policy: PolicyFn,
        value: ValueFn,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Shift model (eq. 10): μ̃_h = π(x̄_h), x̄_{h+1} = f(x̄_h, μ̃_h), i.e. the noise-free
        particle of :meth:`_sample` alone. Returns (μ̃ ``b x H x A``, its predicted return ``b``)."""
        actions, returns = self._sample(
            start, horizon, None, None, dynamics, policy, value, generator, 0, True
        )
        return actions[:, 0], returns[:, 0]

    def _sample(
        self,
        start: torch.Tensor,
        horizon: int,
        center: torch.Tensor | None,
        offset: torch.Tensor | None,
        dynamics: DynamicsFn,
        policy: PolicyFn,
        value: ValueFn,
        generator: torch.Generator,
        num_samples: int | None = None,
        nominal_particle: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled sequences per start state: (actions ``b x M' x H x A``, returns ``b x M'``).

        Open loop: u = μ̃_h + ε around ``center`` (``b x H x A``). Closed loop: u = π(x) +
        offset_h + ε (``offset`` = μ - μ̃ on later iterations, None = 0). ``num_samples`` noisy
        particles (None: the configured M). With ``nominal_particle`` (closed loop, no offset)
        each start state gets one more particle, last, with ε = 0: it is the shift rollout μ̃
        itself, so the nominal sequence costs no rollout of its own (M' = M + 1; otherwise M).
        """
        cfg = self.config
        b = start.shape[0]
        noisy = cfg.num_samples if num_samples is None else num_samples
        m = noisy + int(nominal_particle)
        obs = start.unsqueeze(1).expand(b, m, start.shape[1]).reshape(b * m, -1)
        total = torch.zeros(b * m, device=start.device, dtype=start.dtype)
        actions = []
        for h in range(horizon):
            if center is not None and cfg.open_loop:
                base = center[:, h].unsqueeze(1)
            else:
                base = policy(obs, generator, not cfg.sample_policy).view(b, m, -1)
                if offset is not None:
                    base = base + offset[:, h].unsqueeze(1)
            noise = cfg.noise_std * torch.randn(
                (b, noisy, base.shape[-1]),
                generator=generator,
                device=start.device,
                dtype=start.dtype,
            )
            if nominal_particle:
                noise = F.pad(noise, (0, 0, 0, 1))
            act = (base + noise).clamp(-1.0, 1.0).reshape(b * m, -1)
            actions.append(act)
            obs, reward = self._step(dynamics, obs, act, generator)
            total = total + cfg.gamma**h * reward
        total = total + cfg.gamma**horizon * value(obs, generator)
        return torch.stack(actions, dim=1).view(b, m, horizon, -1), total.view(b, m)

    def _weights(self, returns: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.utility == "elite":
            return elite_weights(returns, cfg.elite_fraction, cfg.elite_weighting, cfg.temperature)
        return exp_weights(returns, cfg.temperature)

    def _plan_chunk(
        self,
        start: torch.Tensor,
        horizon: int,
        dynamics: DynamicsFn,
        policy: PolicyFn,
        value: ValueFn,
        generator: torch.Generator,
    ) -> PlanResult:
        rollout = (dynamics, policy, value, generator)
        if self.config.open_loop:
            nominal, nominal_return = self._nominal(start, horizon, *rollout)
            actions, returns = self._sample(start, horizon, nominal, None, *rollout)
        else:
            actions, returns = self._sample(
                start, horizon, None, None, *rollout, nominal_particle=True
            )
            nominal, nominal_return = actions[:, -1], returns[:, -1]
            actions, returns = actions[:, :-1], returns[:, :-1]
        mean = nominal
        for iteration in range(self.config.iterations):
            if iteration > 0:
                actions, returns = self._sample(start, horizon, mean, mean - nominal, *rollout)
            weights = self._weights(returns)
            target = torch.einsum("bm,bmha->bha", weights, actions)
            mean = dmd_update(mean, target, self.config.dmd_step).clamp(-1.0, 1.0)
        total, obs, rewards, next_obs = self._open_loop(start, mean, dynamics, value, generator)
        return PlanResult(mean, total, nominal_return, obs, rewards, next_obs)

    @torch.no_grad()
    def plan(
        self,
        start_obs: torch.Tensor,
        horizon: int,
        dynamics: DynamicsFn,
        policy: PolicyFn,
        value: ValueFn,
        generator: torch.Generator,
    ) -> PlanResult:
        """Plan from ``B x O`` start states (B >= 1) over ``horizon`` steps; see the module doc."""
        if start_obs.ndim != 2 or start_obs.shape[0] < 1:
            raise ValueError(f"start_obs must be [B>=1, O], got {tuple(start_obs.shape)}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        chunk_size = self.config.chunk_size or auto_chunk_size(
            start_obs.device, self.config.num_samples
        )
        chunks = [
            self._plan_chunk(chunk, horizon, dynamics, policy, value, generator)
            for chunk in torch.split(start_obs, chunk_size)
        ]
        if len(chunks) == 1:
            return chunks[0]
        return PlanResult(
            *(
                torch.cat([getattr(c, name) for c in chunks])
                for name in PlanResult.__dataclass_fields__
            )
        )


CPU_ROWS_PER_CHUNK = 3000
GPU_ROWS_PER_CHUNK = 100_000


def auto_chunk_size(device: torch.device, num_samples: int) -> int:
    """Start states per chunk when ``chunk_size`` is 0: about 3000 rows (chunk x M) on a CPU,
    100 000 on a GPU.

    On a CPU the elementwise work (activations, gathers, clamps) between the matmuls is
    memory-bound: 3000 rows x 200 hidden units keep each activation (2.4 MB) in cache, while
    100 000 rows (80 MB) stream through DRAM. Measured on the 2-core development machine,
    B = 1000, M = 100, H = 15, best of 4 interleaved plans: chunk 1000 -> 25.2 s, 200 -> 14.3 s,
    50 -> 14.1 s, 25 -> 13.3 s, 10 -> 16.4 s (per-chunk overhead takes over). On a GPU large
    chunks amortise the kernel launches.
    """
    rows = GPU_ROWS_PER_CHUNK if device.type == "cuda" else CPU_ROWS_PER_CHUNK
    return max(1, rows // num_samples)


@torch.no_grad()
def rollout_policy(
    start_obs: torch.Tensor,
    horizon: int,
    dynamics: DynamicsFn,
    policy: PolicyFn,
    generator: torch.Generator,
    deterministic: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """MBPO-style model rollouts of the policy from ``B x O`` start states:
    (obs ``B x H x O``, act ``B x H x A``, rewards ``B x H``, next_obs ``B x H x O``)."""
    obs = start_obs
    states, actions, rewards = [obs], [], []
    for _ in range(horizon):
        act = policy(obs, generator, deterministic)
        obs, reward = dynamics(obs, act, generator)
        states.append(obs)
        actions.append(act)
        rewards.append(reward)
    all_states = torch.stack(states, dim=1)
    return (
        all_states[:, :-1],
        torch.stack(actions, dim=1),
        torch.stack(rewards, dim=1),
        all_states[:, 1:],
    )
