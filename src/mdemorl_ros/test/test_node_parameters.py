"""node_parameters: the rules reject what they must and name the parameter (every node's own
rules are checked in stochlite_bringup/test/test_node_rules.py, the package that has them all)."""

import pytest

from mdemorl_core.limits import Limits
from mdemorl_ros.node_parameters import (
    REQUIRED,
    ParameterError,
    check_parameter,
    check_parameters,
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
