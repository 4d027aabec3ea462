"""Learning curves (evaluation return vs env steps) from run directories.

Runs are grouped by their config's (env_id, algo); each group is drawn as the mean over its runs
(seeds) with a ± one standard deviation band, one panel per environment.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from mdemorl_core.config import read_yaml_mapping  # noqa: E402
from mdemorl_core.training.progress_log import read_progress  # noqa: E402


def load_curve(run_dir: Path) -> tuple[str, str, dict[int, float]]:
    """(env_id, algo, {env_steps: eval_return}) of one run; epochs without evaluation are skipped."""
    run_dir = Path(run_dir)
    config_path, progress_path = run_dir / "config.yaml", run_dir / "progress.csv"
    for path in (config_path, progress_path):
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir} is not a run directory: {path.name} is missing")
    config = read_yaml_mapping(config_path)
    points = {}
    for row in read_progress(progress_path):
        value = float(row["eval_return"])
        if not math.isnan(value):
            points[int(row["env_steps"])] = value
    return str(config.get("env_id", "?")), str(config.get("algo", "?")), points


def group_curves(
    run_dirs: Sequence[Path],
) -> dict[tuple[str, str], list[dict[int, float]]]:
    """Curves of all runs, grouped by (env_id, algo)."""
    groups: dict[tuple[str, str], list[dict[int, float]]] = defaultdict(list)
    for run_dir in run_dirs:
        env_id, algo, points = load_curve(run_dir)
        groups[(env_id, algo)].append(points)
    return dict(groups)


def mean_and_std(curves: list[dict[int, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps [T], mean [T], std [T]) over the runs that evaluated at each step."""
    steps = np.array(sorted({step for curve in curves for step in curve}), dtype=np.int64)
    means = np.empty(len(steps))
    stds = np.empty(len(steps))
    for i, step in enumerate(steps):
        values = [curve[int(step)] for curve in curves if int(step) in curve]
        means[i] = np.mean(values)
        stds[i] = np.std(values)
    return steps, means, stds


def plot_runs(run_dirs: Sequence[Path], out_path: Path) -> dict[str, int]:
    """Draw the learning curves of `run_dirs` into `out_path` (PNG); returns {group: runs}."""
    if not run_dirs:
        raise ValueError("plot_runs needs at least one run directory")
    groups = group_curves(run_dirs)
    env_ids = sorted({env_id for env_id, _ in groups})
    figure, axes = plt.subplots(1, len(env_ids), figsize=(6.0 * len(env_ids), 4.0), squeeze=False)
    counts: dict[str, int] = {}
    try:
        for axis, env_id in zip(axes[0], env_ids, strict=True):
            for (group_env, algo), curves in sorted(groups.items()):
                if group_env != env_id:
                    continue
                steps, means, stds = mean_and_std(curves)
                label = f"{algo} ({len(curves)} run{'s' if len(curves) > 1 else ''})"
                (line,) = axis.plot(steps, means, label=label)
                if len(curves) > 1:
                    axis.fill_between(
                        steps, means - stds, means + stds, color=line.get_color(), alpha=0.25
                    )
                counts[f"{env_id}/{algo}"] = len(curves)
            axis.set_title(env_id)
            axis.set_xlabel("env steps")
            axis.set_ylabel("evaluation return")
            axis.grid(True, alpha=0.3)
            axis.legend()
        figure.tight_layout()
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(out_path, dpi=100)
    finally:
        plt.close(figure)
    return counts
