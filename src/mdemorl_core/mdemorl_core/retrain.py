"""`mdemorl retrain --bag DIR [--bag DIR ...] --out RUN [--init RUN0]`: rebuild D_ENV from
recorded bags and rerun Algorithm 1.

The bags' transitions are replayed bag after bag in their recorded order and an epoch (model,
DMD-MPC inner loop, SAC) runs after every ``steps_per_epoch`` of them, exactly as the trainer
node did live; the result is an ordinary run directory (`mdemorl eval --run RUN`, the planner
node, `deploy.launch.py run_dir:=RUN`, `--resume` of the trainer node). ``--init RUN0`` starts
from RUN0's last checkpoint (its networks, buffers, epoch and config; flags and ``--set`` still
apply) instead of a fresh agent. The command states how many transitions it used from each bag.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mdemorl_core.config import (
    ConfigError,
    apply_overrides,
    build_train_config,
    config_to_dict,
    read_yaml_mapping,
)

DEFAULT_ENV = "Leg2R-v0"


def add_parser(commands: Any) -> None:
    """Register the `retrain` subcommand on the `mdemorl` CLI's subparsers."""
    retrain = commands.add_parser("retrain", help="retrain offline from recorded rosbag2s")
    retrain.add_argument(
        "--bag",
        dest="bags",
        required=True,
        type=Path,
        action="append",
        help="bag directory or .mcap file (repeat for several, replayed in the given order)",
    )
    retrain.add_argument("--out", required=True, type=Path, help="new run directory")
    retrain.add_argument("--init", type=Path, help="start from this run's last checkpoint")
    retrain.add_argument("--env", help=f"task the bags were recorded on (default: {DEFAULT_ENV})")
    retrain.add_argument("--algo", help="algorithm (default: mdemorl)")
    retrain.add_argument("--seed", type=int, help="agent seed")
    retrain.add_argument("--config", type=Path, help="YAML file with TrainConfig fields")
    retrain.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    retrain.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mdemorl_core.cli import check_before_flags, check_runtime
    from mdemorl_core.training.online import retrain_from_bags
    from mdemorl_core.training.run_dir import (
        RunDirError,
        RunPaths,
        check_resumable,
        read_run_config,
    )

    if args.init is not None:
        if args.config is not None:
            raise ConfigError(
                "init", "--config cannot be combined with --init (its config is used)"
            )
        try:
            check_resumable(RunPaths(args.init))
        except RunDirError as error:
            raise RunDirError(f"--init {args.init}: {error}") from error
        document: dict[str, Any] = config_to_dict(read_run_config(args.init))
        document["agent"].pop("algo", None)  # `algo` is the single source of truth
    else:
        document = read_yaml_mapping(args.config) if args.config is not None else {}
    document = apply_overrides(document, args.overrides)
    check_before_flags(document)
    if args.env is not None:
        document["env_id"] = args.env
    document.setdefault("env_id", DEFAULT_ENV)
    for key in ("algo", "seed"):
        if getattr(args, key) is not None:
            document[key] = getattr(args, key)
    config = build_train_config(document)
    if config.torch_threads is not None:
        import torch

        torch.set_num_threads(config.torch_threads)
    obs_dim, act_dim = check_runtime(config)
    try:
        trainer, reports = retrain_from_bags(
            args.bags, config, args.out, obs_dim, act_dim, init=args.init
        )
    except ValueError as error:
        if isinstance(error, ConfigError):
            raise
        # Bags or checkpoint that do not fit the task: a user error, not a traceback.
        raise ConfigError("bag" if args.init is None else "init", str(error)) from error
    for bag, report in reports:
        print(f"{bag}: used {report.transitions} transitions ({report.summary()})")
        for note in report.notes:
            print(f"  {note}")
    start = f", continuing {args.init}" if args.init is not None else ""
    print(
        f"Retrained {config.algo} on {sum(r.transitions for _, r in reports)} transitions from "
        f"{len(reports)} bag(s){start}: {trainer.epoch} epochs, "
        f"{trainer.agent.env_steps} transitions in D_ENV, {trainer.rejected} rejected. "
        f"Run directory {args.out} (progress.csv, checkpoint/); evaluate it with "
        f"`mdemorl eval --run {args.out}`."
    )
    return 0
