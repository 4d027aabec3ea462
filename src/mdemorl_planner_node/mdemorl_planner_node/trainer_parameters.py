"""The trainer node's parameters: their defaults, their value rules and how the config keys
among them override the config file (stochlite_bringup/config/trainer_leg2r.yaml sets them).

run_dir (string, required), config_file ("": YAML of mdemorl train's config), overrides
(string[]: "key=value" as mdemorl train --set), resume (false), record_bag (true), protocol
("episodic" | "async", see trainer_node), niceness (0: raise the nice value by this much at
start-up, before the training thread and torch's worker threads start, so they inherit it),
diagnostics_rate (1.0 Hz), policy_push_every (250 SAC steps, interleaved async only), and the
config keys env_id, algo, epochs, steps_per_epoch, seed, device, torch_threads, which override
the config file only when given (unset: "" or -1).
"""

from __future__ import annotations

from typing import Any

from mdemorl_core.limits import Limits
from mdemorl_ros.node_parameters import RATE_HZ, REQUIRED, Rule
from mdemorl_ros.protocol import PROTOCOLS

# Config keys a node parameter may override, with the "not given" value of each.
CONFIG_PARAMETERS: dict[str, Any] = {
    "env_id": "",
    "algo": "",
    "epochs": -1,
    "steps_per_epoch": -1,
    "seed": -1,
    "device": "",
    "torch_threads": -1,
}


DEFAULTS: dict[str, Any] = {
    "run_dir": "",
    "config_file": "",
    "overrides": [""],
    "resume": False,
    "record_bag": True,
    "protocol": "episodic",
    "niceness": 0,
    "diagnostics_rate": 1.0,
    "policy_push_every": 250,
    **CONFIG_PARAMETERS,
}
PARAMETER_RULES: dict[str, Rule] = {
    "run_dir": REQUIRED,
    "protocol": PROTOCOLS,
    "niceness": Limits(0, 19),
    "diagnostics_rate": RATE_HZ,
    "policy_push_every": Limits(1, 10_000_000),
    # -1: not given (the config file's value); the config's own limits check the rest
    "epochs": Limits(-1, 10_000_000),
    "steps_per_epoch": Limits(-1, 100_000_000),
    "seed": Limits(-1, 2**31 - 1),
    "torch_threads": Limits(-1, 1024),
}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


def resolve_node_config(document: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The config document with the node parameters that were given (not their unset value)."""
    merged = dict(document)
    for key, unset in CONFIG_PARAMETERS.items():
        if parameters[key] != unset:
            merged[key] = parameters[key]
    merged.setdefault("env_id", "Leg2R-v0")
    return merged
