"""Known termination rules as batched torch functions of a transition (mbrl-lib's ``term_fn``).

A model rollout or a planner's return must stop where the real episode would stop: a Hopper that
has fallen earns no more reward. Each function reproduces the task's ``terminated`` flag from the
observation after the step, so it can be evaluated on a model's predicted next state.

Every function has the signature ``done(obs N x O, act N x A, next_obs N x O) -> N`` (bool) and
equals the environment's ``terminated`` flag on real transitions with default env kwargs (tested
in ``test_task_terminations.py``). Leading batch dimensions other than one N are accepted too:
``[..., O] -> [...]``.

Sources: the ``step``/``is_healthy`` code of Gymnasium's MuJoCo v5 envs (gymnasium 1.x).
Where a rule reads a quantity the observation holds only clipped (Hopper's velocities, clipped to
+-10 in the observation but compared with +-100 in ``is_healthy``), the function uses the clipped
value; the two differ only when a joint speed exceeds 100, which is documented per function.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mdemorl_core.envs.stochlite_gait import STOCHLITE_V1 as _STOCHLITE_V1

TerminationFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _check(next_obs: torch.Tensor, dim: int, task: str) -> None:
    if next_obs.ndim < 1 or next_obs.shape[-1] != dim:
        raise ValueError(
            f"{task} termination: next_obs must have shape [..., {dim}], got "
            f"{tuple(next_obs.shape)}"
        )


def never_terminates(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """All False, shape ``next_obs.shape[:-1]``: the task only truncates (Leg2R)."""
    del obs, act
    return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)


def inverted_pendulum_termination(
    obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """InvertedPendulum-v5: any non-finite entry or |pole angle| = |next_obs[1]| > 0.2 rad.

    Observation [4] = qpos (cart x, pole angle), qvel. Exact. Shapes: ``N x 4`` -> ``N``.
    """
    del obs, act
    _check(next_obs, 4, "InvertedPendulum-v5")
    not_finite = ~torch.isfinite(next_obs).all(dim=-1)
    return not_finite | (next_obs[..., 1].abs() > 0.2)


def inverted_double_pendulum_tip_height(next_obs: torch.Tensor) -> torch.Tensor:
    """Height y [...] (m) of the second pole's tip site above the cart, from next_obs [..., 9].

    Observation = [cart x, sin q1, sin q2, cos q1, cos q2, qvel (3, clipped to +-10), constraint
    force]; both poles are 0.6 m long, so y = 0.6 (cos q1 + cos(q1 + q2)). The (cos, sin) pairs are
    renormalised because a model's prediction need not lie on the unit circle.
    """
    sin1, sin2, cos1, cos2 = (next_obs[..., i] for i in (1, 2, 3, 4))
    norm1 = torch.sqrt(sin1 * sin1 + cos1 * cos1).clamp_min(1e-6)
    norm2 = torch.sqrt(sin2 * sin2 + cos2 * cos2).clamp_min(1e-6)
    sin1, cos1, sin2, cos2 = sin1 / norm1, cos1 / norm1, sin2 / norm2, cos2 / norm2
    return 0.6 * (cos1 + cos1 * cos2 - sin1 * sin2)


def inverted_double_pendulum_termination(
    obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """InvertedDoublePendulum-v5: tip height y <= 1 m (``inverted_double_pendulum_tip_height``).

    The env reads the tip site's position as MuJoCo left it after the step's last RK4 stage, not
    recomputed from the final angles the observation holds; measured on 2000 random transitions
    the two heights differ by 5.7e-6 m on average, 5.4e-5 m at most. So the flag can differ only
    when the tip is within ~1e-4 m of 1 m (none of the tested near-boundary transitions did).
    Shapes: ``N x 9`` -> ``N``.
    """
    del obs, act
    _check(next_obs, 9, "InvertedDoublePendulum-v5")
    return inverted_double_pendulum_tip_height(next_obs) <= 1.0


def hopper_termination(
    obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """Hopper-v5: unhealthy = not (every next_obs[1:] in (-100, 100), z > 0.7, |angle| < 0.2).

    Observation [11] = qpos[1:] (z, torso angle, thigh, leg, foot), clip(qvel, -10, 10). The env
    tests qpos[2:] and the UNclipped qvel against (-100, 100); from the observation the velocity
    part can never fail, so a joint speed above 100 (which needs a diverging simulation) is the one
    case where this differs. NaN fails every comparison, as in the env. Shapes: ``N x 11`` -> ``N``.
    """
    del obs, act
    _check(next_obs, 11, "Hopper-v5")
    z, angle, state = next_obs[..., 0], next_obs[..., 1], next_obs[..., 1:]
    healthy_state = ((state > -100.0) & (state < 100.0)).all(dim=-1)
    healthy_z = (z > 0.7) & (z < float("inf"))
    healthy_angle = (angle > -0.2) & (angle < 0.2)
    return ~(healthy_state & healthy_z & healthy_angle)


def walker2d_termination(
    obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """Walker2d-v5: unhealthy = not (0.8 < z < 2.0 and -1 < torso angle < 1).

    Observation [17] = qpos[1:] (z = next_obs[0], angle = next_obs[1], six joints),
    clip(qvel, -10, 10). Exact. Shapes: ``N x 17`` -> ``N``.
    """
    del obs, act
    _check(next_obs, 17, "Walker2d-v5")
    z, angle = next_obs[..., 0], next_obs[..., 1]
    return ~((z > 0.8) & (z < 2.0) & (angle > -1.0) & (angle < 1.0))


def stochlite_v1_termination(
    obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """StochLite-v1 (``stochlite_estimator.measured_termination``, absolute, default
    ``STOCHLITE_V1``): |IMU roll or pitch| > max_tilt, |roll/pitch - estimated slope| > max_tilt,
    or estimated height < min_height. Exact. Shapes: ``N x 11`` -> ``N``."""
    del obs, act
    _check(next_obs, 11, "StochLite-v1")
    attitude, slope = next_obs[..., 0:2], next_obs[..., 6:8]
    limit = _STOCHLITE_V1.max_tilt
    tilted = (attitude.abs() > limit).any(dim=-1) | ((attitude - slope).abs() > limit).any(dim=-1)
    return tilted | (next_obs[..., 5] < _STOCHLITE_V1.min_height)


TASK_TERMINATIONS: dict[str, TerminationFunction] = {
    "Leg2R-v0": never_terminates,
    "Leg2RHardware-v0": never_terminates,
    "InvertedPendulum-v5": inverted_pendulum_termination,
    "InvertedDoublePendulum-v5": inverted_double_pendulum_termination,
    "Hopper-v5": hopper_termination,
    "Walker2d-v5": walker2d_termination,
    "StochLite-v1": stochlite_v1_termination,
}
"""Tasks with a known termination rule, by Gymnasium id (default env kwargs)."""

KNOWN_TERMINATION_FIELDS: dict[str, tuple[object, frozenset[str]]] = {
    "StochLite-v1": (_STOCHLITE_V1, frozenset({"max_tilt", "min_height"})),
}
"""Per task: the parameters its known termination assumes and the env kwargs that change them."""


def task_termination_function(task: str) -> TerminationFunction:
    """The termination rule of ``task``; ValueError naming the known ones for any other name."""
    if task not in TASK_TERMINATIONS:
        raise ValueError(
            f"no known termination function for task {task!r}; known: {sorted(TASK_TERMINATIONS)}"
        )
    return TASK_TERMINATIONS[task]
