"""Layout of a run directory and the rules for starting, resuming and reading runs.

RUN/config.yaml      resolved TrainConfig (written once, when the run starts)
RUN/progress.csv     one row per epoch (see progress_log.COLUMNS)
RUN/checkpoint/      latest checkpoint (see checkpoint.py)
RUN/tb/              TensorBoard scalars
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mdemorl_core.config import (
    ConfigError,
    TrainConfig,
    config_to_dict,
    dump_config,
    load_config_text,
)
from mdemorl_core.training.checkpoint import atomic_write, has_checkpoint

# Fields that may differ between a run's stored config and the one given to `--resume`: they
# change how long it runs or how many threads it uses, not what it computes. (Not the device: the
# agent's generator states are device-specific.)
RESUME_MUTABLE_KEYS = frozenset({"epochs", "torch_threads"})


class RunDirError(RuntimeError):
    """The run directory cannot be used as asked (would overwrite a run, nothing to resume...)."""


@dataclass(frozen=True)
class RunPaths:
    """Paths inside one run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def progress(self) -> Path:
        return self.root / "progress.csv"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoint"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    def holds_run(self) -> bool:
        """True when something of a previous run is present."""
        return self.config.exists() or self.progress.exists() or self.checkpoint_dir.exists()


def read_run_config(run_dir: Path) -> TrainConfig:
    """The resolved config stored in a run directory."""
    paths = RunPaths(Path(run_dir))
    if not paths.config.is_file():
        raise RunDirError(f"{run_dir} is not a run directory: {paths.config} is missing")
    return load_config_text(paths.config.read_text())


def write_run_config(paths: RunPaths, config: TrainConfig) -> None:
    """Store the resolved config (atomically) in the run directory."""
    text = dump_config(config).encode()

    def write(handle: IO[bytes]) -> None:
        handle.write(text)

    atomic_write(paths.config, write)


def check_new_run(paths: RunPaths, config: TrainConfig) -> None:
    """Refuse to start a new run over an existing one (naming how their configs differ)."""
    if not paths.holds_run():
        return
    detail = ""
    if paths.config.is_file():
        try:
            stored = load_config_text(paths.config.read_text())
        except ConfigError:
            stored = None
        differing = _differing_keys(stored, config) if stored is not None else []
        detail = (
            f" (its config differs in: {', '.join(differing)})"
            if differing
            else " (with the same config)"
        )
    raise RunDirError(
        f"output directory {paths.root} already holds a run{detail}; pass --resume to "
        "continue it, or choose another --out"
    )


def create_run(paths: RunPaths, config: TrainConfig) -> None:
    """Create the run directory and its config.yaml (after `check_new_run`)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    write_run_config(paths, config)


def prepare_new_run(paths: RunPaths, config: TrainConfig) -> None:
    """`check_new_run` then `create_run`: refuse an occupied directory, else start the run there."""
    check_new_run(paths, config)
    create_run(paths, config)


def check_resumable(paths: RunPaths) -> None:
    """Raise RunDirError unless the directory has a config and a checkpoint to resume from."""
    if not paths.config.is_file():
        raise RunDirError(f"cannot resume: {paths.root} holds no run ({paths.config} is missing)")
    if not has_checkpoint(paths.checkpoint_dir):
        raise RunDirError(
            f"cannot resume: no checkpoint in {paths.checkpoint_dir} (the run never finished an "
            "epoch); start it again without --resume in an empty directory"
        )


def check_resume_config(stored: TrainConfig, requested: TrainConfig) -> None:
    """Raise ConfigError naming the first key that changed other than RESUME_MUTABLE_KEYS."""
    for key in _differing_keys(stored, requested):
        if key.split(".")[0] not in RESUME_MUTABLE_KEYS:
            raise ConfigError(
                key,
                "differs from the run being resumed; only "
                f"{', '.join(sorted(RESUME_MUTABLE_KEYS))} may change on --resume",
            )


def _flatten(document: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(document, dict) and document:
        flat: dict[str, Any] = {}
        for key, value in document.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: document}


def _differing_keys(first: TrainConfig, second: TrainConfig) -> list[str]:
    flat_first = _flatten(config_to_dict(first))
    flat_second = _flatten(config_to_dict(second))
    keys = sorted(set(flat_first) | set(flat_second))
    return [k for k in keys if flat_first.get(k) != flat_second.get(k)]
