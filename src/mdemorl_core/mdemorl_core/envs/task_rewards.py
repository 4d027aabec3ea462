"""Known task rewards as batched torch functions of a transition (mbrl-lib's ``reward_fn``).

A model-based agent normally predicts the reward with its model's reward head. When the reward is
a known function of the next observation — as on Leg2R, where the torque controller computes it
from the measured joint state with the task's own math — the agent can instead evaluate that
function on the model's predicted next state (``agent.task_reward: Leg2R-v0``). The model then
only has to get the dynamics right; a sharply peaked reward such as Leg2R's
exp(-|25 m^-1 e|^2) is exactly what a reward head fitted to a few thousand early transitions
cannot learn (measured R^2 = 0 on fresh data, see ``AgentConfig``).

Every function has the signature ``reward(obs N x O, act N x A, next_obs N x O) -> N`` and
equals the environment's reward on real transitions (tested in ``test_task_rewards.py``) where the
observation determines it: Leg2R-v0/-v1, StochLite-v1 and InvertedPendulum-v5 exactly,
InvertedDoublePendulum-v5 to ~1e-4 while the pole speeds stay inside the observation's +-10 clip
(the env reads MuJoCo's tip site, see ``task_terminations``). Hopper-v5 and Walker2d-v5
reward the mean forward speed over the step, a difference of x positions the observation leaves
out; their functions approximate it by the trapezoid of the observed speeds (error measured and
bounded in the test). Gymnasium tasks use their default env kwargs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mdemorl_core.envs.leg2r_task import OBSERVATION_LAYOUT, Leg2RParams
from mdemorl_core.envs.stochlite_gait import STOCHLITE_V1 as _STOCHLITE_V1
from mdemorl_core.envs.task_terminations import (
    KNOWN_TERMINATION_FIELDS,
    hopper_termination,
    inverted_double_pendulum_tip_height,
    inverted_pendulum_termination,
    stochlite_v1_termination,
    walker2d_termination,
)

RewardFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

_LEG2R = {name: index for index, name in enumerate(OBSERVATION_LAYOUT)}
# Built once: the reward runs at every model step of every planner rollout.
_LEG2R_PARAMS = Leg2RParams()


def leg2r_reward(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Leg2R-v0/-v1 reward from the observation at the end of the step (default ``Leg2RParams``).

    r = 0.8 exp(-|e|^2) + 0.2 exp(-|s_v (v - v_d)|^2), where e = ``error_x/z_scaled`` is already
    s_p (p - p_d), s_v v_d = ``desired_v*_scaled``, and the foot velocity v = J(q) qd comes from
    the joint cos/sin pairs (renormalised: a model's prediction need not lie on the circle) and
    qd = ``qd_*_scaled`` / joint_velocity_scale. ``obs`` and ``act`` are unused (same signature as
    every task reward). Shapes: ``N x 14`` -> ``N``.
    """
    del obs, act
    params = _LEG2R_PARAMS
    x = next_obs

    def unit(cos_name: str, sin_name: str) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = x[..., _LEG2R[cos_name]], x[..., _LEG2R[sin_name]]
        norm = torch.sqrt(cos * cos + sin * sin).clamp_min(1e-6)
        return cos / norm, sin / norm

    cos_hip, sin_hip = unit("cos_q_hip", "sin_q_hip")
    cos_knee, sin_knee = unit("cos_q_knee", "sin_q_knee")
    cos_sum = cos_hip * cos_knee - sin_hip * sin_knee
    sin_sum = sin_hip * cos_knee + cos_hip * sin_knee
    qd_hip = x[..., _LEG2R["qd_hip_scaled"]] / params.joint_velocity_scale
    qd_knee = x[..., _LEG2R["qd_knee_scaled"]] / params.joint_velocity_scale
    l1, l2 = params.thigh_length, params.shank_length
    foot_vx = (l1 * cos_hip + l2 * cos_sum) * qd_hip + l2 * cos_sum * qd_knee
    foot_vz = (l1 * sin_hip + l2 * sin_sum) * qd_hip + l2 * sin_sum * qd_knee
    velocity_error_sq = (params.velocity_scale * foot_vx - x[..., _LEG2R["desired_vx_scaled"]]).pow(
        2
    ) + (params.velocity_scale * foot_vz - x[..., _LEG2R["desired_vz_scaled"]]).pow(2)
    position_error_sq = x[..., _LEG2R["error_x_scaled"]].pow(2) + x[
        ..., _LEG2R["error_z_scaled"]
    ].pow(2)
    return 0.8 * torch.exp(-position_error_sq) + 0.2 * torch.exp(-velocity_error_sq)


def inverted_pendulum_reward(
    obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """InvertedPendulum-v5: 1 while the pole stays within 0.2 rad, 0 on the terminating step.
    Exact. Shapes: ``N x 4`` -> ``N``."""
    return (~inverted_pendulum_termination(obs, act, next_obs)).to(next_obs.dtype)


def inverted_double_pendulum_reward(
    obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """InvertedDoublePendulum-v5: 10 [tip height y > 1] - 0.01 x^2 - (y - 2)^2 - 1e-3 w1^2
    - 5e-3 w2^2, with the tip (x, y) = (cart x + 0.6 sin q1 + 0.6 sin(q1 + q2), 0.6 cos q1
    + 0.6 cos(q1 + q2)) from next_obs and the pole speeds w1, w2 = next_obs[6:8]. While
    |w| < 10 (the observation clips them; beyond, the speed penalty is underestimated) it is
    within 2e-4 of the env's reward, whose tip site comes from the last RK4 stage (measured max
    1.0e-4 on 1500 random transitions). Shapes: ``N x 9`` -> ``N``."""
    del obs, act
    x = next_obs
    sin1, sin2, cos1, cos2 = (x[..., i] for i in (1, 2, 3, 4))
    norm1 = torch.sqrt(sin1 * sin1 + cos1 * cos1).clamp_min(1e-6)
    norm2 = torch.sqrt(sin2 * sin2 + cos2 * cos2).clamp_min(1e-6)
    sin1, cos1, sin2, cos2 = sin1 / norm1, cos1 / norm1, sin2 / norm2, cos2 / norm2
    tip_x = x[..., 0] + 0.6 * (sin1 + sin1 * cos2 + cos1 * sin2)
    tip_y = inverted_double_pendulum_tip_height(x)
    alive = 10.0 * (tip_y > 1.0).to(x.dtype)
    distance = 0.01 * tip_x.pow(2) + (tip_y - 2.0).pow(2)
    velocity = 1e-3 * x[..., 6].pow(2) + 5e-3 * x[..., 7].pow(2)
    return alive - distance - velocity


def _forward_locomotion_reward(
    obs: torch.Tensor,
    act: torch.Tensor,
    next_obs: torch.Tensor,
    x_velocity_index: int,
    healthy: torch.Tensor,
) -> torch.Tensor:
    """(obs + next_obs)[x_velocity_index] / 2 + 1 [healthy] - 1e-3 |act|^2 (Hopper, Walker2d)."""
    forward = 0.5 * (obs[..., x_velocity_index] + next_obs[..., x_velocity_index])
    return forward + healthy.to(next_obs.dtype) - 1e-3 * act.pow(2).sum(dim=-1)


def hopper_reward(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Hopper-v5, approximate: forward speed + 1 while healthy - 1e-3 |act|^2.

    The env's forward reward is (x_after - x_before) / dt, the mean torso x speed over the step;
    it is approximated by the mean of the observed x speeds (index 5) before and after the step.
    Measured on 5000 random transitions: mean |error| 0.002, max 0.04 (reward std 0.53).
    Healthy and control terms are exact. Shapes: ``N x 11``, ``N x 3`` -> ``N``.
    """
    healthy = ~hopper_termination(obs, act, next_obs)
    return _forward_locomotion_reward(obs, act, next_obs, 5, healthy)


def walker2d_reward(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Walker2d-v5, approximate like ``hopper_reward`` (x speed at index 8).

    Measured on 5000 random transitions: mean |error| 0.008, max 0.11. Shapes: ``N x 17``,
    ``N x 6`` -> ``N``.
    """
    healthy = ~walker2d_termination(obs, act, next_obs)
    return _forward_locomotion_reward(obs, act, next_obs, 8, healthy)


def stochlite_v1_reward(
    obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
) -> torch.Tensor:
    """StochLite-v1 (``stochlite_estimator.measured_reward``, default ``STOCHLITE_V1``, no energy
    term): progress_weight x odometry speed (next_obs[10]) - orientation_weight x |roll/pitch -
    estimated slope|^2 - angular_rate_weight x (roll rate^2 + pitch rate^2) + alive_bonus where
    the step does not terminate (``stochlite_v1_termination``). Exact up to the env's float64
    arithmetic on the float32 observation, for the task's own parameters only (an env that
    overrides one of ``KNOWN_REWARD_FIELDS``, e.g. ``progress_from="world"``, pays what the
    observation does not hold: the config refuses the pair). Shapes: ``N x 11`` -> ``N``."""
    p = _STOCHLITE_V1
    alive = ~stochlite_v1_termination(obs, act, next_obs)
    x = next_obs
    tilt_sq = (x[..., 0:2] - x[..., 6:8]).pow(2).sum(dim=-1)
    rates_sq = x[..., 2:4].pow(2).sum(dim=-1)
    return (
        p.progress_weight * x[..., 10]
        - p.orientation_weight * tilt_sq
        - p.angular_rate_weight * rates_sq
        + p.alive_bonus * alive.to(next_obs.dtype)
    )


TASK_REWARDS: dict[str, RewardFunction] = {
    "Leg2R-v0": leg2r_reward,
    # v1's reward is v0's formula on the measured state with the nominal leg (leg2r_hardware).
    "Leg2RHardware-v0": leg2r_reward,
    "InvertedPendulum-v5": inverted_pendulum_reward,
    "InvertedDoublePendulum-v5": inverted_double_pendulum_reward,
    "Hopper-v5": hopper_reward,
    "Walker2d-v5": walker2d_reward,
    "StochLite-v1": stochlite_v1_reward,
}
"""Tasks with a known reward, by Gymnasium id (the values of ``agent.task_reward``); Hopper and
Walker2d are approximate (see their functions)."""

KNOWN_REWARD_FIELDS: dict[str, tuple[object, frozenset[str]]] = {
    # The alive bonus reads the known termination, so its fields are the reward's too.
    "StochLite-v1": (
        _STOCHLITE_V1,
        KNOWN_TERMINATION_FIELDS["StochLite-v1"][1]
        | {
            "progress_from",
            "progress_weight",
            "orientation_weight",
            "angular_rate_weight",
            "energy_weight",
            "alive_bonus",
        },
    ),
}
"""Per task: the parameters its known reward assumes and the env kwargs that change them."""


def task_reward_function(task: str) -> RewardFunction:
    """The known reward of ``task``; ValueError naming the known ones for any other name."""
    if task not in TASK_REWARDS:
        raise ValueError(f"no known reward for task {task!r}; known: {sorted(TASK_REWARDS)}")
    return TASK_REWARDS[task]
