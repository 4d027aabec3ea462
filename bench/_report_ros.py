"""BENCHMARKS.md sections for the ROS-side results: the monitored control loop, the fault suite
(a summary; RELIABILITY.md is its full report) and the StochLite walking study.

Each renderer takes the parsed JSON document and returns markdown.
"""

from __future__ import annotations

from typing import Any

from _report_format import fmt, table

Document = dict[str, Any]

LOOP_KEYS = ("rate_hz", "period_p50_ms", "period_p99_ms", "period_max_ms", "missed")


def render_control_loop_monitored(document: Document) -> str:
    runs = document.get("runs") or {}
    rows = [
        [name, *(fmt(run.get(key)) for key in LOOP_KEYS), fmt(run.get("load_average_1min"))]
        for name, run in runs.items()
        if isinstance(run, dict)
    ]
    header = ["variant", "rate Hz", "p50 ms", "p99 ms", "max ms", "missed", "load (1 min)"]
    parts = [
        f"The 500 Hz loop (sim robot + torque controller, {fmt(document.get('seconds'))} s each) "
        "without and with the monitoring tools: the Foxglove bridge with a WebSocket client "
        "subscribed to every channel, and the terminal dashboard in a tmux pane.\n",
        table(header, rows),
    ]
    monitored = runs.get("monitored") if isinstance(runs.get("monitored"), dict) else {}
    counts = monitored.get("client_messages") or {}
    if counts:
        received = ", ".join(f"`{topic}` {fmt(n)}" for topic, n in sorted(counts.items()))
        parts.append(f"\n- messages the Foxglove client received: {received}")
    if "dashboard_showed_controller_loop" in monitored:
        shown = fmt(monitored["dashboard_showed_controller_loop"])
        parts.append(f"- the dashboard showed the controller's loop: {shown}")
    return "\n".join(parts)


def render_faults(document: Document) -> str:
    families = document.get("families") or {}
    rows = []
    for name, family in families.items():
        if not isinstance(family, dict):
            continue
        misbehaving = family.get("misbehaving")
        count = len(misbehaving) if isinstance(misbehaving, list | dict) else misbehaving
        rows.append(
            [
                name,
                fmt(family.get("injections")),
                fmt(count),
                fmt(family.get("tracebacks")),
                fmt(family.get("bad_applied")),
                fmt(family.get("wall_seconds")),
            ]
        )
    header = ["family", "injections", "misbehaving", "tracebacks", "bad applied", "seconds"]
    return (
        "Summary of `bench/faults.py` (each family's machine line and every case are in "
        "RELIABILITY.md, generated from the same JSON; — = not counted by that family).\n\n"
        + table(header, rows)
    )


def render_walk_study(document: Document) -> str:
    learning = document.get("learning") or {}
    parts = [
        f"Threshold {fmt(learning.get('threshold'))} ({learning.get('threshold_rule', '')}); "
        f"budget {fmt(learning.get('budget_steps'))} steps ({learning.get('budget_rule', '')}).\n"
    ]
    rows = []
    for arm, result in (learning.get("arms") or {}).items():
        first = set(result.get("reached_at_first_eval") or [])
        steps = [
            fmt(step) + (" (first eval)" if seed in first else "")
            for seed, step in zip(
                result.get("seed_ids") or [], result.get("steps_to_threshold") or [], strict=True
            )
        ]
        rows.append(
            [
                f"`{arm}`",
                fmt(result.get("seeds")),
                ", ".join(steps) or "—",
                fmt(result.get("auc_mean")),
                fmt(result.get("train_return_mean")),
                "; ".join(result.get("missing") or []) or "—",
            ]
        )
    header = ["arm", "seeds", "steps to threshold", "AUC", "train return", "missing"]
    parts.append(table(header, rows))
    parts.append(
        "\n(first eval) = met by the initial policy at the first evaluation, not by learning."
    )
    walking = document.get("walking") or {}
    walk_rows = []
    for controller, result in walking.items():
        overall = result.get("all") if isinstance(result, dict) else None
        if not isinstance(overall, dict):
            continue
        walk_rows.append(
            [
                f"`{controller}`",
                fmt(overall.get("episodes")),
                fmt(overall.get("distance_mean_m")),
                fmt(overall.get("distance_min_m")),
                fmt(overall.get("falls")),
            ]
        )
    if walk_rows:
        slopes = ", ".join(
            (document.get("fixed_before_running") or {}).get("walk_slopes_rad", {}).keys()
        )
        parts.append(f"\nWalking on the slopes ({slopes}), 1000-step episodes:\n")
        header = ["controller", "episodes", "distance mean m", "distance min m", "falls"]
        parts.append(table(header, walk_rows))
    return "\n".join(parts)
