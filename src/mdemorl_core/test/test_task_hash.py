"""The task hash: the leg's changes with the task, not the physics; the trainer's dispatch picks
each robot's hash and checks no other task."""

import dataclasses

from mdemorl_core.envs import stochlite_gait
from mdemorl_core.envs.leg2r_task import Leg2RParams
from mdemorl_core.envs.stochlite_gait import StochLiteParams
from mdemorl_core.envs.task_hash import leg2r_task_hash, task_hash_of


def test_leg2r_task_hash_changes_with_the_task_not_the_physics() -> None:
    base = leg2r_task_hash(Leg2RParams())
    assert leg2r_task_hash(Leg2RParams(thigh_mass=0.5)) == base
    assert leg2r_task_hash(Leg2RParams(decimation=10)) != base
    assert leg2r_task_hash(Leg2RParams(ref_period=2.0)) != base


def test_task_hash_of_uses_each_robots_hash() -> None:
    assert task_hash_of(Leg2RParams(decimation=10)) == leg2r_task_hash(Leg2RParams(decimation=10))
    assert task_hash_of(StochLiteParams()) == stochlite_gait.task_hash(StochLiteParams())
    assert task_hash_of(Leg2RParams()) != task_hash_of(StochLiteParams())
    assert task_hash_of(None) == ""
    assert task_hash_of(object()) == ""


def test_stochlite_task_hash_changes_with_the_reward() -> None:
    v1 = stochlite_gait.STOCHLITE_V1
    base = stochlite_gait.task_hash(v1)
    for change in ({"alive_bonus": 0.0}, {"progress_from": "world"}, {"progress_weight": 5.0}):
        assert stochlite_gait.task_hash(dataclasses.replace(v1, **change)) != base, change
