"""Known task rewards as batched torch functions of a transition (mbrl-lib's ``reward_fn``).

A model-based agent normally predicts the reward with its model's reward head. When the reward is
a known function of the next observation — as on Leg2R, where the torque controller computes it
from the measured joint state with the task's own math — the agent can instead evaluate that
function on the model's predicted next state (``agent.task_reward: Leg2R-v0``). The model then
only has to get the dynamics right; a sharply peaked reward such as Leg2R's
exp(-|25 m^-1 e|^2) is exactly what a reward head fitted to a few thousand early transitions
cannot learn (measured R^2 = 0 on fresh data, see ``AgentConfig``).

Every function has the signature ``reward(obs N x O, act N x A, next_obs N x O) -> N`` and must
equal the environment's reward on real transitions (tested).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mdemorl_core.envs.leg2r_task import OBSERVATION_LAYOUT, Leg2RParams

RewardFunction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

_LEG2R = {name: index for index, name in enumerate(OBSERVATION_LAYOUT)}
# Built once: the reward runs at every model step of every planner rollout.
_LEG2R_PARAMS = Leg2RParams()


def leg2r_reward(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Leg2R-v0 reward from the observation at the end of the step (default ``Leg2RParams``).

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


TASK_REWARDS: dict[str, RewardFunction] = {"Leg2R-v0": leg2r_reward}
"""Tasks with a known reward, by Gymnasium id (the values of ``agent.task_reward``)."""


def task_reward_function(task: str) -> RewardFunction:
    """The known reward of ``task``; ValueError naming the known ones for any other name."""
    if task not in TASK_REWARDS:
        raise ValueError(f"no known reward for task {task!r}; known: {sorted(TASK_REWARDS)}")
    return TASK_REWARDS[task]
