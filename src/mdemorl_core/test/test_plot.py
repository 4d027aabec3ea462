"""Learning-curve plots: runs grouped by (env, algo), mean ± std over seeds, PNG output."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from mdemorl_core.cli import main
from mdemorl_core.config import build_train_config, dump_config
from mdemorl_core.plot import group_curves, mean_and_std, plot_runs
from mdemorl_core.training.progress_log import COLUMNS, ProgressLog


def _fake_run(root: Path, algo: str, seed: int, eval_returns: list[float]) -> Path:
    """A run directory as the trainer writes it (config.yaml + progress.csv), without training."""
    config = build_train_config({"env_id": "Pendulum-v1", "algo": algo, "seed": seed})
    run = root / f"{algo}_{seed}"
    run.mkdir()
    (run / "config.yaml").write_text(dump_config(config))
    log = ProgressLog(run / "progress.csv")
    log.start()
    for epoch, value in enumerate(eval_returns, start=1):
        row: dict[str, float | int] = dict.fromkeys(COLUMNS, math.nan)
        row.update(epoch=epoch, env_steps=1000 * epoch, eval_return=value)
        log.append(row)
    return run


def test_plot_two_seeds_writes_a_png(tmp_path: Path) -> None:
    runs = [
        _fake_run(tmp_path, "mdemorl", 0, [-1200.0, -600.0, -200.0]),
        _fake_run(tmp_path, "mdemorl", 1, [-1000.0, -400.0, -180.0]),
    ]
    out = tmp_path / "plots" / "curves.png"
    counts = plot_runs(runs, out)
    assert counts == {"Pendulum-v1/mdemorl": 2}
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(out)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(pixels[..., :3].std()) > 0.0  # something was drawn


def test_groups_by_algo_and_mean_std_over_seeds(tmp_path: Path) -> None:
    runs = [
        _fake_run(tmp_path, "mdemorl", 0, [-1200.0, math.nan, -200.0]),
        _fake_run(tmp_path, "mdemorl", 1, [-1000.0, math.nan, -100.0]),
        _fake_run(tmp_path, "sac", 0, [-1300.0, -1100.0, -900.0]),
    ]
    groups = group_curves(runs)
    assert sorted(groups) == [("Pendulum-v1", "mdemorl"), ("Pendulum-v1", "sac")]
    steps, means, stds = mean_and_std(groups[("Pendulum-v1", "mdemorl")])
    np.testing.assert_array_equal(steps, [1000, 3000])  # the unevaluated epoch is skipped
    np.testing.assert_allclose(means, [-1100.0, -150.0])
    np.testing.assert_allclose(stds, [100.0, 50.0])


def test_cli_plot_and_missing_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [_fake_run(tmp_path, "mbpo", s, [-900.0 + s, -500.0]) for s in (0, 1)]
    out = tmp_path / "cli.png"
    assert main(["plot", *map(str, runs), "--out", str(out)]) == 0
    assert out.is_file() and "Pendulum-v1/mbpo: 2 runs" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        plot_runs([tmp_path / "nothing"], tmp_path / "x.png")
