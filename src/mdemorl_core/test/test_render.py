"""`mdemorl render`: a GIF of a Leg2R run's policy with the expected frames, and its tracking PNG."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from mdemorl_core.agent import Agent
from mdemorl_core.cli import main
from mdemorl_core.config import build_train_config
from mdemorl_core.envs.leg2r_task import ACTION_DIM, OBSERVATION_DIM
from mdemorl_core.envs.raster import Canvas
from mdemorl_core.testing import SMALL_AGENT, write_small_run
from mdemorl_core.training.loop import evaluate_run, save_run_checkpoint
from mdemorl_core.training.render import render_run
from mdemorl_core.training.run_dir import RunPaths, prepare_new_run

TRAIL_COLOR = (220, 120, 120)


@pytest.fixture(scope="module")
def leg_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Leg2R-v0 run directory whose checkpoint holds an untrained small SAC agent."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("render") / "run"
    config = build_train_config({"env_id": "Leg2R-v0", "algo": "sac", "agent": SMALL_AGENT})
    agent = Agent(OBSERVATION_DIM, ACTION_DIM, config.agent, torch.device("cpu"), seed=3)
    paths = RunPaths(run)
    prepare_new_run(paths, config)
    save_run_checkpoint(paths, config, 1, agent)
    return run


def test_gif_has_the_expected_frames_and_size(
    leg_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "leg.gif"
    args = ["render", "--run", str(leg_run), "--out", str(out), "--episodes", "2"]
    code = main([*args, "--every", "4", "--max-steps", "10"])
    assert code == 0
    frames = iio.imread(out, index=None)
    # Per episode: the start, then after steps 4 and 8 of 10.
    assert frames.shape[:3] == (2 * 3, 320, 320)
    assert "6 frames, 320x320" in capsys.readouterr().out
    png = tmp_path / "leg_tracking.png"
    image = iio.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    # Frames of one episode differ (the leg moves), and the path is drawn after the start.
    assert not np.array_equal(frames[0], frames[2])
    trail_pixels = np.all(frames[2][..., :3] == TRAIL_COLOR, axis=-1).sum()
    assert trail_pixels > 0


def test_rendered_episode_is_the_evaluation_episode(leg_run: Path, tmp_path: Path) -> None:
    result = render_run(leg_run, tmp_path / "full.gif", episodes=1, every=100)
    evaluated = evaluate_run(leg_run, episodes=1)
    assert result.traces[0].episode_return == pytest.approx(evaluated.mean, rel=1e-9)
    steps = len(result.traces[0].time) - 1
    assert steps == 1000  # Leg2R-v0's episode
    assert result.frames == 1 + steps // 100
    assert result.fps == pytest.approx(1.0)  # 100 policy steps per second, a frame each 100


def test_foot_trail_is_drawn_only_when_set() -> None:
    env = gymnasium.make("Leg2R-v0", render_mode="rgb_array")
    env.reset(seed=0)
    leg = env.unwrapped
    plain = env.render()
    assert not np.all(plain == TRAIL_COLOR, axis=-1).any()
    leg.foot_trail = np.array([[-0.05, -0.33], [0.0, -0.36], [0.05, -0.33]])
    with_trail = env.render()
    assert np.all(with_trail == TRAIL_COLOR, axis=-1).sum() > 20
    env.close()


def test_bad_requests_are_clear_errors(
    leg_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["render", "--run", str(leg_run), "--out", str(tmp_path / "x.avi")]) == 2
    assert "--out" in capsys.readouterr().err
    pendulum = tmp_path / "pendulum"
    write_small_run(pendulum)
    assert main(["render", "--run", str(pendulum), "--out", str(tmp_path / "p.gif")]) == 2
    assert "Leg2R" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if it were not installed
    assert main(["render", "--run", str(leg_run), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "imageio-ffmpeg" in capsys.readouterr().err
    assert (
        main(["render", "--run", str(leg_run), "--out", str(tmp_path / "y.gif"), "--every", "0"])
        == 2
    )
    assert "--every" in capsys.readouterr().err


def test_canvas_shapes_match_a_whole_image_distance_test() -> None:
    """Shapes drawn through their bounding boxes paint exactly the pixels that a distance test
    over every pixel selects, also for shapes partly or wholly off the canvas."""
    rng = np.random.default_rng(5)
    for _ in range(40):
        canvas = Canvas(64, 48, (-1.0, 1.0), (-0.5, 1.0))
        x, z = canvas._world_x, canvas._world_z
        start, end = rng.uniform(-1.5, 1.5, 2), rng.uniform(-1.5, 1.5, 2)
        width, radius = rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.4)
        canvas.segment(start, end, width, (255, 0, 0))
        canvas.disc(end, radius, (0, 0, 255))
        d = end - start
        along = np.clip(((x - start[0]) * d[0] + (z - start[1]) * d[1]) / max(d @ d, 1e-12), 0, 1)
        half = max(0.5 * width, 0.75 / canvas._pixels_per_m)
        segment = (x - start[0] - along * d[0]) ** 2 + (z - start[1] - along * d[1]) ** 2 <= half**2
        r = max(radius, 1.0 / canvas._pixels_per_m)
        disc = (x - end[0]) ** 2 + (z - end[1]) ** 2 <= r**2
        expected = np.full((48, 64, 3), 245, dtype=np.uint8)
        expected[segment] = (255, 0, 0)
        expected[disc] = (0, 0, 255)
        assert np.array_equal(canvas.image, expected)
