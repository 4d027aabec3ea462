"""`mdemorl retrain --bag DIR --out RUN`: rebuild D_ENV from a recorded bag and rerun Algorithm 1.

The bag's transitions are replayed in their recorded order and an epoch (model, DMD-MPC inner loop,
SAC) runs after every ``steps_per_epoch`` of them, exactly as the trainer node did live; the result
is an ordinary run directory (`mdemorl eval --run RUN`, the planner node, `--resume` of the
trainer node).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mdemorl_core.config import apply_overrides, build_train_config, read_yaml_mapping


def add_parser(commands: Any) -> None:
    """Register the `retrain` subcommand on the `mdemorl` CLI's subparsers."""
    retrain = commands.add_parser("retrain", help="retrain offline from a recorded rosbag2")
    retrain.add_argument("--bag", required=True, type=Path, help="bag directory or .mcap file")
    retrain.add_argument("--out", required=True, type=Path, help="new run directory")
    retrain.add_argument("--env", default="Leg2R-v0", help="task the bag was recorded on")
    retrain.add_argument("--algo", help="algorithm (default: mdemorl)")
    retrain.add_argument("--seed", type=int, help="agent seed")
    retrain.add_argument("--config", type=Path, help="YAML file with TrainConfig fields")
    retrain.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    retrain.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mdemorl_core.envs_util import make_env, space_dims
    from mdemorl_core.training.online import retrain_from_bag

    document = read_yaml_mapping(args.config) if args.config is not None else {}
    document = apply_overrides(document, args.overrides)
    document["env_id"] = args.env
    for key in ("algo", "seed"):
        if getattr(args, key) is not None:
            document[key] = getattr(args, key)
    config = build_train_config(document)
    env = make_env(config.env_id, config.seed, config.max_episode_steps, **config.env_kwargs)
    obs_dim, act_dim = space_dims(env)
    env.close()
    trainer, bag_summary = retrain_from_bag(args.bag, config, args.out, obs_dim, act_dim)
    print(
        f"Retrained {config.algo} on {bag_summary}: {trainer.epoch} epochs, "
        f"{trainer.agent.env_steps} transitions in D_ENV, {trainer.rejected} rejected. "
        f"Run directory {args.out} (progress.csv, checkpoint/); evaluate it with "
        f"`mdemorl eval --run {args.out}`."
    )
    return 0
