"""Atomic checkpoint files: a crash mid-write never damages the previous checkpoint.

A checkpoint is one `torch.save` file `RUN/checkpoint/checkpoint.pt` holding a plain dict
(agent state, environment and global RNG states, epoch counter, ...). It is written to a temporary
file in the same directory, flushed and fsynced, then renamed over the old one with `os.replace`
(atomic on POSIX), and the directory entry is fsynced too. Checkpoints hold only tensors and plain
Python values, so they load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

CHECKPOINT_FILE = "checkpoint.pt"


def checkpoint_path(checkpoint_dir: Path) -> Path:
    """Where the latest checkpoint of a run lives inside its checkpoint directory."""
    return Path(checkpoint_dir) / CHECKPOINT_FILE


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file through `write(file)` so that `path` holds either the old or the new content.

    If `write` raises, the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary_name)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Persist the rename itself; some file systems refuse to open directories, which is harmless.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def save_checkpoint(checkpoint_dir: Path, state: dict[str, Any]) -> Path:
    """Atomically write `state` as the run's latest checkpoint; returns the file path."""
    path = checkpoint_path(checkpoint_dir)
    atomic_write(path, lambda handle: torch.save(state, handle))
    return path


def has_checkpoint(checkpoint_dir: Path) -> bool:
    """True when `checkpoint_dir` holds a completed checkpoint file."""
    return checkpoint_path(checkpoint_dir).is_file()


def load_checkpoint(checkpoint_dir: Path) -> dict[str, Any]:
    """Read the latest checkpoint of a run (onto the CPU).

    Raises FileNotFoundError with the expected path when there is none.
    """
    path = checkpoint_path(checkpoint_dir)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    data = path.read_bytes()
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(f"checkpoint {path} cannot be read: {error}") from error
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path} does not hold a dict")
    return state
