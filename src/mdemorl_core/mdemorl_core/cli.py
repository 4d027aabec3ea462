"""`mdemorl` command line: train, eval and plot.

    mdemorl train --env ID --algo A --epochs N --seed S --out DIR [--config F] [--set k=v ...]
                  [--resume] [--device cpu|cuda] [--stop-after-epoch K] [--progress|--no-progress]
    mdemorl eval --run DIR [--episodes N] [--device D]
    mdemorl plot RUN... --out FILE.png
    mdemorl retrain --bag DIR [--bag DIR ...] --out RUN [--init RUN0] [--env ID] [--algo A]
                    [--config F] [--set k=v ...]
    mdemorl render --run DIR --out FILE.gif|FILE.mp4 [--episodes N] [--every K] [--max-steps S]
    mdemorl monitor [...]   (the ROS workspace's terminal dashboard, `mdemorl_monitor`)

Configuration precedence: dataclass defaults < `--config` YAML < `--set key.path=value` (values
parsed as YAML) < the dedicated flags (--env, --algo, --epochs, --seed, --device). With `--resume`
the run's own config.yaml is the base and only epochs and torch_threads may change.
Bad arguments or configuration exit with code 2 and a message naming the offending key.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mdemorl_core import retrain
from mdemorl_core.config import (
    ALGORITHMS,
    ConfigError,
    TrainConfig,
    apply_overrides,
    build_train_config,
    bundled_config_names,
    config_to_dict,
    merge_config,
    read_yaml_mapping,
    resolve_config_path,
)
from mdemorl_core.training import render

USAGE_ERROR = 2
INTERRUPTED = 130  # the shell's code for SIGINT


class UsageError(Exception):
    """A user error that ends the command with exit code 2 (message printed, no traceback)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mdemorl", description="Train and evaluate M-DeMoRL and its baselines."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train (or resume) a run")
    train.add_argument("--env", help="Gymnasium id, module:Id, Leg2R-v0 or StochLite-v0")
    train.add_argument("--algo", choices=ALGORITHMS, help="algorithm (default: mdemorl)")
    train.add_argument("--epochs", type=int, help="number of epochs in total")
    train.add_argument("--seed", type=int, help="run seed (envs, agent, evaluation)")
    train.add_argument("--out", required=True, type=Path, help="run directory")
    train.add_argument(
        "--config",
        help="YAML file with TrainConfig fields, or a bundled config's name "
        f"({', '.join(bundled_config_names())})",
    )
    train.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set agent.sac.batch_size=128 (repeatable)",
    )
    train.add_argument("--resume", action="store_true", help="continue from DIR's checkpoint")
    train.add_argument("--device", help="cpu, cuda or cuda:N")
    train.add_argument(
        "--stop-after-epoch",
        type=int,
        metavar="K",
        help="end this session after epoch K's checkpoint (continue later with --resume)",
    )
    train.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show tqdm bars (default: only on a terminal)",
    )
    train.set_defaults(handler=_run_train)

    evaluate = commands.add_parser("eval", help="evaluate a run's latest checkpoint")
    evaluate.add_argument("--run", required=True, type=Path, help="run directory")
    evaluate.add_argument("--episodes", type=int, help="episodes (default: the run's)")
    evaluate.add_argument("--device", help="device to evaluate on (default: the run's)")
    evaluate.set_defaults(handler=_run_eval)

    export = commands.add_parser(
        "export", help="write a run's actor to a file (deploy it without the run directory)"
    )
    export.add_argument("--run", required=True, type=Path, help="run directory")
    export.add_argument("--out", required=True, type=Path, help="actor file to write")
    export.set_defaults(handler=_run_export)

    plot = commands.add_parser("plot", help="learning curves of one or more runs")
    plot.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories")
    plot.add_argument("--out", required=True, type=Path, help="output image (.png)")
    plot.set_defaults(handler=_run_plot)

    retrain.add_parser(commands)
    render.add_parser(commands)
    monitor = commands.add_parser(
        "monitor",
        help="terminal dashboard of a running training graph (needs the ROS workspace)",
        add_help=False,
    )
    # Only listed here: main() hands every argument after "monitor" to the dashboard.
    monitor.set_defaults(handler=lambda args: _run_monitor([]))
    return parser


MONITOR_PACKAGE, MONITOR_EXECUTABLE = "mdemorl_planner_node", "mdemorl_monitor"


def _monitor_executable() -> str | None:
    """The dashboard's script: on PATH, or where ``ros2 run`` finds it (lib/<package>/ of an
    AMENT_PREFIX_PATH entry, which a sourced workspace sets)."""
    on_path = shutil.which(MONITOR_EXECUTABLE)
    if on_path is not None:
        return on_path
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = Path(prefix) / "lib" / MONITOR_PACKAGE / MONITOR_EXECUTABLE
        if prefix and candidate.is_file():
            return str(candidate)
    return None


def _run_monitor(arguments: list[str]) -> int:
    """Replace this process by the dashboard, which lives with the ROS nodes (it needs rclpy,
    which mdemorl_core never imports)."""
    executable = _monitor_executable()
    if executable is None:
        raise UsageError(
            f"mdemorl monitor needs the ROS workspace ({MONITOR_PACKAGE}'s {MONITOR_EXECUTABLE} "
            "was not found): run `source install/setup.bash` first"
        )
    os.execv(executable, [executable, *arguments])
    return 0  # not reached: execv replaces the process


def _flag_values(args: argparse.Namespace) -> dict[str, Any]:
    flags = {
        "env_id": args.env,
        "algo": args.algo,
        "epochs": args.epochs,
        "seed": args.seed,
        "device": args.device,
    }
    return {key: value for key, value in flags.items() if value is not None}


def resolve_train_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig a `train` invocation asks for (see the module docstring for precedence)."""
    from mdemorl_core.training.run_dir import (
        RunPaths,
        check_resumable,
        check_resume_config,
        read_run_config,
    )

    if args.resume:
        if args.config is not None:
            raise UsageError("--config cannot be combined with --resume (the run's config is used)")
        check_resumable(RunPaths(args.out))
        stored = read_run_config(args.out)
        document: dict[str, Any] = config_to_dict(stored)
        # `algo` is the single source of truth; the stored copy in agent.algo follows it.
        document["agent"].pop("algo", None)
    else:
        document = (
            read_yaml_mapping(resolve_config_path(args.config)) if args.config is not None else {}
        )
    merged = apply_overrides(document, args.overrides)
    check_before_flags(merged)
    merged.update(_flag_values(args))
    config = build_train_config(merged)
    if args.resume:
        check_resume_config(stored, config)
    return config


def check_before_flags(document: dict[str, Any]) -> None:
    """Type- and range-check the file and ``--set`` values before the dedicated flags replace
    some of them: ``--set epochs= --epochs 5`` is still a bad ``epochs``, not a silent override."""
    merge_config(TrainConfig(), document)


def check_runtime(config: TrainConfig) -> tuple[int, int]:
    """Check the device and build the task's env once, before anything is written, so that a
    missing GPU, an unknown env id or a bad ``env_kwargs`` entry exits 2 naming the key.

    Returns the env's (obs_dim, act_dim).
    """
    import torch

    from mdemorl_core.envs_util import EnvSetupError, make_env, space_dims
    from mdemorl_core.training.loop import resolve_device

    device = resolve_device(config.device)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            "device", f"{config.device!r}: only {torch.cuda.device_count()} CUDA device(s) here"
        )
    try:
        env = make_env(config.env_id, config.seed, config.max_episode_steps, **config.env_kwargs)
    except EnvSetupError as error:
        raise ConfigError("env_id", str(error)) from error
    except (TypeError, ValueError) as error:
        # The env's constructor refused an argument (gymnasium re-raises it as a TypeError).
        raise ConfigError("env_kwargs" if config.env_kwargs else "env_id", str(error)) from error
    try:
        return space_dims(env)
    finally:
        env.close()


def _run_train(args: argparse.Namespace) -> int:
    from mdemorl_core.training.loop import train

    if args.stop_after_epoch is not None and args.stop_after_epoch < 1:
        raise ConfigError("--stop-after-epoch", f"must be >= 1, got {args.stop_after_epoch}")
    config = resolve_train_config(args)
    check_runtime(config)
    try:
        summary = train(
            config,
            args.out,
            resume=args.resume,
            stop_after_epoch=args.stop_after_epoch,
            show_progress=args.progress,
        )
    except KeyboardInterrupt:
        print(
            f"\nmdemorl: interrupted; continue with: mdemorl train --out {args.out} --resume",
            file=sys.stderr,
        )
        return INTERRUPTED
    print(summary.describe())
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from mdemorl_core.training.loop import evaluate_run

    if args.episodes is not None and args.episodes < 1:
        raise ConfigError("--episodes", f"must be >= 1, got {args.episodes}")
    result = evaluate_run(args.run, args.episodes, args.device)
    print(json.dumps(result.as_json_dict()))
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from mdemorl_core.training.actor_file import export_actor

    meta = export_actor(args.run, args.out)
    print(
        f"wrote the {meta['algorithm']} actor of epoch {meta['version']} (obs {meta['obs_dim']}, "
        f"act {meta['act_dim']}, {meta['bytes']} bytes, sha256 {meta['sha256']}) to {args.out}"
    )
    return 0


def _run_plot(args: argparse.Namespace) -> int:
    from mdemorl_core.plot import plot_runs

    groups = plot_runs(args.runs, args.out)
    print(f"wrote {args.out} ({', '.join(f'{g}: {n} runs' for g, n in groups.items())})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mdemorl` console script; returns the process exit code."""
    from mdemorl_core.bags import BagError
    from mdemorl_core.envs_util import EnvSetupError
    from mdemorl_core.training.render import RenderError
    from mdemorl_core.training.run_dir import RunDirError

    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        if arguments[:1] == ["monitor"]:
            return _run_monitor(arguments[1:])
        args = build_parser().parse_args(arguments)
        return int(args.handler(args))
    except (
        ConfigError,
        UsageError,
        RunDirError,
        EnvSetupError,
        BagError,
        RenderError,
        FileNotFoundError,
    ) as error:
        print(f"mdemorl: error: {error}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
