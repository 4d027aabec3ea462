"""The M-DeMoRL agent: Algorithm 1, steps 2-5, and the baselines as configuration switches.

``algo``:
- ``mdemorl``: ensemble + DMD-MPC with the elite (CEM) utility, planned transitions -> D_MPC;
- ``mopac``: the same planner with the exp (MPPI) utility and policy *samples* (MoPAC);
- ``mbpo``: plain policy rollouts in the model (Gaussian model noise) -> D_MPC, no MPC;
- ``sac``: no model, SAC on D_ENV only.

All randomness comes from the agent's own ``torch.Generator`` (on ``device``) and
``numpy.random.Generator``, both seeded by ``seed``, and both are part of :meth:`Agent.state_dict`,
so a run resumed from a checkpoint continues bit-exactly on CPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mdemorl_core.agents.sac import SAC, SACConfig, TanhGaussianActor
from mdemorl_core.envs.task_rewards import TASK_REWARDS, task_reward_function
from mdemorl_core.models.ensemble import DynamicsEnsemble, EnsembleConfig
from mdemorl_core.planning.dmd_mpc import DMDMPCPlanner, PlannerConfig, PlanResult, rollout_policy
from mdemorl_core.planning.schedules import ScheduleConfig, batch_at, horizon_at
from mdemorl_core.replay import ReplayBuffer, sample_mixed

ALGOS = ("mdemorl", "mopac", "mbpo", "sac")
_STATE_FORMAT = 2


@dataclass
class AgentConfig:
    """Everything the agent needs besides the env dimensions.

    ``real_ratio``: share of real (D_ENV) rows in each SAC minibatch once the model is fully
    trusted (0.1: planner data are the bulk, real data anchor the critic against model bias).
    ``adaptive_real_ratio``: the model's share of a minibatch is ``(1 - real_ratio) x R^2``, with
    R^2 the model's reward prediction quality on the newest epoch of real data *before* it trains
    on them (a true hold-out on the current policy's state distribution, clipped to [0, 1]). On
    Leg2R the reward is a narrow bump around the reference (exp(-|25 m^-1 e|^2)) that a model
    trained on a few thousand early transitions cannot predict (measured R^2 = 0 in all of the
    first 6 epochs, while the state changes reach R^2 0.9-1.0): a fixed 90 % of such model rows
    drowned the real reward signal and the policy got worse every epoch (0.13 -> 0.01 reward per
    step), while SAC on real data alone learned in 3-4 epochs. With the adaptive share mdemorl
    learns from real data until the model earns trust, then from planner data.
    ``mpc_retain_epochs``: D_MPC keeps only the planner output of the last that many epochs (2:
    rows planned with older models and policies are biased and leave; MBPO retains 1).
    ``mpc_buffer_capacity`` is a hard cap on D_MPC on top of that.
    ``utd_ratio``: SAC gradient steps per new env step (2: 2000 steps per 1000-step epoch, 26-55 s
    on one thread of the loaded 2-core development machine; SAC learns Leg2R in 3-4 epochs with
    it; the former 10 cost minutes per epoch on a CPU; raise it on a GPU).
    ``initial_random_steps``: uniform random actions until that many transitions were observed
    (1000 = the first Pendulum epoch / one Leg2R episode). ``min_model_data``: D_ENV rows needed
    before the model is trained.
    ``task_reward``: "" (default) -> rewards in model rollouts come from the model's reward head;
    a task id from ``envs.task_rewards.TASK_REWARDS`` (e.g. "Leg2R-v0") -> they are that task's
    known reward evaluated on the model's predicted next state, and the adaptive share above uses
    the R^2 of that reward (computed from the model's mean next state) instead of the head's.
    """

    algo: str = "mdemorl"
    sac: SACConfig = field(default_factory=SACConfig)
    model: EnsembleConfig = field(default_factory=EnsembleConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    env_buffer_capacity: int = 1_000_000
    mpc_buffer_capacity: int = 200_000
    mpc_retain_epochs: int = 2
    real_ratio: float = 0.1
    adaptive_real_ratio: bool = True
    utd_ratio: float = 2.0
    initial_random_steps: int = 1000
    min_model_data: int = 200
    task_reward: str = ""

    def __post_init__(self) -> None:
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if self.task_reward and self.task_reward not in TASK_REWARDS:
            raise ValueError(
                f"task_reward must be '' or one of {sorted(TASK_REWARDS)}, got {self.task_reward!r}"
            )
        if not 0.0 <= self.real_ratio <= 1.0:
            raise ValueError(f"real_ratio must be in [0, 1], got {self.real_ratio}")
        if self.utd_ratio < 0.0:
            raise ValueError(f"utd_ratio must be >= 0, got {self.utd_ratio}")
        if self.mpc_retain_epochs < 1:
            raise ValueError(f"mpc_retain_epochs must be >= 1, got {self.mpc_retain_epochs}")


def planner_config_for(algo: str, planner: PlannerConfig) -> PlannerConfig:
    """The planner settings ``algo`` implies: mdemorl -> elite utility; mopac -> exp utility with
    policy samples. Other fields are kept as configured."""
    if algo == "mopac":
        return dataclasses.replace(planner, utility="exp", sample_policy=True)
    return dataclasses.replace(planner, utility="elite")


class Agent:
    """Acts, stores transitions and runs one epoch of model / planner / SAC updates."""

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
        self.planner = DMDMPCPlanner(planner_config_for(config.algo, config.planner))
        self.d_env = ReplayBuffer(obs_dim, act_dim, config.env_buffer_capacity)
        self.d_mpc = ReplayBuffer(obs_dim, act_dim, config.mpc_buffer_capacity)
        self.torch_generator = torch.Generator(device=self.device)
        self.torch_generator.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.env_steps = 0
        self.steps_at_last_update = 0
        self.sac_updates = 0
        self.last_horizon = config.schedule.h_start
        # Model rows each inner loop added to D_MPC, newest last (for mpc_retain_epochs).
        self.mpc_rows_per_epoch: list[int] = []
        self.model_fitted = False
        self.model_reward_r2 = 0.0

    @property
    def actor(self) -> TanhGaussianActor:
        return self.sac.actor

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """``[O]`` observation -> ``[A]`` float32 action in [-1, 1]. Uniform random while fewer
        than ``initial_random_steps`` transitions were observed (unless ``deterministic``)."""
        obs_array = np.asarray(obs, dtype=np.float32)
        if obs_array.shape != (self.obs_dim,):
            raise ValueError(f"obs must have shape ({self.obs_dim},), got {obs_array.shape}")
        if not deterministic and self.env_steps < self.config.initial_random_steps:
            return self.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
        with torch.no_grad():
            obs_tensor = torch.as_tensor(obs_array, device=self.device).unsqueeze(0)
            action = self.actor.sample(obs_tensor, self.torch_generator, deterministic)[0]
        return action[0].cpu().numpy().astype(np.float32)

    def observe(
        self, obs: np.ndarray, act: np.ndarray, rew: float, next_obs: np.ndarray, terminated: bool
    ) -> None:
        """Append one real transition to D_ENV (``terminated`` only for true terminal states)."""
        self.d_env.add(obs, act, float(rew), next_obs, bool(terminated))
        self.env_steps += 1

    def plan(self, obs: np.ndarray, horizon: int | None = None) -> PlanResult:
        """DMD-MPC from ``[O]`` or ``[B x O]`` observation(s) with the current model, policy and
        critic (planner node / MPC mode). ``horizon`` defaults to the one of the last update.
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
        return self._plan_tensor(obs_tensor, self.last_horizon if horizon is None else horizon)

    def _model_step(
        self, obs: torch.Tensor, act: torch.Tensor, generator: torch.Generator, sample_noise: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One TS-1 model step ``N x O``, ``N x A`` -> (next_obs ``N x O``, reward ``N``), the
        reward from the task's known function when ``task_reward`` is set."""
        assert self.model is not None
        next_obs, reward = self.model.step(obs, act, generator, sample_noise=sample_noise)
        if self.reward_fn is not None:
            reward = self.reward_fn(obs, act, next_obs)
        return next_obs, reward

    def _plan_tensor(self, start: torch.Tensor, horizon: int) -> PlanResult:
        sample_noise = self.planner.config.sample_model_noise
        return self.planner.plan(
            start,
            horizon,
            lambda o, a, g: self._model_step(o, a, g, sample_noise),
            self.actor.policy_action,
            self._terminal_value,
            self.torch_generator,
        )

    def _terminal_value(self, obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``N x O`` -> ``N`` soft value V(x_H); 0 before the first SAC step, when the critic is
        still its random initialisation (its output would only add noise to the returns)."""
        if self.sac_updates == 0:
            return torch.zeros(obs.shape[0], device=obs.device, dtype=obs.dtype)
        return self.sac.soft_value(obs, generator)

    def _reward_r2(self, new_steps: int) -> float:
        """R^2 of the (elite-mean) model reward on the newest ``new_steps`` real transitions,
        clipped to [0, 1]; 0 before the model was first fitted or with fewer than 2 rows. With a
        ``task_reward`` the prediction is that reward of the elite-mean predicted next state."""
        if self.model is None or not self.model_fitted or new_steps < 2:
            return 0.0
        data = self.d_env.newest(new_steps)
        obs = torch.as_tensor(data["obs"], device=self.device)
        act = torch.as_tensor(data["act"], device=self.device)
        reward = torch.as_tensor(data["rew"], device=self.device)
        with torch.no_grad():
            mean, _ = self.model.predict(torch.cat([obs, act], dim=1))
        elite_mean = mean[self.model.elite_indices].mean(0)
        if self.reward_fn is None:
            predicted = elite_mean[:, -1]
        else:
            predicted = self.reward_fn(obs, act, obs + elite_mean[:, : self.obs_dim])
        error = (predicted - reward).pow(2).mean()
        # The floor keeps a constant reward finite: a model that predicts it exactly scores 1.
        variance = reward.var(unbiased=False).clamp_min(1e-8)
        return float((1.0 - error / variance).clamp(0.0, 1.0).item())

    def effective_real_ratio(self) -> float:
        """Share of real rows in the SAC minibatches of this epoch (see ``adaptive_real_ratio``)."""
        if not self.config.adaptive_real_ratio:
            return self.config.real_ratio
        return 1.0 - (1.0 - self.config.real_ratio) * self.model_reward_r2

    def _retire_stale_model_rows(self, added: int) -> None:
        self.mpc_rows_per_epoch = [*self.mpc_rows_per_epoch, added][
            -self.config.mpc_retain_epochs :
        ]
        self.d_mpc.keep_newest(sum(self.mpc_rows_per_epoch))

    def _inner_loop(self, epoch: int, new_steps: int) -> dict[str, float]:
        """Steps 2-4: score the model on the new real data, train it, then fill D_MPC (planner
        or MBPO rollouts)."""
        assert self.model is not None
        model = self.model
        self.model_reward_r2 = self._reward_r2(new_steps)
        metrics = model.train_on(self.d_env.all(), self.torch_generator, self.device)
        self.model_fitted = True
        horizon = horizon_at(epoch, self.config.schedule)
        batch = batch_at(epoch, self.config.schedule)
        indices = self.d_env.sample_indices(batch, self.rng)
        start = torch.as_tensor(self.d_env.obs[indices], device=self.device)
        self.last_horizon = horizon
        metrics.update(horizon=float(horizon), mpc_batch=float(batch))
        if self.config.algo == "mbpo":
            obs, act, rew, next_obs = rollout_policy(
                start,
                horizon,
                lambda o, a, g: self._model_step(o, a, g, sample_noise=True),
                self.actor.policy_action,
                self.torch_generator,
            )
        else:
            result = self._plan_tensor(start, horizon)
            obs, act, rew, next_obs = result.obs, result.actions, result.rewards, result.next_obs
            metrics.update(
                mpc_return=float(result.returns.mean().item()),
                mpc_nominal_return=float(result.nominal_returns.mean().item()),
            )
        rows = batch * horizon
        self.d_mpc.add_batch(
            obs.reshape(rows, self.obs_dim).cpu().numpy(),
            act.reshape(rows, self.act_dim).cpu().numpy(),
            rew.reshape(rows).cpu().numpy(),
            next_obs.reshape(rows, self.obs_dim).cpu().numpy(),
            np.zeros(rows, dtype=np.float32),
        )
        self._retire_stale_model_rows(rows)
        return metrics

    def update(
        self, epoch: int, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, float]:
        """One epoch of Algorithm 1 steps 2-5 on the data observed so far.

        Returns model_loss, holdout_mse, holdout_nll, critic_loss, actor_loss, alpha, entropy,
        horizon, mpc_batch, mpc_return, mpc_nominal_return, sac_steps, real_ratio (used this
        epoch), model_reward_r2, d_env, d_mpc (NaN where not applicable).
        ``progress(done, total)`` is called after each SAC gradient step.
        """
        nan = float("nan")
        metrics: dict[str, float] = dict.fromkeys(
            (
                "model_loss",
                "holdout_mse",
                "holdout_nll",
                "critic_loss",
                "actor_loss",
                "entropy",
                "horizon",
                "mpc_batch",
                "mpc_return",
                "mpc_nominal_return",
            ),
            nan,
        )
        new_steps = self.env_steps - self.steps_at_last_update
        self.steps_at_last_update = self.env_steps
        if self.model is not None and len(self.d_env) >= self.config.min_model_data:
            metrics.update(self._inner_loop(epoch, new_steps))
        real_ratio = self.effective_real_ratio()
        num_steps = int(round(self.config.utd_ratio * new_steps)) if len(self.d_env) > 0 else 0
        sums: dict[str, float] = {}
        for step in range(num_steps):
            batch = sample_mixed(
                self.d_env,
                self.d_mpc,
                self.config.sac.batch_size,
                real_ratio,
                self.rng,
                self.device,
            )
            for name, value in self.sac.update(batch, self.torch_generator).items():
                sums[name] = sums.get(name, 0.0) + value
            self.sac_updates += 1
            if progress is not None:
                progress(step + 1, num_steps)
        for name in ("critic_loss", "actor_loss", "entropy"):
            if name in sums:
                metrics[name] = sums[name] / num_steps
        metrics.update(
            alpha=self.sac.alpha,
            sac_steps=float(num_steps),
            real_ratio=real_ratio,
            model_reward_r2=self.model_reward_r2,
            d_env=float(len(self.d_env)),
            d_mpc=float(len(self.d_mpc)),
        )
        return metrics

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
                "sac_updates": self.sac_updates,
                "planner_max_rows": self.planner.max_rows_per_call,
                "last_horizon": self.last_horizon,
                "mpc_rows_per_epoch": list(self.mpc_rows_per_epoch),
                "model_fitted": self.model_fitted,
                "model_reward_r2": self.model_reward_r2,
            },
            "torch_generator": self.torch_generator.get_state(),
            "numpy_generator": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output from an agent built with the same dims and config."""
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
        self.d_env.load_state_dict(state["d_env"])
        self.d_mpc.load_state_dict(state["d_mpc"])
        counters = state["counters"]
        self.env_steps = int(counters["env_steps"])
        self.steps_at_last_update = int(counters["steps_at_last_update"])
        self.sac_updates = int(counters["sac_updates"])
        self.planner.max_rows_per_call = int(counters["planner_max_rows"])
        self.last_horizon = int(counters["last_horizon"])
        self.mpc_rows_per_epoch = [int(n) for n in counters["mpc_rows_per_epoch"]]
        self.model_fitted = bool(counters["model_fitted"])
        self.model_reward_r2 = float(counters["model_reward_r2"])
        self.torch_generator.set_state(state["torch_generator"].cpu())
        self.rng.bit_generator.state = state["numpy_generator"]
