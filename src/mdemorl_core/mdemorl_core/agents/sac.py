"""Soft Actor-Critic: tanh-Gaussian actor, twin Q critics with Polyak targets, automatic entropy.

Shapes: ``N`` rows, ``O`` observation dimension, ``A`` action dimension. Actions live in
``[-1, 1]^A``; the task maps them to physical units.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mdemorl_core.agents.legacy_critic import upgrade_twin_optimizer_state, upgrade_twin_state
from mdemorl_core.limits import UNIT, Limits, above, at_least, check_limits, check_order
from mdemorl_core.models.ensemble import EnsembleLinear
from mdemorl_core.types import TransitionBatch

# Keeps atanh / log(1 - tanh^2) finite when an action saturates at the box edge.
_TANH_EPS = 1e-6


@dataclass
class SACConfig:
    """SAC hyper-parameters.

    Defaults follow the SAC paper (256x2 networks, lr 3e-4, tau 0.005, batch 256), which works for
    Pendulum-v1 and the Leg2R tracking task. ``gamma`` 0.99 suits both (Leg2R episodes are 1000
    policy steps). ``target_entropy`` ``None`` means ``-|A|``. ``grad_clip`` ``None`` disables
    gradient-norm clipping. ``bf16`` runs the hidden layers of :meth:`SAC.update` in bfloat16
    autocast (float32 master weights, optimiser state, output layers and losses) on devices with
    native bf16 matrix units (:func:`native_bf16`; float32 elsewhere); acting, planning and
    checkpoints are float32 either way. It is off by default: on one avx512_bf16 core it made
    the update 1.85x faster (bench/sac_updates.py), and Pendulum-v1 (10 epochs, seeds 0-3) gave the
    same training returns and final evaluations within 2 of float32 for seeds 0, 2, 3, but for
    seed 1 one of five evaluation episodes failed (final -368 vs -119).
    """

    hidden_size: int = 256
    num_layers: int = 2
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    batch_size: int = 256
    init_alpha: float = 1.0
    auto_alpha: bool = True
    target_entropy: float | None = None
    grad_clip: float | None = None
    log_std_min: float = -10.0
    log_std_max: float = 2.0
    bf16: bool = False

    LIMITS: ClassVar[dict[str, Limits]] = {
        "hidden_size": at_least(1, 65536),
        "num_layers": at_least(1, 64),
        "actor_lr": above(0.0, 1.0),
        "critic_lr": above(0.0, 1.0),
        "alpha_lr": above(0.0, 1.0),
        "gamma": UNIT,
        "tau": above(0.0, 1.0),
        "batch_size": at_least(1, 1 << 20),
        "init_alpha": above(0.0, 1e4),  # trained as log(alpha)
        "target_entropy": at_least(-1e4, 1e4),
        "grad_clip": above(0.0, 1e9),
        "log_std_min": at_least(-100.0, 100.0),
        "log_std_max": at_least(-100.0, 100.0),
    }

    def __post_init__(self) -> None:
        check_limits(self, self.LIMITS)
        check_order(self, "log_std_min", "log_std_max", strict=True)


def build_mlp(in_dim: int, out_dim: int, hidden_size: int, num_layers: int) -> nn.Sequential:
    """ReLU MLP with ``num_layers`` hidden layers: ``N x in_dim -> N x out_dim``."""
    if num_layers < 1 or hidden_size < 1:
        raise ValueError(
            f"num_layers and hidden_size must be >= 1, got {num_layers}, {hidden_size}"
        )
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(num_layers):
        layers += [nn.Linear(width, hidden_size), nn.ReLU()]
        width = hidden_size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def _fp32_output(layer: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """``layer(hidden)`` in float32 even under bf16 autocast: Q-values of a few hundred and the
    policy's log-std need more than bfloat16's 8 mantissa bits, and an output layer is a negligible
    share of the FLOPs."""
    if not torch.is_autocast_enabled(hidden.device.type):
        return layer(hidden)
    with torch.autocast(hidden.device.type, enabled=False):
        return layer(hidden.float())


class TanhGaussianActor(nn.Module):
    """Gaussian policy squashed by tanh: ``obs N x O -> action N x A`` in ``[-1, 1]``."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_size: int = 256,
        num_layers: int = 2,
        log_std_min: float = -10.0,
        log_std_max: float = 2.0,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim and act_dim must be >= 1, got {obs_dim}, {act_dim}")
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max
        self.net = build_mlp(obs_dim, 2 * act_dim, hidden_size, num_layers)

    def architecture(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild the network (see policy_io)."""
        return {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "log_std_min": self.log_std_min,
            "log_std_max": self.log_std_max,
        }

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and log-std, each ``N x A``."""
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"obs has last dimension {obs.shape[-1]}, expected {self.obs_dim}")
        *body, output_layer = self.net
        hidden = obs
        for layer in body:
            hidden = layer(hidden)
        mean, log_std = _fp32_output(output_layer, hidden).chunk(2, dim=-1)
        log_std = log_std.clamp(self.log_std_min, self.log_std_max)
        return mean, log_std

    def sample(
        self, obs: torch.Tensor, generator: torch.Generator | None, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Action ``N x A`` in [-1, 1] and its log-probability ``N`` (tanh change of variables).

        ``deterministic`` returns ``tanh(mean)`` with the density evaluated there.
        """
        mean, log_std = self(obs)
        gaussian_log_prob = -log_std.sum(-1) - 0.5 * mean.shape[-1] * math.log(2 * math.pi)
        if deterministic:
            pre_tanh = mean
        else:
            noise = torch.randn(
                mean.shape, generator=generator, device=mean.device, dtype=mean.dtype
            )
            pre_tanh = torch.addcmul(mean, log_std.exp(), noise)
            # The standardised sample (pre_tanh - mean) / std is the noise itself, a constant:
            # the same value and gradient as computing it back from pre_tanh, in fewer kernels.
            gaussian_log_prob = gaussian_log_prob - 0.5 * noise.pow(2).sum(-1)
        action = torch.tanh(pre_tanh)
        # log(1 - tanh(u)^2) written in the numerically stable softplus form.
        squash_correction = (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)
        return action, gaussian_log_prob - squash_correction

    def policy_action(
        self, obs: torch.Tensor, generator: torch.Generator, deterministic: bool
    ) -> torch.Tensor:
        """The planner's ``PolicyFn``: action ``N x A``. Deterministic: ``tanh(mean)`` without
        the log-probability :meth:`sample` would compute and the planner would discard."""
        if deterministic:
            return torch.tanh(self(obs)[0])
        return self.sample(obs, generator, deterministic)[0]

    @torch.inference_mode()
    def act_numpy(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Fast path for controllers: ``[O]`` or ``[N x O]`` float -> action of the same rank, float32.

        Stochastic actions use torch's global generator (controllers need no reproducibility).
        """
        obs_array = np.asarray(obs, dtype=np.float32)
        if obs_array.ndim not in (1, 2) or obs_array.shape[-1] != self.obs_dim:
            raise ValueError(
                f"obs must be [{self.obs_dim}] or [N, {self.obs_dim}], got {obs_array.shape}"
            )
        device = next(self.parameters()).device
        obs_tensor = torch.as_tensor(obs_array, device=device)
        squeeze = obs_tensor.ndim == 1
        if squeeze:
            obs_tensor = obs_tensor.unsqueeze(0)
        obs_tensor = obs_tensor.to(next(self.parameters()).dtype)
        if deterministic:
            # The mean action alone: no log-probability to compute and discard in the 500 Hz loop.
            action = torch.tanh(self.net(obs_tensor)[..., : self.act_dim])
        else:
            action = self.sample(obs_tensor, None, False)[0]
        result = action.float().cpu().numpy()
        return result[0] if squeeze else result


class TwinQ(nn.Module):
    """Both Q networks as one batched ensemble of two MLPs (weights ``2 x in x out`` per layer, as
    the dynamics ensemble's ``K x in x out``), so both heads cost one ``baddbmm`` per layer:
    ``(obs N x O, act N x A) -> (q1 N, q2 N)``.

    Initialised like ``nn.Linear`` (weights and biases uniform in ``+-1/sqrt(in)``). Checkpoints
    written by the former two-``nn.Sequential`` layout (``q1.0.weight`` ...) still load.
    """

    num_heads = 2

    def __init__(self, obs_dim: int, act_dim: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1 or hidden_size < 1:
            raise ValueError(
                f"num_layers and hidden_size must be >= 1, got {num_layers}, {hidden_size}"
            )
        widths = [obs_dim + act_dim] + [hidden_size] * num_layers + [1]
        layers = [
            EnsembleLinear(self.num_heads, a, b)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        ]
        for layer, fan_in in zip(layers, widths[:-1], strict=True):
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(layer.bias, -bound, bound)
        self.layers = nn.ModuleList(layers)
        self.register_load_state_dict_pre_hook(self._upgrade_legacy_state)

    def _upgrade_legacy_state(
        self, _: nn.Module, state: dict[str, Any], prefix: str, *__: Any
    ) -> None:
        upgrade_twin_state(state, prefix, len(self.layers), self.num_heads)

    def q_values(
        self, obs: torch.Tensor, act: torch.Tensor, detach_weights: bool = False
    ) -> torch.Tensor:
        """Both heads at once: ``2 x N``. ``detach_weights`` lets gradients reach the inputs only
        (the actor's loss), without building weight gradients that would be thrown away."""
        inputs = torch.cat([obs, act], dim=-1)
        hidden = inputs.unsqueeze(0).expand(self.num_heads, -1, -1)
        *body, output_layer = cast(list[EnsembleLinear], list(self.layers))
        for layer in body:
            weight, bias = _layer_params(layer, detach_weights)
            hidden = torch.relu_(torch.baddbmm(bias, hidden, weight))
        weight, bias = _layer_params(output_layer, detach_weights)
        if torch.is_autocast_enabled(hidden.device.type):
            with torch.autocast(hidden.device.type, enabled=False):
                return _scalar_head(hidden.float(), weight, bias)
        return _scalar_head(hidden, weight, bias)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.q_values(obs, act)
        return q[0], q[1]


def _scalar_head(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``2 x N x H`` features, ``2 x H x 1`` weights, ``2 x 1 x 1`` biases -> ``2 x N``. A
    multiply-and-sum, not a ``bmm``: a one-column matrix product and its backward (an outer
    product) ran ~6x slower than these elementwise kernels on one CPU core."""
    return (hidden * weight.transpose(1, 2)).sum(-1) + bias.squeeze(-1)


def _layer_params(layer: EnsembleLinear, detach: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if detach:
        return layer.weight.detach(), layer.bias.detach()
    return layer.weight, layer.bias


@functools.cache
def native_bf16(device_type: str) -> bool:
    """Whether `device_type` has bfloat16 matrix instructions: CUDA from compute capability 8.0,
    CPUs with avx512_bf16 or amx_bf16 (read from Linux's /proc/cpuinfo). Elsewhere bf16 autocast is
    emulated and slower than float32, so ``sac.bf16`` falls back to float32 there."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type != "cpu":
        return False
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in cpuinfo or "amx_bf16" in cpuinfo


# The keys of SAC.update's result, in the order they are computed.
UPDATE_METRICS = ("critic_loss", "actor_loss", "alpha", "alpha_loss", "entropy")


def _adam(params: Iterable[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam with torch's fused kernel where it has one (one kernel for all moments and steps
    instead of several per tensor: ~10 % of a bf16 update on one CPU core), else foreach."""
    if device.type in ("cpu", "cuda"):
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.Adam(params, lr=lr, foreach=True)


class SAC(nn.Module):
    """SAC learner: owns actor, critic, target critic, ``log_alpha`` and their optimisers."""

    def __init__(self, obs_dim: int, act_dim: int, config: SACConfig, device: torch.device) -> None:
        super().__init__()
        if not 0.0 < config.tau <= 1.0:
            raise ValueError(f"sac.tau must be in (0, 1], got {config.tau}")
        if config.init_alpha <= 0.0:
            raise ValueError(f"sac.init_alpha must be > 0, got {config.init_alpha}")
        self.config = config
        self.target_entropy = (
            float(-act_dim) if config.target_entropy is None else float(config.target_entropy)
        )
        self.actor = TanhGaussianActor(
            obs_dim,
            act_dim,
            config.hidden_size,
            config.num_layers,
            config.log_std_min,
            config.log_std_max,
        )
        self.critic = TwinQ(obs_dim, act_dim, config.hidden_size, config.num_layers)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_target.requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(config.init_alpha)))
        self.to(device)
        self.uses_bf16 = config.bf16 and native_bf16(device.type)
        self.actor_optimizer = _adam(self.actor.parameters(), config.actor_lr, device)
        self.critic_optimizer = _adam(self.critic.parameters(), config.critic_lr, device)
        self.alpha_optimizer = _adam([self.log_alpha], config.alpha_lr, device)

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.exp().item())

    def soft_value(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Single-sample soft value ``V(x) = min(Q1, Q2)(x, a) - alpha log pi(a|x)``, a ~ pi: ``N``."""
        action, log_prob = self.actor.sample(obs, generator)
        q = self.critic.q_values(obs, action)
        return torch.minimum(q[0], q[1]) - self.log_alpha.exp().detach() * log_prob

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.uses_bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.log_alpha.device.type, dtype=torch.bfloat16)

    def _clip_and_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.config.grad_clip is not None:
            for group in optimizer.param_groups:
                nn.utils.clip_grad_norm_(group["params"], self.config.grad_clip)
        optimizer.step()

    def update(
        self,
        batch: TransitionBatch,
        generator: torch.Generator,
        imitation: tuple[torch.Tensor, torch.Tensor] | None = None,
        imitation_weight: float = 2.5,
    ) -> dict[str, float]:
        """One gradient step on critic, actor and (if automatic) alpha; then Polyak targets.

        ``imitation``: (states ``M x O``, target actions ``M x A``) adds behaviour cloning of the
        actor's mean action to the actor step, weighted as TD3+BC (Fujimoto & Gu 2021) weights
        it: actor objective = ``imitation_weight / mean|Q|`` x SAC's actor loss + BC squared
        error, with mean|Q| of this batch's policy actions (held constant), so the pull toward
        the targets does not depend on the scale of the task's returns.

        Returns critic_loss, actor_loss, alpha (after the step), alpha_loss, entropy (= -mean log pi),
        and with ``imitation`` also imitation_loss (the BC squared error).
        """
        cfg = self.config
        alpha = self.log_alpha.exp().detach()
        with self._autocast():
            with torch.no_grad():
                next_action, next_log_prob = self.actor.sample(batch.next_obs, generator)
                target_q = self.critic_target.q_values(batch.next_obs, next_action)
                next_value = torch.minimum(target_q[0], target_q[1]) - alpha * next_log_prob
                target = batch.rew + cfg.gamma * (1.0 - batch.done) * next_value
            q = self.critic.q_values(batch.obs, batch.act)
            # = (MSE(q1, target) + MSE(q2, target)) / 2
            critic_loss = 0.5 * (q - target).pow(2).mean(dim=1).sum()
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self._clip_and_step(self.critic_optimizer)

        with self._autocast():
            action, log_prob = self.actor.sample(batch.obs, generator)
            q_pi = self.critic.q_values(batch.obs, action, detach_weights=True)
            min_q_pi = torch.minimum(q_pi[0], q_pi[1])
            actor_loss = (alpha * log_prob - min_q_pi).mean()
            actor_objective = actor_loss
            if imitation is not None:
                imitation_obs, imitation_act = imitation
                mean_action, _ = self.actor(imitation_obs)
                imitation_loss = (torch.tanh(mean_action) - imitation_act).pow(2).sum(-1).mean()
                q_scale = imitation_weight / min_q_pi.detach().abs().mean().clamp_min(1e-6)
                actor_objective = q_scale * actor_loss + imitation_loss
        log_prob = log_prob.detach()
        self.actor_optimizer.zero_grad(set_to_none=True)
        if cfg.auto_alpha:
            alpha_loss = -(self.log_alpha * (log_prob + self.target_entropy)).mean()
            self.alpha_optimizer.zero_grad(set_to_none=True)
            # One backward pass for both losses: the actor loss holds alpha as a constant and the
            # alpha loss holds log pi as one, so neither gradient leaks into the other.
            (actor_objective + alpha_loss).backward()
            self._clip_and_step(self.actor_optimizer)
            self._clip_and_step(self.alpha_optimizer)
        else:
            alpha_loss = torch.zeros(())
            actor_objective.backward()
            self._clip_and_step(self.actor_optimizer)

        with torch.no_grad():
            torch._foreach_lerp_(
                list(self.critic_target.parameters()), list(self.critic.parameters()), cfg.tau
            )
            scalars = [critic_loss, actor_loss, self.log_alpha.exp(), alpha_loss, -log_prob.mean()]
            if imitation is not None:
                scalars.append(imitation_loss.detach())
            values = torch.stack(scalars).tolist()
        names = UPDATE_METRICS if imitation is None else (*UPDATE_METRICS, "imitation_loss")
        return dict(zip(names, values, strict=True))

    def optimizer_state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor_optimizer.state_dict(),
            "critic": self.critic_optimizer.state_dict(),
            "alpha": self.alpha_optimizer.state_dict(),
        }

    def load_optimizer_state_dict(self, state: dict[str, Any]) -> None:
        self.actor_optimizer.load_state_dict(state["actor"])
        critic_state = upgrade_twin_optimizer_state(state["critic"], len(self.critic.layers))
        self.critic_optimizer.load_state_dict(critic_state)
        self.alpha_optimizer.load_state_dict(state["alpha"])
