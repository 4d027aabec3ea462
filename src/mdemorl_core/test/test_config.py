"""Typed config: YAML + `--set` overrides, type checks naming the key, exit code 2, round trip."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from mdemorl_core.agents.sac import SACConfig
from mdemorl_core.cli import build_parser, main, resolve_train_config
from mdemorl_core.config import (
    ConfigError,
    TrainConfig,
    build_train_config,
    bundled_config_names,
    dump_config,
    load_config_text,
    merge_config,
    read_yaml_mapping,
    resolve_config_path,
)
from mdemorl_core.models.ensemble import EnsembleConfig


def _train_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    out = tmp_path / "run"
    code = main(["train", "--env", "Pendulum-v1", "--out", str(out), *extra])
    assert not out.exists(), "a rejected config must not create the run directory"
    return code, capsys.readouterr().err


def test_unknown_nested_key_via_set_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _train_exit(tmp_path, capsys, "--set", "agent.sac.no_such_field=1")
    assert code == 2
    assert "agent.sac.no_such_field" in err
    assert "unknown key" in err


def test_wrong_type_via_set_exits_2_naming_the_nested_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _train_exit(tmp_path, capsys, "--set", "agent.planner.num_samples=1.5")
    assert code == 2
    assert "agent.planner.num_samples" in err
    assert "expected int" in err


def test_unknown_and_wrong_typed_keys_in_yaml_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("epochs: 3\nagent:\n  model:\n    ensemble_sise: 5\n")
    code, err = _train_exit(tmp_path, capsys, "--config", str(unknown))
    assert code == 2 and "agent.model.ensemble_sise" in err

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("steps_per_epoch: many\n")
    code, err = _train_exit(tmp_path, capsys, "--config", str(wrong))
    assert code == 2 and "steps_per_epoch" in err


def test_dataclass_own_checks_and_ranges_are_config_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # num_elites > ensemble_size is rejected by the model config's own __post_init__.
    code, err = _train_exit(
        tmp_path,
        capsys,
        "--set",
        "agent.model.ensemble_size=3",
        "--set",
        "agent.model.num_elites=5",
    )
    assert code == 2 and "agent.model" in err
    code, err = _train_exit(tmp_path, capsys, "--set", "steps_per_epoch=0")
    assert code == 2 and "steps_per_epoch" in err
    code, err = _train_exit(tmp_path, capsys, "--set", "no_equals_sign")
    assert code == 2 and "no_equals_sign" in err


def test_missing_env_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        build_train_config({})
    assert caught.value.key == "env_id"


def test_precedence_file_then_set_then_flags(tmp_path: Path) -> None:
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        "env_id: Pendulum-v1\nepochs: 4\nseed: 9\nagent:\n  sac:\n    batch_size: 64\n"
    )
    args = build_parser().parse_args(
        [
            "train",
            "--out",
            str(tmp_path / "r"),
            "--config",
            str(config_file),
            "--set",
            "epochs=6",
            "--set",
            "agent.sac.actor_lr=1e-3",
            "--epochs",
            "8",
            "--algo",
            "sac",
        ]
    )
    config = resolve_train_config(args)
    assert config.env_id == "Pendulum-v1"
    assert config.seed == 9
    assert config.epochs == 8  # the dedicated flag wins over --set and the file
    assert config.agent.sac.batch_size == 64
    assert config.agent.sac.actor_lr == pytest.approx(1e-3)  # "1e-3" is a str to PyYAML
    assert config.algo == "sac" and config.agent.algo == "sac"


def test_agent_algo_follows_algo_and_a_conflict_is_an_error() -> None:
    assert build_train_config({"env_id": "X-v0", "algo": "mbpo"}).agent.algo == "mbpo"
    with pytest.raises(ConfigError) as caught:
        build_train_config({"env_id": "X-v0", "algo": "mbpo", "agent": {"algo": "sac"}})
    assert caught.value.key == "agent.algo"


def test_yaml_round_trip_of_a_non_default_config() -> None:
    config = build_train_config(
        {
            "env_id": "Pendulum-v1",
            "algo": "mopac",
            "epochs": 7,
            "seed": 123,
            "max_episode_steps": 150,
            "env_kwargs": {"g": 9.5, "names": ["a", "b"]},
            "torch_threads": 1,
            "agent": {
                "real_ratio": 0.25,
                "sac": {"hidden_size": 32, "target_entropy": -0.5},
                "model": {"ensemble_size": 4, "num_elites": 2},
                "planner": {"noise_std": 0.2, "open_loop": True},
                "schedule": {"h_end": 9},
            },
        }
    )
    text = dump_config(config)
    assert yaml.safe_load(text)["agent"]["model"]["ensemble_size"] == 4
    restored = load_config_text(text)
    assert restored == config
    assert dump_config(restored) == text


@dataclass
class _Inner:
    gains: tuple[float, float] = (1.0, 2.0)
    sizes: tuple[int, ...] = (8, 8)
    mode: Literal["a", "b"] = "a"


@dataclass
class _Outer:
    flag: bool = False
    count: int = 1
    rate: float = 0.5
    names: list[str] = field(default_factory=list)
    table: dict[str, float] = field(default_factory=dict)
    limit: int | None = None
    inner: _Inner = field(default_factory=_Inner)
    maybe_inner: _Inner | None = None


def test_generic_merge_walks_type_hints() -> None:
    merged = merge_config(
        _Outer(),
        {
            "flag": True,
            "rate": 2,
            "names": ["x"],
            "table": {"k": 1},
            "limit": 5,
            "inner": {"gains": [3, 4.5], "sizes": [1, 2, 3], "mode": "b"},
            "maybe_inner": {"sizes": []},
        },
    )
    assert merged.rate == 2.0 and isinstance(merged.rate, float)
    assert merged.table == {"k": 1.0}
    assert merged.inner == _Inner(gains=(3.0, 4.5), sizes=(1, 2, 3), mode="b")
    assert merged.maybe_inner == _Inner(sizes=())
    assert merge_config(merged, {"limit": None}).limit is None
    assert dataclasses.asdict(merge_config(_Outer(), {})) == dataclasses.asdict(_Outer())


@pytest.mark.parametrize(
    ("updates", "key"),
    [
        ({"count": True}, "count"),  # a bool is not an int here
        ({"flag": 1}, "flag"),
        ({"rate": "fast"}, "rate"),
        ({"names": "x"}, "names"),
        ({"names": ["x", 2]}, "names[1]"),
        ({"table": {"k": "v"}}, "table.k"),
        ({"inner": {"gains": [1.0]}}, "inner.gains"),
        ({"inner": {"mode": "c"}}, "inner.mode"),
        ({"inner": 3}, "inner"),
        ({"maybe_inner": {"nope": 1}}, "maybe_inner.nope"),
        ({"limit": "5"}, "limit"),
    ],
)
def test_generic_merge_rejects_wrong_types_naming_the_key(updates: dict, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        merge_config(_Outer(), updates)
    assert caught.value.key == key
    assert key in str(caught.value)


def test_defaults_come_from_the_dataclasses() -> None:
    config = build_train_config({"env_id": "Pendulum-v1"})
    default = TrainConfig(env_id="Pendulum-v1")
    assert config == default
    assert config.steps_per_epoch == 1000


def test_bundled_configs_are_valid_and_found_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = bundled_config_names()
    assert {"pendulum", "smoke"} <= set(names)
    for name in names:
        document = read_yaml_mapping(resolve_config_path(name))
        document.setdefault("env_id", "Pendulum-v1")
        build_train_config(document)
    code, err = _train_exit(tmp_path, capsys, "--config", "no_such_preset")
    assert code == 2 and "no_such_preset" in err and "pendulum" in err


def _numeric_fields(cls: type) -> list[tuple[type, str]]:
    """(owning dataclass, field name) of every int / float field under ``cls``, recursively."""
    found = []
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        hint = hints[item.name]
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            found += _numeric_fields(hint)
        elif {int, float} & ({hint} | set(typing.get_args(hint))):
            found.append((cls, item.name))
    return found


def test_every_numeric_key_declares_finite_limits_its_default_meets() -> None:
    fields = _numeric_fields(TrainConfig)
    assert len(fields) > 50  # the walk reaches the nested sections
    for owner, name in fields:
        limits = owner.LIMITS[name]  # type: ignore[attr-defined]
        assert math.isfinite(limits.low) and math.isfinite(limits.high), name
        default = getattr(owner(), name)
        assert default is None or limits.contains(default), (owner.__name__, name, default)


@pytest.mark.parametrize(
    ("override", "key", "rule"),
    [
        ("agent.sac.batch_size=0", "agent.sac.batch_size", "[1, 1048576]"),
        ("agent.sac.actor_lr=0", "agent.sac.actor_lr", "(0, 1]"),
        ("agent.model.learning_rate=nan", "agent.model.learning_rate", "got nan"),
        ("agent.planner.temperature=.inf", "agent.planner.temperature", "got inf"),
        ("agent.schedule.b_end=1000000000000", "agent.schedule.b_end", "[1, 10000000]"),
        ("agent.utd_ratio=-0.5", "agent.utd_ratio", "[0, 1000]"),
        ("steps_per_epoch=1e300", "steps_per_epoch", "expected int"),
        ("eval_planner_episodes=-1", "eval_planner_episodes", "[0, 100000]"),
        ("agent.task_reward=Nope-v0", "agent.task_reward", "must be one of"),
        ("agent.sac.log_std_max=-20", "agent.sac.log_std_max", "log_std_min"),
    ],
)
def test_out_of_range_values_name_the_full_dotted_key(override: str, key: str, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_train_config({"env_id": "Pendulum-v1"}, [override])
    assert caught.value.key == key
    assert rule in str(caught.value)


def test_range_bounds_are_inclusive_where_declared() -> None:
    config = build_train_config(
        {"env_id": "Pendulum-v1"},
        ["agent.sac.batch_size=1", "agent.real_ratio=1", "agent.planner.chunk_size=0", "seed=0"],
    )
    assert config.agent.sac.batch_size == 1 and config.agent.real_ratio == 1.0
    with pytest.raises(ConfigError, match="agent.model.holdout_ratio"):
        build_train_config({"env_id": "Pendulum-v1"}, ["agent.model.holdout_ratio=1"])


def test_cross_key_rule_of_agent_and_algo_is_a_config_error() -> None:
    # agent.act is merged while agent.algo is still the default; algo then makes it impossible.
    with pytest.raises(ConfigError) as caught:
        build_train_config({"env_id": "Pendulum-v1", "algo": "sac", "agent": {"act": "planner"}})
    assert caught.value.key == "agent.act" and "needs a model" in str(caught.value)


def test_dataclass_used_directly_raises_a_value_error_naming_the_field() -> None:
    with pytest.raises(ValueError, match="batch_size must be in"):
        SACConfig(batch_size=0)
    with pytest.raises(ValueError, match="num_elites"):
        EnsembleConfig(ensemble_size=2, num_elites=3)


def test_bad_set_value_is_an_error_even_when_a_flag_replaces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _train_exit(tmp_path, capsys, "--epochs", "1", "--set", "epochs=")
    assert code == 2 and "config key 'epochs'" in err and "expected int" in err


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        (["--set", "env_kwargs.no_such_kwarg=1"], "env_kwargs"),
        (["--set", "agent.sac.batch_size=0"], "agent.sac.batch_size"),
        (["--device", "cuda:x"], "device"),
        (["--set", "algo=ppo"], "algo"),
    ],
)
def test_train_rejects_before_creating_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], key: str
) -> None:
    code, err = _train_exit(tmp_path, capsys, *extra)
    assert code == 2 and f"config key '{key}'" in err and "Traceback" not in err


def test_a_known_reward_is_refused_with_env_kwargs_that_change_its_task() -> None:
    document = {
        "env_id": "StochLite-v1",
        "env_kwargs": {"progress_from": "world"},
        "agent": {"task_reward": "StochLite-v1", "task_termination": "StochLite-v1"},
    }
    with pytest.raises(ConfigError, match="agent.task_reward.*progress_from"):
        build_train_config(document)
    # Learned reward, known termination (the walking study's pair): accepted.
    build_train_config({**document, "agent": {"task_termination": "StochLite-v1"}})
    # Kwargs equal to the task's own, or ones the functions do not read: accepted.
    build_train_config({**document, "env_kwargs": {"progress_from": "odometry", "push_force": 5.0}})
    with pytest.raises(ConfigError, match="agent.task_termination.*max_tilt"):
        build_train_config(
            {
                "env_id": "StochLite-v1",
                "env_kwargs": {"max_tilt": 0.3},
                "agent": {"task_termination": "StochLite-v1"},
            }
        )
