"""`RUN/progress.csv`: one row per epoch, written so that a resumed run equals an uninterrupted one.

Floats are written with `repr` (shortest round-trip form), so rows compare exactly between runs.
A checkpoint keeps the rows written so far; on resume the file is rewritten from them, which drops
rows logged after the last checkpoint by epochs that will be run again.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path

AGENT_METRICS = (
    "model_loss",
    "critic_loss",
    "actor_loss",
    "alpha",
    "horizon",
    "mpc_batch",
    "d_env",
    "d_mpc",
)
"""What every agent's ``update`` reports and progress.csv logs (NaN where not applicable)."""
COLUMNS = (
    "epoch",
    "env_steps",
    "eval_return",
    "eval_return_std",
    "eval_mpc_return",
    "train_return",
    "train_episodes",
    *AGENT_METRICS,
    "epoch_seconds",
)
WALL_TIME_COLUMNS = ("epoch_seconds",)


def _format(value: float | int) -> str:
    if isinstance(value, bool):
        raise TypeError("progress values must be numbers, not bool")
    if isinstance(value, int):
        return str(value)
    number = float(value)
    return "nan" if math.isnan(number) else repr(number)


class ProgressLog:
    """Append-only CSV of per-epoch numbers with the fixed header `COLUMNS`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def start(self, previous_rows: list[dict[str, str]] | None = None) -> None:
        """(Re)write the file: the header, then `previous_rows` (a resumed run's rows so far)."""
        rows = previous_rows or []
        self._write_rows([{c: row.get(c, "nan") for c in COLUMNS} for row in rows])

    def append(self, values: Mapping[str, float | int]) -> dict[str, str]:
        """Append one epoch's row; every column in COLUMNS must be present (NaN where n/a).

        Returns the row as written (strings), e.g. to keep it in a checkpoint.
        """
        missing = [c for c in COLUMNS if c not in values]
        if missing:
            raise ValueError(f"progress row is missing columns {missing}")
        row = {c: _format(values[c]) for c in COLUMNS}
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=COLUMNS).writerow(row)
            handle.flush()
            os.fsync(handle.fileno())
        return row

    def _write_rows(self, rows: list[dict[str, str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)


def read_progress(path: Path) -> list[dict[str, str]]:
    """Rows of a progress.csv as dicts of strings (column -> text as written)."""
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_progress_column(path: Path, column: str) -> list[float]:
    """One numeric column of a progress.csv as floats (NaN where not measured)."""
    rows = read_progress(path)
    if rows and column not in rows[0]:
        raise KeyError(f"{path} has no column {column!r}")
    return [float(row[column]) for row in rows]
