"""Runs the benchmark suite in sequence, then regenerates BENCHMARKS.md.

    python bench/run_all.py            # `make bench`: speed benchmarks + reduced sample efficiency
    python bench/run_all.py --full     # `make bench-full`: full sample-efficiency + elite-fraction
    python bench/run_all.py --quick    # smoke run of every script (results to a temporary dir)

Each script runs in its own subprocess (a crash or a hung script cannot take the others down; the
per-script time limit is generous). A failing script is reported and the rest still run; the exit
status is non-zero if any failed. `--only a,b` restricts the run to the named scripts and
`--dry-run` prints the commands without running them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import BENCH_DIR, DEFAULT_RESULTS_DIR, REPO_ROOT, RESULTS_ENV_VAR


@dataclass(frozen=True)
class Step:
    """One script of the suite with the extra flags of the mode it runs in."""

    name: str
    script: str
    flags: tuple[str, ...] = field(default_factory=tuple)
    limit_s: float = 3600.0


# `make bench` (~30 min on the 2-core machine): the speed benchmarks, each a few minutes at most,
# and the reduced sample-efficiency run (its budget is the script's "reduced" preset).
DEFAULT_STEPS = (
    Step("sac_updates", "sac_updates.py", limit_s=900),
    Step("policy_latency", "policy_latency.py", limit_s=600),
    Step("planner_latency", "planner_latency.py", limit_s=600),
    Step("planner_round_trip", "planner_round_trip.py", limit_s=600),
    Step("inner_loop", "inner_loop.py", limit_s=1200),
    Step(
        "control_loop",
        "control_loop_loaded.py",
        ("--realtime-priority", "10", "--trainer-nice", "10"),
        limit_s=900,
    ),
    Step("sample_efficiency", "sample_efficiency.py", ("--preset", "reduced"), limit_s=3600),
)

# `make bench-full` (<= 2 h on the 2-core machine): the two learning studies at full budget.
FULL_STEPS = (
    Step("sample_efficiency", "sample_efficiency.py", ("--preset", "full"), limit_s=5400),
    # 12 epochs: in the 20-epoch sample-efficiency study mdemorl passes 900 by epoch 8-10 and
    # then plateaus, so 12 epochs still rank every p by epochs-to-threshold, in half the time.
    Step("elite_fraction", "elite_fraction.py", ("--preset", "full", "--epochs", "12"), 3600),
)

QUICK_STEPS = (
    *(Step(step.name, step.script, ("--quick",), 600) for step in DEFAULT_STEPS),
    Step("elite_fraction", "elite_fraction.py", ("--quick",), 600),
    # The issue-10 study itself is run in pieces (`make study`); here only its quick smoke.
    Step("study", "study.py", ("--quick",), 600),
)


def run_step(
    step: Step, results: Path, dry_run: bool, threads: int | None = None
) -> tuple[bool, float]:
    """Runs one script; returns (succeeded, seconds)."""
    command = [sys.executable, str(BENCH_DIR / step.script), *step.flags, "--out-dir", str(results)]
    if threads is not None:
        command += ["--threads", str(threads)]
    print(f"[bench] {step.name}: {' '.join(command)}", flush=True)
    if dry_run:
        return True, 0.0
    start = time.perf_counter()
    try:
        completed = subprocess.run(command, cwd=REPO_ROOT, timeout=step.limit_s, check=False)
        succeeded = completed.returncode == 0
    except subprocess.TimeoutExpired:
        print(f"[bench] {step.name}: exceeded {step.limit_s:.0f} s, killed", flush=True)
        succeeded = False
    seconds = time.perf_counter() - start
    print(f"[bench] {step.name}: {'ok' if succeeded else 'FAILED'} in {seconds:.0f} s", flush=True)
    return succeeded, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="full learning studies (<= 2 h)")
    mode.add_argument("--quick", action="store_true", help="smoke-run every script")
    parser.add_argument("--only", default=None, help="comma-separated script names to run")
    parser.add_argument("--out-dir", type=Path, default=None, help="results directory")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of every script (default: each its own)",
    )
    args = parser.parse_args(argv)

    steps = FULL_STEPS if args.full else QUICK_STEPS if args.quick else DEFAULT_STEPS
    if args.only:
        wanted = {name.strip() for name in args.only.split(",") if name.strip()}
        known = {step.name for step in (*DEFAULT_STEPS, *FULL_STEPS, *QUICK_STEPS)}
        unknown = wanted - known
        if unknown:
            raise SystemExit(
                f"--only: unknown benchmark(s) {sorted(unknown)}; known: {sorted(known)}"
            )
        steps = tuple(step for step in steps if step.name in wanted)

    if args.out_dir is not None:
        results = args.out_dir
    elif args.quick:
        results = Path(tempfile.mkdtemp(prefix="mdemorl-bench-quick-"))
    else:
        results = DEFAULT_RESULTS_DIR
    results.mkdir(parents=True, exist_ok=True)
    print(f"[bench] results -> {results} (also settable with ${RESULTS_ENV_VAR})", flush=True)

    failures = []
    total = 0.0
    for step in steps:
        succeeded, seconds = run_step(step, results, args.dry_run, args.threads)
        total += seconds
        if not succeeded:
            failures.append(step.name)

    report_command = [sys.executable, str(BENCH_DIR / "report.py"), "--results-dir", str(results)]
    if results != DEFAULT_RESULTS_DIR:
        report_command += ["--output", str(results / "BENCHMARKS.md")]
    if not args.dry_run:
        subprocess.run(report_command, cwd=REPO_ROOT, check=True)
    print(f"[bench] done in {total / 60:.1f} min; failed: {failures or 'none'}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
