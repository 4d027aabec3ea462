"""The study harness (bench/study.py): resumable runs, settings keys, report schema and metrics.

Real (tiny) training runs on Pendulum-v1 for the resume tests; hand-written result files for the
report. No timing assertions: the time limit is driven through the runner's `fits` check.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import _study_runner
import numpy as np
import pytest
from _study import bootstrap_ci, bootstrap_ratio_ci, normalised_auc, steps_to_threshold
from _study_plan import Arm, PlannedRun, Study, Task, check_runs, plan_runs
from _study_report import write_report
from _study_runner import run_study, write_result
from study import ARMS, DEFAULT_STUDY, TASKS

PENDULUM = Task(
    "Pendulum-v1",
    threshold=-900.0,
    threshold_rule="test",
    budget_steps=300,
    budget_rule="test",
    steps_per_epoch=100,
    eval_episodes=1,
    max_episode_steps=100,
    initial_random_steps=100,
)
# Small SAC batches so that SAC trains (and its optimiser state matters) from the first epoch.
INTERLEAVED_SAC = Arm(
    "sac",
    {"update_mode": "interleaved", "train_every": 10, "utd_ratio": 0.2, "sac": {"batch_size": 32}},
    "test SAC",
)
TINY_MDEMORL = Arm(
    "mdemorl",
    {
        "update_mode": "interleaved",
        "train_every": 10,
        "model_train_every": 100,
        "utd_ratio": 0.2,
        "sac": {"batch_size": 32},
        "min_model_data": 50,
        "model": {"max_epochs": 2},
        "planner": {"num_samples": 8},
        "schedule": {"h_start": 2, "h_end": 2, "b_start": 4, "b_end": 4},
    },
    "test M-DeMoRL",
)
# The planner drives the env (its warm start must survive a resume) and is evaluated too.
TINY_MDEMORL_PLAN = replace(
    TINY_MDEMORL,
    agent={**TINY_MDEMORL.agent, "act": "planner", "act_horizon": 2},
    eval_planner=True,
)


def _study(arms: dict[str, Arm], **changes: Any) -> Study:
    return replace(Study({PENDULUM.env_id: PENDULUM}, arms, (0,)), **changes)


def _single_run(arm: Arm, name: str = "arm") -> PlannedRun:
    return plan_runs(_study({name: arm}))[0]


@pytest.mark.parametrize(
    "arm",
    [INTERLEAVED_SAC, TINY_MDEMORL, TINY_MDEMORL_PLAN],
    ids=["sac", "mdemorl", "mdemorl_plan"],
)
def test_stopped_and_killed_runs_resume_to_the_same_result_file(
    tmp_path: Path, arm: Arm, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two epochs: the stop below falls after the first, the model refits at 100 and 200 steps.
    run = replace(_single_run(arm), task=replace(PENDULUM, budget_steps=200))
    whole = run_study([run], tmp_path / "a" / "results", tmp_path / "a" / "runs", 1, 1, None)
    assert [o.status for o in whole] == ["done"]
    expected = run.result_path(tmp_path / "a" / "results").read_bytes()
    progress = json.loads(expected)["progress"]
    assert len(progress["eval_return"]) == run.task.epochs == 2
    if arm.eval_planner:
        assert all(math.isfinite(value) for value in progress["eval_mpc_return"])

    # Time limit after one epoch: a clean stop with a checkpoint and no result file.
    results, runs = tmp_path / "b" / "results", tmp_path / "b" / "runs"
    answers = iter([True])
    monkeypatch.setattr(_study_runner, "fits", lambda deadline, estimate: next(answers, False))
    stopped = run_study([run], results, runs, 1, 1, deadline=0.0, isolate=False)
    assert [o.status for o in stopped] == ["stopped"]
    assert not run.result_path(results).exists()
    assert (run.run_dir(runs) / "checkpoint").is_dir()
    assert len((run.run_dir(runs) / "progress.csv").read_text().splitlines()) == 2
    monkeypatch.undo()
    assert [o.status for o in run_study([run], results, runs, 1, 1, None)] == ["done"]
    assert run.result_path(results).read_bytes() == expected

    if arm is not INTERLEAVED_SAC:
        return  # the restart below does not depend on the algorithm
    # Killed inside its first epoch (config written, no checkpoint): starts again from scratch.
    results, runs = tmp_path / "c" / "results", tmp_path / "c" / "runs"
    run.run_dir(runs).mkdir(parents=True)
    (run.run_dir(runs) / "config.yaml").write_text("env_id: Pendulum-v1\n")
    assert [o.status for o in run_study([run], results, runs, 1, 1, None)] == ["done"]
    assert run.result_path(results).read_bytes() == expected


def test_isolated_workers_give_the_same_result_files(tmp_path: Path) -> None:
    runs = plan_runs(_study({"a": INTERLEAVED_SAC}))
    in_process = run_study(runs, tmp_path / "a", tmp_path / "runs_a", 1, 1, None)
    isolated = run_study(runs, tmp_path / "b", tmp_path / "runs_b", 2, 1, None)  # spawned
    assert [o.status for o in in_process] == [o.status for o in isolated] == ["done"]
    expected = runs[0].result_path(tmp_path / "a").read_bytes()
    assert runs[0].result_path(tmp_path / "b").read_bytes() == expected
    # Past the deadline nothing starts; the runs stay missing.
    late = run_study(runs, tmp_path / "c", tmp_path / "runs_c", 2, 1, deadline=time.time())
    assert [o.status for o in late] == ["stopped"]
    assert not (tmp_path / "c").exists() and not (tmp_path / "runs_c").exists()


def test_finished_runs_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _single_run(INTERLEAVED_SAC)
    results, runs = tmp_path / "results", tmp_path / "runs"
    assert [o.status for o in run_study([run], results, runs, 1, 1, None)] == ["done"]
    before = run.result_path(results).stat().st_mtime_ns

    def must_not_run(*args: Any) -> bool:
        raise AssertionError("a finished run was run again")

    monkeypatch.setattr(_study_runner, "_execute_ours", must_not_run)
    assert [o.status for o in run_study([run], results, runs, 1, 1, None)] == ["skipped"]
    assert run.result_path(results).stat().st_mtime_ns == before


def test_a_failing_run_does_not_stop_the_others(tmp_path: Path) -> None:
    broken = Arm("sac", {"utd_ratio": 1.0, "no_such_setting": 1}, "broken")
    runs = plan_runs(_study({"broken": broken, "sac": INTERLEAVED_SAC}))
    outcomes = run_study(runs, tmp_path / "results", tmp_path / "runs", 1, 1, None)
    assert [o.status for o in outcomes] == ["failed", "done"]
    assert "no_such_setting" in outcomes[0].detail


def test_key_changes_with_every_setting_and_only_with_settings() -> None:
    base = _single_run(INTERLEAVED_SAC)
    variants = [
        replace(base, seed=1),
        replace(base, version="2"),
        replace(base, device="cuda"),
        replace(base, task=replace(PENDULUM, budget_steps=400)),
        replace(base, task=replace(PENDULUM, eval_episodes=2)),
        replace(
            base, arm=replace(INTERLEAVED_SAC, agent={**INTERLEAVED_SAC.agent, "utd_ratio": 1})
        ),
        replace(base, arm=replace(INTERLEAVED_SAC, algo="mbpo")),
        replace(base, arm=replace(INTERLEAVED_SAC, eval_planner=True)),
    ]
    keys = {run.key for run in variants}
    assert len(keys) == len(variants) and base.key not in keys
    # Not keyed: the threshold (a report setting), the arm's name and description, dict order.
    same = [
        replace(base, task=replace(PENDULUM, threshold=None, threshold_rule="other")),
        replace(base, arm_name="renamed", arm=replace(INTERLEAVED_SAC, description="other")),
        replace(
            base, arm=replace(INTERLEAVED_SAC, agent=dict(reversed(INTERLEAVED_SAC.agent.items())))
        ),
    ]
    assert {run.key for run in same} == {base.key}
    # The task's model-based overrides apply to model-based arms only.
    with_reward = replace(PENDULUM, model_agent={"task_reward": "Leg2R-v0"})
    assert replace(base, task=with_reward).key == base.key
    mdemorl = _single_run(TINY_MDEMORL)
    assert replace(mdemorl, task=with_reward).key != mdemorl.key


def test_task_train_overrides_are_keyed_merged_under_the_arms_and_refused_for_sb3(
    tmp_path: Path,
) -> None:
    base = _single_run(INTERLEAVED_SAC)
    assert replace(base, task=replace(PENDULUM, train={})).key == base.key
    task = replace(PENDULUM, train={"env_kwargs": {"g": 9.0, "max_speed": 7.0}})
    on_task = replace(base, task=task)
    assert on_task.key != base.key
    assert on_task.settings()["train"] == {"env_kwargs": {"g": 9.0, "max_speed": 7.0}}
    arm = replace(INTERLEAVED_SAC, train={"env_kwargs": {"g": 11.0}})
    # The arm wins key by key; the task's other env kwargs stay.
    assert replace(on_task, arm=arm).settings()["train"] == {
        "env_kwargs": {"g": 11.0, "max_speed": 7.0}
    }
    sb3 = replace(on_task, arm=replace(INTERLEAVED_SAC, algo="sb3_sac"))
    with pytest.raises(ValueError, match="SB3 runner takes no TrainConfig overrides"):
        check_runs([sb3], tmp_path)
    check_runs([on_task], tmp_path)  # a valid config for our runner


def test_plan_order_and_selection_errors() -> None:
    runs = plan_runs(DEFAULT_STUDY, "Leg2R-v0", "mdemorl,sac", [1, 0])
    assert [(r.arm_name, r.seed) for r in runs] == [
        ("sac", 1),
        ("mdemorl", 1),
        ("sac", 0),
        ("mdemorl", 0),
    ]
    with pytest.raises(ValueError, match="eval_mpc_return column of the mdemorl_plan runs"):
        plan_runs(DEFAULT_STUDY, arms="mdemorl_plan_mpc")
    with pytest.raises(ValueError, match="unknown 'sca'"):
        plan_runs(DEFAULT_STUDY, arms="sca")
    with pytest.raises(ValueError, match="multiple of steps_per_epoch"):
        replace(PENDULUM, budget_steps=250)


def test_tables_name_the_issue_arms_and_tasks() -> None:
    assert {"sac", "mbpo", "mdemorl", "mdemorl_plan", "mopac", "sb3_sac"} <= set(ARMS)
    assert any(name.startswith("sac_utd") for name in ARMS)
    # Every arm that evaluates with its planner has its "<arm>_mpc" row, read from its own runs.
    planner_arms = {name for name, arm in ARMS.items() if arm.eval_planner}
    assert "mdemorl_plan" in planner_arms
    assert DEFAULT_STUDY.derived == {f"{a}_mpc": (a, "eval_mpc_return") for a in planner_arms}
    assert TASKS["Leg2R-v0"].threshold == pytest.approx(0.9 * 994.1, abs=0.05)
    for task in TASKS.values():
        assert task.threshold_rule and task.budget_rule


def _fake_result(
    run: PlannedRun, results: Path, curve: list[float], mpc: list[float] | None = None
) -> None:
    steps = [run.task.steps_per_epoch * (i + 1) for i in range(len(curve))]
    progress: dict[str, list[Any]] = {
        "epoch": list(range(1, len(curve) + 1)),
        "env_steps": steps,
        "eval_return": curve,
        "train_return": [-1000.0, math.nan, -500.0],
        "train_episodes": [1, 0, 3],
    }
    if mpc is not None:
        progress["eval_mpc_return"] = mpc
    write_result(run, results, progress, [1.0] * len(curve), 1)


def test_report_schema_and_values(tmp_path: Path) -> None:
    planner_arm = Arm("mdemorl", {"utd_ratio": 1.0}, "plan", eval_planner=True)
    arms = {"sac": INTERLEAVED_SAC, "mdemorl": replace(planner_arm, eval_planner=False)}
    arms["mdemorl_plan"] = planner_arm
    study = _study(
        arms,
        seeds=(0, 1, 2),
        derived={"mdemorl_plan_mpc": ("mdemorl_plan", "eval_mpc_return")},
        ratios=(("mdemorl", "sac", "steps_to_threshold", 0.5, "<="),),
    )
    results = tmp_path / study.results_subdir
    runs = {(r.arm_name, r.seed): r for r in plan_runs(study)}
    _fake_result(runs["sac", 0], results, [-1200.0, -950.0, -800.0])  # reaches at 300
    _fake_result(runs["sac", 1], results, [-1200.0, -1100.0, -1000.0])  # never: counts 300
    _fake_result(runs["mdemorl", 0], results, [-850.0, -700.0, -600.0])  # reaches at 100
    _fake_result(runs["mdemorl_plan", 0], results, [-1000.0, -800.0, -700.0], [-500.0] * 3)
    extra = replace(runs["mdemorl", 0], seed=7)  # beyond the planned seeds: counted
    _fake_result(extra, results, [-1000.0, -1000.0, -1000.0])
    stale = replace(runs["sac", 2], task=replace(PENDULUM, eval_episodes=9))
    _fake_result(stale, results, [0.0, 0.0, 0.0])  # other settings: listed, never mixed in

    document = json.loads(write_report(study, tmp_path, tmp_path / "runs").read_text())
    task = document["tasks"]["Pendulum-v1"]
    assert task["threshold"] == -900.0 and task["budget_steps"] == 300
    for name, arm in task["arms"].items():
        for key, kind in (
            ("seeds", int),
            ("steps_to_threshold", list),
            ("steps_to_threshold_mean", (float, type(None))),
            ("auc_mean", (float, type(None))),
            ("auc_ci95", (list, type(None))),
            ("train_return_mean", (float, type(None))),
        ):
            assert isinstance(arm[key], kind), f"{name}.{key}"
    sac = task["arms"]["sac"]
    assert sac["seeds"] == 2 and sac["steps_to_threshold"] == [300, None]
    assert sac["steps_to_threshold_mean"] == 300.0
    assert sac["missing"] == ["seed 2: missing"]
    assert sac["auc_mean"] == pytest.approx(np.mean([(-1200 - 950 - 800) / 3, -1100.0]))
    assert sac["auc_ci95"][0] <= sac["auc_mean"] <= sac["auc_ci95"][1]
    # (-1000 x 1 + -500 x 3) / 4 episodes, the epoch without episodes left out.
    assert sac["train_return_mean"] == pytest.approx(-625.0)
    assert sac["return_at_steps"]["300"]["mean"] == pytest.approx(-900.0)
    assert task["arms"]["mdemorl"]["steps_to_threshold"] == [100, None]
    # Seed 0 of mdemorl met the threshold at its first evaluation: flagged, sac's seeds are not.
    assert task["arms"]["mdemorl"]["reached_at_first_eval"] == [0]
    assert sac["reached_at_first_eval"] == []
    from _study_report import render_study

    assert "first evaluation (by the barely trained policy" in render_study(document)
    assert "`mdemorl` seed(s) 0;" in render_study(document)
    assert task["arms"]["mdemorl"]["seed_ids"] == [0, 7]
    assert task["arms"]["mdemorl"]["missing"] == ["seed 1: missing", "seed 2: missing"]
    assert task["arms"]["mdemorl_plan_mpc"]["steps_to_threshold"] == [100]
    assert task["arms"]["mdemorl_plan_mpc"]["auc_mean"] == pytest.approx(-500.0)
    assert task["arms"]["mdemorl_plan"]["steps_to_threshold"] == [200]
    (ratio,) = task["ratios"]
    assert ratio["value"] == pytest.approx(200.0 / 300.0) and ratio["met"] is False
    assert ratio["censored"] is True  # a sac seed never reached the threshold
    assert task["stale_results"] == [f"Pendulum-v1/sac/seed2-{stale.key}.json"]
    assert (tmp_path / task["plot"]).stat().st_size > 0

    unset = replace(study, tasks={"Pendulum-v1": replace(PENDULUM, threshold=None)})
    document = json.loads(write_report(unset, tmp_path, tmp_path / "runs").read_text())
    task = document["tasks"]["Pendulum-v1"]
    assert "not fixed yet" in task["threshold_note"]
    assert task["arms"]["sac"]["steps_to_threshold"] is None
    assert task["arms"]["sac"]["steps_to_threshold_mean"] is None
    assert task["ratios"][0]["value"] is None
    assert task["ratios"][0]["why_none"] == "threshold not set"


def test_steps_to_threshold_and_auc() -> None:
    steps = [100, 200, 300, 400]
    assert steps_to_threshold(steps, [1.0, math.nan, 5.0, 3.0], 4.0) == 300
    assert steps_to_threshold(steps, [1.0, 2.0, 3.0, 3.5], 4.0) is None
    assert normalised_auc(steps, [0.0, 10.0, 20.0, 30.0], 400) == pytest.approx(15.0)
    # An evaluation skipped (NaN) is covered by the next one.
    assert normalised_auc(steps, [0.0, math.nan, 20.0, 30.0], 400) == pytest.approx(17.5)
    with pytest.raises(ValueError, match="not at 500"):
        normalised_auc(steps, [0.0] * 4, 500)


def test_bootstrap_intervals() -> None:
    values = [1.0, 2.0, 3.0, 10.0]
    low, high = bootstrap_ci(values)
    assert min(values) <= low < np.mean(values) < high <= max(values)
    assert bootstrap_ci(values) == (low, high)  # fixed seed
    assert bootstrap_ci([4.0]) == (4.0, 4.0)
    rng = np.random.default_rng(1)
    sample = rng.normal(5.0, 2.0, 400)
    low, high = bootstrap_ci(sample.tolist())
    half_width = 1.96 * sample.std() / math.sqrt(sample.size)
    assert (high - low) / 2.0 == pytest.approx(half_width, rel=0.1)
    assert low < sample.mean() < high
    low, high = bootstrap_ratio_ci([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert low < 2.0 / 5.0 < high
    assert bootstrap_ratio_ci([2.0], [4.0]) == (0.5, 0.5)
    with pytest.raises(ValueError):
        bootstrap_ci([])
