"""node_parameters: the rules reject what they must and name the parameter; every node's rules
accept its own defaults and the shipped YAML files, and give every numeric parameter a range."""

import importlib
from pathlib import Path

import pytest
import yaml

from leg2r_driver.node_parameters import (
    NODE_MODULES,
    REQUIRED,
    ParameterError,
    check_parameter,
    check_parameters,
    unruled_numbers,
)
from mdemorl_core.limits import Limits

SRC = Path(__file__).resolve().parents[2]
YAML_FILES = sorted(
    [*(SRC / "leg2r_driver" / "config").glob("*.yaml")]
    + [*(SRC / "stochlite_bringup" / "config").glob("*.yaml")]
)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (float("nan"), Limits(0.0, 1.0)),
        (float("inf"), Limits(0.0, 1.0)),
        (1e300, Limits(0.0, 1.0)),
        (-1, Limits(0, 10)),
        ([0.5, float("nan")], Limits(0.0, 1.0)),
        (True, Limits(0, 10)),
        ("", REQUIRED),
        ([""], REQUIRED),
        ("fast", ("slow", "medium")),
        (None, None),
    ],
)
def test_bad_values_are_rejected_naming_the_parameter(value: object, rule: object) -> None:
    with pytest.raises(ParameterError, match="parameter 'rate'") as caught:
        check_parameter("rate", value, rule)  # type: ignore[arg-type]
    assert caught.value.name == "rate"


@pytest.mark.parametrize(
    ("value", "rule"),
    [(0.5, Limits(0.0, 1.0)), ([1, 2], Limits(0, 10)), ("x", REQUIRED), ("slow", ("slow",))],
)
def test_good_values_pass(value: object, rule: object) -> None:
    check_parameter("rate", value, rule)  # type: ignore[arg-type]


def test_a_rule_for_an_undeclared_parameter_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match="typo"):
        check_parameters({"rate": 1.0}, {"typo": Limits(0.0, 1.0)})


@pytest.mark.parametrize("node", sorted(NODE_MODULES))
def test_each_node_rules_its_numbers_and_accepts_its_defaults(node: str) -> None:
    module = importlib.import_module(NODE_MODULES[node])
    assert unruled_numbers(module.DEFAULTS, module.PARAMETER_RULES) == []
    defaults = dict(module.DEFAULTS)
    for key, rule in module.PARAMETER_RULES.items():
        if rule == REQUIRED and defaults[key] == "":
            defaults[key] = "/some/run"  # a required run directory has no default
    check_parameters(defaults, module.PARAMETER_RULES)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_shipped_yaml_files_obey_the_rules(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    checked = 0
    for node, section in document.items():
        if node not in NODE_MODULES or not isinstance(section, dict):
            continue
        module = importlib.import_module(NODE_MODULES[node])
        values = {**module.DEFAULTS, **section.get("ros__parameters", {})}
        values = {key: values[key] for key in module.DEFAULTS}
        rules = module.PARAMETER_RULES
        for key, rule in rules.items():
            if rule == REQUIRED and values[key] == "":
                values[key] = "/some/run"  # given by the launch file
        check_parameters(values, rules)
        checked += 1
    assert checked or path.name.startswith("trainer"), f"{path.name} configures no known node"
