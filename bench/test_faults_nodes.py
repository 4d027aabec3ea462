"""Quick CI subset of the fault-injection suite: node parameter fuzzing.

Runs ``run(quick=True)`` of bench/_faults_nodes.py (what ``bench/faults.py --only nodes`` runs,
with one real start per node instead of four) and asserts the claims: every parameter of every
node is fuzzed, no bad value is taken, every rejection names its parameter, and a node started
with a bad value exits 2 naming it, without a traceback.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from typing import Any

import _faults_nodes
import pytest


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return _faults_nodes.run(quick=True)


def test_every_parameter_of_every_node_is_fuzzed() -> None:
    fuzzed = {(node, key) for node, key, _, _ in _faults_nodes.injections()}
    for node, module_name in _faults_nodes.NODE_MODULES.items():
        defaults = importlib.import_module(module_name).DEFAULTS
        assert {(node, key) for key in defaults} <= fuzzed


def test_no_bad_parameter_is_taken_and_every_rejection_names_it(result: dict[str, Any]) -> None:
    json.dumps(result)  # the aggregator writes it as JSON
    assert result["misbehaving"] == []
    outcomes: Counter[str] = Counter()
    for family in result["families"].values():
        assert family["injections"] == sum(family["outcomes"].values())
        outcomes.update(family["outcomes"])
    assert set(outcomes) <= {"rejected_naming_key", "accepted", "exit2_naming_key"}
    for family in _faults_nodes.MUST_REJECT:
        assert result["families"][family]["outcomes"].get("accepted", 0) == 0, family
    assert outcomes["rejected_naming_key"] > 1000


def test_a_node_started_with_a_bad_parameter_exits_2_naming_it(result: dict[str, Any]) -> None:
    starts = result["real_starts"]
    assert {start["node"] for start in starts} == set(_faults_nodes.NODE_MODULES)
    for start in starts:
        assert start["outcome"] == "exit2_naming_key", start
        assert f"'{start['key']}'" in start["message"], start
