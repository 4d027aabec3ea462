"""Elite-fraction ablation of M-DeMoRL: p in {1, 5, 10, 20, 50, 100} % on one task.

    python bench/elite_fraction.py [--preset reduced|full] [--quick] [--percents 1,5,10,20,50,100]
        [--seeds S] [--threshold X] (plus the budget flags of sample_efficiency.py)

Runs `mdemorl` with planner.elite_fraction = p / 100 (everything else as in the
sample-efficiency study's model-based runs, same presets) and reports, per p, the first epoch
whose seed-mean evaluation return reaches the threshold. The threshold is, in order: --threshold;
the threshold of `sample_efficiency.json` in the results directory, times `--threshold-fraction` (0.9), when
it was measured on the same env with the same steps per epoch and at least as many epochs
(SB3 SAC's end-of-budget return; on Leg2R that return, 994 of at most 1000, is the task's ceiling,
which any p touches only by third-digit noise late on a plateau, while 90 % of it tells when each
p learned the task); otherwise 90 % of the best final return over all p (stated in the JSON).

The `full` preset runs one seed per p (the 2-hour budget of `make bench-full` cannot hold 3 seeds
of 6 model-based runs next to the sample-efficiency study); pass --seeds 3 on a bigger machine.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from _common import base_parser, emit, results_dir
from _study import Job, group_results, plot_curves, run_jobs, summarise
from sample_efficiency import (
    add_study_flags,
    agent_overrides,
    budget_from,
    resolve_settings,
    run_root,
)

FALLBACK_FRACTION_OF_BEST = 0.9


def threshold_from_sample_efficiency(
    directory: Any, env_id: str, epochs: int, steps_per_epoch: int
) -> tuple[float, int] | None:
    """(SB3's threshold, the epochs of its budget) from a matching sample_efficiency.json (same
    env and steps per epoch, at least ``epochs`` epochs, not a quick run), else None."""
    path = directory / "sample_efficiency.json"
    if not path.exists():
        return None
    document = json.loads(path.read_text())
    budget = document.get("budget", {})
    budget_epochs = int(budget.get("epochs", 0))
    matches = (
        document.get("env") == env_id
        and budget_epochs >= epochs
        and budget.get("steps_per_epoch") == steps_per_epoch
        and not document.get("quick", False)
    )
    threshold = document.get("threshold")
    return (float(threshold), budget_epochs) if matches and threshold is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    add_study_flags(parser)
    parser.add_argument("--percents", default="1,5,10,20,50,100")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument(
        "--threshold-fraction",
        type=float,
        default=0.9,
        help="fraction of sample_efficiency.json's threshold to use (SB3's end-of-budget return "
        "on Leg2R sits at the task's ceiling, where 'reaching it' is third-digit noise)",
    )
    args = parser.parse_args(argv)
    settings = resolve_settings(args)
    if args.seeds is None:
        settings["seeds"] = 1
    if args.quick:
        args.percents = "10,100"
    percents = sorted({float(part) for part in args.percents.split(",") if part.strip()})
    if not 0.0 < args.threshold_fraction <= 1.0:
        raise ValueError(f"--threshold-fraction must be in (0, 1], got {args.threshold_fraction}")
    if not percents or min(percents) <= 0.0 or max(percents) > 100.0:
        raise ValueError(f"--percents must be in (0, 100], got {args.percents!r}")
    budget = budget_from(settings, args.env)
    root, temporary = run_root(args, "elite-fraction")
    threads = 1 if args.threads is None else args.threads
    jobs = [
        Job(
            group=f"p={percent:g}%",
            algo="mdemorl",
            seed=seed,
            budget=budget,
            run_dir=root / f"p{percent:g}-seed{seed}",
            agent_overrides=agent_overrides(
                settings, args.env, {"elite_fraction": percent / 100.0}
            ),
            threads=threads,
            device=args.device,
        )
        for percent in percents
        for seed in range(budget.seeds)
    ]
    try:
        grouped = group_results(run_jobs(jobs, settings["workers"]))
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)

    out = results_dir(args.out_dir)
    threshold = args.threshold
    source = "--threshold"
    if threshold is None:
        found = threshold_from_sample_efficiency(
            out, budget.env_id, budget.epochs, budget.steps_per_epoch
        )
        if found is not None:
            threshold = args.threshold_fraction * found[0]
            source = (
                f"{args.threshold_fraction:.0%} of sample_efficiency.json's threshold "
                f"{found[0]:.1f} (SB3 SAC return after {found[1]} epochs)"
            )
    if threshold is None:
        best_final = max(summarise(runs, None)["final_return_mean"] for runs in grouped.values())
        threshold = FALLBACK_FRACTION_OF_BEST * best_final
        source = f"{FALLBACK_FRACTION_OF_BEST:.0%} of the best final return over p"
    curves = {group: summarise(runs, threshold) for group, runs in grouped.items()}
    rows = [{"elite_percent": percent, **curves[f"p={percent:g}%"]} for percent in percents]
    plot = plot_curves(
        curves,
        threshold,
        budget.steps_per_epoch,
        f"mdemorl elite fraction, {budget.env_id}",
        out / "elite_fraction.png",
    )
    emit(
        "elite_fraction",
        {
            "env": budget.env_id,
            "preset": "quick" if args.quick else args.preset,
            "threshold": threshold,
            "threshold_source": source,
            "budget": budget.as_json(),
            "settings": settings,
            "results": rows,
            "plot": plot.name,
        },
        quick=args.quick,
        out_dir=args.out_dir,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
