"""Epoch schedules for the MPC horizon H and the MPC batch size B (Algorithm 1, step 3).

Both ramp linearly from their start value at ``ramp_start_epoch`` to their end value at
``ramp_end_epoch`` and are clamped outside that range; early epochs use short horizons and few
start states because the young model is inaccurate and long rollouts compound its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mdemorl_core.limits import Limits, at_least, check_limits, check_order


@dataclass
class ScheduleConfig:
    """Horizon and batch schedules over epochs (shared ramp).

    Defaults are CPU-sized: H 5 -> 15 (the paper's horizons) and B 250 -> 1000 start states over
    epochs 1..20, so the inner loop (B x M = 100 samples x H model steps) costs seconds per epoch
    on one core (B x H model-step rows ~ 4 ms each with M = 100 on a loaded 2-core machine).
    The paper's B 1000 -> 10000 is for a GPU: set ``schedule.b_start=1000 schedule.b_end=10000``.
    B starts small because the young model is inaccurate and its rows are not yet trusted (see
    ``AgentConfig.adaptive_real_ratio``), so planning many of them early buys nothing.
    """

    h_start: int = 5
    h_end: int = 15
    b_start: int = 250
    b_end: int = 1000
    ramp_start_epoch: int = 1
    ramp_end_epoch: int = 20

    LIMITS: ClassVar[dict[str, Limits]] = {
        "h_start": at_least(1, 1000),
        "h_end": at_least(1, 1000),
        "b_start": at_least(1, 10_000_000),
        "b_end": at_least(1, 10_000_000),
        "ramp_start_epoch": at_least(0, 1_000_000),
        "ramp_end_epoch": at_least(0, 1_000_000),
    }

    def __post_init__(self) -> None:
        check_limits(self, self.LIMITS)
        check_order(self, "ramp_start_epoch", "ramp_end_epoch")


def linear_ramp(
    epoch: int, start_value: int, end_value: int, start_epoch: int, end_epoch: int
) -> int:
    """Integer value ramped linearly from ``start_value`` (at ``start_epoch``) to ``end_value``
    (at ``end_epoch``), clamped outside; rounded to the nearest integer."""
    if end_epoch <= start_epoch:
        return end_value if epoch >= end_epoch else start_value
    fraction = min(max((epoch - start_epoch) / (end_epoch - start_epoch), 0.0), 1.0)
    return int(round(start_value + fraction * (end_value - start_value)))


def horizon_at(epoch: int, config: ScheduleConfig) -> int:
    """Planning / rollout horizon H for ``epoch``."""
    return linear_ramp(
        epoch, config.h_start, config.h_end, config.ramp_start_epoch, config.ramp_end_epoch
    )


def batch_at(epoch: int, config: ScheduleConfig) -> int:
    """Number of MPC start states B for ``epoch``."""
    return linear_ramp(
        epoch, config.b_start, config.b_end, config.ramp_start_epoch, config.ramp_end_epoch
    )
