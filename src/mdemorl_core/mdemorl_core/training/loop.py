"""The training loop of Algorithm 1, shared by all algorithms (mdemorl, mbpo, mopac, sac).

Per epoch: a fresh episode, `steps_per_epoch` env steps acting with the agent (each transition
fed to `agent.observe`, then `agent.after_env_step` runs whatever the interleaved schedule has due;
an episode still running when the epoch ends is cut), `agent.update` (in the `epoch` update mode
the model, schedules, inner loop and SAC steps), deterministic evaluation of the actor (and, with
`eval_planner_episodes`, of the planner as the controller), a progress row, TensorBoard scalars and
an atomic checkpoint. Because every epoch starts a new episode and the checkpoint
holds the agent's state plus every RNG state, `resume=True` continues a killed run exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

from mdemorl_core.agent import Agent, AgentConfig
from mdemorl_core.agents.model_data import ActingPlanner
from mdemorl_core.config import ConfigError, TrainConfig, config_to_dict
from mdemorl_core.envs_util import get_rng_state, make_env, set_rng_state, space_dims
from mdemorl_core.training.checkpoint import load_checkpoint, save_checkpoint
from mdemorl_core.training.evaluation import EvalResult, evaluate
from mdemorl_core.training.progress_log import AGENT_METRICS, COLUMNS, ProgressLog
from mdemorl_core.training.rng_state import (
    global_rng_states,
    restore_global_rng_states,
    seed_global_rngs,
)
from mdemorl_core.training.run_dir import (
    RunDirError,
    RunPaths,
    check_new_run,
    check_resumable,
    create_run,
    read_run_config,
    write_run_config,
)

CHECKPOINT_FORMAT = 1


class TrainableAgent(Protocol):
    """What the loop needs from an agent (mdemorl_core.agent.Agent satisfies it)."""

    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray: ...

    def observe(
        self, obs: np.ndarray, act: np.ndarray, rew: float, next_obs: np.ndarray, terminated: bool
    ) -> None: ...

    def after_env_step(self) -> dict[str, float]: ...

    def start_episode(self) -> None: ...

    def update(
        self, epoch: int, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


AgentFactory = Callable[[int, int, AgentConfig, torch.device, int], TrainableAgent]


def default_agent_factory(
    obs_dim: int, act_dim: int, config: AgentConfig, device: torch.device, seed: int
) -> TrainableAgent:
    """The real M-DeMoRL agent (tests may pass another factory to `train`)."""
    return Agent(obs_dim, act_dim, config, device, seed)


@dataclass(frozen=True)
class TrainSummary:
    """Outcome of `train` (numbers over all epochs of the run, including resumed ones)."""

    out_dir: Path
    epochs_done: int
    env_steps: int
    final_eval_return: float
    best_eval_return: float
    wall_seconds: float
    stopped_early: bool

    def describe(self) -> str:
        """One paragraph for the console."""
        status = "stopped early after" if self.stopped_early else "finished"
        return (
            f"Training {status} {self.epochs_done} epochs ({self.env_steps} env steps) in "
            f"{self.wall_seconds:.1f} s of wall time this session. Final evaluation return "
            f"{self.final_eval_return:.2f}, best {self.best_eval_return:.2f}. Outputs in "
            f"{self.out_dir}: config.yaml (resolved config), progress.csv (per-epoch numbers), "
            "checkpoint/ (resume with --resume), tb/ (TensorBoard scalars)."
        )


def resolve_device(name: str) -> torch.device:
    """torch.device for the config's `device`; CUDA must actually be available."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", f"{name!r} requested but torch.cuda.is_available() is False")
    return torch.device(name)


def collect_epoch(
    env: gym.Env[np.ndarray, np.ndarray],
    agent: TrainableAgent,
    steps: int,
    on_step: Callable[[], None] | None = None,
) -> list[float]:
    """Act for `steps` env steps from a fresh episode; returns the returns of finished episodes.

    Episodes end on `terminated` or `truncated` (time limit); the agent only sees `terminated`, so
    a time-limit end is bootstrapped. An episode still running after the last step is cut.
    """
    obs, _ = env.reset()
    agent.start_episode()
    finished: list[float] = []
    episode_return = 0.0
    for step in range(steps):
        action = agent.act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        agent.observe(obs, action, float(reward), next_obs, bool(terminated))
        agent.after_env_step()
        episode_return += float(reward)
        obs = next_obs
        if terminated or truncated:
            finished.append(episode_return)
            episode_return = 0.0
            if step + 1 < steps:
                obs, _ = env.reset()
                agent.start_episode()
        if on_step is not None:
            on_step()
    return finished


def _eval_step_cap(config: TrainConfig, env: gym.Env[Any, Any]) -> int | None:
    # Episodes of envs without a time limit would never end; cap them at one epoch's length.
    spec_limit = env.spec.max_episode_steps if env.spec is not None else None
    return None if (config.max_episode_steps or spec_limit) else config.steps_per_epoch


def evaluate_agent(
    agent: TrainableAgent, env: gym.Env[np.ndarray, np.ndarray], config: TrainConfig, episodes: int
) -> EvalResult:
    """Deterministic episodes of the agent's policy on the run's fixed evaluation start states."""

    def policy(obs: np.ndarray) -> np.ndarray:
        return agent.act(obs, deterministic=True)

    return evaluate(env, policy, config.seed, episodes, _eval_step_cap(config, env))


def evaluate_planner(
    agent: Agent, env: gym.Env[np.ndarray, np.ndarray], config: TrainConfig, episodes: int
) -> EvalResult:
    """The acting planner as the controller (what ``mode:=mpc`` deploys), on the same fixed
    evaluation start states. It plans with its own generator (seeded from the run's seed and the
    agent's env steps) so that evaluating does not change the training run's random stream."""
    generator = torch.Generator(device=agent.device).manual_seed(config.seed + agent.env_steps)
    planner = ActingPlanner(
        lambda obs, horizon, fixed: agent.planner.plan(
            obs, horizon, agent.model_env(), agent.actor.policy_action, generator, fixed
        ),
        agent.config.act_horizon,
    )

    def policy(obs: np.ndarray) -> np.ndarray:
        obs_tensor = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=agent.device)
        with torch.no_grad():
            return planner.act(obs_tensor.unsqueeze(0)).cpu().numpy().astype(np.float32)

    return evaluate(env, policy, config.seed, episodes, _eval_step_cap(config, env), planner.reset)


class _EpochBar:
    """One tqdm bar per epoch: env steps first, then the agent's update steps."""

    def __init__(self, epoch: int, epochs: int, steps: int, enabled: bool | None) -> None:
        self.prefix = f"epoch {epoch + 1}/{epochs}"
        # tqdm's disable=None means "only on a terminal".
        disable = None if enabled is None else not enabled
        self.bar = tqdm(total=steps, desc=f"{self.prefix} env", disable=disable, leave=False)
        self.updating = False

    def step(self) -> None:
        self.bar.update(1)

    def env_done(self) -> None:
        # Model training and the inner loop run before the first SAC step reports progress.
        self.bar.set_description(f"{self.prefix} model+planner")

    def update_progress(self, done: int, total: int) -> None:
        if not self.updating:
            self.updating = True
            self.bar.reset(total=total)
            self.bar.set_description(f"{self.prefix} SAC steps")
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _make_envs(
    config: TrainConfig,
) -> tuple[gym.Env[np.ndarray, np.ndarray], gym.Env[np.ndarray, np.ndarray]]:
    kwargs = dict(config.env_kwargs)
    train_env = make_env(config.env_id, config.seed, config.max_episode_steps, **kwargs)
    eval_env = make_env(config.env_id, config.seed + 1, config.max_episode_steps, **kwargs)
    return train_env, eval_env


def build_agent(
    config: TrainConfig, env: gym.Env[Any, Any], factory: AgentFactory | None = None
) -> TrainableAgent:
    """The agent for `config` on `env`'s spaces (device checked)."""
    obs_dim, act_dim = space_dims(env)
    make = factory or default_agent_factory
    return make(obs_dim, act_dim, config.agent, resolve_device(config.device), config.seed)


def train(
    config: TrainConfig,
    out_dir: Path,
    *,
    resume: bool = False,
    stop_after_epoch: int | None = None,
    show_progress: bool | None = None,
    agent_factory: AgentFactory | None = None,
) -> TrainSummary:
    """Run (or with `resume` continue) a training run in `out_dir`; see the module docstring.

    `stop_after_epoch` ends the session after that epoch's checkpoint (as if killed there).
    `show_progress` None shows tqdm bars only on a terminal.
    """
    started = time.perf_counter()
    paths = RunPaths(Path(out_dir))
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    resolve_device(config.device)
    if resume:
        check_resumable(paths)
    else:
        check_new_run(paths, config)
    seed_global_rngs(config.seed)
    train_env, eval_env = _make_envs(config)
    agent = build_agent(config, train_env, agent_factory)
    progress = ProgressLog(paths.progress)
    rows: list[dict[str, str]] = []
    start_epoch = 0
    if resume:
        state = load_checkpoint(paths.checkpoint_dir)
        _check_checkpoint_matches(state, config)
        agent.load_state_dict(state["agent"])
        set_rng_state(train_env, state["env_rng"])
        set_rng_state(eval_env, state["eval_env_rng"])
        restore_global_rng_states(state["global_rng"])
        start_epoch = int(state["epoch"])
        rows = list(state["progress_rows"])
        write_run_config(paths, config)
    else:
        create_run(paths, config)
    progress.start(rows)

    from torch.utils.tensorboard import SummaryWriter  # slow import, only needed while training

    # On resume, drop TensorBoard events logged after the checkpoint (they will be logged again).
    purge_step = start_epoch * config.steps_per_epoch + 1 if resume else None
    writer = SummaryWriter(str(paths.tensorboard), purge_step=purge_step)
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, config.epochs):
            row, metrics = _run_epoch(config, epoch, train_env, eval_env, agent, show_progress)
            rows.append(progress.append(row))
            _write_scalars(writer, row, metrics)
            last = epoch + 1 == config.epochs
            stop = stop_after_epoch is not None and epoch + 1 >= stop_after_epoch
            if last or stop or (epoch + 1) % config.checkpoint_every == 0:
                _save(paths, config, epoch + 1, agent, train_env, eval_env, rows)
            if stop and not last:
                return _summary(paths, rows, started, stopped_early=True)
    finally:
        writer.close()
        train_env.close()
        eval_env.close()
    return _summary(paths, rows, started, stopped_early=False)


def _run_epoch(
    config: TrainConfig,
    epoch: int,
    train_env: gym.Env[np.ndarray, np.ndarray],
    eval_env: gym.Env[np.ndarray, np.ndarray],
    agent: TrainableAgent,
    show_progress: bool | None,
) -> tuple[dict[str, float | int], dict[str, float]]:
    """One epoch; returns its progress row and everything agent.update reported."""
    epoch_start = time.perf_counter()
    bar = _EpochBar(epoch, config.epochs, config.steps_per_epoch, show_progress)
    try:
        returns = collect_epoch(train_env, agent, config.steps_per_epoch, bar.step)
        bar.env_done()
        # Algorithm 1 counts epochs from 1 (the schedules ramp from epoch 1).
        metrics = agent.update(epoch + 1, bar.update_progress)
    finally:
        bar.close()
    missing = [name for name in AGENT_METRICS if name not in metrics]
    if missing:
        raise KeyError(f"agent.update returned no {missing}")
    evaluated = (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs
    result = evaluate_agent(agent, eval_env, config, config.eval_episodes) if evaluated else None
    planner_result = None
    wants_planner = evaluated and config.eval_planner_episodes > 0
    if wants_planner and isinstance(agent, Agent) and agent.model_fitted:
        planner_result = evaluate_planner(agent, eval_env, config, config.eval_planner_episodes)
    row: dict[str, float | int] = {
        "epoch": epoch + 1,
        "env_steps": (epoch + 1) * config.steps_per_epoch,
        "eval_return": result.mean if result else math.nan,
        "eval_return_std": result.std if result else math.nan,
        "eval_mpc_return": planner_result.mean if planner_result else math.nan,
        "train_return": float(np.mean(returns)) if returns else math.nan,
        "train_episodes": len(returns),
    }
    row.update({name: float(metrics[name]) for name in AGENT_METRICS})
    row["epoch_seconds"] = time.perf_counter() - epoch_start
    return row, metrics


def _write_scalars(
    writer: SummaryWriter, row: dict[str, float | int], metrics: dict[str, float]
) -> None:
    """Progress columns as `progress/<name>`, every agent metric as `agent/<name>` (x: env steps)."""
    step = int(row["env_steps"])
    scalars = {f"progress/{name}": float(row[name]) for name in COLUMNS[2:]}
    scalars.update({f"agent/{name}": float(value) for name, value in metrics.items()})
    for tag, value in scalars.items():
        if math.isfinite(value):
            writer.add_scalar(tag, value, step)
    writer.flush()


def save_run_checkpoint(
    paths: RunPaths, config: TrainConfig, epochs_done: int, agent: TrainableAgent, **extra: Any
) -> Path:
    """Atomically write the run's checkpoint: format, config, epoch, agent state, plus ``extra``
    entries (RNG states, progress rows). What the planner node and ``--resume`` read."""
    state: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "config": config_to_dict(config),
        "epoch": epochs_done,
        "agent": agent.state_dict(),
        **extra,
    }
    return save_checkpoint(paths.checkpoint_dir, state)


def _save(
    paths: RunPaths,
    config: TrainConfig,
    epochs_done: int,
    agent: TrainableAgent,
    train_env: gym.Env[Any, Any],
    eval_env: gym.Env[Any, Any],
    rows: list[dict[str, str]],
) -> None:
    save_run_checkpoint(
        paths,
        config,
        epochs_done,
        agent,
        env_rng=get_rng_state(train_env),
        eval_env_rng=get_rng_state(eval_env),
        global_rng=global_rng_states(),
        progress_rows=list(rows),
    )


def _check_checkpoint_matches(state: dict[str, Any], config: TrainConfig) -> None:
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint format {state.get('format')!r} != {CHECKPOINT_FORMAT}")
    stored = state["config"]
    for key in ("env_id", "algo", "seed", "steps_per_epoch"):
        if stored[key] != getattr(config, key):
            raise ConfigError(
                key, f"checkpoint has {stored[key]!r}, config has {getattr(config, key)!r}"
            )


def _summary(
    paths: RunPaths, rows: list[dict[str, str]], started: float, stopped_early: bool
) -> TrainSummary:
    returns = [float(r["eval_return"]) for r in rows if not math.isnan(float(r["eval_return"]))]
    return TrainSummary(
        out_dir=paths.root,
        epochs_done=int(rows[-1]["epoch"]) if rows else 0,
        env_steps=int(rows[-1]["env_steps"]) if rows else 0,
        final_eval_return=returns[-1] if returns else math.nan,
        best_eval_return=max(returns) if returns else math.nan,
        wall_seconds=time.perf_counter() - started,
        stopped_early=stopped_early,
    )


def evaluate_run(
    run_dir: Path, episodes: int | None = None, device: str | None = None
) -> EvalResult:
    """Load a run's config and latest checkpoint; evaluate its deterministic policy.

    `episodes` defaults to the run's eval_episodes, `device` to the run's device.
    """
    paths = RunPaths(Path(run_dir))
    config = read_run_config(paths.root)
    if device is not None:
        config = replace(config, device=device)
    try:
        state = load_checkpoint(paths.checkpoint_dir)
    except FileNotFoundError as error:
        raise RunDirError(f"{paths.root} has no checkpoint to evaluate: {error}") from error
    env = make_env(config.env_id, config.seed + 1, config.max_episode_steps, **config.env_kwargs)
    try:
        agent = build_agent(config, env)
        agent.load_state_dict(state["agent"])
        return evaluate_agent(agent, env, config, episodes or config.eval_episodes)
    finally:
        env.close()
