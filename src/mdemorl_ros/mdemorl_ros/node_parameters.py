"""The value rules of node parameters and the check that enforces them (no rclpy here).

Each node lists, next to its ``DEFAULTS``, a ``PARAMETER_RULES`` table: for a number (or a list
of numbers) the :class:`mdemorl_core.limits.Limits` every value must lie in, for a string the
tuple of its allowed values or :data:`REQUIRED` (must not be empty). ``ros_common.declare``
checks the declared values against it before the node touches any hardware, so a bad
``-p key:=value`` ends the node with one error naming the key (exit 2), never a traceback.
Every range is finite, so NaN, ±inf and absurdly large numbers are always rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Final

from mdemorl_core.limits import FieldValueError, Limits, check_limits

REQUIRED: Final = "required"
"""Rule of a string parameter that has no usable default: it must be given, not empty."""

# Every node that declares its parameters through these rules: name -> module (strings only, so
# this package imports none of the others). The rules test and bench/_faults_nodes.py read it.
NODE_MODULES: Final[dict[str, str]] = {
    "torque_controller_node": "leg2r_driver.torque_controller_node",
    "motor_driver_node": "leg2r_driver.motor_driver_node",
    "sim_robot_node": "leg2r_driver.sim_robot_node",
    "imu_node": "leg2r_driver.imu_node",
    "trainer_node": "mdemorl_planner_node.trainer_node",
    "planner_node": "mdemorl_planner_node.planner_node",
    "policy_publisher": "mdemorl_planner_node.policy_publisher",
    "servo_driver_node": "stochlite_driver.servo_driver_node",
    "stochlite_sim_node": "stochlite_driver.stochlite_sim_node",
    "gait_controller_node": "stochlite_driver.gait_controller_node",
}

Rule = Limits | tuple[str, ...] | str
"""A Limits range, the allowed strings, or REQUIRED."""

PRIORITY = Limits(0, 99)
"""SCHED_FIFO priority of a loop thread; 0 = normal scheduling."""
MIDDLEWARE_PRIORITY = Limits(-1, 99)
"""SCHED_FIFO priority of the DDS threads; -1 = the loop's priority - 1."""
PERIOD_S = Limits(0.0, 3600.0, low_open=True)
"""A strictly positive duration (s) up to an hour."""
RATE_HZ = Limits(0.0, 10_000.0, low_open=True)
"""A strictly positive rate (Hz) up to 10 kHz."""
STDDEV = Limits(-1.0, 1000.0)
"""A noise standard deviation; negative: not provided (REP 145: covariance -1)."""
TIMEOUT_S = Limits(0.0, 10.0, low_open=True)
"""A watchdog timeout or age limit (s), strictly positive."""


class ParameterError(ValueError):
    """A node parameter's value is of the wrong type, empty, or outside its rule."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"parameter '{name}' {message}")
        self.name = name


def _type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "integer"
    if isinstance(default, float):
        return "double (write 1.0, not 1)"
    if isinstance(default, str):
        return "string"
    if isinstance(default, Sequence) and default:
        return f"list of {_type_name(default[0])}"
    return type(default).__name__


def wrong_type(name: str, default: Any) -> ParameterError:
    """The error for a value whose type differs from the default's (rclpy refuses it)."""
    kind = _type_name(default)
    article = "an" if kind[0] in "aeiou" else "a"
    return ParameterError(name, f"must be {article} {kind} like its default {default!r}")


def check_parameter(name: str, value: Any, rule: Rule | None) -> None:
    """Raise ParameterError unless ``value`` (None: the empty list ``[]``) obeys ``rule``."""
    if value is None:
        raise ParameterError(name, "is empty")
    if rule is None:
        return
    items = list(value) if isinstance(value, list | tuple) else [value]
    if isinstance(rule, Limits):
        for item in items:
            try:
                check_limits(SimpleNamespace(value=item), {"value": rule})
            except FieldValueError as error:
                raise ParameterError(name, f"{error.rule}") from None
    elif rule == REQUIRED:
        if not all(isinstance(item, str) and item.strip() for item in items):
            raise ParameterError(name, "is required and must not be empty")
    else:
        for item in items:
            if item not in rule:
                raise ParameterError(name, f"must be one of {list(rule)}, got {item!r}")


def check_parameters(values: Mapping[str, Any], rules: Mapping[str, Rule]) -> None:
    """Check every value against its rule (a name without a rule: only that it is not empty)."""
    unknown = sorted(set(rules) - set(values))
    if unknown:
        raise KeyError(f"rules for parameters that are not declared: {unknown}")
    for name, value in values.items():
        check_parameter(name, value, rules.get(name))


def unruled_numbers(defaults: Mapping[str, Any], rules: Mapping[str, Rule]) -> list[str]:
    """Numeric parameters (or lists of numbers) of ``defaults`` that have no range in ``rules``."""
    missing = []
    for name, default in defaults.items():
        first = default[0] if isinstance(default, list | tuple) and default else default
        numeric = isinstance(first, int | float) and not isinstance(first, bool)
        if numeric and not isinstance(rules.get(name), Limits):
            missing.append(name)
    return missing
