"""`mdemorl train` / `mdemorl eval` end to end with the real agent, plus the env wrapper."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from mdemorl_core import envs_util
from mdemorl_core.cli import main
from mdemorl_core.envs_util import EnvSetupError, make_env
from mdemorl_core.training.progress_log import COLUMNS, read_progress

SETS = ["--config", "smoke"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 2-epoch mdemorl run on Pendulum-v1 made through the CLI; returns (dir, stdout).

    Module-scoped (capsys is function-scoped), so stdout is captured with redirect_stdout.
    """
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("cli") / "run"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(
            ["train", "--env", "Pendulum-v1", "--algo", "mdemorl", "--epochs", "2"]
            + ["--seed", "5", "--out", str(run), *SETS]
        )
    assert code == 0
    return run, stdout.getvalue()


def test_train_writes_the_run_layout_and_a_summary(trained_run: tuple[Path, str]) -> None:
    run, stdout = trained_run
    assert (run / "config.yaml").is_file()
    assert (run / "checkpoint" / "checkpoint.pt").is_file()
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    rows = read_progress(run / "progress.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert [int(r["env_steps"]) for r in rows] == [200, 400]
    assert set(COLUMNS) <= set(rows[0])
    for name in ("eval_return", "model_loss", "critic_loss", "actor_loss", "alpha", "d_mpc"):
        assert math.isfinite(float(rows[-1][name])), name
    assert float(rows[-1]["d_env"]) == 400.0
    assert "2 epochs (400 env steps)" in stdout and str(run) in stdout


def test_eval_prints_json_and_is_deterministic(
    trained_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained_run
    assert main(["eval", "--run", str(run), "--episodes", "3"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert set(first) == {"mean_return", "std_return", "episodes"}
    assert first["episodes"] == 3
    assert math.isfinite(first["mean_return"]) and first["std_return"] >= 0.0
    assert main(["eval", "--run", str(run), "--episodes", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == first


def test_existing_run_is_not_overwritten_without_resume(
    trained_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = trained_run
    before = (run / "progress.csv").read_text()
    code = main(["train", "--env", "Pendulum-v1", "--epochs", "2", "--out", str(run), *SETS])
    assert code == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "seed" in err
    assert (run / "progress.csv").read_text() == before


def test_resume_without_checkpoint_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.yaml").write_text("env_id: Pendulum-v1\n")
    assert main(["train", "--out", str(half), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env_id", "message"),
    [("CartPole-v1", "Discrete"), ("NoSuchEnv-v0", "unknown environment id")],
)
def test_unsupported_envs_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env_id: str, message: str
) -> None:
    assert main(["train", "--env", env_id, "--out", str(tmp_path / "r"), *SETS]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_unavailable_cuda_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--env", "Pendulum-v1", "--device", "cuda", "--out", str(tmp_path / "r")])
    assert code == 2
    assert "device" in capsys.readouterr().err


def test_actions_are_rescaled_from_unit_box_to_env_bounds() -> None:
    env = make_env("Pendulum-v1", seed=0)  # torque bounds [-2, 2]
    assert isinstance(env, envs_util.RescaledActionEnv)
    np.testing.assert_array_equal(env.action_space.low, [-1.0])
    np.testing.assert_array_equal(env.action_space.high, [1.0])
    for unit, torque in [(-1.0, -2.0), (0.0, 0.0), (0.5, 1.0), (1.0, 2.0), (3.0, 2.0)]:
        np.testing.assert_allclose(env.action(np.array([unit])), [torque])
    with pytest.raises(ValueError, match="shape"):
        env.action(np.zeros(2))
    env.close()


def test_module_colon_id_form_and_seeding() -> None:
    first = make_env("gymnasium.envs.classic_control.pendulum:Pendulum-v1", seed=7)
    second = make_env("Pendulum-v1", seed=7)
    np.testing.assert_array_equal(first.reset()[0], second.reset()[0])
    state = envs_util.get_rng_state(first)
    expected = first.reset()[0]
    envs_util.set_rng_state(second, state)
    np.testing.assert_array_equal(second.reset()[0], expected)


def test_failed_task_import_is_reported_for_unknown_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_import(name: str) -> None:
        raise ImportError(f"{name} is broken")

    monkeypatch.setattr(envs_util.importlib, "import_module", broken_import)
    with pytest.raises(EnvSetupError, match="mdemorl_core.envs"):
        make_env("NotRegistered-v0", seed=0)
