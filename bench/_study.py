"""Learning-study machinery shared by sample_efficiency.py, elite_fraction.py and study.py.

A study is a list of jobs (algorithm x seed x config overrides), each a full training run:
this project's algorithms run through `mdemorl_core.training.loop.train` (the loop behind
`mdemorl train`), stable-baselines3 SAC through its own `learn()` with matched settings and the
SAME evaluation protocol (H2's `evaluate`: deterministic actions, the run's fixed evaluation start
states, the same episode count, an eval env seeded like the loop's). Jobs run in a pool of worker
processes with one torch thread each (two workers on the 2-core machine). The metrics of the
multi-task study (steps to a threshold, normalised AUC, seed-bootstrap intervals) live here too.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Budget:
    """What every run of a study gets (identical across algorithms)."""

    env_id: str
    epochs: int
    steps_per_epoch: int
    seeds: int
    eval_episodes: int
    utd_ratio: float
    max_episode_steps: int | None = None
    initial_random_steps: int = 1000

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env_id,
            "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "env_steps": self.epochs * self.steps_per_epoch,
            "seeds": self.seeds,
            "eval_episodes": self.eval_episodes,
            "utd_ratio": self.utd_ratio,
            "max_episode_steps": self.max_episode_steps,
            "initial_random_steps": self.initial_random_steps,
        }


@dataclass(frozen=True)
class Job:
    """One training run. `group` names the curve it belongs to (e.g. "mdemorl", "p=10")."""

    group: str
    algo: str  # "mdemorl" | "mbpo" | "mopac" | "sac" | "sb3_sac"
    seed: int
    budget: Budget
    run_dir: Path
    agent_overrides: dict[str, Any] = field(default_factory=dict)
    threads: int = 1
    device: str = "cpu"
    # TrainConfig fields besides the budget's (e.g. eval_planner_episodes).
    train_overrides: dict[str, Any] = field(default_factory=dict)
    # None: one checkpoint at the end of the run (a study that never resumes needs no more).
    checkpoint_every: int | None = None


@dataclass(frozen=True)
class RunResult:
    """Per-epoch evaluation returns of one run and its wall time (seconds).

    ``eval_std``, ``train_returns`` (mean return of the training episodes that ended in the epoch,
    NaN when none did) and ``train_episodes`` are per epoch too; SB3 runs fill them, this
    project's runs keep them in the run's progress.csv."""

    group: str
    algo: str
    seed: int
    returns: list[float]
    wall_seconds: float
    eval_std: list[float] = field(default_factory=list)
    train_returns: list[float] = field(default_factory=list)
    train_episodes: list[int] = field(default_factory=list)


def train_document(job: Job) -> dict[str, Any]:
    """The `mdemorl train` config mapping of one of this project's runs (budget + overrides)."""
    budget = job.budget
    agent: dict[str, Any] = {
        "utd_ratio": budget.utd_ratio,
        "initial_random_steps": budget.initial_random_steps,
    }
    agent.update(job.agent_overrides)
    document: dict[str, Any] = {
        "env_id": budget.env_id,
        "algo": job.algo,
        "epochs": budget.epochs,
        "seed": job.seed,
        "steps_per_epoch": budget.steps_per_epoch,
        "eval_episodes": budget.eval_episodes,
        "max_episode_steps": budget.max_episode_steps,
        "torch_threads": job.threads,
        "device": job.device,
        "checkpoint_every": job.checkpoint_every or budget.epochs,
        **job.train_overrides,
        "agent": agent,
    }
    return document


def _train_ours(job: Job) -> RunResult:
    from mdemorl_core.config import build_train_config
    from mdemorl_core.training.loop import train
    from mdemorl_core.training.progress_log import read_progress_column

    config = build_train_config(train_document(job))
    start = time.perf_counter()
    train(config, job.run_dir, show_progress=False)
    wall = time.perf_counter() - start
    returns = read_progress_column(job.run_dir / "progress.csv", "eval_return")
    return RunResult(job.group, job.algo, job.seed, returns, wall)


def sb3_update_schedule(job: Job) -> tuple[int, int]:
    """(train_freq in env steps, gradient steps per train call) of an SB3 job.

    With ``agent_overrides`` ``update_mode: interleaved`` (our loop's key) SB3 trains every
    ``train_every`` env steps (default 1) with utd x train_every gradient steps; otherwise at the
    end of each epoch with utd x steps_per_epoch of them (our epoch mode)."""
    budget = job.budget
    if job.agent_overrides.get("update_mode") == "interleaved":
        every = int(job.agent_overrides.get("train_every", 1))
    else:
        every = budget.steps_per_epoch
    if every < 1:
        raise ValueError(f"train_every must be >= 1, got {every}")
    return every, max(int(round(budget.utd_ratio * every)), 1)


def train_sb3(job: Job, keep_going: Callable[[float], bool] | None = None) -> RunResult | None:
    """stable-baselines3 SAC with our sizes and update schedule, evaluated by our protocol.

    Matching: 2 x 256 networks, batch 256, lr 3e-4, gamma 0.99, tau 0.005, automatic entropy
    (target -|A|), uniform random actions for the first `initial_random_steps` steps, and the
    same update-to-data ratio applied the same way as our loop does it (`sb3_update_schedule`:
    by default gradient steps at the end of each epoch's `steps_per_epoch` env steps). SB3
    trains only once num_timesteps exceeds learning_starts, hence learning_starts =
    initial_random_steps - 1 (our agent trains at the end of the first epoch too).
    Training-episode returns come from the Monitor wrapper SB3 puts around the env (episodes run
    across epoch boundaries here, unlike in our loop, which cuts them).
    `keep_going(seconds of the last epoch)` is asked after each epoch; False abandons the run
    (returns None: SB3 runs are not resumable and simply start again).
    """
    import torch
    from stable_baselines3 import SAC as SB3SAC

    from mdemorl_core.envs_util import make_env
    from mdemorl_core.training.evaluation import evaluate

    budget = job.budget
    torch.set_num_threads(job.threads)
    torch.manual_seed(job.seed)
    train_env = make_env(budget.env_id, job.seed, budget.max_episode_steps)
    eval_env = make_env(budget.env_id, job.seed + 1, budget.max_episode_steps)
    train_freq, gradient_steps = sb3_update_schedule(job)
    model = SB3SAC(
        "MlpPolicy",
        train_env,
        learning_rate=3e-4,
        buffer_size=max(budget.epochs * budget.steps_per_epoch, 1),
        learning_starts=max(budget.initial_random_steps - 1, 0),
        batch_size=256,
        tau=0.005,
        gamma=0.99,
        train_freq=(train_freq, "step"),
        gradient_steps=gradient_steps,
        policy_kwargs={"net_arch": [256, 256]},
        seed=job.seed,
        device="cpu",
        verbose=0,
    )
    spec = eval_env.spec
    has_limit = budget.max_episode_steps or (spec is not None and spec.max_episode_steps)
    step_cap = None if has_limit else budget.steps_per_epoch

    def policy(obs: np.ndarray) -> np.ndarray:
        action, _ = model.predict(obs, deterministic=True)
        return np.asarray(action, dtype=np.float32)

    returns: list[float] = []
    stds: list[float] = []
    train_returns: list[float] = []
    train_episodes: list[int] = []
    episodes_seen = 0
    start = time.perf_counter()
    try:
        for epoch in range(budget.epochs):
            epoch_start = time.perf_counter()
            model.learn(total_timesteps=budget.steps_per_epoch, reset_num_timesteps=False)
            result = evaluate(eval_env, policy, job.seed, budget.eval_episodes, step_cap)
            returns.append(result.mean)
            stds.append(result.std)
            finished = list(model.get_env().env_method("get_episode_rewards")[0])
            new = finished[episodes_seen:]
            episodes_seen = len(finished)
            train_returns.append(float(np.mean(new)) if new else math.nan)
            train_episodes.append(len(new))
            last = epoch + 1 == budget.epochs
            seconds = time.perf_counter() - epoch_start
            if keep_going is not None and not last and not keep_going(seconds):
                return None
    finally:
        train_env.close()
        eval_env.close()
    wall = time.perf_counter() - start
    return RunResult(
        job.group, job.algo, job.seed, returns, wall, stds, train_returns, train_episodes
    )


def run_job(job: Job) -> RunResult:
    """Runs one job in the calling process."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    if job.algo == "sb3_sac":
        result = train_sb3(job)
        assert result is not None  # only a keep_going callback abandons a run
        return result
    return _train_ours(job)


def run_jobs(jobs: list[Job], workers: int) -> list[RunResult]:
    """Runs `jobs` (in-process when workers == 1, else a spawn pool); keeps the input order."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers == 1:
        return [_logged(job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(_logged, jobs))


def _logged(job: Job) -> RunResult:
    start = time.perf_counter()
    result = run_job(job)
    print(
        f"[study] {job.group} seed {job.seed}: final {result.returns[-1]:.2f} "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    return result


def epochs_to_threshold(curve: list[float], threshold: float | None) -> int | None:
    """First epoch (1-based) whose return is >= threshold; None if never (or no threshold)."""
    if threshold is None:
        return None
    for epoch, value in enumerate(curve, start=1):
        if not math.isnan(value) and value >= threshold:
            return epoch
    return None


def summarise(results: list[RunResult], threshold: float | None) -> dict[str, Any]:
    """Curve statistics over the seeds of ONE group (all runs must have the same length)."""
    curves = np.array([result.returns for result in results], dtype=np.float64)
    mean = curves.mean(axis=0)
    std = curves.std(axis=0)
    finals = curves[:, -1]
    return {
        "epochs_to_threshold": epochs_to_threshold(mean.tolist(), threshold),
        "epochs_to_threshold_per_seed": [
            epochs_to_threshold(result.returns, threshold) for result in results
        ],
        "final_return_mean": float(mean[-1]),
        "final_return_std": float(finals.std()),
        "returns_mean": mean.tolist(),
        "returns_std": std.tolist(),
        "returns_per_seed": curves.tolist(),
        "seeds": [result.seed for result in results],
        "wall_seconds": float(np.mean([result.wall_seconds for result in results])),
        "wall_seconds_total": float(np.sum([result.wall_seconds for result in results])),
    }


def steps_to_threshold(
    steps: Sequence[int], curve: Sequence[float], threshold: float
) -> int | None:
    """Env steps of the first evaluation whose return is >= threshold; None if never."""
    for step, value in zip(steps, curve, strict=True):
        if not math.isnan(value) and value >= threshold:
            return int(step)
    return None


def normalised_auc(steps: Sequence[int], curve: Sequence[float], budget_steps: int) -> float:
    """Area under the evaluation curve over [0, budget_steps] divided by budget_steps.

    Each evaluation's return stands for the env steps since the previous one (a right Riemann
    sum: with one evaluation per epoch it is the mean of the curve), so the value is in return
    units: the return the deployed policy scored on average over the budget. NaN evaluations
    (epochs not evaluated) extend the next evaluation's interval backwards.
    """
    if budget_steps < 1:
        raise ValueError(f"budget_steps must be >= 1, got {budget_steps}")
    area = 0.0
    previous = 0
    for step, value in zip(steps, curve, strict=True):
        if step > budget_steps:
            break
        if math.isnan(value):
            continue
        area += value * (step - previous)
        previous = step
    if previous != budget_steps:
        raise ValueError(f"the curve's last evaluation is at {previous}, not at {budget_steps}")
    return area / budget_steps


def weighted_train_return(returns: Sequence[float], episodes: Sequence[int]) -> float:
    """Mean training-episode return over a run: per-epoch means weighted by their episode counts
    (NaN when no training episode ended)."""
    total = sum(r * n for r, n in zip(returns, episodes, strict=True) if n > 0)
    count = sum(n for n in episodes if n > 0)
    return total / count if count else math.nan


BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0


def bootstrap_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one per seed); fixed RNG seed."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = data[rng.integers(0, data.size, (BOOTSTRAP_RESAMPLES, data.size))].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_ratio_ci(
    numerator: Sequence[float], denominator: Sequence[float], level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(numerator) / mean(denominator), the two samples
    (seeds of two arms) resampled independently; fixed RNG seed."""
    top = np.asarray(numerator, dtype=np.float64)
    bottom = np.asarray(denominator, dtype=np.float64)
    if top.size == 0 or bottom.size == 0:
        raise ValueError("bootstrap_ratio_ci needs at least one value on each side")
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    top_means = top[rng.integers(0, top.size, (BOOTSTRAP_RESAMPLES, top.size))].mean(axis=1)
    bottom_means = bottom[rng.integers(0, bottom.size, (BOOTSTRAP_RESAMPLES, bottom.size))].mean(
        axis=1
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = top_means / bottom_means
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return float(low), float(high)


def group_results(results: list[RunResult]) -> dict[str, list[RunResult]]:
    groups: dict[str, list[RunResult]] = {}
    for result in results:
        groups.setdefault(result.group, []).append(result)
    return groups


def plot_curves(
    curves: dict[str, dict[str, Any]],
    threshold: float | None,
    steps_per_epoch: int,
    title: str,
    path: Path,
) -> Path:
    """PNG of mean ± std return per epoch for each group, with the threshold line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.0, 4.5))
    for name, curve in curves.items():
        mean = np.asarray(curve["returns_mean"])
        std = np.asarray(curve["returns_std"])
        steps = np.arange(1, len(mean) + 1) * steps_per_epoch
        axes.plot(steps, mean, label=name)
        axes.fill_between(steps, mean - std, mean + std, alpha=0.2)
    if threshold is not None:
        axes.axhline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    axes.set_xlabel("environment steps")
    axes.set_ylabel("evaluation return (deterministic)")
    axes.set_title(title)
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
