"""`mdemorl render`: what a run's policy does on the simulated leg, as a GIF (or MP4) and a PNG.

    mdemorl render --run DIR [--episodes N] [--every K] [--max-steps S] --out FILE.gif|FILE.mp4

Each episode is one of the run's deterministic evaluation episodes (the same start states as
``mdemorl eval``), driven by the latest checkpoint's actor mean. A frame is the Leg2R env's own
side view (``Leg2REnv.render``: stand, links, the desired ellipse, the desired and the actual foot
point) with the foot's actual path since the episode started drawn over it; one frame every K
policy steps (default: a 20 frame/s real-time movie). Next to the movie, ``FILE_tracking.png``
plots the first episode's tracking error and the desired vs actual foot x and z over time.
MP4 needs the optional ``imageio-ffmpeg`` package; GIF needs nothing beyond the core
requirements.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mdemorl_core.config import ConfigError

FORMATS = (".gif", ".mp4")
MOVIE_FPS = 20.0  # default frame rate of the movie, played in real time


class RenderError(ValueError):
    """A run that cannot be rendered (a task without a leg view, a missing MP4 encoder)."""


@dataclass(frozen=True)
class EpisodeTrace:
    """One episode: ``time`` [T] s, ``desired`` and ``actual`` foot positions [T x 2] (m, x and
    z in the hip frame), and its undiscounted return."""

    time: np.ndarray
    desired: np.ndarray
    actual: np.ndarray
    episode_return: float

    @property
    def tracking_error(self) -> np.ndarray:
        """[T] Euclidean foot position error, m."""
        return np.linalg.norm(self.actual - self.desired, axis=1)


@dataclass(frozen=True)
class RenderResult:
    movie: Path
    tracking_png: Path
    frames: int
    width: int
    height: int
    fps: float
    traces: tuple[EpisodeTrace, ...]

    def describe(self) -> str:
        returns = ", ".join(f"{trace.episode_return:.1f}" for trace in self.traces)
        error = 1000.0 * float(np.mean(self.traces[0].tracking_error))
        return (
            f"wrote {self.movie} ({self.frames} frames, {self.width}x{self.height}, "
            f"{self.fps:g} frame/s; episode returns {returns}) and {self.tracking_png} "
            f"(episode 1: mean tracking error {error:.1f} mm)"
        )


def tracking_png_path(movie: Path) -> Path:
    return movie.with_name(f"{movie.stem}_tracking.png")


def render_run(
    run_dir: Path,
    out: Path,
    episodes: int = 1,
    every: int | None = None,
    max_steps: int | None = None,
    size: tuple[int, int] = (320, 320),
) -> RenderResult:
    """Render ``episodes`` evaluation episodes of the run's policy into ``out`` (.gif or .mp4)
    and the first one's tracking plot into :func:`tracking_png_path` of ``out``.

    ``every``: a frame each K policy steps (default: MOVIE_FPS frames per second of robot time);
    ``max_steps``: end each episode after this many policy steps (default: the env's limit).
    """
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ConfigError("--out", f"must end in {' or '.join(FORMATS)}, got {out.name!r}")
    for key, value in (("--episodes", episodes), ("--every", every), ("--max-steps", max_steps)):
        if value is not None and value < 1:
            raise ConfigError(key, f"must be >= 1, got {value}")
    writer = _movie_writer(out)
    agent, config, env = _load(run_dir, size)
    try:
        leg = env.unwrapped
        policy_hz = float(leg.params.policy_hz)
        stride = every or max(1, round(policy_hz / MOVIE_FPS))
        frames: list[np.ndarray] = []
        traces = []
        for episode in range(episodes):
            trace = _episode(env, agent, config.seed, episode, stride, max_steps, frames)
            traces.append(trace)
    finally:
        env.close()
    fps = policy_hz / stride
    out.parent.mkdir(parents=True, exist_ok=True)
    writer(out, frames, fps)
    png = tracking_png_path(out)
    plot_tracking(traces[0], png)
    height, width = frames[0].shape[:2]
    return RenderResult(out, png, len(frames), width, height, fps, tuple(traces))


def _load(run_dir: Path, size: tuple[int, int]) -> tuple[Any, Any, Any]:
    """The run's agent (latest checkpoint), config and an rgb_array env of its task."""
    from mdemorl_core.envs_util import make_env
    from mdemorl_core.training.checkpoint import load_checkpoint
    from mdemorl_core.training.loop import build_agent
    from mdemorl_core.training.run_dir import RunDirError, RunPaths, read_run_config

    paths = RunPaths(Path(run_dir))
    config = read_run_config(paths.root)
    config = replace(config, device="cpu")
    try:
        state = load_checkpoint(paths.checkpoint_dir)
    except FileNotFoundError as error:
        raise RunDirError(f"{paths.root} has no checkpoint to render: {error}") from error
    env = make_env(
        config.env_id,
        config.seed + 1,
        config.max_episode_steps,
        render_mode="rgb_array",
        **config.env_kwargs,
    )
    leg: Any = env.unwrapped
    if not hasattr(leg, "foot_trail"):
        env.close()
        raise RenderError(f"render draws the Leg2R tasks; this run's env is {config.env_id!r}")
    leg.render_size = size
    agent = build_agent(config, env)
    agent.load_state_dict(state["agent"])
    return agent, config, env


def _episode(
    env: Any,
    agent: Any,
    run_seed: int,
    episode: int,
    stride: int,
    max_steps: int | None,
    frames: list[np.ndarray],
) -> EpisodeTrace:
    """Run one evaluation episode, appending a frame every ``stride`` steps (and at the start)."""
    from mdemorl_core.training.evaluation import eval_seed

    leg = env.unwrapped
    obs, info = env.reset(seed=eval_seed(run_seed, episode))
    times, desired, actual = [info["time"]], [info["desired_position"]], [info["foot_position"]]
    leg.foot_trail = np.array(actual)
    frames.append(env.render())
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, info = env.step(agent.act(obs, deterministic=True))
        total += float(reward)
        steps += 1
        times.append(info["time"])
        desired.append(info["desired_position"])
        actual.append(info["foot_position"])
        if steps % stride == 0:
            leg.foot_trail = np.array(actual)
            frames.append(env.render())
        if terminated or truncated or (max_steps is not None and steps >= max_steps):
            break
    leg.foot_trail = np.zeros((0, 2))
    return EpisodeTrace(np.array(times), np.array(desired), np.array(actual), total)


def _movie_writer(out: Path) -> Any:
    """A function (path, frames, fps) writing ``out``'s format; checked before any rendering."""
    import imageio.v2 as imageio

    if out.suffix.lower() == ".gif":

        def write_gif(path: Path, frames: list[Any], fps: float) -> None:
            # GIF frame durations are whole hundredths of a second.
            duration_ms = 10.0 * round(100.0 / fps)
            imageio.mimwrite(path, frames, duration=duration_ms, loop=0)

        return write_gif
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError as error:
        raise RenderError(
            "an .mp4 needs the imageio-ffmpeg package (python -m pip install imageio-ffmpeg); "
            "a .gif needs nothing more"
        ) from error

    def write_mp4(path: Path, frames: list[Any], fps: float) -> None:
        imageio.mimwrite(path, frames, fps=fps, macro_block_size=1)

    return write_mp4


def plot_tracking(trace: EpisodeTrace, path: Path) -> None:
    """Tracking error (mm) and desired vs actual foot x and z (m) over the episode, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 1, figsize=(7.0, 6.0), sharex=True)
    axes[0].plot(trace.time, 1000.0 * trace.tracking_error, color="tab:red")
    axes[0].set_ylabel("error (mm)")
    axes[0].set_title(f"foot tracking, episode return {trace.episode_return:.1f}")
    for axis, index, name in ((axes[1], 0, "x"), (axes[2], 1, "z")):
        axis.plot(trace.time, trace.desired[:, index], color="tab:green", label="desired")
        axis.plot(trace.time, trace.actual[:, index], color="tab:red", label="actual")
        axis.set_ylabel(f"foot {name} (m)")
        axis.legend(loc="upper right", fontsize="small")
    axes[2].set_xlabel("time (s)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def add_parser(commands: Any) -> None:
    """Register the `render` subcommand on the `mdemorl` CLI's subparsers."""
    render = commands.add_parser("render", help="a movie of a run's policy on the simulated leg")
    render.add_argument("--run", required=True, type=Path, help="run directory")
    render.add_argument("--out", required=True, type=Path, help="FILE.gif or FILE.mp4")
    render.add_argument("--episodes", type=int, default=1, help="evaluation episodes (1)")
    render.add_argument("--every", type=int, help="a frame every K policy steps")
    render.add_argument("--max-steps", type=int, help="policy steps per episode at most")
    render.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = render_run(args.run, args.out, args.episodes, args.every, args.max_steps)
    print(result.describe())
    return 0
