"""Probabilistic ensemble of K Gaussian MLPs (Algorithm 1, step 2).

All members share one batched weight tensor per layer (``K x in x out``) so a forward pass over
every member is a single ``baddbmm``. Shapes: ``K`` members, ``E`` elites, ``N`` rows, ``I`` input
dimension, ``D`` output dimension; for the dynamics model ``I = O + A`` and ``D = O + 1``
(state change Δx and reward r).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mdemorl_core.limits import Limits, above, at_least, check_limits, check_order
from mdemorl_core.models.normalizer import Normalizer


@dataclass
class EnsembleConfig:
    """Ensemble architecture and training.

    Defaults follow MBPO/PETS (7 members, 5 elites, 4 SiLU layers of 200): adequate for Pendulum
    and the 2R leg. Training: NLL with Adam (fresh moments per call), a hold-out of
    ``holdout_ratio`` of D_ENV (at most ``max_holdout`` rows); it stops when no member improved its
    hold-out NLL by more than ``improvement_threshold`` (relative to its best so far) for
    ``patience`` epochs, or after ``max_epochs``. Each member keeps its best-hold-out-NLL weights;
    the ``num_elites`` members with the lowest hold-out MSE are the elites.

    ``bf16_inference`` runs the gradient-free TS-1 step (planner and model rollouts) in bfloat16
    autocast; training, hold-out metrics and the returned means / variances stay float32.
    Measured on Leg2R-v0 (default sizes, 5000 random transitions, 40 epochs; one CPU core with
    avx512_bf16): elite test MSE 0.21851 fp32 vs 0.21853 bf16 (normalised), forward 2.3-2.7x faster
    at 200-20 000 rows per elite. Off by default until planner returns are compared end to end.
    """

    ensemble_size: int = 7
    num_elites: int = 5
    hidden_size: int = 200
    num_layers: int = 4
    learning_rate: float = 1e-3
    weight_decay: float = 5e-5
    batch_size: int = 256
    holdout_ratio: float = 0.2
    max_holdout: int = 5000
    max_epochs: int = 100
    patience: int = 5
    improvement_threshold: float = 0.01
    init_max_log_var: float = 0.5
    init_min_log_var: float = -10.0
    bf16_inference: bool = False

    LIMITS: ClassVar[dict[str, Limits]] = {
        "ensemble_size": at_least(1, 1024),
        "num_elites": at_least(1, 1024),
        "hidden_size": at_least(1, 65536),
        "num_layers": at_least(1, 64),
        "learning_rate": above(0.0, 1.0),
        "weight_decay": at_least(0.0, 1.0),
        "batch_size": at_least(1, 1 << 20),
        "holdout_ratio": Limits(0.0, 1.0, high_open=True),
        "max_holdout": at_least(0, 100_000_000),
        "max_epochs": at_least(1, 1_000_000),
        "patience": at_least(1, 1_000_000),
        "improvement_threshold": at_least(0.0, 1e3),
        "init_max_log_var": at_least(-100.0, 100.0),
        "init_min_log_var": at_least(-100.0, 100.0),
    }

    def __post_init__(self) -> None:
        check_limits(self, self.LIMITS)
        check_order(self, "num_elites", "ensemble_size")
        check_order(self, "init_min_log_var", "init_max_log_var", strict=True)


def holdout_size(num_rows: int, holdout_ratio: float, max_holdout: int) -> int:
    """Rows kept out of training for validation: ``min(floor(ratio * N), max_holdout)``."""
    return min(int(num_rows * holdout_ratio), max_holdout)


class EnsembleLinear(nn.Module):
    """K independent affine maps: ``K x N x in -> K x N x out`` (or a member subset)."""

    def __init__(self, ensemble_size: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(
            torch.empty(ensemble_size, in_dim, out_dim).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.zeros(ensemble_size, 1, out_dim))
        self._subsets: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = {}
        self._subsets_version: tuple[int, int] | None = None

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``k x N x in`` where k = K, or k = len(members) when a subset is given."""
        if members is None:
            return torch.baddbmm(self.bias, x, self.weight)
        if torch.is_grad_enabled():
            return torch.baddbmm(self.bias[members], x, self.weight[members])
        # A planner rollout calls this with the same elites every model step: gathering their
        # weights each time was ~half of a one-state plan. Reuse each member set's gather until the
        # parameters change (in-place updates bump _version). One entry per member set: a plan
        # alternates between all elites (M samples) and the first one (the 1-row rollout of mu),
        # and a single cached set was re-gathered at every switch (measured: ~12 % of a plan).
        version = (self.weight._version, self.bias._version)
        if version != self._subsets_version:
            self._subsets.clear()
            self._subsets_version = version
        key = tuple(members.tolist())
        subset = self._subsets.get(key)
        if subset is None:
            subset = self._subsets[key] = (self.bias[members], self.weight[members])
        bias, weight = subset
        return torch.baddbmm(bias, x, weight)


class GaussianEnsemble(nn.Module):
    """K Gaussian MLPs ``I -> (mean D, log-variance D)`` with soft-bounded log-variance and
    built-in input / target normalisation."""

    elite_indices: torch.Tensor

    def __init__(self, in_dim: int, out_dim: int, config: EnsembleConfig) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.config = config
        k = config.ensemble_size
        widths = [in_dim] + [config.hidden_size] * config.num_layers
        self.hidden = nn.ModuleList(
            EnsembleLinear(k, a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.head = EnsembleLinear(k, widths[-1], 2 * out_dim)
        self.max_log_var = nn.Parameter(torch.full((k, 1, out_dim), config.init_max_log_var))
        self.min_log_var = nn.Parameter(torch.full((k, 1, out_dim), config.init_min_log_var))
        self.input_normalizer = Normalizer(in_dim)
        self.target_normalizer = Normalizer(out_dim)
        self.register_buffer("elite_indices", torch.arange(config.num_elites))
        self.holdout_mse_per_dim = torch.full((out_dim,), math.nan)
        self.optimizer = self._new_optimizer()

    def _new_optimizer(self) -> torch.optim.Adam:
        decayed = [p for layer in [*self.hidden, self.head] for p in layer.parameters()]
        return torch.optim.Adam(
            [
                {"params": decayed, "weight_decay": self.config.weight_decay},
                {"params": [self.max_log_var, self.min_log_var], "weight_decay": 0.0},
            ],
            lr=self.config.learning_rate,
        )

    def forward_normalized(
        self, inputs: torch.Tensor, members: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``k x N x I`` -> normalised mean and log-variance, each ``k x N x D``."""
        mean, log_var = self._head_output(inputs, members).chunk(2, dim=-1)
        max_log_var = self.max_log_var if members is None else self.max_log_var[members]
        min_log_var = self.min_log_var if members is None else self.min_log_var[members]
        # Soft bounds keep the variance away from 0 and infinity while staying differentiable.
        log_var = max_log_var - F.softplus(max_log_var - log_var)
        log_var = min_log_var + F.softplus(log_var - min_log_var)
        return mean, log_var

    def _head_output(self, inputs: torch.Tensor, members: torch.Tensor | None) -> torch.Tensor:
        """Normalised ``k x N x I`` -> the head's raw ``k x N x 2D`` (mean, unbounded log-variance)."""
        hidden = inputs
        for layer in self.hidden:
            hidden = F.silu(layer(hidden, members))
        return self.head(hidden, members)

    def predict(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw ``N x I`` -> every member's raw-space mean and variance, each ``K x N x D``."""
        if inputs.ndim != 2 or inputs.shape[1] != self.in_dim:
            raise ValueError(f"inputs must be [N, {self.in_dim}], got {tuple(inputs.shape)}")
        normalized = self.input_normalizer.normalize(inputs)
        expanded = normalized.unsqueeze(0).expand(self.config.ensemble_size, -1, -1)
        mean, log_var = self.forward_normalized(expanded)
        std = self.target_normalizer.std
        return self.target_normalizer.denormalize(mean), log_var.exp() * std.pow(2)

    def predict_elites_partitioned(
        self, inputs: torch.Tensor, generator: torch.Generator, with_variance: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """TS-1 prediction: every row goes through ONE elite chosen at random (a random balanced
        partition of the rows over the E elites, so each elite processes ~N/E rows instead of
        all N). Raw ``N x I`` -> raw mean and variance, each ``N x D``; the variance is None
        without ``with_variance`` (a rollout without model noise: the same mean, fewer ops)."""
        num_rows = inputs.shape[0]
        elites = self.elite_indices
        num_elites = int(elites.numel())
        permutation = torch.randperm(num_rows, generator=generator, device=inputs.device)
        padding = (-num_rows) % num_elites
        # Repeating the permutation pads it to a multiple of E even when N < E.
        repeats = -(-(num_rows + padding) // num_rows)
        padded = permutation.repeat(repeats)[: num_rows + padding]
        groups = padded.view(num_elites, -1)
        if num_rows < num_elites:
            # One row per group: groups N..E-1 only hold padding, so only the first N elites run
            # (a one-state rollout then reads one elite's weights, not E; same rows, same result).
            groups, elites = groups[:num_rows], elites[:num_rows]
        normalized = self.input_normalizer.normalize(inputs)[groups]

        def forward() -> tuple[torch.Tensor, torch.Tensor | None]:
            if with_variance:
                return self.forward_normalized(normalized, elites)
            return self._head_output(normalized, elites)[..., : self.out_dim], None

        if self.config.bf16_inference and not torch.is_grad_enabled():
            with torch.autocast(inputs.device.type, dtype=torch.bfloat16):
                mean, log_var = forward()
            mean = mean.float()
            log_var = None if log_var is None else log_var.float()
        else:
            mean, log_var = forward()
        # The first N entries of the padded index list are exactly the permutation (no duplicates).
        out_mean = torch.empty((num_rows, self.out_dim), dtype=mean.dtype, device=mean.device)
        out_mean[permutation] = mean.reshape(-1, self.out_dim)[:num_rows]
        out_mean = self.target_normalizer.denormalize(out_mean)
        if log_var is None:
            return out_mean, None
        out_var = torch.empty_like(out_mean)
        out_var[permutation] = log_var.exp().reshape(-1, self.out_dim)[:num_rows]
        return out_mean, out_var * self.target_normalizer.std.pow(2)

    def nll(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        """Mean raw-space Gaussian NLL per dimension over all members (``N x I``, ``N x D``)."""
        with torch.no_grad():
            mean, var = self.predict(inputs)
            per_element = 0.5 * ((targets - mean).pow(2) / var + var.log() + math.log(2 * math.pi))
        return float(per_element.mean().item())

    def _member_losses(
        self, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised ``K x N x I``, ``K x N x D`` -> (NLL ``K``, MSE ``K``)."""
        mean, log_var = self.forward_normalized(inputs)
        squared_error = (mean - targets).pow(2)
        nll = (squared_error * torch.exp(-log_var) + log_var).mean(dim=(1, 2))
        return nll, squared_error.mean(dim=(1, 2))

    def _train_epoch(
        self,
        norm_inputs: torch.Tensor,
        norm_targets: torch.Tensor,
        train_rows: torch.Tensor,
        generator: torch.Generator,
    ) -> float:
        """One pass over ``train_rows`` in minibatches; returns the mean member NLL."""
        k = self.config.ensemble_size
        num_train = train_rows.numel()
        # Each member sees its own ordering of the training rows (decorrelates the members).
        noise = torch.rand(k, num_train, generator=generator, device=norm_inputs.device)
        member_rows = train_rows[torch.argsort(noise, dim=1)]
        losses = []
        for begin in range(0, num_train, self.config.batch_size):
            rows = member_rows[:, begin : begin + self.config.batch_size]
            nll, _ = self._member_losses(norm_inputs[rows], norm_targets[rows])
            bound_penalty = 0.01 * (self.max_log_var.sum() - self.min_log_var.sum())
            self.optimizer.zero_grad(set_to_none=True)
            (nll.sum() + bound_penalty).backward()
            self.optimizer.step()
            losses.append(nll.detach().mean())
        return float(torch.stack(losses).mean().item())

    def fit(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator
    ) -> dict[str, float]:
        """Train on raw ``N x I`` inputs and ``N x D`` targets (see :class:`EnsembleConfig`).

        Returns model_loss (train NLL of the last epoch), holdout_mse and holdout_nll (mean over
        elites, normalised space), holdout_mse_start (before training) and model_epochs. Also sets
        ``holdout_mse_per_dim`` (``D``, elites' mean, normalised space: about 1 - R^2 per output).
        """
        cfg = self.config
        num_rows = inputs.shape[0]
        if (
            num_rows < 2
            or targets.shape != (num_rows, self.out_dim)
            or inputs.shape[1] != self.in_dim
        ):
            raise ValueError(
                f"fit needs inputs [N>=2, {self.in_dim}] and targets [N, {self.out_dim}], got "
                f"{tuple(inputs.shape)} and {tuple(targets.shape)}"
            )
        # Fresh Adam moments: stale second moments from the last fit (tiny, at convergence) would
        # turn the large gradients of new data into steps many times the learning rate.
        self.optimizer = self._new_optimizer()
        shuffled = torch.randperm(num_rows, generator=generator, device=inputs.device)
        num_holdout = holdout_size(num_rows, cfg.holdout_ratio, cfg.max_holdout)
        holdout_rows, train_rows = shuffled[:num_holdout], shuffled[num_holdout:]
        self.input_normalizer.fit(inputs[train_rows])
        self.target_normalizer.fit(targets[train_rows])
        norm_inputs = self.input_normalizer.normalize(inputs)
        norm_targets = self.target_normalizer.normalize(targets)
        k = cfg.ensemble_size
        eval_rows = holdout_rows if num_holdout > 0 else train_rows
        eval_inputs = norm_inputs[eval_rows].unsqueeze(0).expand(k, -1, -1)
        eval_targets = norm_targets[eval_rows].unsqueeze(0).expand(k, -1, -1)

        def evaluate() -> tuple[torch.Tensor, torch.Tensor]:
            with torch.no_grad():
                return self._member_losses(eval_inputs, eval_targets)

        start_mse = evaluate()[1]
        # Early stopping and the kept snapshot use the hold-out NLL (the trained objective; the
        # hold-out MSE first rises after new data while the variances re-inflate). The weights
        # from before this call are no candidate, else new data could never displace them.
        best_nll = torch.full_like(start_mse, math.inf)
        best_params = [p.detach().clone() for p in self.parameters()]
        epochs_without_improvement = 0
        train_loss = float("nan")
        epochs_run = 0
        for epoch in range(1, cfg.max_epochs + 1):
            epochs_run = epoch
            train_loss = self._train_epoch(norm_inputs, norm_targets, train_rows, generator)
            nll = evaluate()[0]
            relative_gain = (best_nll - nll) / best_nll.abs().clamp_min(1e-6)
            improved = torch.isinf(best_nll) | (relative_gain > cfg.improvement_threshold)
            if bool(improved.any()):
                best_nll = torch.where(improved, nll, best_nll)
                with torch.no_grad():
                    for saved, param in zip(best_params, self.parameters(), strict=True):
                        mask = improved.view(-1, *([1] * (param.ndim - 1)))
                        saved.copy_(torch.where(mask, param, saved))
                epochs_without_improvement = 0
            else:
                epochs_without_improvement += 1
                if epochs_without_improvement >= cfg.patience:
                    break
        with torch.no_grad():
            for saved, param in zip(best_params, self.parameters(), strict=True):
                param.copy_(saved)
        final_nll, final_mse = evaluate()
        self.elite_indices.copy_(torch.argsort(final_mse)[: cfg.num_elites])
        elites = self.elite_indices
        with torch.no_grad():
            elite_mean = self.forward_normalized(eval_inputs[elites], elites)[0]
            # Per output dimension, normalised space: ~1 - R^2 of the elites on held-out rows.
            self.holdout_mse_per_dim = (elite_mean - eval_targets[elites]).pow(2).mean(dim=(0, 1))
        return {
            "model_loss": train_loss,
            "holdout_mse": float(final_mse[elites].mean().item()),
            "holdout_nll": float(final_nll[elites].mean().item()),
            "holdout_mse_start": float(start_mse.mean().item()),
            "model_epochs": float(epochs_run),
        }


class DynamicsEnsemble(GaussianEnsemble):
    """The dynamics + reward model f(x, u) -> (Δx, r): input ``O + A``, output ``O + 1``."""

    def __init__(self, obs_dim: int, act_dim: int, config: EnsembleConfig) -> None:
        super().__init__(obs_dim + act_dim, obs_dim + 1, config)
        self.obs_dim = obs_dim
        self.act_dim = act_dim

    def train_on(
        self,
        data: dict[str, np.ndarray],
        generator: torch.Generator,
        device: torch.device,
    ) -> dict[str, float]:
        """Fit to replay arrays (obs ``N x O``, act ``N x A``, rew ``N``, next_obs ``N x O``).

        Returns :meth:`fit`'s metrics plus holdout_reward_mse (the reward output's normalised
        hold-out MSE: the reward is the hardest output on sharply peaked tracking rewards)."""
        obs = torch.as_tensor(data["obs"], device=device)
        act = torch.as_tensor(data["act"], device=device)
        rew = torch.as_tensor(data["rew"], device=device)
        next_obs = torch.as_tensor(data["next_obs"], device=device)
        inputs = torch.cat([obs, act], dim=-1)
        targets = torch.cat([next_obs - obs, rew.unsqueeze(-1)], dim=-1)
        metrics = self.fit(inputs, targets, generator)
        metrics["holdout_reward_mse"] = float(self.holdout_mse_per_dim[-1].item())
        return metrics

    def step(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        generator: torch.Generator,
        sample_noise: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """TS-1 model step: ``obs N x O``, ``act N x A`` -> next_obs ``N x O``, reward ``N``.

        The reward is the member's mean (deterministic reward head); the state change is the
        member's mean, plus a Gaussian sample of its predicted variance when ``sample_noise``.
        """
        mean, var = self.predict_elites_partitioned(
            torch.cat([obs, act], dim=-1), generator, with_variance=sample_noise
        )
        delta = mean[:, : self.obs_dim]
        if var is not None:
            noise = torch.randn(
                delta.shape, generator=generator, device=delta.device, dtype=delta.dtype
            )
            delta = delta + var[:, : self.obs_dim].sqrt() * noise
        return obs + delta, mean[:, self.obs_dim]

    def extra_state(self) -> dict[str, Any]:
        """Optimiser state (the module's own ``state_dict`` holds weights, normalisers, elites)."""
        return {"optimizer": self.optimizer.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
