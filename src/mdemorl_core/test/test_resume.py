"""Exact resumption: an interrupted run continued with --resume equals an uninterrupted one.

Tiny settings (the bundled `smoke` config) still run every stage of Algorithm 1 each epoch
(model, DMD-MPC planner into D_MPC, SAC steps), so any state missing from the checkpoint shows up
as a different progress row or different final weights.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mdemorl_core.config import (
    TrainConfig,
    build_train_config,
    read_yaml_mapping,
    resolve_config_path,
)
from mdemorl_core.training.checkpoint import has_checkpoint, load_checkpoint
from mdemorl_core.training.loop import train
from mdemorl_core.training.progress_log import WALL_TIME_COLUMNS, read_progress

EPOCHS = 3


def _config(seed: int = 3) -> TrainConfig:
    document = read_yaml_mapping(resolve_config_path("smoke"))
    document.update(env_id="Pendulum-v1", algo="mdemorl", epochs=EPOCHS, seed=seed)
    return build_train_config(document)


def _rows_without_wall_time(run: Path) -> list[dict[str, str]]:
    return [
        {k: v for k, v in row.items() if k not in WALL_TIME_COLUMNS}
        for row in read_progress(run / "progress.csv")
    ]


def _assert_same_final_agent(first: Path, second: Path) -> None:
    state_a = load_checkpoint(first / "checkpoint")["agent"]
    state_b = load_checkpoint(second / "checkpoint")["agent"]
    for name in ("sac", "model"):
        assert state_a[name].keys() == state_b[name].keys()
        for key, tensor in state_a[name].items():
            assert torch.equal(tensor, state_b[name][key]), f"{name}.{key} differs"
    assert state_a["counters"] == state_b["counters"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    train(_config(), run)
    return run


def test_stop_then_resume_equals_uninterrupted(uninterrupted: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = train(_config(), run, stop_after_epoch=1)
    assert first.stopped_early and first.epochs_done == 1
    assert len(read_progress(run / "progress.csv")) == 1
    # A row logged after the last checkpoint (as by a run killed before checkpointing) must go.
    with (run / "progress.csv").open("a") as handle:
        handle.write("2,400," + ",".join(["-1.0"] * 13) + "\n")

    resumed = train(_config(), run, resume=True)
    assert not resumed.stopped_early and resumed.epochs_done == EPOCHS
    rows = _rows_without_wall_time(run)
    assert len(rows) == EPOCHS
    assert rows == _rows_without_wall_time(uninterrupted)
    _assert_same_final_agent(run, uninterrupted)


@pytest.mark.slow
def test_sigkill_after_a_checkpoint_then_resume(uninterrupted: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    common = ["-m", "mdemorl_core.cli", "train", "--out", str(run), "--no-progress"]
    command = [sys.executable, *common, "--env", "Pendulum-v1", "--epochs", str(EPOCHS)]
    command += ["--seed", "3", "--config", "smoke"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120.0
        while not has_checkpoint(run / "checkpoint"):
            assert process.poll() is None, f"training exited early: {process.stderr}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    killed_at = int(load_checkpoint(run / "checkpoint")["epoch"])
    assert 1 <= killed_at < EPOCHS, "the kill must interrupt the run before its end"

    resume = subprocess.run(
        [sys.executable, *common, "--resume"], env=env, capture_output=True, text=True, timeout=120
    )
    assert resume.returncode == 0, resume.stderr
    assert f"finished {EPOCHS} epochs" in resume.stdout
    assert _rows_without_wall_time(run) == _rows_without_wall_time(uninterrupted)
    _assert_same_final_agent(run, uninterrupted)
