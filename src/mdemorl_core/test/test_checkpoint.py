"""Atomic checkpoint writing: a crash mid-write leaves the previous checkpoint intact."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import numpy as np
import pytest
import torch

from mdemorl_core.training import checkpoint
from mdemorl_core.training.checkpoint import (
    atomic_write,
    checkpoint_path,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def _state(epoch: int) -> dict[str, Any]:
    generator = np.random.default_rng(epoch)
    return {
        "epoch": epoch,
        "weights": torch.full((3, 2), float(epoch)),
        "rng": dict(generator.bit_generator.state),  # 128-bit Python ints inside
        "rows": [{"epoch": str(epoch), "eval_return": "-1.5"}],
    }


def _assert_state_equal(loaded: dict[str, Any], expected: dict[str, Any]) -> None:
    assert loaded["epoch"] == expected["epoch"]
    assert torch.equal(loaded["weights"], expected["weights"])
    assert loaded["rng"] == expected["rng"]
    assert loaded["rows"] == expected["rows"]


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    assert not has_checkpoint(tmp_path)
    save_checkpoint(tmp_path, _state(1))
    assert has_checkpoint(tmp_path)
    _assert_state_equal(load_checkpoint(tmp_path), _state(1))
    save_checkpoint(tmp_path, _state(2))
    _assert_state_equal(load_checkpoint(tmp_path), _state(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [checkpoint_path(tmp_path).name]


def test_crash_inside_the_writer_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_checkpoint(tmp_path, _state(1))
    before = checkpoint_path(tmp_path).read_bytes()

    def crashing_save(obj: Any, handle: IO[bytes]) -> None:
        handle.write(b"half a checkpoint")  # partial bytes reach the temporary file
        raise RuntimeError("simulated crash mid-write")

    monkeypatch.setattr(checkpoint.torch, "save", crashing_save)
    with pytest.raises(RuntimeError, match="simulated crash"):
        save_checkpoint(tmp_path, _state(2))
    monkeypatch.undo()

    assert checkpoint_path(tmp_path).read_bytes() == before
    _assert_state_equal(load_checkpoint(tmp_path), _state(1))
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint_path(tmp_path).name]


def test_atomic_write_failure_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"

    def failing(handle: IO[bytes]) -> None:
        handle.write(b"x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    checkpoint_path(tmp_path).write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(tmp_path)
