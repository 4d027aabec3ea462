"""500 Hz torque-control loop, idle and while a trainer epoch runs on the same machine.

    python bench/control_loop_loaded.py [--quick] [--idle-seconds 30] [--loaded-seconds 60]
        [--trainer-nice 0] [--repeats 1]

Uses H4's bench/control_loop_bench.py (sim robot + torque controller in separate processes, the
controller's own loop statistics) and plugs a "loaded" scenario into its SCENARIOS hook: a
`mdemorl train --env Leg2R-v0` process with the default M-DeMoRL configuration (its first
epoch: 1000 env steps, then ensemble training, the DMD-MPC inner loop and 10 000 SAC updates,
using every core torch wants) is started before the controller and killed after the measurement,
so the measured window lies inside that epoch. `--trainer-nice` runs the trainer at a lower
priority (what a deployment would do); the default 0 is the worst case. `make bench` runs the
deployment settings, `--realtime-priority 10 --trainer-nice 10` (SCHED_FIFO loops, their DDS
threads one below; see src/leg2r_driver/README.md for the measured numbers). `--repeats N` runs
the idle + loaded pair N times and reports, per variant, min / median / max over the runs of the
missed periods, the p99 and the longest period (`over_runs`); the top-level `idle` / `loaded`
are then the run with the most loaded misses (the worst run, never the best), all runs in `runs`.
"""

from __future__ import annotations

import inspect
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import control_loop_bench as h4
from _common import base_parser, emit

from mdemorl_ros.ros_testing import RosHarness

ScenarioFn = Callable[[RosHarness], list[subprocess.Popen[bytes]]]

TRAINER_LOG_NAME = "trainer.out"


def trainer_command(run_dir: Path, quick: bool) -> list[str]:
    """`mdemorl train` with the default agent: many epochs, so it is busy the whole window."""
    command = [
        sys.executable,
        "-m",
        "mdemorl_core.cli",
        "train",
        "--env",
        "Leg2R-v0",
        "--algo",
        "mdemorl",
        "--epochs",
        "100",
        "--seed",
        "0",
        "--out",
        str(run_dir),
        "--no-progress",
    ]
    if quick:
        command += ["--set", "steps_per_epoch=100", "--set", "agent.initial_random_steps=100"]
    return command


def make_loaded_scenario(quick: bool, nice: int, record: dict[str, Any]) -> ScenarioFn:
    def start_trainer(harness: RosHarness) -> list[subprocess.Popen[bytes]]:
        work_dir = Path(tempfile.mkdtemp(prefix="control_loop_trainer_"))
        run_dir = work_dir / "run"
        log_path = work_dir / TRAINER_LOG_NAME
        command = trainer_command(run_dir, quick)
        if nice:
            command = ["nice", "-n", str(nice), *command]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, env=harness.env, stdout=log, stderr=subprocess.STDOUT
            )
        harness.processes.append(process)
        record.update(
            command=" ".join(command[command.index("-m") - 1 :]), nice=nice, log=str(log_path)
        )
        return [process]

    return start_trainer


def trainer_crashed(log_path: Path) -> bool:
    """True when the trainer died on its own (a traceback in its log): the load was not there."""
    return "Traceback" in log_path.read_text(errors="replace")


def scenario_arguments(available: dict[str, Any]) -> dict[str, Any]:
    """The optional arguments of H4's `run_scenario` this script knows how to fill, by name."""
    wanted: dict[str, Any] = {}
    for name, parameter in list(inspect.signature(h4.run_scenario).parameters.items())[2:]:
        if name in available:
            wanted[name] = available[name]
        elif parameter.default is inspect.Parameter.empty:
            raise TypeError(
                f"control_loop_bench.run_scenario needs {name!r}, which this wrapper cannot fill"
            )
    return wanted


SPREAD_KEYS = ("missed", "period_p99_ms", "period_max_ms")


def spread_over_runs(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per variant and key of SPREAD_KEYS: min / median / max over the runs."""
    spread: dict[str, dict[str, dict[str, float]]] = {}
    for variant in ("idle", "loaded"):
        spread[variant] = {}
        for key in SPREAD_KEYS:
            values = [float(run[variant][key]) for run in runs]
            spread[variant][key] = {
                "min": min(values),
                "median": statistics.median(values),
                "max": max(values),
            }
    return spread


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--loaded-seconds", type=float, default=60.0)
    parser.add_argument("--trainer-nice", type=int, default=0)
    parser.add_argument(
        "--executor", default="inline", help="controller executor strategy (control_loop_bench.py)"
    )
    parser.add_argument(
        "--realtime-priority",
        type=int,
        default=0,
        help="SCHED_FIFO priority of both loops (0: off)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="idle + loaded pairs to run")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    if args.quick:
        args.idle_seconds = args.loaded_seconds = 2.0
    extra = scenario_arguments({"strategy": args.executor, "priority": args.realtime_priority})
    runs: list[dict[str, Any]] = []
    for _ in range(args.repeats):
        trainer: dict[str, Any] = {}
        h4.SCENARIOS["loaded"] = make_loaded_scenario(args.quick, args.trainer_nice, trainer)
        idle = h4.run_scenario("idle", args.idle_seconds, **extra)
        loaded = h4.run_scenario("loaded", args.loaded_seconds, **extra)
        trainer["crashed"] = trainer_crashed(Path(trainer["log"]))
        runs.append({"idle": idle, "loaded": loaded, "trainer": trainer})
    worst = max(runs, key=lambda run: run["loaded"]["missed"])
    repeated = {"runs": runs, "over_runs": spread_over_runs(runs)} if args.repeats > 1 else {}
    emit(
        "control_loop",
        {
            **worst,
            **repeated,
            "load_note": (
                "loaded = the same measurement while `mdemorl train --env Leg2R-v0` (default "
                f"M-DeMoRL config, nice {args.trainer_nice}) runs its first epoch on the same "
                f"{os.cpu_count()}-core machine; controller executor {args.executor}, real-time "
                f"priority {args.realtime_priority}; missed = periods above 2x the nominal 2 ms."
            ),
        },
        quick=args.quick,
        out_dir=args.out_dir,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
