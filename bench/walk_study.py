"""The walking benchmark of issue 12 on StochLite-v1: episodes to a forward-speed threshold, and
distance walked and falls on +-0.15 rad slopes, for SAC, M-DeMoRL and the bare trajectory
generator.

    python bench/walk_study.py [--arms sac,mdemorl] [--seeds 0,1,2] [--workers 1]
        [--max-minutes M] [--device cpu] [--run-root runs/walk_study] [--out-dir bench/results]
        [--list] [--check] [--report] [--no-report] [--quick]

``--report`` (and ``--quick``) trains nothing: it aggregates the finished runs and evaluates the
walking part (the trajectory generator's 12 episodes take ~10 s of one core).

Everything below was written down before any training run of this benchmark's version 3
(versions 1 and 2 are described at the end):

- learning (``WALK_STUDY``, run by bench/study.py's resumable machinery: keys, resume, pieces):
  task ``StochLite-v1`` with its default randomisation (slopes +-0.15 rad per axis, torso mass
  +-10 %, no pushes), its alive bonus of 10 per step (``stochlite_gait.STOCHLITE_V1``) and the
  progress term paid on the simulator's true forward speed (``WALK_ENV_KWARGS``:
  ``progress_from="world"``; the observation stays the robot's); arms ``sac`` and ``mdemorl``
  exactly as in bench/study.py's ARMS, the model-based arm with the task's known termination and
  a learned reward (the known reward is the odometry one); seeds 0, 1, 2. Threshold: a
  deterministic-actor evaluation return (5 episodes) of (``SPEED_THRESHOLD`` x 10, the progress
  weight, + the alive bonus) x 1000 steps = 15000, i.e. 1000 steps upright at a true forward speed
  of 0.5 m/s with no tilt or rate penalty (the penalties only make it stricter): 1.7 x the
  trajectory generator's nominal speed (0.08 m stride in 0.28 s of stance = 0.29 m/s; it walks
  0.27 m/s on the study's slopes). Budget: 60 epochs of 1000 steps, the paper's "< 60 episodes of
  1000 steps" to a walking policy; an arm that never reaches the threshold counts as the budget.
  Episodes to threshold = steps to threshold / 1000.
- walking (``WALK_SLOPES`` x ``WALK_SEEDS``, one 1000-step episode, 10 s, each, deterministic
  actions): true forward distance (world x, m), whether the robot fell (the episode terminated),
  the return,
  per arm: ``tg`` (action 0: the zero-shift trajectory generator, no learning) and the final
  actor of every finished ``sac`` / ``mdemorl`` run (its checkpoint under the run root).

The report, ``<out dir>/walk_study.json``, holds both parts; runs' result files go to
``<out dir>/walk_study_runs/``, checkpoints to ``<run root>``.

Version 1 (2026-12-02, odometry progress, no alive bonus, threshold 0.4 m/s = 4000), one run,
``sac`` seed 0: the actor after epoch 1 (about 750 SAC updates on 1000 uniform-random steps)
already scored 4243.1 against the threshold (the trajectory generator alone: about 2600), so
episodes-to-threshold measured a barely trained policy; SAC then learned to lunge: its later
actors fell within ~50 steps at up to 1.5 m/s of odometry (returns ~200-800), and its final actor
fell in 12 of 12 walking episodes (0.29 m mean against the trajectory generator's 2.69 m and 0
falls). Lunging was the reward's discounted optimum (``STOCHLITE_V1``'s docstring gives the
arithmetic), a defect of the task for every arm.

Version 2 (2026-12-04, the alive bonus, threshold 15000 on odometry progress): ``sac`` seed 0
(60 epochs) evaluated 14592 after epoch 1, then 360-8760 (mostly ~1000-3000: falls within a few
hundred steps) to a final 6527; ``mdemorl`` seed 0, stopped after 13 epochs, 720-3345 after
epoch 1's 2414. The one-epoch SAC actors of seeds 0 / 1 / 2 (``mdemorl train --algo sac
--epochs 1``, the study's settings) walked 0.66 / 0.31 / 0.21 m mean over the 12 walking
episodes with 5 / 7 / 12 falls, some walking backwards (-1.29 m) while their odometry paid
forward progress: seed 0's returned 12007 per episode against the trajectory generator's 12569
and 2.69 m. Leg odometry pays a stance foot dragged backwards whether the body moves or not, so
version 3 pays the true speed (as the authors' env does); it changes nothing else. Both earlier
versions' result files are in the git history (``bench/results/walk_study_runs``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO_ROOT, base_parser, emit, results_dir
from _study_plan import PlannedRun, Study, Task, check_runs, plan_runs
from study import ARMS

from mdemorl_core.envs.stochlite_gait import STOCHLITE_V1

SPEED_THRESHOLD = 0.5  # m/s of true forward speed over an evaluation episode
EPISODE_STEPS = 1000  # StochLite-v1's episode (10 s at 100 Hz)
WALK_SLOPES: dict[str, tuple[float, float]] = {
    "downhill": (0.0, 0.15),  # ground pitch +0.15 rad: walking +x goes down
    "uphill": (0.0, -0.15),
    "roll_left_up": (0.15, 0.0),
    "roll_right_up": (-0.15, 0.0),
}
WALK_SEEDS = (0, 1, 2)

WALK_ENV_KWARGS = {"progress_from": "world"}  # train and evaluate on the true forward speed
WALK_TASK = Task(
    "StochLite-v1",
    threshold=(SPEED_THRESHOLD * STOCHLITE_V1.progress_weight + STOCHLITE_V1.alive_bonus)
    * EPISODE_STEPS,
    threshold_rule="(0.5 m/s true forward speed x progress weight 10 + alive bonus 10) x 1000 "
    "steps (no penalty); 1.7 x the zero-shift trajectory generator's nominal 0.29 m/s; fixed "
    "before any run of study version 3",
    budget_steps=60_000,
    budget_rule="the paper's < 60 episodes of 1000 steps to a walking StochLite policy",
    model_agent={"task_termination": "StochLite-v1"},
    train={"env_kwargs": WALK_ENV_KWARGS},
)
WALK_STUDY = Study(
    {WALK_TASK.env_id: WALK_TASK},
    {name: ARMS[name] for name in ("sac", "mdemorl")},
    (0, 1, 2),
    ratios=(("mdemorl", "sac", "steps_to_threshold", 0.5, "<="),),
    results_subdir="walk_study_runs",
    version="3",
)

Policy = Callable[[np.ndarray], np.ndarray]


def walk_episodes(policy: Policy) -> list[dict[str, Any]]:
    """One deterministic 1000-step StochLite-v1 episode per (slope, seed): distance and falls."""
    from mdemorl_core.envs.stochlite_v1 import StochLiteV1Env

    env = StochLiteV1Env(**WALK_ENV_KWARGS)
    episodes = []
    try:
        for name, slope in WALK_SLOPES.items():
            for seed in WALK_SEEDS:
                obs, info = env.reset(seed=seed, options={"slope": slope})
                steps, total, terminated, truncated = 0, 0.0, False, False
                while not (terminated or truncated):
                    obs, reward, terminated, truncated, info = env.step(policy(obs))
                    steps, total = steps + 1, total + reward
                episodes.append(
                    {
                        "slope": name,
                        "slope_rad": list(slope),
                        "seed": seed,
                        "distance_m": float(info["forward_distance"]),
                        "fell": bool(terminated),
                        "steps": steps,
                        "return": total,
                        "torso_mass_kg": float(info["torso_mass"]),
                    }
                )
    finally:
        env.close()
    return episodes


def summarise_walking(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Per slope and overall: mean / min distance (m), falls, mean speed over the episode (m/s,
    true world x), mean return (to set against the threshold)."""

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        distances = np.array([row["distance_m"] for row in rows])
        return {
            "episodes": len(rows),
            "distance_mean_m": float(distances.mean()),
            "distance_min_m": float(distances.min()),
            "falls": int(sum(row["fell"] for row in rows)),
            "speed_mean_m_s": float(distances.mean() / (EPISODE_STEPS * 0.01)),
            "return_mean": float(np.mean([row["return"] for row in rows])),
        }

    per_slope = {
        name: summary([row for row in episodes if row["slope"] == name]) for name in WALK_SLOPES
    }
    return {"all": summary(episodes), "per_slope": per_slope, "episodes": episodes}


def trajectory_generator(obs: np.ndarray) -> np.ndarray:
    """The zero-shift arm: the bare trajectory generator."""
    del obs
    return np.zeros(12, dtype=np.float32)


def run_actor(run_dir: Path) -> Policy:
    """The deterministic final actor of a finished run."""
    from mdemorl_core.policy_io import deserialize_actor
    from mdemorl_core.training.online import load_run_actor

    blob = load_run_actor(run_dir)[0]
    actor = deserialize_actor(blob)
    return lambda obs: actor.act_numpy(obs, deterministic=True)


def walking_report(runs: list[PlannedRun], results_root: Path, run_root: Path) -> dict[str, Any]:
    """The walking part: ``tg`` always, every finished run whose checkpoint is present."""
    report: dict[str, Any] = {"tg": summarise_walking(walk_episodes(trajectory_generator))}
    for run in runs:
        if not run.is_finished(results_root) or not run.run_dir(run_root).is_dir():
            continue
        label = f"{run.arm_name}/seed{run.seed}"
        report[label] = summarise_walking(walk_episodes(run_actor(run.run_dir(run_root))))
    return report


def write_walk_report(
    runs: list[PlannedRun], out: Path, run_root: Path, device: str, quick: bool
) -> Path:
    from _study_report import aggregate_task

    results_root = out / WALK_STUDY.results_subdir
    learning, _ = aggregate_task(WALK_STUDY, WALK_TASK, results_root, run_root, device)
    started = time.perf_counter()
    walking = walking_report(runs, results_root, run_root)
    payload = {
        "fixed_before_running": {
            "study_version": WALK_STUDY.version,
            "env_kwargs": WALK_ENV_KWARGS,
            "alive_bonus": STOCHLITE_V1.alive_bonus,
            "speed_threshold_m_s": SPEED_THRESHOLD,
            "walk_slopes_rad": {name: list(slope) for name, slope in WALK_SLOPES.items()},
            "walk_seeds": list(WALK_SEEDS),
            "episode_steps": EPISODE_STEPS,
        },
        "learning": learning,
        "walking": walking,
        "walking_eval_seconds": time.perf_counter() - started,
    }
    return emit("walk_study", payload, quick=quick, out_dir=out)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--arms", default=None, help="comma-separated arms (default: all)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: 0,1,2)")
    parser.add_argument("--workers", type=int, default=1, help="runs at a time (1 thread each)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop cleanly before")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--run-root", type=Path, default=None, help="checkpoints")
    parser.add_argument("--list", action="store_true", help="print the runs and their state")
    parser.add_argument("--check", action="store_true", help="validate the table, run nothing")
    parser.add_argument("--report", action="store_true", help="report only, train nothing")
    parser.add_argument("--no-report", action="store_true", help="do not report afterwards")
    args = parser.parse_args(argv)
    args.report = args.report or args.quick  # --quick: no training, the cheap walking part only
    from _study_runner import describe_state, run_study

    seeds = None if args.seeds is None else [int(s) for s in args.seeds.split(",") if s.strip()]
    threads = 1 if args.threads is None else args.threads
    if args.workers < 1 or threads < 1:
        raise SystemExit("--workers and --threads must be >= 1")
    out = results_dir(args.out_dir)
    results_root = out / WALK_STUDY.results_subdir
    run_root = args.run_root or REPO_ROOT / "runs" / "walk_study"
    try:
        runs = plan_runs(WALK_STUDY, None, args.arms, seeds, args.device)
        if args.list:
            for run in runs:
                print(f"{run.label:<45} {describe_state(run, results_root, run_root)}")
            return 0
        check_runs(runs, run_root)
        if args.check:
            print(f"[walk_study] {len(runs)} run(s) valid")
            return 0
        failed = 0
        if not args.report:
            deadline = None if args.max_minutes is None else time.time() + 60 * args.max_minutes
            outcomes = run_study(runs, results_root, run_root, args.workers, threads, deadline)
            failed = sum(outcome.status == "failed" for outcome in outcomes)
            for outcome in outcomes:
                print(f"[walk_study] {outcome.label}: {outcome.status} {outcome.detail}")
        if args.report or not args.no_report:
            write_walk_report(runs, out, run_root, args.device, args.quick)
    except ValueError as error:
        print(f"walk_study: {error}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
