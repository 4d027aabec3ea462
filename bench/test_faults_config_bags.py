"""Quick CI subset of the fault-injection suite: config fuzzing and bag corruption.

Runs ``run(quick=True)`` of bench/_faults_config.py and bench/_faults_bags.py (the same code
``bench/faults.py`` runs in full) and asserts the reliability claims: no traceback, no bad value
accepted, every rejection names its key, every damaged bag either retrains or is refused with a
message, and what was recovered is reported.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import _faults_bags
import _faults_config
import pytest


@pytest.fixture(scope="module")
def config_result() -> dict[str, Any]:
    return _faults_config.run(quick=True)


@pytest.fixture(scope="module")
def bags_result() -> dict[str, Any]:
    return _faults_bags.run(quick=True)


def _outcomes(result: dict[str, Any]) -> Counter[str]:
    total: Counter[str] = Counter()
    for family in result["families"].values():
        total.update(family["outcomes"])
        assert family["injections"] == sum(family["outcomes"].values())
    return total


def test_config_keys_are_found_by_walking_the_dataclasses() -> None:
    paths = {key.path for key in _faults_config.config_keys()}
    # Top level, nested two deep, optional and mapping-typed keys are all reached.
    assert {"epochs", "agent.sac.batch_size", "agent.schedule.b_end", "env_kwargs"} <= paths
    assert {"agent.model.num_elites", "torch_threads", "agent.sac.grad_clip"} <= paths
    assert not any(path in ("agent", "agent.sac") for path in paths)  # sections are not leaves


def test_config_fuzz_rejects_every_bad_value_naming_its_key(config_result: dict[str, Any]) -> None:
    json.dumps(config_result)  # the aggregator writes it as JSON
    outcomes = _outcomes(config_result)
    assert config_result["misbehaving"] == []
    assert config_result["keys_without_limits"] == []
    assert outcomes["traceback"] == 0 and outcomes["exit2_not_naming_key"] == 0
    assert outcomes["exit_other"] == 0 and outcomes["accepted"] == 0
    families = config_result["families"]
    for family in ("wrong_type", "nan", "inf", "huge", "below_low", "train_flags"):
        assert set(families[family]["outcomes"]) == {"exit2_naming_key"}, family
    assert families["huge"]["injections"] == 2 * sum(
        1 for key in _faults_config.config_keys() if _faults_config._limits(key) is not None
    )
    assert config_result["injections"] == sum(f["injections"] for f in families.values())
    (check,) = config_result["subprocess_checks"]
    assert check["exit_code"] == 2 and not check["traceback"]
    assert "agent.sac.batch_size" in check["stderr_tail"]


def test_damaged_bags_retrain_or_are_refused_and_say_what_was_recovered(
    bags_result: dict[str, Any],
) -> None:
    json.dumps(bags_result)
    outcomes = _outcomes(bags_result)
    assert bags_result["misbehaving"] == []
    assert outcomes["traceback"] == 0 and outcomes["exit_other"] == 0
    cuts = [case for case in bags_result["cases"] if case["family"] == "cut"]
    assert len(cuts) == 10 and all(case["outcome"] == "recovered" for case in cuts)
    recovered = [case["transitions_recovered"] for case in cuts]
    # A later cut never keeps fewer transitions; a cut after the data section keeps them all.
    assert recovered == sorted(recovered) and recovered[0] > 0
    assert recovered[-1] == bags_result["transitions_written"]
    assert all("truncated" in case["report"] for case in cuts)
    # Exactly the transitions whose records lie wholly before the cut (located independently).
    assert all(c["transitions_recovered"] == c["transitions_intact_before_cut"] for c in cuts)
    for case in bags_result["cases"]:
        if case["outcome"] == "rejected_exit2":
            assert case["message"].startswith("mdemorl: error:")
