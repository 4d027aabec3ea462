"""Online training over ROS vs offline training, and vs retraining from its bag (issue 11).

    python bench/ros_offline_equivalence.py [--seeds 0 1 2] [--episodes 10] [--runs-dir DIR]

Per seed: the training launch (``train.launch.py``, sim backend, episodic protocol, the shipped
``trainer_leg2r.yaml`` with only ``seed`` changed) trains M-DeMoRL on the real-time simulated leg;
then ``mdemorl retrain --bag`` replays that run's bag with the same config file and seed, and
``mdemorl train`` runs the same config and seed offline (the Gymnasium task, no ROS); the three
final policies are evaluated by ``mdemorl eval`` on Leg2R-v0 over ``--episodes`` episodes.

Fixed before any run (not tuned afterwards): the trainer config's 10 epochs x 1000 steps, 10
evaluation episodes, 3 seeds, and the criterion: the offline runs are *equivalent within seed
noise* (retrain and train, each) when the mean over seeds of (offline - online) final return is
within one across-seed standard deviation of the online final returns.

Resumable: each finished step (online run, retrain, each evaluation) is recorded in
``DIR/seed<N>.json`` and skipped by a rerun; an online run cut short is continued with
``resume:=true`` (its later bag is replayed after the first), a cut retrain is redone from
scratch, a cut ``mdemorl train`` continues with ``--resume``. Writes ``bench/results/ros_offline_equivalence.json``.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from _common import base_parser, emit

from mdemorl_core.training.progress_log import WALL_TIME_COLUMNS

TRAINER_CONFIG = "trainer_leg2r.yaml"


def _shipped_trainer_config() -> Path:
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("stochlite_bringup")) / "config" / TRAINER_CONFIG


def _progress(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "progress.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


def _finished_epochs(run_dir: Path) -> int:
    rows = _progress(run_dir)
    return int(rows[-1]["epoch"]) if rows else 0


def _run(command: list[str], log: Path) -> float:
    """Runs ``command`` with its output in ``log``; its wall time (s). Fails on a non-zero exit."""
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}; see {log}")
    return time.perf_counter() - started


def _evaluate(run_dir: Path, episodes: int) -> dict[str, float]:
    output = subprocess.run(
        ["mdemorl", "eval", "--run", str(run_dir), "--episodes", str(episodes)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output)


def _same_progress(first: Path, second: Path) -> bool:
    """The two runs logged the same progress rows (losses, returns, buffer sizes), wall time aside:
    the same learning, bit for bit."""

    def learning(run_dir: Path) -> list[dict[str, str]]:
        return [
            {k: v for k, v in row.items() if k not in WALL_TIME_COLUMNS}
            for row in _progress(run_dir)
        ]

    return learning(first) == learning(second)


def _epoch_seconds(run_dir: Path) -> list[float]:
    return [float(row["epoch_seconds"]) for row in _progress(run_dir)]


def run_seed(seed: int, runs_dir: Path, episodes: int, train: bool = True) -> dict[str, Any]:
    record_path = runs_dir / f"seed{seed}.json"
    record: dict[str, Any] = json.loads(record_path.read_text()) if record_path.exists() else {}

    def save() -> None:
        record_path.write_text(json.dumps(record, indent=1) + "\n")

    config = yaml.safe_load(_shipped_trainer_config().read_text())
    config["seed"] = seed
    config_path = runs_dir / f"trainer_seed{seed}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    epochs = int(config["epochs"])
    online, offline = runs_dir / f"online_seed{seed}", runs_dir / f"offline_seed{seed}"
    simulator = runs_dir / f"train_seed{seed}"
    log = runs_dir / f"seed{seed}.log"

    if "online_wall_s" not in record:
        launch = [
            "launch_runner",
            "stochlite_bringup",
            "train.launch.py",
            f"run_dir:={online}",
            f"trainer_config:={config_path}",
        ]
        if _finished_epochs(online) > 0:
            launch.append("resume:=true")
            record["online_resumed"] = True
        record["online_wall_s"] = _run(launch, log)  # of the last launch only, when resumed
        if _finished_epochs(online) != epochs:
            raise RuntimeError(f"{online}: {_finished_epochs(online)} of {epochs} epochs")
        save()
    bags = sorted(online.glob("bag_*"))
    if "offline_wall_s" not in record:
        shutil.rmtree(offline, ignore_errors=True)
        retrain = ["mdemorl", "retrain", "--out", str(offline), "--config", str(config_path)]
        for bag in bags:
            retrain += ["--bag", str(bag)]
        record["offline_wall_s"] = _run(retrain, log)
        save()
    if train and "train_wall_s" not in record:
        command = ["mdemorl", "train", "--out", str(simulator), "--config", str(config_path)]
        if _finished_epochs(simulator) > 0:
            command.append("--resume")
        record["train_wall_s"] = _run(command + ["--no-progress"], log)
        save()
    runs = [("online", online), ("offline", offline)]
    if "train_wall_s" in record:
        runs.append(("train", simulator))
    for name, run_dir in runs:
        if f"{name}_eval" not in record:
            record[f"{name}_eval"] = _evaluate(run_dir, episodes)
            save()
    record.update(
        seed=seed,
        epochs=epochs,
        offline_progress_identical=_same_progress(online, offline),
        bags=[bag.name for bag in bags],
        **{f"{name}_epoch_seconds": _epoch_seconds(run_dir) for name, run_dir in runs},
        **{f"{name}_env_steps": int(_progress(run_dir)[-1]["env_steps"]) for name, run_dir in runs},
    )
    save()
    return record


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per offline path (``offline``: retrain from the bag, ``train``: mdemorl train) its final
    returns against the online ones, the criterion, and each path's mean epoch wall time."""
    online = [r["online_eval"]["mean_return"] for r in records]
    noise = statistics.stdev(online) if len(online) > 1 else math.nan
    summary: dict[str, Any] = {"online_final_return": online, "online_seed_std": noise}
    for name in ("offline", "train"):
        if not all(f"{name}_eval" in r for r in records):
            continue
        finals = [r[f"{name}_eval"]["mean_return"] for r in records]
        differences = [b - a for a, b in zip(online, finals, strict=True)]
        mean_difference = statistics.fmean(differences)
        summary[name] = {
            "final_return": finals,
            "minus_online": differences,
            "mean_minus_online": mean_difference,
            "equivalent_within_seed_noise": bool(abs(mean_difference) <= noise),
        }
    for name in ("online", "offline", "train"):
        seconds = [s for r in records for s in r.get(f"{name}_epoch_seconds", [])]
        if seconds:
            summary[f"{name}_epoch_seconds_mean"] = statistics.fmean(seconds)
    return summary


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/ros_offline_equivalence"))
    parser.add_argument(
        "--no-train", action="store_true", help="skip the mdemorl train runs (report the others)"
    )
    args = parser.parse_args()
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for seed in args.seeds:
        print(f"[equivalence] seed {seed}", file=sys.stderr, flush=True)
        records.append(run_seed(seed, args.runs_dir, args.episodes, train=not args.no_train))
    payload = {
        "trainer_config": TRAINER_CONFIG,
        "episodes": args.episodes,
        "criterion": "|mean over seeds of (offline - online)| <= across-seed std of online",
        "seeds": records,
        "summary": summarise(records),
    }
    emit("ros_offline_equivalence", payload, quick=args.quick, out_dir=args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
