"""Soft Actor-Critic: tanh-Gaussian actor, twin Q critics with Polyak targets, automatic entropy.

Shapes: ``N`` rows, ``O`` observation dimension, ``A`` action dimension. Actions live in
``[-1, 1]^A``; the task maps them to physical units.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mdemorl_core.types import TransitionBatch

# Keeps atanh / log(1 - tanh^2) finite when an action saturates at the box edge.
_TANH_EPS = 1e-6


@dataclass
class SACConfig:
    """SAC hyper-parameters.

    Defaults follow the SAC paper (256x2 networks, lr 3e-4, tau 0.005, batch 256), which works for
    Pendulum-v1 and the Leg2R tracking task. ``gamma`` 0.99 suits both (Leg2R episodes are 1000
    policy steps). ``target_entropy`` ``None`` means ``-|A|``. ``grad_clip`` ``None`` disables
    gradient-norm clipping.
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
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        log_std = log_std.clamp(self.log_std_min, self.log_std_max)
        return mean, log_std

    def sample(
        self, obs: torch.Tensor, generator: torch.Generator | None, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Action ``N x A`` in [-1, 1] and its log-probability ``N`` (tanh change of variables).

        ``deterministic`` returns ``tanh(mean)`` with the density evaluated there.
        """
        mean, log_std = self(obs)
        std = log_std.exp()
        if deterministic:
            pre_tanh = mean
        else:
            noise = torch.randn(
                mean.shape, generator=generator, device=mean.device, dtype=mean.dtype
            )
            pre_tanh = mean + std * noise
        action = torch.tanh(pre_tanh)
        gaussian_log_prob = (
            -0.5 * ((pre_tanh - mean) / std).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        ).sum(-1)
        # log(1 - tanh(u)^2) written in the numerically stable softplus form.
        squash_correction = (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)
        return action, gaussian_log_prob - squash_correction

    def policy_action(
        self, obs: torch.Tensor, generator: torch.Generator, deterministic: bool
    ) -> torch.Tensor:
        """The planner's ``PolicyFn``: action ``N x A``."""
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
    """Two independent Q networks: ``(obs N x O, act N x A) -> (q1 N, q2 N)``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.q1 = build_mlp(obs_dim + act_dim, 1, hidden_size, num_layers)
        self.q2 = build_mlp(obs_dim + act_dim, 1, hidden_size, num_layers)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = torch.cat([obs, act], dim=-1)
        return self.q1(inputs).squeeze(-1), self.q2(inputs).squeeze(-1)


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
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=config.alpha_lr)

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.exp().item())

    def soft_value(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Single-sample soft value ``V(x) = min(Q1, Q2)(x, a) - alpha log pi(a|x)``, a ~ pi: ``N``."""
        action, log_prob = self.actor.sample(obs, generator)
        q1, q2 = self.critic(obs, action)
        return torch.min(q1, q2) - self.log_alpha.exp().detach() * log_prob

    def _step(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: Any) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        optimizer.step()

    def update(self, batch: TransitionBatch, generator: torch.Generator) -> dict[str, float]:
        """One gradient step on critic, actor and (if automatic) alpha; then Polyak targets.

        Returns critic_loss, actor_loss, alpha (after the step), alpha_loss, entropy (= -mean log pi).
        """
        cfg = self.config
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch.next_obs, generator)
            target_q1, target_q2 = self.critic_target(batch.next_obs, next_action)
            next_value = torch.min(target_q1, target_q2) - alpha * next_log_prob
            target = batch.rew + cfg.gamma * (1.0 - batch.done) * next_value
        q1, q2 = self.critic(batch.obs, batch.act)
        critic_loss = 0.5 * (F.mse_loss(q1, target) + F.mse_loss(q2, target))
        self._step(self.critic_optimizer, critic_loss, self.critic.parameters())

        action, log_prob = self.actor.sample(batch.obs, generator)
        self.critic.requires_grad_(False)
        q1_pi, q2_pi = self.critic(batch.obs, action)
        self.critic.requires_grad_(True)
        actor_loss = (alpha * log_prob - torch.min(q1_pi, q2_pi)).mean()
        self._step(self.actor_optimizer, actor_loss, self.actor.parameters())

        alpha_loss = torch.zeros(())
        if cfg.auto_alpha:
            alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
            self._step(self.alpha_optimizer, alpha_loss, [self.log_alpha])

        with torch.no_grad():
            for param, target_param in zip(
                self.critic.parameters(), self.critic_target.parameters(), strict=True
            ):
                target_param.lerp_(param, cfg.tau)
        return {
            "critic_loss": float(critic_loss.item()),
            "actor_loss": float(actor_loss.item()),
            "alpha": self.alpha,
            "alpha_loss": float(alpha_loss.item()),
            "entropy": float(-log_prob.mean().item()),
        }

    def optimizer_state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor_optimizer.state_dict(),
            "critic": self.critic_optimizer.state_dict(),
            "alpha": self.alpha_optimizer.state_dict(),
        }

    def load_optimizer_state_dict(self, state: dict[str, Any]) -> None:
        self.actor_optimizer.load_state_dict(state["actor"])
        self.critic_optimizer.load_state_dict(state["critic"])
        self.alpha_optimizer.load_state_dict(state["alpha"])
