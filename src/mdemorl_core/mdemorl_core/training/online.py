"""Algorithm 1 fed from outside: transitions arrive from a robot (the trainer node) or a bag.

:class:`OnlineTrainer` owns the agent, the run directory, the progress log and the checkpoints,
but no environment: the caller hands it transitions with :meth:`OnlineTrainer.add` and runs
:meth:`OnlineTrainer.run_epoch` whenever :meth:`OnlineTrainer.epoch_ready` says an epoch's worth of
new experience (``steps_per_epoch`` transitions) has arrived. Its run directories have the layout
of ``mdemorl train`` (config.yaml, progress.csv, checkpoint/, tb/), so ``mdemorl eval``,
``mdemorl plot`` and the planner node read them the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mdemorl_core.agent import Agent
from mdemorl_core.config import TrainConfig
from mdemorl_core.policy_io import serialize_actor
from mdemorl_core.training.checkpoint import load_checkpoint
from mdemorl_core.training.loop import resolve_device, save_run_checkpoint
from mdemorl_core.training.progress_log import AGENT_METRICS, ProgressLog
from mdemorl_core.training.run_dir import (
    RunPaths,
    check_resumable,
    prepare_new_run,
    read_run_config,
)

if TYPE_CHECKING:
    from mdemorl_core.bags import BagReadReport


class OnlineTrainer:
    """Trains an agent on externally supplied transitions, one epoch per ``steps_per_epoch``."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        obs_dim: int,
        act_dim: int,
        resume: bool = False,
        init: Path | None = None,
    ) -> None:
        """Start a new run in ``run_dir`` (refused if one is there), or with ``resume`` continue
        the run there from its last checkpoint (its stored config wins over ``config``).
        ``init``: a new run that starts from another run's last checkpoint (networks, buffers,
        counters, epoch and progress rows), e.g. to continue it with a bag's data."""
        self.paths = RunPaths(Path(run_dir))
        if resume and init is not None:
            raise ValueError("resume and init exclude each other")
        if resume:
            check_resumable(self.paths)
            config = read_run_config(self.paths.root)
        if init is not None:
            check_resumable(RunPaths(Path(init)))
        self.config = config
        self.agent = Agent(
            obs_dim, act_dim, config.agent, resolve_device(config.device), config.seed
        )
        self.progress = ProgressLog(self.paths.progress)
        self.rows: list[dict[str, str]] = []
        self.epoch = 0
        if not resume:
            prepare_new_run(self.paths, config)
        source = self.paths if resume else RunPaths(Path(init)) if init is not None else None
        if source is not None:
            state = load_checkpoint(source.checkpoint_dir)
            agent_state = state["agent"]
            dims = (int(agent_state["obs_dim"]), int(agent_state["act_dim"]))
            if dims != (obs_dim, act_dim):
                raise ValueError(
                    f"checkpoint of {source.root} has obs/action dims {dims[0]}/{dims[1]}, "
                    f"the task has {obs_dim}/{act_dim}"
                )
            self.agent.load_state_dict(agent_state)
            self.epoch = int(state["epoch"])
            self.rows = list(state["progress_rows"])
        self.progress.start(self.rows)
        self.new_steps = 0
        self.episode_return = 0.0
        self.finished_returns: list[float] = []
        self.rejected = 0
        self.stored = 0  # transitions stored by this trainer (this process)
        self.last_update_seconds = math.nan
        self.last_update_cpu_seconds = math.nan  # CPU time of the calling thread in the update
        self.epoch_started = time.perf_counter()

    @property
    def obs_dim(self) -> int:
        return self.agent.obs_dim

    @property
    def act_dim(self) -> int:
        return self.agent.act_dim

    def add(
        self,
        obs: np.ndarray,
        act: np.ndarray,
        rew: float,
        next_obs: np.ndarray,
        terminated: bool,
        truncated: bool,
        counts_for_epoch: bool = True,
    ) -> None:
        """Append one transition to D_ENV. Raises ValueError (and counts it in ``rejected``) for
        wrong dimensions, NaN/Inf, or actions outside [-1, 1]; nothing is stored then. With the
        agent's ``update_mode: interleaved`` the work due after this step (model refit, SAC
        steps: :meth:`Agent.after_env_step`) runs before it returns, exactly as in the offline
        loop, and :meth:`run_epoch` only logs and checkpoints.

        ``counts_for_epoch=False`` stores it without advancing :meth:`epoch_ready` (the episodic
        protocol's stale transitions: produced by an older policy than the one now acting)."""
        obs_a = np.asarray(obs, dtype=np.float32).reshape(-1)
        act_a = np.asarray(act, dtype=np.float32).reshape(-1)
        next_a = np.asarray(next_obs, dtype=np.float32).reshape(-1)
        problem = ""
        if obs_a.size != self.obs_dim or next_a.size != self.obs_dim or act_a.size != self.act_dim:
            problem = (
                f"dimensions obs {obs_a.size}/next_obs {next_a.size}/action {act_a.size}, "
                f"expected {self.obs_dim}/{self.obs_dim}/{self.act_dim}"
            )
        elif not (
            np.all(np.isfinite(obs_a)) and np.all(np.isfinite(next_a)) and math.isfinite(rew)
        ):
            problem = "NaN or Inf in observation or reward"
        elif not np.all(np.abs(act_a) <= 1.0 + 1e-6) or not np.all(np.isfinite(act_a)):
            problem = "action outside [-1, 1]"
        if problem:
            self.rejected += 1
            raise ValueError(f"transition rejected: {problem}")
        self.agent.observe(obs_a, act_a, float(rew), next_a, bool(terminated))
        self.agent.after_env_step()
        self.new_steps += int(counts_for_epoch)
        self.stored += 1
        self.episode_return += float(rew)
        if terminated or truncated:
            self.finished_returns.append(self.episode_return)
            self.episode_return = 0.0

    @property
    def interleaved(self) -> bool:
        """Whether learning runs as transitions arrive (``agent.update_mode: interleaved``)."""
        return self.config.agent.update_mode == "interleaved"

    def epoch_ready(self) -> bool:
        return self.new_steps >= self.config.steps_per_epoch

    @property
    def done(self) -> bool:
        return self.epoch >= self.config.epochs

    def run_epoch(self, progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
        """Algorithm 1 steps 2-5 on the data so far, then a progress row and a checkpoint.
        ``progress(done, total)`` follows the SAC steps (it may raise to abandon the epoch: then
        nothing is logged or checkpointed).

        Returns the progress row as numbers (``eval_return`` is NaN: evaluation needs a simulator
        and is ``mdemorl eval``'s job; ``train_return`` is the mean return of the episodes that
        ended during this epoch).
        """
        update_started, cpu_started = time.perf_counter(), time.thread_time()
        metrics = self.agent.update(self.epoch + 1, progress)
        self.last_update_seconds = time.perf_counter() - update_started
        self.last_update_cpu_seconds = time.thread_time() - cpu_started
        self.epoch += 1
        row: dict[str, float] = {
            "epoch": self.epoch,
            "env_steps": self.agent.env_steps,
            "eval_return": math.nan,
            "eval_return_std": math.nan,
            "eval_mpc_return": math.nan,
            "train_return": float(np.mean(self.finished_returns))
            if self.finished_returns
            else math.nan,
            "train_episodes": len(self.finished_returns),
        }
        row.update({name: float(metrics[name]) for name in AGENT_METRICS})
        row["epoch_seconds"] = time.perf_counter() - self.epoch_started
        self.rows.append(self.progress.append({k: _as_number(k, v) for k, v in row.items()}))
        self.save()
        self.new_steps = 0
        self.finished_returns = []
        self.epoch_started = time.perf_counter()
        return row

    def save(self) -> None:
        """Atomic checkpoint in the ``mdemorl train`` format (without environment RNG states)."""
        save_run_checkpoint(
            self.paths, self.config, self.epoch, self.agent, progress_rows=list(self.rows)
        )

    def policy_blob(self) -> bytes:
        """The current actor, serialized for ``mdemorl_msgs/PolicyUpdate`` (version = epoch)."""
        return serialize_actor(self.agent.actor, algorithm=self.config.algo, version=self.epoch)


def _as_number(name: str, value: float) -> float | int:
    return int(value) if name in ("epoch", "env_steps", "train_episodes") else float(value)


def retrain_from_bags(
    bags: Sequence[Path],
    config: TrainConfig,
    run_dir: Path,
    obs_dim: int,
    act_dim: int,
    init: Path | None = None,
) -> tuple[OnlineTrainer, list[tuple[Path, BagReadReport]]]:
    """Offline retraining: replay recorded bags' transitions, bag after bag in their recorded
    order, running an epoch after every ``steps_per_epoch`` of them, exactly as the trainer node
    did live (a last partial epoch runs too). ``init``: start from that run's checkpoint.

    Every bag is read (and checked against the task's dimensions) before training starts.
    Returns the trainer (its run directory holds the result) and each bag's read report.
    """
    from mdemorl_core.bags import read_transitions

    loaded = []
    for bag in bags:
        data, report = read_transitions(bag)
        if data.obs.shape[1] != obs_dim or data.act.shape[1] != act_dim:
            raise ValueError(
                f"bag {bag} has transitions with obs/action dims {data.obs.shape[1]}/"
                f"{data.act.shape[1]}, the task {config.env_id} has {obs_dim}/{act_dim}"
            )
        loaded.append((Path(bag), data, report))
    trainer = OnlineTrainer(config, run_dir, obs_dim, act_dim, init=init)
    for _, data, _ in loaded:
        for i in range(len(data)):
            trainer.add(
                data.obs[i],
                data.act[i],
                float(data.rew[i]),
                data.next_obs[i],
                bool(data.terminated[i]),
                bool(data.truncated[i]),
            )
            if trainer.epoch_ready():
                trainer.run_epoch()
    if trainer.new_steps:
        trainer.run_epoch()
    return trainer, [(bag, report) for bag, _, report in loaded]


def load_run_actor(run_dir: Path) -> tuple[bytes, int, str, int, int]:
    """The actor of a run's last checkpoint, serialized for ``mdemorl_msgs/PolicyUpdate``
    (deployment without a trainer). Loads only the SAC networks, not the agent's buffers.

    Returns (blob, version = the checkpoint's epoch, algorithm, obs_dim, act_dim).
    """
    import torch

    from mdemorl_core.agents.sac import SAC

    paths = RunPaths(Path(run_dir))
    check_resumable(paths)
    config = read_run_config(paths.root)
    state = load_checkpoint(paths.checkpoint_dir)
    agent_state = state["agent"]
    obs_dim, act_dim = int(agent_state["obs_dim"]), int(agent_state["act_dim"])
    sac = SAC(obs_dim, act_dim, config.agent.sac, torch.device("cpu"))
    sac.load_state_dict(agent_state["sac"])
    version = int(state["epoch"])
    blob = serialize_actor(sac.actor, algorithm=config.algo, version=version)
    return blob, version, config.algo, obs_dim, act_dim
