"""Loading checkpoints of the former critic layout: two independent ``nn.Sequential`` MLPs
``q1`` / ``q2`` (``nn.Linear`` weights ``out x in``), now one fused ensemble
(:class:`mdemorl_core.agents.sac.TwinQ`, weights ``2 x in x out``, biases ``2 x 1 x out``).
"""

from __future__ import annotations

from typing import Any

import torch


def _legacy_layer_keys(prefix: str, head: int, layer: int) -> tuple[str, str]:
    """Keys of one ``nn.Linear`` in the former layout: Sequential index ``2 * layer`` (Linear,
    ReLU pairs) inside ``q1`` / ``q2``."""
    return f"{prefix}q{head + 1}.{2 * layer}.weight", f"{prefix}q{head + 1}.{2 * layer}.bias"


def upgrade_twin_state(state: dict[str, Any], prefix: str, num_linear: int, num_heads: int) -> None:
    """Rewrites a former-layout module state under `prefix` into the fused layout in place (a
    fused state is left alone). `num_linear`: dense layers per head, output layer included."""
    if f"{prefix}q1.0.weight" not in state:
        return
    for index in range(num_linear):
        keys = [_legacy_layer_keys(prefix, head, index) for head in range(num_heads)]
        weights = [state.pop(weight_key).t() for weight_key, _ in keys]
        biases = [state.pop(bias_key) for _, bias_key in keys]
        state[f"{prefix}layers.{index}.weight"] = torch.stack(weights)
        state[f"{prefix}layers.{index}.bias"] = torch.stack(biases).unsqueeze(1)


def upgrade_twin_optimizer_state(state: dict[str, Any], num_linear: int) -> dict[str, Any]:
    """Adam state of the former two-head critic (q1's weight and bias of each of its
    `num_linear` layers, then q2's) -> the fused critic's (one weight and one bias per layer);
    a state already in the fused layout is returned unchanged."""
    group = state["param_groups"][0]
    if len(state["param_groups"]) != 1 or len(group["params"]) != 4 * num_linear:
        return state
    per_head = 2 * num_linear
    old = state["state"]
    new_state: dict[int, dict[str, Any]] = {}
    for index in range(per_head):
        entries = [old.get(index), old.get(index + per_head)]
        if entries[0] is None or entries[1] is None:
            continue
        is_weight = index % 2 == 0
        merged: dict[str, Any] = {"step": entries[0]["step"]}
        for name in ("exp_avg", "exp_avg_sq"):
            parts = [entry[name] for entry in entries]
            stacked = torch.stack([p.t() for p in parts] if is_weight else parts)
            merged[name] = stacked if is_weight else stacked.unsqueeze(1)
        new_state[index] = merged
    return {"state": new_state, "param_groups": [{**group, "params": list(range(per_head))}]}
