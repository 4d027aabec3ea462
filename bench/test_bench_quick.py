"""Smoke test of the benchmark suite: each script runs in --quick mode and writes valid JSON.

Checks keys, types and internal consistency (e.g. a ratio equals the quotient it reports) of the
files other tools read; never the measured speed (no timing assertions).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _quick import BENCH_DIR, QUICK_SCRIPTS, QuickRunCache

Number = (int, float)
NOT_BOOL_INT = "int-not-bool"

HEADER_SCHEMA: dict[str, Any] = {
    "benchmark": str,
    "schema_version": int,
    "quick": bool,
    "command": str,
    "machine": dict,
}
MACHINE_SCHEMA: dict[str, Any] = {
    "cpu_model": str,
    "logical_cores": int,
    "torch": str,
    "torch_threads": int,
    "date_utc": str,
}
LATENCY_SCHEMA: dict[str, Any] = {"p50_ms": Number, "p99_ms": Number, "max_ms": Number}
LOOP_VARIANT_SCHEMA: dict[str, Any] = {
    "rate_hz": Number,
    "period_p50_ms": Number,
    "period_p99_ms": Number,
    "period_max_ms": Number,
    "missed": int,
}
INNER_LOOP_ROW_SCHEMA: dict[str, Any] = {
    "device": str,
    "B": int,
    "M": int,
    "H": int,
    "model_steps_per_s": Number,
    "flops_per_s": Number,
    "matmul_flops_per_s": Number,
    "fraction_of_matmul": Number,
    "matmul_bf16_flops_per_s": Number,
    "fraction_of_bf16_matmul": Number,
    "speedup_vs_loop": Number,
}
ALGO_SCHEMA: dict[str, Any] = {
    "epochs_to_threshold": (int, type(None)),
    "final_return_mean": Number,
    "returns_mean": list,
    "returns_std": list,
    "wall_seconds": Number,
}
SAC_VARIANT_SCHEMA = {
    "updates_per_s": Number,
    "ratio": Number,
    "ratio_of_medians": Number,
    "cpu_updates_per_s": Number,
    "cpu_ratio": Number,
    "flops_per_update": int,
    "flops_per_s": Number,
    "rounds_per_s": list,
    "cpu_rounds_per_s": list,
    "bf16_active": bool,
}
SAMPLE_EFFICIENCY_ALGOS = ("mdemorl", "mbpo", "mopac", "sac", "sb3_sac")


def check_schema(document: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    for key, expected in schema.items():
        assert key in document, f"{where}: missing key {key!r}"
        value = document[key]
        assert isinstance(value, expected), (
            f"{where}.{key}: {type(value).__name__} is not {expected}"
        )
        if expected is int or expected is Number:
            assert not isinstance(value, bool), f"{where}.{key}: bool where a number is expected"
        if isinstance(value, float):
            assert math.isfinite(value), f"{where}.{key} is not finite"


def successful(quick_runs: QuickRunCache, name: str) -> dict[str, Any]:
    run = quick_runs.get(name)
    assert run.returncode == 0, run.failure_text()
    assert run.document is not None, f"{name} wrote no {name}.json\n{run.failure_text()}"
    check_schema(run.document, HEADER_SCHEMA, name)
    check_schema(run.document["machine"], MACHINE_SCHEMA, f"{name}.machine")
    assert run.document["benchmark"] == name
    assert run.document["quick"] is True
    # stdout ends with the same JSON document as the file (scripts may log lines before it).
    printed = run.stdout[run.stdout.index("{\n") :]
    assert json.loads(printed) == run.document
    return run.document


def test_sac_updates_schema(quick_runs: QuickRunCache) -> None:
    document = successful(quick_runs, "sac_updates")
    check_schema(
        document,
        {"ours_updates_per_s": Number, "sb3_updates_per_s": Number, "ratio": Number, "setup": dict},
        "sac_updates",
    )
    assert document["ratio"] == pytest.approx(
        document["ours_updates_per_s"] / document["sb3_updates_per_s"]
    )
    assert document["setup"]["batch_size"] == 256
    assert document["setup"]["hidden"] == [256, 256]
    assert document["setup"]["torch_threads"] == 1
    variants = document["variants"]
    assert set(variants) == {"fp32", "bf16"}
    for name, variant in variants.items():
        check_schema(variant, SAC_VARIANT_SCHEMA, f"sac_updates.variants.{name}")
        assert variant["ratio"] == pytest.approx(
            variant["updates_per_s"] / document["sb3_updates_per_s"]
        )
        assert variant["cpu_ratio"] == pytest.approx(
            variant["cpu_updates_per_s"] / document["sb3_cpu_updates_per_s"]
        )
    assert variants["fp32"]["bf16_active"] is False
    default = variants[document["ours_default_variant"]]
    assert document["ours_updates_per_s"] == default["updates_per_s"]


@pytest.mark.parametrize("name", ["policy_latency", "planner_latency"])
def test_latency_schema(quick_runs: QuickRunCache, name: str) -> None:
    document = successful(quick_runs, name)
    check_schema(document, LATENCY_SCHEMA, name)
    assert 0.0 < document["p50_ms"] <= document["p99_ms"] <= document["max_ms"]


def test_planner_round_trip_schema(quick_runs: QuickRunCache) -> None:
    document = successful(quick_runs, "planner_round_trip")
    check_schema(
        document,
        {
            **LATENCY_SCHEMA,
            "requests": int,
            "answered": int,
            "late": int,
            "failed": int,
            "skipped_ticks": int,
            "budget_ms": Number,
            "node_plan": dict,
            "overhead": dict,
            "node_diagnostics": dict,
            "setup": dict,
            "targets": list,
        },
        "planner_round_trip",
    )
    # The real planner node answered every request with a plan.
    assert document["failed"] == 0, document["failure_messages"]
    assert document["answered"] == document["requests"] == document["samples"] > 0
    assert 0 <= document["late"] <= document["answered"]
    for part in ("node_plan", "overhead"):
        check_schema(document[part], LATENCY_SCHEMA, f"planner_round_trip.{part}")
        assert document[part]["samples"] == document["answered"]
    # A round trip contains the node's planning of it, so what is left over is positive.
    assert 0.0 < document["overhead"]["p50_ms"] <= document["p99_ms"]
    assert document["node_plan"]["max_ms"] <= document["max_ms"]
    # The node's /diagnostics counted the warm-up plans and the timed ones, nothing failed.
    setup = document["setup"]
    assert document["node_diagnostics"]["plans"] == setup["warmup_requests"] + document["answered"]
    assert document["node_diagnostics"]["failed"] == 0
    # H: the node's default, the run's agent.act_horizon (the acting planner's).
    assert (setup["env_id"], setup["M"], setup["rate_hz"]) == ("Leg2R-v0", 100, 100)
    assert setup["H"] == setup["agent"]["act_horizon"] == 5
    assert document["budget_ms"] == pytest.approx(1e3 / setup["rate_hz"])
    assert setup["agent"]["sac_updates"] > 0, "the critic's terminal value must be in the plan"


def test_inner_loop_schema(quick_runs: QuickRunCache) -> None:
    document = successful(quick_runs, "inner_loop")
    rows = document["results"]
    assert isinstance(rows, list) and rows
    for index, row in enumerate(rows):
        check_schema(row, INNER_LOOP_ROW_SCHEMA, f"inner_loop.results[{index}]")
        assert row["fraction_of_matmul"] == pytest.approx(
            row["flops_per_s"] / row["matmul_flops_per_s"]
        )
        assert row["fraction_of_bf16_matmul"] == pytest.approx(
            row["flops_per_s"] / row["matmul_bf16_flops_per_s"]
        )
        # Every (start state x sample) row advances H steps, plus the nominal/final rollouts.
        assert row["model_rows_per_plan"] >= row["B"] * row["M"] * row["H"]
    assert {row["device"] for row in rows} >= {"cpu"}


def test_control_loop_schema(quick_runs: QuickRunCache) -> None:
    document = successful(quick_runs, "control_loop")
    for variant in ("idle", "loaded"):
        check_schema(document[variant], LOOP_VARIANT_SCHEMA, f"control_loop.{variant}")
        result = document[variant]
        assert result["period_p50_ms"] <= result["period_p99_ms"] <= result["period_max_ms"]
    assert document["trainer"]["crashed"] is False, "the load (trainer process) crashed"


def test_sample_efficiency_schema(quick_runs: QuickRunCache) -> None:
    document = successful(quick_runs, "sample_efficiency")
    assert isinstance(document["threshold"], (*Number, type(None)))
    epochs = document["budget"]["epochs"]
    assert set(document["algos"]) == set(SAMPLE_EFFICIENCY_ALGOS)
    for name, result in document["algos"].items():
        check_schema(result, ALGO_SCHEMA, f"sample_efficiency.algos.{name}")
        assert len(result["returns_mean"]) == len(result["returns_std"]) == epochs
        assert result["final_return_mean"] == pytest.approx(result["returns_mean"][-1])
        reached = result["epochs_to_threshold"]
        if reached is not None:
            assert 1 <= reached <= epochs
            assert result["returns_mean"][reached - 1] >= document["threshold"]
    assert (Path(document["plot"]).name == "sample_efficiency.png") and (
        quick_runs.results / "sample_efficiency.png"
    ).stat().st_size > 0


def test_elite_fraction_schema(quick_runs: QuickRunCache) -> None:
    document = successful(quick_runs, "elite_fraction")
    rows = document["results"]
    assert isinstance(rows, list) and rows
    for index, row in enumerate(rows):
        check_schema(
            row,
            {
                "elite_percent": Number,
                "epochs_to_threshold": (int, type(None)),
                "returns_mean": list,
            },
            f"elite_fraction.results[{index}]",
        )
    percents = [row["elite_percent"] for row in rows]
    assert percents == sorted(set(percents))


STUDY_ARM_SCHEMA: dict[str, Any] = {
    "seeds": int,
    "steps_to_threshold": list,
    "steps_to_threshold_mean": (*Number, type(None)),
    "auc_mean": Number,
    "auc_ci95": list,
    "train_return_mean": Number,
}


def test_study_schema(quick_runs: QuickRunCache) -> None:
    document = successful(quick_runs, "study")
    tasks = document["tasks"]
    assert isinstance(tasks, dict) and tasks
    for env_id, task in tasks.items():
        check_schema(
            task, {"threshold": Number, "budget_steps": int, "arms": dict}, f"study.{env_id}"
        )
        assert set(task["arms"]) == {"sac", "sb3_sac"}
        for name, arm in task["arms"].items():
            where = f"study.{env_id}.{name}"
            check_schema(arm, STUDY_ARM_SCHEMA, where)
            assert arm["seeds"] == len(arm["steps_to_threshold"]) == 1, where
            low, high = arm["auc_ci95"]
            assert low <= arm["auc_mean"] <= high, where
            counted = [task["budget_steps"] if s is None else s for s in arm["steps_to_threshold"]]
            assert arm["steps_to_threshold_mean"] == pytest.approx(sum(counted) / len(counted))
            assert 0 < min(counted) <= task["budget_steps"]
        assert (quick_runs.results / task["plot"]).stat().st_size > 0
    run_files = list((quick_runs.results / "study_quick_runs").rglob("seed*-*.json"))
    assert len([path for path in run_files if not path.name.endswith(".timing.json")]) == 2


def test_report_renders_every_result(quick_runs: QuickRunCache, tmp_path: Path) -> None:
    for name in QUICK_SCRIPTS:
        quick_runs.get(name)
    output = tmp_path / "BENCHMARKS.md"
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCH_DIR / "report.py"),
            "--results-dir",
            str(quick_runs.results),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    text = output.read_text()
    for name in QUICK_SCRIPTS:
        if quick_runs.get(name).document is not None:
            assert f"`{quick_runs.get(name).document['command']}`" in text, name
    assert "quick smoke run" in text


def test_run_all_lists_every_script_in_dry_run(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCH_DIR / "run_all.py"),
            "--quick",
            "--dry-run",
            "--out-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    for script in QUICK_SCRIPTS.values():
        assert script in completed.stdout


def test_control_loop_spread_over_runs_is_min_median_max_per_variant() -> None:
    from control_loop_loaded import SPREAD_KEYS, spread_over_runs

    def run(missed: int, p99: float, longest: float) -> dict[str, Any]:
        stats = {"missed": missed, "period_p99_ms": p99, "period_max_ms": longest}
        return {"idle": stats, "loaded": {k: 2 * v for k, v in stats.items()}}

    spread = spread_over_runs([run(3, 2.0, 5.0), run(0, 2.1, 9.0), run(1, 1.9, 4.0)])
    assert set(spread["idle"]) == set(SPREAD_KEYS)
    assert spread["idle"]["missed"] == {"min": 0.0, "median": 1.0, "max": 3.0}
    assert spread["loaded"]["period_max_ms"] == {"min": 8.0, "median": 10.0, "max": 18.0}
