"""The subset of the ``launch`` / ``launch_ros`` Python API that this project's launch files use.

``ros2 launch`` cannot be installed from PyPI, so on a pip-only machine :mod:`runner` registers these
classes under the standard module names (``launch``, ``launch.actions``, ``launch.substitutions``,
``launch_ros.actions``) before it loads a launch file. The launch files themselves are ordinary
ROS 2 launch files and run unchanged under ``ros2 launch`` on a full ROS 2 install.

Only descriptions live here; :mod:`runner` turns them into processes.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Context = Mapping[str, str]


class LaunchConfiguration:
    """The value of a launch argument, resolved when the processes are started."""

    def __init__(self, variable_name: str, default: str | None = None) -> None:
        self.variable_name = variable_name
        self.default = default

    def perform(self, context: Context) -> str:
        if self.variable_name in context:
            return context[self.variable_name]
        if self.default is not None:
            return self.default
        raise KeyError(f"launch argument '{self.variable_name}' has no value and no default")


class EqualsSubstitution:
    """ "true" when both sides resolve to the same string, else "false" (as ``launch``'s)."""

    def __init__(self, left: Any, right: Any) -> None:
        self.left = left
        self.right = right

    def perform(self, context: Context) -> str:
        equal = str(resolve(self.left, context)) == str(resolve(self.right, context))
        return "true" if equal else "false"


Substitution = LaunchConfiguration | EqualsSubstitution


def resolve(value: Any, context: Context) -> Any:
    """Resolve substitutions inside ``value`` (a string, substitution, or list of them)."""
    if isinstance(value, Substitution):
        return value.perform(context)
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, str | Substitution) for v in value):
            return "".join(str(resolve(v, context)) for v in value)
        return [resolve(v, context) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, context) for k, v in value.items()}
    return value


@dataclass
class DeclareLaunchArgument:
    """A launch argument (``name:=value`` on the command line)."""

    name: str
    default_value: str | list[str | LaunchConfiguration] | None = None
    description: str = ""
    choices: Sequence[str] | None = None


@dataclass
class Shutdown:
    """Event action: shut the whole launch down (used as ``on_exit=Shutdown()``)."""

    reason: str = ""


@dataclass
class ExecuteProcess:
    """A plain process (``cmd`` is a list of strings or substitutions)."""

    cmd: Sequence[Any]
    name: str | None = None
    output: str = "screen"
    additional_env: Mapping[str, str] | None = None
    on_exit: Shutdown | None = None
    condition: IfCondition | None = None


@dataclass
class Node:
    """A ROS 2 node from an installed package's ``lib/<package>/<executable>``."""

    package: str
    executable: str
    name: str | None = None
    namespace: str | None = None
    parameters: Sequence[Any] = field(default_factory=list)
    remappings: Sequence[tuple[Any, Any]] = field(default_factory=list)
    arguments: Sequence[Any] = field(default_factory=list)
    output: str = "screen"
    additional_env: Mapping[str, str] | None = None
    on_exit: Shutdown | None = None
    condition: IfCondition | None = None


class IfCondition:
    """True when its expression resolves to "true" / "1" (as ``launch.conditions.IfCondition``)."""

    def __init__(self, predicate_expression: Any) -> None:
        self.predicate_expression = predicate_expression

    def evaluate(self, context: Context) -> bool:
        value = str(resolve(self.predicate_expression, context)).strip().lower()
        if value not in ("true", "false", "1", "0"):
            raise ValueError(f"condition must be true/false, got '{value}'")
        return value in ("true", "1")


class UnlessCondition(IfCondition):
    """The negation of :class:`IfCondition`."""

    def evaluate(self, context: Context) -> bool:
        return not super().evaluate(context)


class LaunchDescription:
    """An ordered list of launch entities."""

    def __init__(self, initial_entities: Iterable[Any] | None = None) -> None:
        self.entities: list[Any] = list(initial_entities or [])

    def add_action(self, action: Any) -> None:
        self.entities.append(action)


def install_as_launch_modules() -> None:
    """Register this module's classes under the ``launch`` and ``launch_ros`` module names."""
    namespaces = {
        "launch": {"LaunchDescription": LaunchDescription},
        "launch.actions": {
            "DeclareLaunchArgument": DeclareLaunchArgument,
            "ExecuteProcess": ExecuteProcess,
            "Shutdown": Shutdown,
        },
        "launch.substitutions": {
            "EqualsSubstitution": EqualsSubstitution,
            "LaunchConfiguration": LaunchConfiguration,
        },
        "launch.conditions": {"IfCondition": IfCondition, "UnlessCondition": UnlessCondition},
        "launch_ros": {},
        "launch_ros.actions": {"Node": Node},
    }
    for name, members in namespaces.items():
        module = types.ModuleType(name, f"mdemorl pip-only stand-in for {name}")
        module.__dict__.update(members)
        sys.modules[name] = module
    for parent, child in (
        ("launch", "actions"),
        ("launch", "substitutions"),
        ("launch_ros", "actions"),
    ):
        setattr(sys.modules[parent], child, sys.modules[f"{parent}.{child}"])
