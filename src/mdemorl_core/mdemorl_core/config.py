"""Typed training configuration: dataclasses with defaults, YAML files and `--set` overrides.

Defaults live in the dataclasses. A YAML file and then `--set a.b=value` overrides are merged on
top of them, and every value is checked against the field's type hint (walking nested dataclasses
generically), so a typo or a wrong type fails early with a `ConfigError` naming the dotted key.
Ranges are declared once, in each dataclass's ``LIMITS`` table (:mod:`mdemorl_core.limits`), and
checked by its ``__post_init__``; a violation becomes a `ConfigError` naming the dotted key too.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from mdemorl_core.agent import AgentConfig
from mdemorl_core.limits import FieldValueError, Limits, at_least, check_choice, check_limits

ALGORITHMS = ("mdemorl", "mbpo", "mopac", "sac")

DataclassT = TypeVar("DataclassT")


class ConfigError(ValueError):
    """A configuration value is unknown, missing, malformed or of the wrong type.

    `key` is the dotted path of the offending entry (e.g. ``agent.sac.lr``), or "" when the problem
    concerns the whole document.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key '{key}': {message}" if key else message)
        self.key = key


@dataclass
class TrainConfig:
    """Everything `mdemorl train` needs; `agent` is the algorithm's own nested configuration."""

    env_id: str = ""
    algo: str = "mdemorl"
    epochs: int = 10
    seed: int = 0
    steps_per_epoch: int = 1000
    eval_every: int = 1
    eval_episodes: int = 5
    # > 0: also evaluate the acting planner as the controller (progress column eval_mpc_return).
    eval_planner_episodes: int = 0
    device: str = "cpu"
    max_episode_steps: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 1
    torch_threads: int | None = None
    agent: AgentConfig = field(default_factory=AgentConfig)

    LIMITS: ClassVar[dict[str, Limits]] = {
        "epochs": at_least(1, 1_000_000),
        "seed": at_least(0, 2**32 - 1),
        "steps_per_epoch": at_least(1, 1_000_000_000),
        "eval_every": at_least(1, 1_000_000),
        "eval_episodes": at_least(1, 100_000),
        "eval_planner_episodes": at_least(0, 100_000),  # 0: no planner evaluation
        "max_episode_steps": at_least(1, 1_000_000_000),
        "checkpoint_every": at_least(1, 1_000_000),
        "torch_threads": at_least(1, 4096),
    }

    def __post_init__(self) -> None:
        check_choice(self, "algo", ALGORITHMS)
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise FieldValueError(
                "device", f"must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )
        check_limits(self, self.LIMITS)


DEVICE_PATTERN = re.compile(r"cpu|cuda(:[0-9]+)?")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _coerce(value: Any, hint: Any, key: str, current: Any = None) -> Any:
    """Check `value` against the type hint `hint` and return it in the field's own representation.

    Lists become tuples for tuple fields, ints become floats for float fields, and mappings become
    dataclass instances (merged into `current` when it is one, so nested default factories are kept).
    """
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arms = [arm for arm in args if arm is not type(None)]
        if len(arms) == 1:
            return _coerce(value, arms[0], key, current)
        for arm in arms:
            try:
                return _coerce(value, arm, key, current)
            except ConfigError:
                continue
        raise ConfigError(key, f"expected {_type_name(hint)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(key, f"expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected a mapping for {hint.__name__}, got {value!r}")
        base = current if isinstance(current, hint) else _default_instance(hint, key)
        return merge_config(base, value, prefix=key)
    if origin in (tuple, list) or hint in (tuple, list):
        return _coerce_sequence(value, hint, origin or hint, args, key)
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected a mapping, got {value!r}")
        key_hint, value_hint = args if args else (Any, Any)
        return {
            _coerce(k, key_hint, _join(key, str(k))): _coerce(v, value_hint, _join(key, str(k)))
            for k, v in value.items()
        }
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        for member in hint:
            if value in (member.value, member.name):
                return member
        raise ConfigError(key, f"expected one of {[m.value for m in hint]}, got {value!r}")
    return _coerce_scalar(value, hint, key)


def _coerce_sequence(
    value: Any, hint: Any, container: type, args: tuple[Any, ...], key: str
) -> Any:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ConfigError(key, f"expected a list for {_type_name(hint)}, got {value!r}")
    items = list(value)
    if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            raise ConfigError(
                key, f"expected {len(args)} items for {_type_name(hint)}, got {value!r}"
            )
        return tuple(
            _coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(items, args, strict=True))
        )
    item_hint = args[0] if args else Any
    coerced = [_coerce(v, item_hint, f"{key}[{i}]") for i, v in enumerate(items)]
    return tuple(coerced) if container is tuple else coerced


def _coerce_scalar(value: Any, hint: Any, key: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        # PyYAML reads exponent literals without a dot ("1e-3") as strings; accept those here.
        if isinstance(value, str):
            try:
                parsed = float(value)
            except ValueError:
                pass
            else:
                if not math.isnan(parsed) or value.strip().lower() == "nan":
                    return parsed
    elif hint is str:
        if isinstance(value, str):
            return value
    elif isinstance(hint, type):
        if isinstance(value, hint):
            return value
    else:
        raise ConfigError(key, f"unsupported type hint {hint!r} in the config dataclass")
    raise ConfigError(key, f"expected {_type_name(hint)}, got {value!r} ({type(value).__name__})")


def _default_instance(cls: type, key: str) -> Any:
    try:
        return cls()
    except TypeError as error:
        raise ConfigError(key, f"{cls.__name__} has no default; give all its fields") from error


def merge_config(base: DataclassT, updates: Mapping[str, Any], prefix: str = "") -> DataclassT:
    """Return a copy of dataclass `base` with `updates` (a nested mapping) applied and type-checked.

    Raises ConfigError naming the dotted key for an unknown key or a value of the wrong type.
    """
    if not dataclasses.is_dataclass(base) or isinstance(base, type):
        raise TypeError(f"merge_config needs a dataclass instance, got {type(base).__name__}")
    if not isinstance(updates, Mapping):
        raise ConfigError(prefix, f"expected a mapping, got {updates!r}")
    hints = typing.get_type_hints(type(base))
    field_names = {f.name for f in dataclasses.fields(base)}
    changes: dict[str, Any] = {}
    for name, value in updates.items():
        key = _join(prefix, str(name))
        if name not in field_names:
            known = ", ".join(sorted(field_names))
            raise ConfigError(key, f"unknown key (known keys here: {known})")
        changes[name] = _coerce(value, hints[name], key, getattr(base, name))
    try:
        return dataclasses.replace(base, **changes)
    except FieldValueError as error:
        # A dataclass's own __post_init__ checks (LIMITS, choices, num_elites <= ensemble_size).
        raise ConfigError(_join(prefix, error.field), error.rule) from error
    except (ValueError, TypeError) as error:
        raise ConfigError(prefix or type(base).__name__, str(error)) from error


def config_to_dict(config: Any) -> Any:
    """Plain YAML-safe representation of a (nested) dataclass: tuples become lists, enums values."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, Mapping):
        return {k: config_to_dict(v) for k, v in config.items()}
    if isinstance(config, list | tuple):
        return [config_to_dict(v) for v in config]
    if isinstance(config, enum.Enum):
        return config.value
    return config


def dump_config(config: Any) -> str:
    """YAML text of a config dataclass; `load_config_text` reads it back to an equal object."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into (["a", "b", "c"], value parsed as a YAML scalar/flow value)."""
    name, sep, raw_value = text.partition("=")
    name = name.strip()
    if not sep or not name or any(not part for part in name.split(".")):
        raise ConfigError(name, f"override {text!r} is not of the form key.path=value")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(name, f"cannot parse value {raw_value!r}: {error}") from error
    return name.split("."), value


def apply_overrides(document: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set each ``a.b=value`` override into the nested mapping `document` (a modified copy)."""
    result = _deep_copy_mapping(document)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(".".join(path[: depth + 1]), "is a value, not a section")
            node = child
        node[path[-1]] = value
    return result


def _deep_copy_mapping(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy_mapping(v) if isinstance(v, Mapping) else v for k, v in document.items()}


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping (an empty file is an empty mapping)."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ConfigError("", f"cannot read config file {path}: {error}") from error
    except yaml.YAMLError as error:
        raise ConfigError("", f"config file {path} is not valid YAML: {error}") from error
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError("", f"config file {path} must hold a mapping at the top level")
    return document


BUNDLED_CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def bundled_config_names() -> list[str]:
    """Names of the example configs shipped in mdemorl_core/configs (e.g. "pendulum")."""
    return sorted(path.stem for path in BUNDLED_CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A YAML file path as given, or the bundled config of that name (``--config pendulum``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = BUNDLED_CONFIG_DIR / f"{name_or_path}.yaml"
    if path.suffix == "" and bundled.is_file():
        return bundled
    raise ConfigError(
        "",
        f"config file {str(name_or_path)!r} not found (bundled configs: "
        f"{', '.join(bundled_config_names())})",
    )


def build_train_config(
    document: Mapping[str, Any] | None = None, overrides: Sequence[str] = ()
) -> TrainConfig:
    """TrainConfig from defaults + `document` (e.g. a YAML file's mapping) + `--set` overrides.

    `algo` is the single source of truth for the algorithm: it is copied into `agent.algo`
    (giving a different `agent.algo` explicitly is an error).
    """
    merged = apply_overrides(dict(document or {}), overrides)
    config = merge_config(TrainConfig(), merged)
    agent_section = merged.get("agent")
    explicit_agent_algo = agent_section.get("algo") if isinstance(agent_section, dict) else None
    if explicit_agent_algo is not None and explicit_agent_algo != config.algo:
        raise ConfigError(
            "agent.algo",
            f"{explicit_agent_algo!r} differs from algo {config.algo!r}; set only algo",
        )
    try:
        agent = dataclasses.replace(config.agent, algo=config.algo)
    except FieldValueError as error:  # e.g. agent.act "planner" with algo "sac"
        raise ConfigError(f"agent.{error.field}", error.rule) from error
    config = dataclasses.replace(config, agent=agent)
    validate_train_config(config)
    return config


def load_config_text(text: str) -> TrainConfig:
    """Parse YAML text produced by `dump_config` (or written by hand) into a TrainConfig."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError("", f"not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise ConfigError("", "a config must be a mapping at the top level")
    return build_train_config(document)


def validate_train_config(config: TrainConfig) -> None:
    """The check that needs the whole document (ranges and choices are the dataclasses' own)."""
    if not config.env_id:
        raise ConfigError("env_id", "is required (give --env ID or env_id in the config file)")
    _check_known_functions_fit_the_env(config)


def _check_known_functions_fit_the_env(config: TrainConfig) -> None:
    """A known reward or termination computes the task with its own parameters: env_kwargs that
    change one of them would train the model-based agent on the wrong function, silently."""
    from mdemorl_core.envs.task_rewards import KNOWN_REWARD_FIELDS
    from mdemorl_core.envs.task_terminations import KNOWN_TERMINATION_FIELDS

    for key, table in (
        ("task_reward", KNOWN_REWARD_FIELDS),
        ("task_termination", KNOWN_TERMINATION_FIELDS),
    ):
        task = getattr(config.agent, key)
        if task not in table:
            continue
        params, fields = table[task]
        changed = sorted(
            name
            for name in fields & set(config.env_kwargs)
            if config.env_kwargs[name] != getattr(params, name)
        )
        if changed:
            raise ConfigError(
                f"agent.{key}",
                f"{task!r} assumes the task's own {', '.join(changed)}, which env_kwargs "
                f"changes; set agent.{key} to '' (learned) or drop the env_kwargs",
            )
