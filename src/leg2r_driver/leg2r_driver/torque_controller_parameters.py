"""The torque controller's parameters: defaults, value rules, and the task and controller core
they configure (torque_controller_node declares them)."""

from __future__ import annotations

from typing import Any

from leg2r_driver.controller_core import HOLD_MODES, ControllerConfig
from mdemorl_core.envs.leg2r_task import Leg2RParams
from mdemorl_core.limits import Limits
from mdemorl_ros.node_parameters import MIDDLEWARE_PRIORITY, PRIORITY, RATE_HZ, REQUIRED, Rule
from mdemorl_ros.protocol import DEFAULT_ACTIONS, PROTOCOLS
from mdemorl_ros.ros_common import EXECUTOR_STRATEGIES

MODES = ("policy", "mpc")
OUTPUTS = ("effort_command", "ros2_control")

DEFAULTS: dict[str, object] = {
    "mode": "policy",
    "protocol": "async",  # async: act continuously | episodic: act one request's steps, hold
    "hold_mode": "pd",  # the safe hold: pd (to hold_pose) | zero (zero torque)
    "idle_period": 0.02,  # s; loop step while holding without fresh joint states
    "output": "effort_command",
    "ros2_control_controller": "effort_controller",
    "joint_names": ["hip", "knee"],
    "control_rate": 500.0,
    "policy_decimation": 5,
    "episode_steps": 1000,
    "default_action": "zero",
    "hold_pose": [0.0],  # rad [2]; a single entry means "IK of the reference start point"
    "hold_kp": [8.0, 6.0],
    "hold_kd": [0.3, 0.2],
    "seed": 0,
    "deterministic": True,
    "max_state_age": 0.02,  # s; older joint states stop the output (the driver's watchdog acts)
    "tracking_every": 5,
    "planner_service": "/planner_node/plan",
    "diagnostics_rate": 1.0,
    "realtime_priority": 0,  # SCHED_FIFO priority of the loop thread (1..99), 0 = normal
    "middleware_priority": -1,  # SCHED_FIFO of the dds.* threads; -1: realtime_priority - 1
    "executor_strategy": "inline",  # inline: the loop thread spins | thread: main thread spins
    "statistics_warmup": 0.0,  # s; loop statistics restart after this (benchmarks skip start-up)
    "statistics_duration": 0.0,  # s; >0: the statistics window closes this long after opening
    "statistics_file": "",  # write the loop statistics as JSON here at shutdown (benchmarks)
}
PARAMETER_RULES: dict[str, Rule] = {
    "mode": MODES,
    "protocol": PROTOCOLS,
    "hold_mode": HOLD_MODES,
    "idle_period": Limits(0.0, 1.0, low_open=True),
    "output": OUTPUTS,
    "ros2_control_controller": REQUIRED,
    "joint_names": REQUIRED,
    "control_rate": RATE_HZ,
    "policy_decimation": Limits(1, 1000),
    "episode_steps": Limits(1, 10_000_000),
    "default_action": DEFAULT_ACTIONS,
    "hold_pose": Limits(-10.0, 10.0),
    "hold_kp": Limits(0.0, 1000.0),
    "hold_kd": Limits(0.0, 100.0),
    "seed": Limits(0, 2**31 - 1),
    "max_state_age": Limits(0.0, 1.0, low_open=True),
    "tracking_every": Limits(1, 1_000_000),
    "planner_service": REQUIRED,
    "diagnostics_rate": RATE_HZ,
    "realtime_priority": PRIORITY,
    "middleware_priority": MIDDLEWARE_PRIORITY,
    "executor_strategy": EXECUTOR_STRATEGIES,
    "statistics_warmup": Limits(0.0, 3600.0),
    "statistics_duration": Limits(0.0, 86_400.0),
}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


def controller_setup(s: dict[str, Any]) -> tuple[Leg2RParams, ControllerConfig]:
    """The task and the core's config of the declared settings ``s``."""
    if s["mode"] not in MODES or s["output"] not in OUTPUTS:
        raise ValueError(f"mode must be in {MODES} and output in {OUTPUTS}")
    params = Leg2RParams(
        control_hz=s["control_rate"],
        decimation=s["policy_decimation"],
        episode_steps=s["episode_steps"],
    )
    hold = tuple(s["hold_pose"]) if len(s["hold_pose"]) == 2 else ()
    config = ControllerConfig(
        default_action=s["default_action"],
        hold_pose=hold,
        hold_kp=tuple(s["hold_kp"]),
        hold_kd=tuple(s["hold_kd"]),
        seed=s["seed"],
        protocol=s["protocol"],
        hold_mode=s["hold_mode"],
    )
    return params, config
