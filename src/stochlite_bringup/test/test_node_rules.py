"""Every node's parameter rules (mdemorl_ros.node_parameters.NODE_MODULES, nodes of every robot
package and the trainer's) accept its own defaults and the shipped YAML files, and give every
numeric parameter a range."""

import importlib
from pathlib import Path

import pytest
import yaml

from mdemorl_ros.node_parameters import NODE_MODULES, REQUIRED, check_parameters, unruled_numbers

SRC = Path(__file__).resolve().parents[2]
YAML_FILES = sorted(
    [*(SRC / "leg2r_driver" / "config").glob("*.yaml")]
    + [*(SRC / "stochlite_bringup" / "config").glob("*.yaml")]
)


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
