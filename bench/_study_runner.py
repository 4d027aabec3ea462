"""Runs the (task, arm, seed) runs of bench/study.py: skip finished, resume killed, time limit.

This project's runs go epoch by epoch through `mdemorl_core.training.loop.train` with a checkpoint
after every epoch (`stop_after_epoch` + `resume`, which the loop continues exactly), so a piece
can stop between any two epochs. Before each epoch the runner estimates its duration (this run's
last epoch, or the same epoch of finished runs of the same task and arm, x 1.25 + 5 s) and
starts it only when that fits before the deadline; without an estimate it needs 120 s left.
With a deadline every run is a spawned process, and one still running 15 s before the deadline
(an epoch that overran its estimate, e.g. a first epoch) is killed: it resumes from its last
checkpoint next time. SB3 runs are not resumable: they are abandoned when their next epoch does
not fit, and start again next time. A finished run writes its result file (a pure function of
its settings on a given code revision: rerunning a killed run gives the same file) and a timing
file beside it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import multiprocessing
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from _common import _git_revision, _sanitise, machine_info
from _study import train_document, train_sb3
from _study_plan import PlannedRun

ESTIMATE_MARGIN = 1.25
ESTIMATE_OVERHEAD_S = 5.0
UNKNOWN_EPOCH_S = 120.0
# A run still going this long before the deadline is killed (time left for the report).
KILL_MARGIN_S = 15.0
INTEGER_COLUMNS = ("epoch", "env_steps", "train_episodes")


@dataclass(frozen=True)
class Outcome:
    """What happened to one selected run in this session."""

    label: str
    status: str  # "skipped" (was finished) | "done" | "stopped" (time limit) | "failed"
    detail: str = ""


def _log(message: str) -> None:
    print(f"[study] {message}", flush=True)


def describe_state(run: PlannedRun, results_root: Path, run_root: Path) -> str:
    """ "done", "partial (e/n epochs)" or "missing" (for --list and the report)."""
    if run.is_finished(results_root):
        return "done"
    progress = run.run_dir(run_root) / "progress.csv"
    if progress.is_file():
        rows = max(len(progress.read_text().splitlines()) - 1, 0)
        return f"partial ({rows}/{run.task.epochs} epochs)"
    return "missing"


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(_sanitise(document), indent=1, allow_nan=False) + "\n")
    temporary.replace(path)


def write_result(
    run: PlannedRun,
    results_root: Path,
    progress: dict[str, list[Any]],
    epoch_seconds: Sequence[float],
    threads: int,
    revisions: Sequence[str] | None = None,
) -> Path:
    """The timing file, then the result file (whose presence marks the run finished).
    `revisions`: the git revisions the run ran on (default: this checkout's)."""
    timing = {
        "key": run.key,
        "epoch_seconds": list(epoch_seconds),
        "wall_seconds": float(sum(epoch_seconds)),
        "torch_threads": threads,
        "git_revisions": list(revisions) if revisions else [_git_revision() or "unknown"],
        "cpu_model": machine_info()["cpu_model"],
        "finished_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    _write_json(run.timing_path(results_root), timing)
    document = {
        "key": run.key,
        "task": run.task.env_id,
        "arm": run.arm_name,
        "seed": run.seed,
        "settings": run.settings(),
        "progress": progress,
    }
    path = run.result_path(results_root)
    _write_json(path, document)
    return path


def _number(text: str, integer: bool) -> float | int:
    return int(text) if integer else float(text)


def progress_columns(rows: list[dict[str, str]]) -> dict[str, list[Any]]:
    """progress.csv rows -> column -> values, without the wall-time columns (not reproducible)."""
    from mdemorl_core.training.progress_log import WALL_TIME_COLUMNS

    if not rows:
        return {}
    return {
        column: [_number(row[column], column in INTEGER_COLUMNS) for row in rows]
        for column in rows[0]
        if column not in WALL_TIME_COLUMNS
    }


def _sibling_epoch_seconds(run: PlannedRun, results_root: Path, epoch: int) -> float | None:
    """The slowest `epoch` (0-based) among finished runs of the same task and arm."""
    folder = run.timing_path(results_root).parent
    seconds = []
    for path in folder.glob("seed*.timing.json"):
        recorded = json.loads(path.read_text()).get("epoch_seconds") or []
        if epoch < len(recorded) and recorded[epoch] is not None:
            seconds.append(float(recorded[epoch]))
    return max(seconds) if seconds else None


def _estimate(own_last: float | None, sibling: float | None) -> float | None:
    known = [value for value in (own_last, sibling) if value is not None and math.isfinite(value)]
    return max(known) * ESTIMATE_MARGIN + ESTIMATE_OVERHEAD_S if known else None


def fits(deadline: float | None, estimate: float | None) -> bool:
    """Whether work estimated at `estimate` seconds ends before `deadline` (time.time())."""
    if deadline is None:
        return True
    needed = UNKNOWN_EPOCH_S if estimate is None else estimate
    return time.time() + needed <= deadline


def _resumable_epochs(run: PlannedRun, run_dir: Path, config: Any) -> int:
    """Epochs a partial run in `run_dir` can resume from; 0 after discarding what cannot be
    resumed (no checkpoint yet, or a stored config that differs: the code's defaults changed)."""
    from mdemorl_core.training.checkpoint import has_checkpoint, load_checkpoint
    from mdemorl_core.training.run_dir import RunPaths, check_resume_config, read_run_config

    paths = RunPaths(run_dir)
    if not paths.holds_run():
        return 0
    reason = None
    if not has_checkpoint(paths.checkpoint_dir):
        reason = "it has no checkpoint yet (killed in its first epoch)"
    else:
        try:
            check_resume_config(read_run_config(run_dir), config)
        except (ValueError, RuntimeError) as error:
            reason = f"its stored config no longer matches ({error})"
    if reason is not None:
        _log(f"{run.label}: starting again, {reason}")
        shutil.rmtree(run_dir)
        return 0
    return int(load_checkpoint(paths.checkpoint_dir)["epoch"])


def _note_revision(run_dir: Path) -> list[str]:
    """Adds this checkout's git revision to the run's list (a run resumed across commits shows
    every revision it ran on in its timing file); returns the list."""
    path = run_dir / "study_revisions.txt"
    revisions = path.read_text().split() if path.is_file() else []
    revision = _git_revision() or "unknown"
    if revision not in revisions:
        revisions.append(revision)
        path.write_text("\n".join(revisions) + "\n")
    return revisions


def _execute_ours(
    run: PlannedRun, results_root: Path, run_root: Path, threads: int, deadline: float | None
) -> bool:
    from mdemorl_core.config import build_train_config
    from mdemorl_core.training.loop import train
    from mdemorl_core.training.progress_log import read_progress

    job = run.job(run_root, threads)
    config = build_train_config(train_document(job))
    progress_path = job.run_dir / "progress.csv"
    done = _resumable_epochs(run, job.run_dir, config)
    if done:
        _log(f"{run.label}: resuming after epoch {done}/{config.epochs}")
    while done < config.epochs:
        rows = read_progress(progress_path) if done else []
        own = float(rows[done - 1]["epoch_seconds"]) if len(rows) >= done > 0 else None
        if not fits(deadline, _estimate(own, _sibling_epoch_seconds(run, results_root, done))):
            _log(f"{run.label}: stopping after epoch {done}/{config.epochs} (time limit)")
            return False
        train(config, job.run_dir, resume=done > 0, stop_after_epoch=done + 1, show_progress=False)
        done += 1
        _note_revision(job.run_dir)
        row = read_progress(progress_path)[done - 1]
        _log(
            f"{run.label}: epoch {done}/{config.epochs} eval {float(row['eval_return']):.1f} "
            f"({float(row['epoch_seconds']):.0f} s)"
        )
    rows = read_progress(progress_path)
    seconds = [float(row["epoch_seconds"]) for row in rows]
    revisions = _note_revision(job.run_dir)
    write_result(run, results_root, progress_columns(rows), seconds, threads, revisions)
    return True


def _execute_sb3(
    run: PlannedRun, results_root: Path, run_root: Path, threads: int, deadline: float | None
) -> bool:
    if not fits(deadline, _estimate(None, _sibling_epoch_seconds(run, results_root, 0))):
        return False
    job = run.job(run_root, threads)

    def keep_going(epoch_seconds: float) -> bool:
        return fits(deadline, _estimate(epoch_seconds, None))

    result = train_sb3(job, keep_going)
    if result is None:
        _log(f"{run.label}: abandoned (time limit; SB3 runs start again next time)")
        return False
    epochs = len(result.returns)
    steps = run.task.steps_per_epoch
    progress = {
        "epoch": list(range(1, epochs + 1)),
        "env_steps": [steps * (epoch + 1) for epoch in range(epochs)],
        "eval_return": result.returns,
        "eval_return_std": result.eval_std,
        "train_return": result.train_returns,
        "train_episodes": result.train_episodes,
    }
    write_result(run, results_root, progress, [result.wall_seconds / epochs] * epochs, threads)
    return True


def execute(
    run: PlannedRun, results_root: Path, run_root: Path, threads: int, deadline: float | None
) -> Outcome:
    """Runs (or resumes) one run in this process; an exception fails only this run."""
    if run.is_finished(results_root):
        return Outcome(run.label, "skipped", "already finished")
    start = time.perf_counter()
    runner = _execute_sb3 if run.arm.algo == "sb3_sac" else _execute_ours
    try:
        finished = runner(run, results_root, run_root, threads, deadline)
    except Exception as error:  # noqa: BLE001  (one broken run must not stop the others)
        _log(f"{run.label}: FAILED ({type(error).__name__}: {error})")
        return Outcome(run.label, "failed", f"{type(error).__name__}: {error}")
    if finished:
        _log(f"{run.label}: finished ({time.perf_counter() - start:.0f} s this session)")
        return Outcome(run.label, "done")
    return Outcome(run.label, "stopped")


def _child(
    connection: Connection,
    run: PlannedRun,
    results_root: Path,
    run_root: Path,
    threads: int,
    deadline: float | None,
) -> None:
    connection.send(execute(run, results_root, run_root, threads, deadline))
    connection.close()


def _run_isolated(
    pending: Sequence[PlannedRun],
    results_root: Path,
    run_root: Path,
    workers: int,
    threads: int,
    deadline: float | None,
) -> list[Outcome]:
    """Each run in its own spawned process, `workers` at a time; at `deadline` - KILL_MARGIN_S
    the ones still running are terminated (they resume from their last epoch checkpoint)."""
    context = multiprocessing.get_context("spawn")
    kill_at = None if deadline is None else deadline - KILL_MARGIN_S
    outcomes: dict[int, Outcome] = {}
    active: dict[int, tuple[Any, Connection]] = {}
    queue = list(enumerate(pending))
    while queue or active:
        while queue and len(active) < workers:
            index, run = queue.pop(0)
            if kill_at is not None and time.time() >= kill_at:
                outcomes[index] = Outcome(run.label, "stopped", "time limit")
                continue
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_child, args=(sender, run, results_root, run_root, threads, deadline)
            )
            process.start()
            sender.close()
            active[index] = (process, receiver)
        if not active:
            continue
        wait([receiver for _, receiver in active.values()], timeout=1.0)
        for index, (process, receiver) in list(active.items()):
            label = pending[index].label
            alive = process.is_alive()
            # Polled after is_alive: a child that sent its outcome and exited is never "failed".
            if receiver.poll():
                outcomes[index] = receiver.recv()
            elif alive:
                if kill_at is None or time.time() < kill_at:
                    continue
                process.terminate()
                _log(f"{label}: killed at the time limit (resumes from its last checkpoint)")
                outcomes[index] = Outcome(label, "stopped", "killed at the time limit")
            else:
                outcomes[index] = Outcome(label, "failed", f"worker exited {process.exitcode}")
            process.join()
            del active[index]
    return [outcomes[index] for index in range(len(pending))]


def run_study(
    runs: Sequence[PlannedRun],
    results_root: Path,
    run_root: Path,
    workers: int,
    threads: int,
    deadline: float | None,
    isolate: bool | None = None,
) -> list[Outcome]:
    """Runs what is missing of `runs`, in their order, `workers` at a time.

    `isolate` (default: with a deadline or more than one worker) runs each in a spawned process,
    which also enforces the deadline: an epoch that overruns its estimate is killed."""
    pending = [run for run in runs if not run.is_finished(results_root)]
    _log(f"{len(runs)} run(s) selected, {len(runs) - len(pending)} already finished")
    skipped = [Outcome(r.label, "skipped") for r in runs if r not in pending]
    if isolate is None:
        isolate = deadline is not None or workers > 1
    if not isolate:
        return skipped + [execute(r, results_root, run_root, threads, deadline) for r in pending]
    return skipped + _run_isolated(pending, results_root, run_root, workers, threads, deadline)
