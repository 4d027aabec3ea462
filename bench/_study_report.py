"""Aggregates bench/study.py's result files: study.json, one PNG per task, a BENCHMARKS.md section.

Only result files whose key matches the current tables count (a result of other settings is
listed as stale, never mixed in); every planned (arm, seed) without one is listed as missing,
with the state of its run directory. Nothing here measures anything.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _common import emit
from _report_format import fmt, table, verdict
from _study import (
    bootstrap_ci,
    bootstrap_ratio_ci,
    normalised_auc,
    plot_curves,
    steps_to_threshold,
    weighted_train_return,
)
from _study_plan import PlannedRun, Study, Task, safe_name
from _study_runner import describe_state

NOTES = [
    "steps_to_threshold: env steps of the first evaluation (one per epoch: deterministic actor, "
    "the task's eval_episodes on fixed start states) whose mean return reaches the threshold; "
    "null = never within the budget. steps_to_threshold_mean counts a seed that never reached "
    "it as the whole budget (so it is a lower bound for that arm).",
    "auc: area under the evaluation curve over [0, budget] divided by the budget (each "
    "evaluation stands for the epoch before it): the mean evaluation return over the budget.",
    "train_return_mean: mean return of the training episodes over the budget (progress.csv "
    "train_return weighted by train_episodes): what the robot goes through while learning. In "
    "mdemorl_plan(_mpc) the planner acted; our loop cuts episodes at epoch ends, SB3 does not.",
    "95 % intervals: percentile bootstrap over seeds (10 000 resamples, numpy seed 0); a "
    "ratio's interval resamples both arms' seeds independently; one seed gives a point.",
    "Ratios of steps use steps_to_threshold_mean; 'censored' marks a ratio in which a seed "
    "never reached the threshold (counted as the budget).",
    "mdemorl_plan_mpc: the mdemorl_plan runs evaluated with DMD-MPC as the controller "
    "(progress column eval_mpc_return), what mode:=mpc deploys on the robot.",
]


def _floats(values: list[Any]) -> list[float]:
    return [math.nan if value is None else float(value) for value in values]


def seed_metrics(task: Task, document: dict[str, Any], column: str) -> dict[str, Any] | None:
    """Per-seed numbers of one result file's `column` curve; None when it lacks the column."""
    progress = document["progress"]
    if column not in progress:
        return None
    steps = [int(step) for step in progress["env_steps"]]
    curve = _floats(progress[column])
    reached = None if task.threshold is None else steps_to_threshold(steps, curve, task.threshold)
    return {
        "seed": int(document["seed"]),
        "steps": steps,
        "curve": curve,
        "reached": reached,
        "auc": normalised_auc(steps, curve, task.budget_steps),
        "train_return": weighted_train_return(
            _floats(progress["train_return"]), [int(n) for n in progress["train_episodes"]]
        ),
    }


def _mean_ci(values: list[float]) -> tuple[float | None, list[float] | None]:
    finite = [value for value in values if math.isfinite(value)]
    if not finite:
        return None, None
    return float(np.mean(finite)), list(bootstrap_ci(finite))


def summarise_arm(task: Task, seeds: list[dict[str, Any]], missing: list[str]) -> dict[str, Any]:
    """The arm's entry of study.json from its per-seed metrics (see NOTES)."""
    summary: dict[str, Any] = {
        "seeds": len(seeds),
        "seed_ids": [seed["seed"] for seed in seeds],
        "missing": missing,
        "steps_to_threshold": None if task.threshold is None else [],
        "steps_to_threshold_mean": None,
        "auc_mean": None,
        "auc_ci95": None,
        "train_return_mean": None,
    }
    if not seeds:
        return summary
    if task.threshold is not None:
        reached = [seed["reached"] for seed in seeds]
        counted = [float(task.budget_steps if r is None else r) for r in reached]
        summary.update(
            steps_to_threshold=reached,
            steps_to_threshold_mean=float(np.mean(counted)),
            steps_to_threshold_ci95=list(bootstrap_ci(counted)),
            never_reached=sum(r is None for r in reached),
            # A seed that meets the threshold at its first evaluation measures the initial policy
            # (the first epoch is mostly random actions), not learning: the report flags it.
            reached_at_first_eval=[
                seed["seed"]
                for seed in seeds
                if seed["steps"] and seed["reached"] == seed["steps"][0]
            ],
        )
    summary["auc_mean"], summary["auc_ci95"] = _mean_ci([seed["auc"] for seed in seeds])
    summary["auc_per_seed"] = [seed["auc"] for seed in seeds]
    train = [seed["train_return"] for seed in seeds]
    summary["train_return_mean"], summary["train_return_ci95"] = _mean_ci(train)
    curves = np.array([seed["curve"] for seed in seeds], dtype=np.float64)
    steps = seeds[0]["steps"]
    summary.update(
        curve_steps=steps,
        returns_mean=np.nanmean(curves, axis=0).tolist(),
        returns_std=np.nanstd(curves, axis=0).tolist(),
        final_return_mean=float(np.nanmean(curves[:, -1])),
    )
    at_steps: dict[str, Any] = {}
    for fraction in task.report_fractions:
        step = max(round(fraction * task.epochs), 1) * task.steps_per_epoch
        if step in steps:
            mean, ci = _mean_ci(curves[:, steps.index(step)].tolist())
            at_steps[str(step)] = {"mean": mean, "ci95": ci}
    summary["return_at_steps"] = at_steps
    return summary


def _same_utd_sac(study: Study, ours: str) -> str | None:
    source = study.derived[ours][0] if ours in study.derived else ours
    utd = study.arms[source].agent["utd_ratio"]
    for name, arm in study.arms.items():
        if arm.algo == "sac" and float(arm.agent["utd_ratio"]) == float(utd):
            return name
    return None


def ratio_rows(
    study: Study, task: Task, seeds: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """The RATIOS rows of one task (value None, with a reason, where they cannot be formed)."""
    rows = []
    for ours, reference_name, metric, target, comparison in study.ratios:
        if ours not in seeds:
            continue
        reference = _same_utd_sac(study, ours) if reference_name == "sac@utd" else reference_name
        row: dict[str, Any] = {
            "ours": ours,
            "reference": reference,
            "metric": metric,
            "target": f"{comparison} {target:g}",
            "value": None,
            "ci95": None,
            "met": None,
            "censored": False,
        }
        if reference is None or reference not in seeds:
            row["why_none"] = f"no arm {reference_name} in the study"
        elif metric == "steps_to_threshold" and task.threshold is None:
            row["why_none"] = "threshold not set"
        elif not seeds[ours] or not seeds[reference]:
            row["why_none"] = "runs missing"
        else:
            if metric == "auc":
                top = [s["auc"] for s in seeds[ours]]
                bottom = [s["auc"] for s in seeds[reference]]
            else:
                both = seeds[ours] + seeds[reference]
                row["censored"] = any(s["reached"] is None for s in both)
                top, bottom = (
                    [
                        float(task.budget_steps if s["reached"] is None else s["reached"])
                        for s in side
                    ]
                    for side in (seeds[ours], seeds[reference])
                )
            value = float(np.mean(top) / np.mean(bottom))
            met = value <= target if comparison == "<=" else value >= target
            row.update(value=value, ci95=list(bootstrap_ratio_ci(top, bottom)), met=met)
        rows.append(row)
    return rows


def _seeds(study: Study, arm_folder: Path) -> list[int]:
    """The study's seeds and any other seed with a result file (e.g. `--seeds 0,...,9` on a
    bigger machine); files of other settings are left out later by their key."""
    found = set(study.seeds)
    for path in arm_folder.glob("seed*-*.json"):
        text = path.name.removeprefix("seed").split("-", 1)[0]
        if text.isdigit():
            found.add(int(text))
    return sorted(found)


def aggregate_task(
    study: Study, task: Task, results_root: Path, run_root: Path, device: str
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(the task's entry of study.json, arm -> per-seed metrics)."""
    documents: dict[str, list[dict[str, Any]]] = {}
    missing: dict[str, list[str]] = {}
    expected: set[Path] = set()
    revisions: set[str] = set()
    for arm_name, arm in study.arms.items():
        documents[arm_name], missing[arm_name] = [], []
        for seed in _seeds(study, results_root / safe_name(task.env_id) / safe_name(arm_name)):
            run = PlannedRun(task, arm_name, arm, seed, device, study.version)
            expected.add(run.result_path(results_root))
            if run.is_finished(results_root):
                documents[arm_name].append(json.loads(run.result_path(results_root).read_text()))
                timing = run.timing_path(results_root)
                if timing.is_file():
                    revisions.update(json.loads(timing.read_text()).get("git_revisions") or [])
            elif seed in study.seeds:
                missing[arm_name].append(
                    f"seed {seed}: {describe_state(run, results_root, run_root)}"
                )
    seeds = {
        name: [seed_metrics(task, doc, "eval_return") for doc in docs]
        for name, docs in documents.items()
    }
    for name, (source, column) in study.derived.items():
        missing[name] = list(missing.get(source, []))
        seeds[name] = []
        for doc in documents.get(source, []):
            metrics = seed_metrics(task, doc, column)
            if metrics is None:
                missing[name].append(f"seed {doc['seed']}: its result has no {column} column")
            else:
                seeds[name].append(metrics)
    clean = {name: [m for m in values if m is not None] for name, values in seeds.items()}
    task_folder = results_root / safe_name(task.env_id)
    stale = [
        str(path.relative_to(results_root))
        for path in sorted(task_folder.glob("*/seed*.json"))
        if not path.name.endswith(".timing.json") and path not in expected
    ]
    entry: dict[str, Any] = {
        "threshold": task.threshold,
        "threshold_rule": task.threshold_rule,
        "budget_steps": task.budget_steps,
        "budget_rule": task.budget_rule,
        "steps_per_epoch": task.steps_per_epoch,
        "eval_episodes": task.eval_episodes,
        "model_agent_overrides": dict(task.model_agent),
        "arms": {name: summarise_arm(task, clean[name], missing[name]) for name in clean},
        "ratios": ratio_rows(study, task, clean),
        "stale_results": stale,
        "code_revisions": sorted(revisions),
    }
    if task.threshold is None:
        entry["threshold_note"] = (
            f"threshold of {task.env_id} not fixed yet ({task.threshold_rule}): steps to "
            "threshold are not reported until TASKS in bench/study.py sets it"
        )
    return entry, clean


def write_report(study: Study, out_dir: Path, run_root: Path, device: str = "cpu") -> Path:
    """study.json and study_<task>.png in `out_dir` from the result files under it."""
    results_root = out_dir / study.results_subdir
    tasks: dict[str, Any] = {}
    for task in study.tasks.values():
        entry, seeds = aggregate_task(study, task, results_root, run_root, device)
        if "threshold_note" in entry:
            print(f"study: {entry['threshold_note']}", file=sys.stderr)
        curves = {name: entry["arms"][name] for name, values in seeds.items() if values}
        if curves:
            plot = plot_curves(
                curves,
                task.threshold,
                task.steps_per_epoch,
                f"{task.env_id}: mean ± std over seeds (actor; *_mpc: planner as controller)",
                out_dir / f"study_{safe_name(task.env_id)}.png",
            )
            entry["plot"] = plot.name
        tasks[task.env_id] = entry
    payload = {
        "device": device,
        "seeds_planned": list(study.seeds),
        "arms_table": {
            name: {
                "algo": arm.algo,
                "description": arm.description,
                "agent": dict(arm.agent),
                "train": dict(arm.train),
                "eval_planner": arm.eval_planner,
            }
            for name, arm in study.arms.items()
        },
        "derived_arms": {name: list(source) for name, source in study.derived.items()},
        "tasks": tasks,
        "notes": NOTES,
    }
    return emit("study", payload, quick=study.quick, out_dir=out_dir)


def _interval(ci: Any) -> str:
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]" if isinstance(ci, list) else "—"


def _missing_line(arms: dict[str, Any]) -> str:
    """`arm` seeds 1, 2; `other` seed 0 (partial (4/12 epochs)) — from the arms' missing lists."""
    entries = []
    for name, arm in arms.items():
        plain = [
            m.split(":")[0].removeprefix("seed ") for m in arm["missing"] if m.endswith(": missing")
        ]
        other = [m for m in arm["missing"] if not m.endswith(": missing")]
        texts = ([f"seed(s) {', '.join(plain)}"] if plain else []) + other
        if texts:
            entries.append(f"`{name}` " + ", ".join(texts))
    return "; ".join(entries)


def render_study(document: dict[str, Any]) -> str:
    """The BENCHMARKS.md section of study.json."""
    parts = [
        "Arms (`bench/study.py`, ARMS; overrides of AgentConfig, `--set agent.<key>=...`):",
        "",
        table(
            ["arm", "algo", "agent overrides", "description"],
            [
                [f"`{name}`", arm["algo"], f"`{json.dumps(arm['agent'])}`", arm["description"]]
                for name, arm in document.get("arms_table", {}).items()
            ],
        ),
    ]
    for env_id, task in document.get("tasks", {}).items():
        threshold = task.get("threshold")
        fixed = [
            str(step)
            for step in next(
                (arm.get("return_at_steps", {}) for arm in task["arms"].values() if arm["seeds"]),
                {},
            )
        ]
        rows = []
        for name, arm in task["arms"].items():
            per_seed = arm.get("steps_to_threshold")
            seeds_text = (
                "—"
                if per_seed is None
                else ", ".join("never" if s is None else fmt(s) for s in per_seed)
            )
            at = arm.get("return_at_steps", {})
            rows.append(
                [
                    f"`{name}`",
                    f"{arm['seeds']}"
                    + (f" ({len(arm['missing'])} missing)" if arm["missing"] else ""),
                    seeds_text or "—",
                    f"{fmt(arm.get('steps_to_threshold_mean'))} "
                    f"{_interval(arm.get('steps_to_threshold_ci95'))}",
                    f"{fmt(arm.get('auc_mean'))} {_interval(arm.get('auc_ci95'))}",
                    fmt(arm.get("train_return_mean")),
                ]
                + [fmt(at.get(step, {}).get("mean")) for step in fixed]
            )
        header = [
            "arm",
            "seeds",
            "steps to threshold (per seed)",
            "mean steps (never = budget) [95 % CI]",
            "AUC [95 % CI]",
            "train return",
        ] + [f"return at {fmt(int(step))}" for step in fixed]
        parts += [
            f"\n### {env_id}\n",
            f"Threshold {fmt(threshold, 6)} ({task.get('threshold_rule')}); budget "
            f"{fmt(task.get('budget_steps'))} env steps ({task.get('budget_rule')}).",
        ]
        if task.get("threshold_note"):
            parts.append(f"\n**{task['threshold_note']}.**")
        parts += ["", table(header, rows)]
        ratio_table = [
            [
                f"`{row['ours']}` / `{row['reference']}`",
                row["metric"],
                fmt(row["value"]) + (" (censored)" if row.get("censored") else ""),
                _interval(row.get("ci95")),
                row["target"],
                verdict(row["met"], document)
                if row["value"] is not None
                else row.get("why_none", "—"),
            ]
            for row in task.get("ratios", [])
        ]
        if ratio_table:
            parts += [
                "",
                table(["ratio", "metric", "value", "95 % CI", "target", "verdict"], ratio_table),
            ]
        first = [
            f"`{name}` seed(s) {', '.join(str(seed) for seed in arm['reached_at_first_eval'])}"
            for name, arm in task["arms"].items()
            if arm.get("reached_at_first_eval")
        ]
        if first:
            parts.append(
                "\nThreshold met at the first evaluation (by the barely trained policy, so those "
                f"steps do not measure learning): {'; '.join(first)}."
            )
        missing = _missing_line(task["arms"])
        if missing:
            parts.append(f"\nNot (yet) in the results: {missing}.")
        if task.get("code_revisions"):
            parts.append(f"\nCode revisions of these results: {', '.join(task['code_revisions'])}.")
        if task.get("stale_results"):
            parts.append(
                f"\nStale result files (other settings, ignored): {len(task['stale_results'])}."
            )
        if task.get("plot"):
            parts.append(f"\n![{env_id} learning curves](bench/results/{task['plot']})")
    return "\n".join(parts)
