"""The training protocol between a robot's controller and the trainer, without ROS (no rclpy).

The trainer's ``PolicyUpdate`` becomes an :class:`ActingRequest` in the controller; every policy
step the controller finishes becomes a :class:`TransitionRecord` (published as a ``Transition``).
``episodic``: the controller holds until a request, acts its ``acting_steps`` in a new episode,
then holds while the trainer updates. ``async``: it acts continuously and swaps the policy at the
next policy step. The leg's and the quadruped's controller cores implement both the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

PROTOCOLS = ("episodic", "async")
CONTROLLER_PHASES = ("waiting", "acting", "holding")
"""The phases a controller reports on ``/mdemorl/controller_phase`` (ControllerPhase.msg)."""
PHASE_REJECTIONS = (
    "phase_rejected_unknown_phase",
    "phase_rejected_unknown_protocol",
    "phase_rejected_bad_seconds",
)
"""The diagnostics counters of :func:`phase_rejection` (subscribers report them from 0)."""
DEFAULT_ACTIONS = ("zero", "random", "hold")
"""What a controller does before any request (async): zero action, uniform random actions, or
its safe hold (which records no transitions)."""


def phase_rejection(phase: str, protocol: str, seconds: Sequence[float]) -> str | None:
    """The diagnostics counter a malformed controller phase report is rejected under, or None:
    an unknown ``phase`` or ``protocol``, or an accumulated time (``seconds``: acting, holding)
    that is NaN, infinite or negative. A subscriber ignores a rejected report as a whole (one bad
    field makes the others suspect): a corrupted phase must neither pause a simulation nor
    enter the trainer's robot-time accounting."""
    unknown_phase, unknown_protocol, bad_seconds = PHASE_REJECTIONS
    if phase not in CONTROLLER_PHASES:
        return unknown_phase
    if protocol not in PROTOCOLS:
        return unknown_protocol
    if not all(math.isfinite(value) and value >= 0.0 for value in seconds):
        return bad_seconds
    return None


PolicyFn = Callable[[np.ndarray], np.ndarray]
"""obs [observation_dim] float32 -> action [action_dim] in [-1, 1]."""


@dataclass(frozen=True)
class ActingRequest:
    """A policy to act with: ``policy`` (None: uniform random actions, or the default action
    before any request), its ``version``, the policy steps of the episodic acting phase
    (``acting_steps``; 0: act until the next request) and ``explore_uniform`` (act uniformly at
    random in [-1, 1], tagging the data with ``version``)."""

    policy: PolicyFn | None
    version: int
    acting_steps: int = 0
    explore_uniform: bool = False


@dataclass(frozen=True)
class TransitionRecord:
    """One policy step: observation/next_observation [observation_dim], action [action_dim];
    ``policy_version``: the version of the request that chose the action."""

    episode: int
    step: int
    policy_version: int
    observation: np.ndarray
    action: np.ndarray
    next_observation: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
