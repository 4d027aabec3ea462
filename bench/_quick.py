"""Runs bench scripts in --quick mode for the smoke tests (bench/test_bench_quick.py).

The scripts run as subprocesses (`sys.executable`, as a user would run them) with their results
directed to a temporary directory, so a test run never overwrites real measurements in
bench/results/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent

# name -> script; every entry must produce <name>.json in its --quick mode.
QUICK_SCRIPTS: dict[str, str] = {
    "sac_updates": "sac_updates.py",
    "policy_latency": "policy_latency.py",
    "planner_latency": "planner_latency.py",
    "planner_round_trip": "planner_round_trip.py",
    "inner_loop": "inner_loop.py",
    "control_loop": "control_loop_loaded.py",
    "sample_efficiency": "sample_efficiency.py",
    "elite_fraction": "elite_fraction.py",
    "study": "study.py",
}


@dataclass(frozen=True)
class QuickRun:
    """Outcome of one `--quick` run: exit status, output and the JSON it wrote (if any)."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    document: dict[str, Any] | None

    def failure_text(self) -> str:
        return f"{self.name} exited {self.returncode}\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}"


def quick_env(results: Path) -> dict[str, str]:
    """Environment for a smoke run: results to `results`, one torch thread, headless plots."""
    env = dict(os.environ)
    env.update(
        MDEMORL_BENCH_RESULTS=str(results),
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",
        ROS_LOG_DIR=str(results / "ros_log"),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(os.getpid() % 100 + 1),
    )
    return env


def run_quick(name: str, results: Path, timeout_s: float = 240.0) -> QuickRun:
    script = BENCH_DIR / QUICK_SCRIPTS[name]
    completed = subprocess.run(
        [sys.executable, str(script), "--quick", "--threads", "1", "--out-dir", str(results)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=quick_env(results),
        cwd=BENCH_DIR.parent,
        check=False,
    )
    path = results / f"{name}.json"
    document = json.loads(path.read_text()) if path.exists() else None
    return QuickRun(name, completed.returncode, completed.stdout, completed.stderr, document)


class QuickRunCache:
    """Runs each script at most once per test session, on first request."""

    def __init__(self, results: Path) -> None:
        self.results = results
        self.runs: dict[str, QuickRun] = {}

    def get(self, name: str) -> QuickRun:
        if name not in self.runs:
            self.runs[name] = run_quick(name, self.results)
        return self.runs[name]
