"""Declared value ranges of the configuration dataclasses, and the check that enforces them.

Each config dataclass lists its numeric fields' ranges in a ``LIMITS`` table right below the
fields (the one place a range is written) and calls :func:`check_limits` from ``__post_init__``.
Every range is finite on both sides, so NaN, ±inf and absurdly large values are always out of
range. A violation raises :class:`FieldValueError`, which names the field so that the config
loader can report the full dotted key (``agent.sac.batch_size``).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass


class FieldValueError(ValueError):
    """A config dataclass field holds a value outside its range or choices.

    ``field`` is the field's name within its dataclass (the loader prefixes its section).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field
        self.rule = message


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


@dataclass(frozen=True)
class Limits:
    """The interval ``[low, high]`` (``low_open``/``high_open``: that end excluded)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the interval (never for NaN or ±inf)."""
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"{left}{_number(self.low)}, {_number(self.high)}{right}"


def at_least(low: float, high: float) -> Limits:
    """``[low, high]``."""
    return Limits(low, high)


def above(low: float, high: float) -> Limits:
    """``(low, high]``: e.g. a learning rate, which must be strictly positive."""
    return Limits(low, high, low_open=True)


UNIT = at_least(0.0, 1.0)
"""A fraction or discount in [0, 1]."""


def check_limits(config: object, limits: Mapping[str, Limits]) -> None:
    """Raise FieldValueError for the first field of ``config`` outside its ``limits`` entry
    (a field holding None, an optional setting that is off, is not checked)."""
    for name, limit in limits.items():
        value = getattr(config, name)
        if value is None:
            continue
        if isinstance(value, bool) or not limit.contains(value):
            raise FieldValueError(name, f"must be in {limit}, got {value!r}")


def check_choice(config: object, name: str, allowed: Collection[str]) -> None:
    """Raise FieldValueError unless ``config.<name>`` is one of ``allowed``."""
    value = getattr(config, name)
    if value not in allowed:
        raise FieldValueError(name, f"must be one of {list(allowed)}, got {value!r}")


def check_order(config: object, low_name: str, high_name: str, strict: bool = False) -> None:
    """Raise FieldValueError (naming ``high_name``) unless ``low <= high`` (``<`` if strict)."""
    low, high = getattr(config, low_name), getattr(config, high_name)
    if high < low or (strict and high == low):
        relation = ">" if strict else ">="
        raise FieldValueError(high_name, f"({high}) must be {relation} {low_name} ({low})")
