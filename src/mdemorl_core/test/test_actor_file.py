"""Actor files: `mdemorl export` writes a run's actor; deployment reads runs and files alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mdemorl_core.cli import main
from mdemorl_core.config import build_train_config
from mdemorl_core.policy_io import sha256_hex
from mdemorl_core.training.actor_file import export_actor, load_deployable_actor
from mdemorl_core.training.online import OnlineTrainer, load_run_actor
from mdemorl_core.training.run_dir import RunDirError

STEPS = 40
TINY = {
    "env_id": "Pendulum-v1",
    "algo": "sac",
    "steps_per_epoch": STEPS,
    "epochs": 1,
    "agent": {"sac": {"hidden_size": 16, "batch_size": 16}, "initial_random_steps": 0},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch SAC run on synthetic Pendulum-shaped data."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("actor_file") / "run"
    trainer = OnlineTrainer(build_train_config(TINY), root, obs_dim=3, act_dim=1)
    rng = np.random.default_rng(0)
    for step in range(STEPS):
        obs = rng.uniform(-1, 1, 3).astype(np.float32)
        trainer.add(obs, rng.uniform(-1, 1, 1), -float(obs @ obs), 0.9 * obs, False, step == 19)
    trainer.run_epoch()
    return root


def test_export_writes_the_runs_actor_and_deploys_like_the_run(run_dir: Path, tmp_path: Path):
    out = tmp_path / "policies" / "pendulum_sac.pt"
    meta = export_actor(run_dir, out)
    from_run = load_run_actor(run_dir)
    from_file = load_deployable_actor(out)
    assert from_file == from_run == load_deployable_actor(run_dir)
    assert (meta["algorithm"], meta["version"], meta["obs_dim"], meta["act_dim"]) == (
        "sac",
        1,
        3,
        1,
    )
    assert meta["sha256"] == sha256_hex(out.read_bytes()) and meta["bytes"] == out.stat().st_size
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary left behind


def test_cli_export_and_its_errors(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "actor.pt"
    assert main(["export", "--run", str(run_dir), "--out", str(out)]) == 0
    assert "wrote the sac actor of epoch 1 (obs 3, act 1" in capsys.readouterr().out
    assert main(["export", "--run", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert main(["export", "--run", str(run_dir), "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_a_file_that_is_no_actor_is_refused_by_name(run_dir: Path, tmp_path: Path) -> None:
    good = tmp_path / "actor.pt"
    export_actor(run_dir, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_deployable_actor(truncated)
    with pytest.raises(RunDirError, match="neither a run directory nor an actor file"):
        load_deployable_actor(tmp_path / "missing.pt")


def test_an_unwritable_destination_is_an_error_and_leaves_nothing(run_dir: Path, tmp_path: Path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(RunDirError, match="cannot write the actor file"):
        export_actor(run_dir, blocker / "actor.pt")
    assert blocker.read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
