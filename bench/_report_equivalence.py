"""BENCHMARKS.md section of bench/ros_offline_equivalence.py (issue 11)."""

from __future__ import annotations

import statistics
from typing import Any

PATHS = (("online", "ROS"), ("offline", "retrain"), ("train", "train"))


def _number(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render_equivalence(document: dict[str, Any]) -> str:
    header = ["seed"] + [f"{label} final return" for _, label in PATHS]
    header += [f"{label} epoch s" for _, label in PATHS]
    rows = []
    for record in document.get("seeds", []):
        row = [str(record.get("seed"))]
        row += [_number(record.get(f"{name}_eval", {}).get("mean_return")) for name, _ in PATHS]
        row += [
            _number(statistics.fmean(record[f"{name}_epoch_seconds"]))
            if record.get(f"{name}_epoch_seconds")
            else "—"
            for name, _ in PATHS
        ]
        rows.append(row)
    lines = [
        "Same config (`trainer_leg2r.yaml`, only the seed changed) and seed through the ROS graph "
        "(ROS: `train.launch.py`, the sim leg in real time, episodic protocol), through "
        "`mdemorl retrain` of that run's bag (retrain) and through `mdemorl train` (train, no "
        f"ROS); final returns by `mdemorl eval` ({document.get('episodes')} episodes), epoch wall "
        f"time the mean of progress.csv's epoch_seconds. Criterion (fixed before the runs): "
        f"{document.get('criterion')}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    identical = [r.get("offline_progress_identical") for r in document.get("seeds", [])]
    if identical and all(identical):
        lines.append(
            "- retrain logged the same progress rows as the ROS run in every seed (losses, "
            "returns, buffer sizes; wall time aside): the same learning, bit for bit."
        )
    summary = document.get("summary", {})
    for name, label in PATHS[1:]:
        if name in summary:
            verdict = "yes" if summary[name]["equivalent_within_seed_noise"] else "**no**"
            lines.append(
                f"- {label} − ROS: mean {_number(summary[name]['mean_minus_online'], 2)} "
                f"(seed std of the ROS finals {_number(summary.get('online_seed_std'), 2)}): "
                f"equivalent within seed noise: {verdict}"
            )
    return "\n".join(lines)
