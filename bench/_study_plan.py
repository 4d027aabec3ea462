"""The data model of bench/study.py: tasks, arms, studies and their (task, arm, seed) runs.

A run's key is a hash of its settings (task, budget, algorithm, overrides, seed, device), not of
the code: the same table entry on a newer revision continues the same runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _study import Budget, Job, train_document


@dataclass(frozen=True)
class Task:
    """One task of the study; `threshold` None = not fixed yet (no steps-to-threshold reported)."""

    env_id: str
    threshold: float | None
    threshold_rule: str
    budget_steps: int
    budget_rule: str
    steps_per_epoch: int = 1000
    eval_episodes: int = 5
    max_episode_steps: int | None = None
    initial_random_steps: int = 1000
    # Agent overrides of the model-based arms on this task (known reward, termination function).
    model_agent: Mapping[str, Any] = field(default_factory=dict)
    # TrainConfig overrides of every arm on this task (e.g. env_kwargs); an arm's own win.
    train: Mapping[str, Any] = field(default_factory=dict)
    # Fractions of the budget at which the report gives the return ("return at fixed steps").
    report_fractions: tuple[float, ...] = (0.25, 0.5, 1.0)

    def __post_init__(self) -> None:
        if self.budget_steps < 1 or self.budget_steps % self.steps_per_epoch:
            raise ValueError(
                f"{self.env_id}: budget_steps {self.budget_steps} must be a positive multiple of "
                f"steps_per_epoch {self.steps_per_epoch}"
            )

    @property
    def epochs(self) -> int:
        return self.budget_steps // self.steps_per_epoch


@dataclass(frozen=True)
class Arm:
    """An arm: `algo` (mdemorl | mbpo | mopac | sac | sb3_sac) with AgentConfig overrides
    (`agent`, nested like `--set agent.<name>=...`; must give utd_ratio) and TrainConfig overrides
    (`train`). `eval_planner`: also evaluate with the planner as controller (eval_mpc_return)."""

    algo: str
    agent: Mapping[str, Any]
    description: str
    train: Mapping[str, Any] = field(default_factory=dict)
    eval_planner: bool = False

    def __post_init__(self) -> None:
        if "utd_ratio" not in self.agent:
            raise ValueError(f"arm ({self.algo}): agent overrides must give utd_ratio")

    @property
    def model_based(self) -> bool:
        return self.algo in ("mdemorl", "mbpo", "mopac")


@dataclass(frozen=True)
class Study:
    """A set of tasks, arms and seeds; `results_subdir` names where its result files go."""

    tasks: Mapping[str, Task]
    arms: Mapping[str, Arm]
    seeds: tuple[int, ...]
    derived: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # Report ratio rows: (ours, reference, metric, target, comparison), see study.RATIOS.
    ratios: tuple[tuple[str, str, str, float, str], ...] = ()
    results_subdir: str = "study_runs"
    quick: bool = False
    # Part of every run's key: bump it to rerun everything (e.g. after an algorithm fix).
    version: str = ""


def deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win; nested mappings (e.g. schedule) are merged key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
                merged[key] = deep_merge(merged[key], value)
            else:
                merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@dataclass(frozen=True)
class PlannedRun:
    """One (task, arm, seed) run of a study."""

    task: Task
    arm_name: str
    arm: Arm
    seed: int
    device: str = "cpu"
    version: str = ""

    @property
    def label(self) -> str:
        return f"{self.task.env_id} {self.arm_name} seed {self.seed}"

    def settings(self) -> dict[str, Any]:
        """Everything that decides the run's numbers (what the key hashes)."""
        agent = deep_merge(self.task.model_agent if self.arm.model_based else {}, self.arm.agent)
        train = deep_merge(self.task.train, self.arm.train)
        if self.arm.eval_planner:
            train["eval_planner_episodes"] = self.task.eval_episodes
        return {
            "study_version": self.version,
            "env_id": self.task.env_id,
            "algo": self.arm.algo,
            "seed": self.seed,
            "device": self.device,
            "budget": {
                "epochs": self.task.epochs,
                "steps_per_epoch": self.task.steps_per_epoch,
                "eval_episodes": self.task.eval_episodes,
                "max_episode_steps": self.task.max_episode_steps,
                "initial_random_steps": self.task.initial_random_steps,
            },
            "agent": agent,
            "train": train,
        }

    @property
    def key(self) -> str:
        text = json.dumps(self.settings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _relative(self) -> Path:
        return (
            Path(safe_name(self.task.env_id))
            / safe_name(self.arm_name)
            / f"seed{self.seed}-{self.key}"
        )

    def result_path(self, results_root: Path) -> Path:
        return results_root / self._relative().with_suffix(".json")

    def timing_path(self, results_root: Path) -> Path:
        return results_root / self._relative().with_suffix(".timing.json")

    def run_dir(self, run_root: Path) -> Path:
        return run_root / self._relative()

    def job(self, run_root: Path, threads: int) -> Job:
        settings = self.settings()
        budget = settings["budget"]
        return Job(
            group=self.arm_name,
            algo=self.arm.algo,
            seed=self.seed,
            budget=Budget(
                env_id=self.task.env_id,
                epochs=budget["epochs"],
                steps_per_epoch=budget["steps_per_epoch"],
                seeds=1,
                eval_episodes=budget["eval_episodes"],
                utd_ratio=float(settings["agent"]["utd_ratio"]),
                max_episode_steps=budget["max_episode_steps"],
                initial_random_steps=budget["initial_random_steps"],
            ),
            run_dir=self.run_dir(run_root),
            agent_overrides=settings["agent"],
            threads=threads,
            device=self.device,
            train_overrides=settings["train"],
            checkpoint_every=1,
        )

    def is_finished(self, results_root: Path) -> bool:
        path = self.result_path(results_root)
        if not path.is_file():
            return False
        return bool(json.loads(path.read_text()).get("key") == self.key)


def _names(
    text: str | None, known: Sequence[str], flag: str, derived: Mapping[str, Any]
) -> list[str]:
    if text is None:
        return list(known)
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if name in derived:
            source, column = derived[name]
            raise ValueError(
                f"{flag}: {name} is not a run of its own but the {column} column of the "
                f"{source} runs; select {source}"
            )
        if name not in known:
            raise ValueError(f"{flag}: unknown {name!r}; known: {', '.join(known)}")
    return [name for name in known if name in names]


def plan_runs(
    study: Study,
    tasks: str | None = None,
    arms: str | None = None,
    seeds: Sequence[int] | None = None,
    device: str = "cpu",
) -> list[PlannedRun]:
    """The selected runs in the study's fixed order: task, then seed, then arm (table order), so
    that an interrupted study has every arm of the first seeds rather than all seeds of a few."""
    task_names = _names(tasks, list(study.tasks), "--tasks", {})
    arm_names = _names(arms, list(study.arms), "--arms", study.derived)
    chosen_seeds = list(study.seeds if seeds is None else seeds)
    return [
        PlannedRun(study.tasks[t], a, study.arms[a], seed, device, study.version)
        for t in task_names
        for seed in chosen_seeds
        for a in arm_names
    ]


def check_runs(runs: Sequence[PlannedRun], run_root: Path) -> None:
    """Fails early, naming the run and the key, when an env id is unknown or a table entry is not
    a valid TrainConfig of this checkout (e.g. a setting AgentConfig does not have yet)."""
    import gymnasium as gym

    import mdemorl_core.envs  # noqa: F401  (registers this project's tasks)
    from mdemorl_core.config import build_train_config

    for env_id in dict.fromkeys(run.task.env_id for run in runs):
        try:
            gym.spec(env_id)
        except gym.error.Error as error:
            raise ValueError(f"task {env_id}: not a registered Gymnasium env ({error})") from error
    for run in runs:
        if run.arm.algo == "sb3_sac":
            ignored = sorted(run.settings()["train"])
            if ignored:
                raise ValueError(
                    f"{run.label}: the SB3 runner takes no TrainConfig overrides "
                    f"({', '.join(ignored)}); drop the arm from this study"
                )
            continue
        try:
            build_train_config(train_document(run.job(run_root, 1)))
        except ValueError as error:
            raise ValueError(
                f"{run.label}: the study table is not a valid config: {error}"
            ) from error
