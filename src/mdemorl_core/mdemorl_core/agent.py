"""The M-DeMoRL agent: Algorithm 1, steps 2-5, and the baselines as configuration switches.

``algo``:
- ``mdemorl``: ensemble + DMD-MPC with the elite (CEM) utility, planned transitions -> D_MPC;
- ``mopac``: the same planner with the exp (MPPI) utility and policy *samples* (MoPAC);
- ``mbpo``: plain policy rollouts in the model (stochastic policy actions) -> D_MPC, no MPC;
- ``sac``: no model, SAC on D_ENV only.

When the updates run (``update_mode``):
- ``interleaved`` (the MBPO structure): after every ``train_every`` env steps
  ``utd_ratio x train_every`` SAC gradient steps; every ``model_train_every`` env steps a model
  refit (warm-started, early-stopped) followed by the inner loop (DMD-MPC or MBPO rollouts); the
  loop calls :meth:`Agent.after_env_step` after each :meth:`Agent.observe`;
- ``epoch`` (the library default): all of it in :meth:`Agent.update` at the end of each epoch
  (what a hardware run uses while the robot holds still between epochs).

Who drives the real system (``act``): ``policy`` (the SAC actor) or ``planner`` (DMD-MPC from the
measured state, first action applied; the actor is still what is evaluated and deployed).

Every model rollout steps through one :class:`ModelEnv` (:meth:`Agent.model_env`): ensemble,
known task reward, termination function, and the critic's value (zero until SAC has trained).

All randomness comes from the agent's own ``torch.Generator`` (on ``device``) and
``numpy.random.Generator``, both seeded by ``seed``, and both are part of :meth:`Agent.state_dict`,
so a run resumed from a checkpoint continues bit-exactly on CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mdemorl_core.agents.agent_config import ALGOS, AgentConfig, planner_config_for
from mdemorl_core.agents.model_data import (
    ActingPlanner,
    MpcRetention,
    PlannedActions,
    add_rollout_rows,
    reward_r2,
)
from mdemorl_core.agents.sac import SAC, TanhGaussianActor
from mdemorl_core.envs.task_rewards import task_reward_function
from mdemorl_core.envs.task_terminations import task_termination_function
from mdemorl_core.models.ensemble import DynamicsEnsemble
from mdemorl_core.models.model_env import ModelEnv
from mdemorl_core.planning.dmd_mpc import DMDMPCPlanner, PlannerConfig, PlanResult, rollout_policy
from mdemorl_core.planning.schedules import batch_at, horizon_at
from mdemorl_core.replay import ReplayBuffer, sample_mixed

__all__ = ["ALGOS", "Agent", "AgentConfig", "planner_config_for"]
_STATE_FORMAT = 3
_SAC_METRICS = ("critic_loss", "actor_loss", "entropy", "distill_loss")
_MODEL_METRICS = ("model_loss", "holdout_mse", "holdout_nll", "horizon", "mpc_batch")
_PLANNER_METRICS = ("mpc_return", "mpc_nominal_return")


class Agent:
    """Acts, stores transitions and runs the model / planner / SAC updates on its schedule."""

    def __init__(
        self, obs_dim: int, act_dim: int, config: AgentConfig, device: torch.device, seed: int
    ) -> None:
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"obs_dim and act_dim must be >= 1, got {obs_dim}, {act_dim}")
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.config = config
        self.device = torch.device(device)
        self.seed = seed
        # Network initialisation uses torch's global RNG; fork it so the agent depends only on seed.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.sac = SAC(obs_dim, act_dim, config.sac, self.device)
            self.model: DynamicsEnsemble | None = None
            if config.algo != "sac":
                self.model = DynamicsEnsemble(obs_dim, act_dim, config.model).to(self.device)
        self.reward_fn = task_reward_function(config.task_reward) if config.task_reward else None
        self.termination_fn = (
            task_termination_function(config.task_termination) if config.task_termination else None
        )
        self.planner = DMDMPCPlanner(planner_config_for(config.algo, config.planner))
        self.acting_planner = ActingPlanner(self._plan_for_acting, config.act_horizon)
        self.planned_actions = PlannedActions(obs_dim, act_dim, config.distill_capacity)
        self.d_env = ReplayBuffer(obs_dim, act_dim, config.env_buffer_capacity)
        self.d_mpc = ReplayBuffer(obs_dim, act_dim, config.mpc_buffer_capacity)
        self.mpc_retention = MpcRetention(config.mpc_retain_steps)
        self.torch_generator = torch.Generator(device=self.device)
        self.torch_generator.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.env_steps = 0
        self.steps_at_last_update = 0
        self.steps_at_last_refit = 0
        self.sac_updates = 0
        self.update_credit = 0.0
        self.epochs_done = 0
        self.last_horizon = config.schedule.h_start
        self.model_fitted = False
        self.model_reward_r2 = 0.0
        self.refits = 0
        self._epoch_sums: dict[str, float] = {}
        self._epoch_sac_steps = 0
        self._latest: dict[str, float] = {}

    @property
    def actor(self) -> TanhGaussianActor:
        return self.sac.actor

    # ---- acting ---------------------------------------------------------------------------

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """``[O]`` observation -> ``[A]`` float32 action in [-1, 1]. Uniform random while fewer
        than ``initial_random_steps`` transitions were observed (unless ``deterministic``); then
        the actor, or with ``act: planner`` (not ``deterministic``) the acting planner once the
        model has been fitted; with ``act: labelled`` the actor acts and the acting planner only
        labels the visited state for distillation (DAgger's expert on the learner's own states).
        ``deterministic`` is the actor's mean: what is evaluated."""
        obs_array = np.asarray(obs, dtype=np.float32)
        if obs_array.shape != (self.obs_dim,):
            raise ValueError(f"obs must have shape ({self.obs_dim},), got {obs_array.shape}")
        if not deterministic and self.env_steps < self.config.initial_random_steps:
            return self.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
        obs_tensor = torch.as_tensor(obs_array, device=self.device).unsqueeze(0)
        with torch.no_grad():
            planning = self.config.act != "policy" and not deterministic and self.model_fitted
            if planning:
                planned = self.acting_planner.act(obs_tensor)
                self.planned_actions.add(obs_array, planned.cpu().numpy())
            if planning and self.config.act == "planner":
                action = planned
            else:
                action = self.actor.sample(obs_tensor, self.torch_generator, deterministic)[0][0]
        return action.cpu().numpy().astype(np.float32)

    def start_episode(self) -> None:
        """A new real episode begins: the acting planner's warm start no longer applies."""
        self.acting_planner.reset()

    def observe(
        self, obs: np.ndarray, act: np.ndarray, rew: float, next_obs: np.ndarray, terminated: bool
    ) -> None:
        """Append one real transition to D_ENV (``terminated`` only for true terminal states)."""
        self.d_env.add(obs, act, float(rew), next_obs, bool(terminated))
        self.env_steps += 1

    # ---- the model environment and planning -----------------------------------------------

    def model_env(self, sample_noise: bool | None = None) -> ModelEnv:
        """The model environment every rollout of this agent uses (see the module doc);
        ``sample_noise`` None takes the planner's ``sample_model_noise``."""
        if self.model is None:
            raise ValueError("algo 'sac' has no model to plan with")
        model = self.model
        noise = self.planner.config.sample_model_noise if sample_noise is None else sample_noise
        return ModelEnv(
            lambda o, a, g: model.step(o, a, g, sample_noise=noise),
            self.reward_fn,
            self.termination_fn,
            self._terminal_value,
        )

    def _terminal_value(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``N x O`` -> ``N`` soft value V(x_H); 0 before the first SAC step, when the critic is
        still its random initialisation (its output would only add noise to the returns)."""
        if self.sac_updates == 0:
            return torch.zeros(obs.shape[0], device=obs.device, dtype=obs.dtype)
        return self.sac.soft_value(obs, generator)

    def plan(
        self,
        obs: np.ndarray,
        horizon: int | None = None,
        planner_config: PlannerConfig | None = None,
        generator: torch.Generator | None = None,
        fixed: torch.Tensor | None = None,
    ) -> PlanResult:
        """DMD-MPC from ``[O]`` or ``[B x O]`` observation(s) with the current model, policy and
        critic (planner node / MPC mode). ``horizon`` defaults to the one of the last inner loop,
        ``planner_config`` to the agent's, ``generator`` to the agent's own; ``fixed``
        (``B x F x H x A``) are extra candidate sequences (a warm start).
        Result tensors are on the agent's device (actions ``B x H x A``)."""
        if self.model is None:
            raise ValueError("algo 'sac' has no model to plan with")
        obs_tensor = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        if obs_tensor.ndim == 1:
            obs_tensor = obs_tensor.unsqueeze(0)
        if obs_tensor.ndim != 2 or obs_tensor.shape[1] != self.obs_dim:
            raise ValueError(
                f"obs must be [{self.obs_dim}] or [B, {self.obs_dim}], got {tuple(obs_tensor.shape)}"
            )
        planner = self.planner
        if planner_config is not None:
            planner = DMDMPCPlanner(planner_config_for(self.config.algo, planner_config))
        return planner.plan(
            obs_tensor,
            self.last_horizon if horizon is None else horizon,
            self.model_env(),
            self.actor.policy_action,
            self.torch_generator if generator is None else generator,
            None if fixed is None else fixed.to(self.device),
        )

    def _plan_for_acting(
        self, obs: torch.Tensor, horizon: int, fixed: torch.Tensor | None
    ) -> PlanResult:
        return self.planner.plan(
            obs, horizon, self.model_env(), self.actor.policy_action, self.torch_generator, fixed
        )

    # ---- updates --------------------------------------------------------------------------

    def _inner_loop(self, epoch: int) -> dict[str, float]:
        """Steps 2-4: score the model on the real data since its last fit, refit it, then fill
        D_MPC (planner or MBPO rollouts) from start states drawn from D_ENV."""
        assert self.model is not None
        new_steps = self.env_steps - self.steps_at_last_refit
        self.steps_at_last_refit = self.env_steps
        if self.model_fitted:
            newest = self.d_env.newest(new_steps)
            self.model_reward_r2 = reward_r2(self.model, newest, self.reward_fn, self.device)
        metrics = self.model.train_on(self.d_env.all(), self.torch_generator, self.device)
        self.model_fitted = True
        self.refits += 1
        horizon = horizon_at(epoch, self.config.schedule)
        batch = batch_at(epoch, self.config.schedule)
        indices = self.d_env.sample_indices(batch, self.rng)
        start = torch.as_tensor(self.d_env.obs[indices], device=self.device)
        self.last_horizon = horizon
        metrics.update(horizon=float(horizon), mpc_batch=float(batch))
        if self.config.algo == "mbpo":
            rollout = rollout_policy(
                start,
                horizon,
                self.model_env(sample_noise=True),
                self.actor.policy_action,
                self.torch_generator,
            )
            rows = add_rollout_rows(self.d_mpc, rollout)
        else:
            result = self.plan(start.cpu().numpy(), horizon)
            rows = add_rollout_rows(self.d_mpc, result)
            metrics.update(
                mpc_return=float(result.returns.mean().item()),
                mpc_nominal_return=float(result.nominal_returns.mean().item()),
            )
        self.mpc_retention.add(self.env_steps, rows, self.d_mpc)
        return metrics

    def effective_real_ratio(self) -> float:
        """Share of real rows in the SAC minibatches now (see ``adaptive_real_ratio``)."""
        if len(self.d_mpc) == 0:
            return 1.0
        if not self.config.adaptive_real_ratio:
            return self.config.real_ratio
        return 1.0 - (1.0 - self.config.real_ratio) * self.model_reward_r2

    def _sac_steps(self, count: int, progress: Callable[[int, int], None] | None = None) -> None:
        real_ratio = self.effective_real_ratio()
        for step in range(count):
            batch = sample_mixed(
                self.d_env,
                self.d_mpc,
                self.config.sac.batch_size,
                real_ratio,
                self.rng,
                self.device,
            )
            imitation = self._imitation_batch()
            metrics = self.sac.update(
                batch, self.torch_generator, imitation, self.config.distill_weight
            )
            if "imitation_loss" in metrics:
                metrics["distill_loss"] = metrics.pop("imitation_loss")
            for name, value in metrics.items():
                self._epoch_sums[name] = self._epoch_sums.get(name, 0.0) + value
            self.sac_updates += 1
            self._epoch_sac_steps += 1
            if progress is not None:
                progress(step + 1, count)

    def _imitation_batch(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """With ``distill``: a minibatch (``N x O``, ``N x A``) of the acting planner's
        (state, action) pairs for the actor's BC term; None without distill or pairs."""
        if not self.config.distill or len(self.planned_actions) == 0:
            return None
        obs, act = self.planned_actions.sample(self.config.sac.batch_size, self.rng)
        return (
            torch.as_tensor(obs, device=self.device),
            torch.as_tensor(act, device=self.device),
        )

    def _model_due(self) -> bool:
        return (
            self.model is not None
            and len(self.d_env) >= self.config.min_model_data
            and self.env_steps - self.steps_at_last_refit >= self.config.model_train_every
        )

    def after_env_step(self) -> dict[str, float]:
        """Interleaved schedule: run what is due after the newest :meth:`observe` (model refit +
        inner loop every ``model_train_every`` steps, then ``utd_ratio x train_every`` SAC steps
        every ``train_every`` steps). Returns the refit's metrics when one ran, else ``{}``.
        A no-op in ``epoch`` mode."""
        cfg = self.config
        if cfg.update_mode != "interleaved":
            return {}
        metrics: dict[str, float] = {}
        if self._model_due():
            metrics = self._inner_loop(self.epochs_done + 1)
            self._latest.update(metrics)
        if self.env_steps % cfg.train_every == 0 and len(self.d_env) >= cfg.sac.batch_size:
            self.update_credit += cfg.utd_ratio * cfg.train_every
            count = int(self.update_credit)
            self.update_credit -= count
            self._sac_steps(count)
        return metrics

    def update(
        self, epoch: int, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, float]:
        """End of epoch ``epoch`` (counted from 1). In ``epoch`` mode this runs Algorithm 1 steps
        2-5 on the data so far (model refit and inner loop, then ``utd_ratio x new steps`` SAC
        steps); in ``interleaved`` mode the work already ran during the epoch. Either way it
        returns the epoch's metrics: model_loss, holdout_mse, holdout_nll, critic_loss,
        actor_loss, alpha, entropy, horizon, mpc_batch, mpc_return, mpc_nominal_return, sac_steps,
        real_ratio, model_reward_r2, refits, d_env, d_mpc (NaN where not applicable; model and
        planner values from the latest refit). ``progress(done, total)`` follows the SAC steps.
        """
        if self.config.update_mode == "epoch":
            new_steps = self.env_steps - self.steps_at_last_update
            if self.model is not None and len(self.d_env) >= self.config.min_model_data:
                self._latest.update(self._inner_loop(epoch))
            count = int(round(self.config.utd_ratio * new_steps)) if len(self.d_env) > 0 else 0
            self._sac_steps(count, progress)
        self.steps_at_last_update = self.env_steps
        self.epochs_done = epoch
        nan = float("nan")
        metrics = dict.fromkeys((*_SAC_METRICS, *_MODEL_METRICS, *_PLANNER_METRICS), nan)
        metrics.update({k: v for k, v in self._latest.items() if k in metrics})
        steps = self._epoch_sac_steps
        for name in _SAC_METRICS:
            if steps and name in self._epoch_sums:
                metrics[name] = self._epoch_sums[name] / steps
        metrics.update(
            alpha=self.sac.alpha,
            sac_steps=float(steps),
            real_ratio=self.effective_real_ratio(),
            model_reward_r2=self.model_reward_r2,
            refits=float(self.refits),
            d_env=float(len(self.d_env)),
            d_mpc=float(len(self.d_mpc)),
        )
        self._epoch_sums = {}
        self._epoch_sac_steps = 0
        return metrics

    # ---- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: networks, optimisers, alpha, model (weights,
        normalisers, elites, optimiser), both buffers, counters and both generators. Contains only
        tensors and plain Python values (``torch.load(weights_only=True)`` safe)."""
        return {
            "format": _STATE_FORMAT,
            "algo": self.config.algo,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "sac": self.sac.state_dict(),
            "sac_optimizers": self.sac.optimizer_state_dict(),
            "model": None if self.model is None else self.model.state_dict(),
            "model_extra": None if self.model is None else self.model.extra_state(),
            "d_env": self.d_env.state_dict(),
            "d_mpc": self.d_mpc.state_dict(),
            "counters": {
                "env_steps": self.env_steps,
                "steps_at_last_update": self.steps_at_last_update,
                "steps_at_last_refit": self.steps_at_last_refit,
                "sac_updates": self.sac_updates,
                "update_credit": self.update_credit,
                "epochs_done": self.epochs_done,
                "planner_max_rows": self.planner.max_rows_per_call,
                "last_horizon": self.last_horizon,
                "mpc_retention": self.mpc_retention.state(),
                "model_fitted": self.model_fitted,
                "model_reward_r2": self.model_reward_r2,
                "refits": self.refits,
                "latest": dict(self._latest),
            },
            "acting_plan": self.acting_planner.state(),
            "planned_actions": self.planned_actions.state(),
            "torch_generator": self.torch_generator.get_state(),
            "numpy_generator": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any], buffers: bool = True) -> None:
        """Restore :meth:`state_dict` output from an agent built with the same dims and config.
        ``buffers=False`` leaves D_ENV and D_MPC empty (a planner or a deployed policy needs only
        the networks)."""
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(f"unsupported agent state format {state.get('format')!r}")
        for name in ("algo", "obs_dim", "act_dim"):
            mine = self.config.algo if name == "algo" else getattr(self, name)
            if state[name] != mine:
                raise ValueError(
                    f"agent state {name}={state[name]!r} does not match this agent ({mine!r})"
                )
        self.sac.load_state_dict(state["sac"])
        self.sac.load_optimizer_state_dict(state["sac_optimizers"])
        if self.model is not None:
            self.model.load_state_dict(state["model"])
            self.model.load_extra_state(state["model_extra"])
        if buffers:
            self.d_env.load_state_dict(state["d_env"])
            self.d_mpc.load_state_dict(state["d_mpc"])
        counters = state["counters"]
        self.env_steps = int(counters["env_steps"])
        self.steps_at_last_update = int(counters["steps_at_last_update"])
        self.steps_at_last_refit = int(counters["steps_at_last_refit"])
        self.sac_updates = int(counters["sac_updates"])
        self.update_credit = float(counters["update_credit"])
        self.epochs_done = int(counters["epochs_done"])
        self.planner.max_rows_per_call = int(counters["planner_max_rows"])
        self.last_horizon = int(counters["last_horizon"])
        self.mpc_retention.load(counters["mpc_retention"])
        self.model_fitted = bool(counters["model_fitted"])
        self.model_reward_r2 = float(counters["model_reward_r2"])
        self.refits = int(counters["refits"])
        self._latest = {str(k): float(v) for k, v in counters["latest"].items()}
        self.acting_planner.load(state["acting_plan"], self.device)
        if buffers:
            self.planned_actions.load(state["planned_actions"])
        # States written before distillation became a term of the actor step carry the state of
        # its former optimizer under "distill_optimizer": nothing uses it any more.
        self.torch_generator.set_state(state["torch_generator"].cpu())
        self.rng.bit_generator.state = state["numpy_generator"]
