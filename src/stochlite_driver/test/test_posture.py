"""Posture: passive -> stand up -> walk -> sit down, refusals and the soft attitude guard."""

import numpy as np
import pytest

from mdemorl_core.envs.stochlite_gait import STOCHLITE_V1, StochLiteParams, leg_forward_kinematics
from stochlite_driver.gait_core import stand_pose
from stochlite_driver.posture import SIT_HEIGHT, Posture, parse_script, sit_pose

PARAMS = StochLiteParams()
STAND, SIT = stand_pose(PARAMS), sit_pose(PARAMS)


@pytest.mark.parametrize("params", [PARAMS, STOCHLITE_V1], ids=["v0", "v1"])
def test_sit_pose_folds_the_legs_within_the_limits(params: StochLiteParams) -> None:
    sit = sit_pose(params).reshape(4, 3)
    feet = leg_forward_kinematics(sit, params)
    np.testing.assert_allclose(feet[:, 2], -SIT_HEIGHT, atol=1e-9)  # reached, not clipped
    assert np.all(sit >= params.joint_lower) and np.all(sit <= params.joint_upper)


def test_sequence_passive_stand_walk_sit() -> None:
    posture = Posture(STAND, SIT, duration=2.0, initial="passive")
    lying = SIT.copy()
    gait = STAND + 0.01
    assert posture.targets(gait, lying, 0.0) is None
    assert "stand first" in posture.command("walk", 0.0)
    assert posture.command("stand", 1.0) == ""
    np.testing.assert_allclose(posture.targets(gait, lying, 1.0), lying)
    np.testing.assert_allclose(posture.targets(gait, STAND, 2.0), (lying + STAND) / 2)
    np.testing.assert_allclose(posture.targets(gait, STAND, 3.0), STAND)
    assert posture.state == "standing"
    assert posture.command("walk", 3.5) == "" and posture.walking
    np.testing.assert_allclose(posture.targets(gait, STAND, 3.6), gait)
    posture.command("sit", 4.0)
    posture.targets(gait, STAND, 4.0)
    np.testing.assert_allclose(posture.targets(gait, STAND, 6.0), SIT)
    assert posture.state == "passive"
    assert "unknown" in posture.command("dance", 7.0)


def test_soft_attitude_guard_sits_down() -> None:
    posture = Posture(STAND, SIT, duration=1.0, initial="walk", sit_tilt=0.5)
    assert not posture.attitude(0.4, -0.4, 0.0)
    assert posture.attitude(0.1, -0.55, 0.0)
    assert posture.state == "sitting_down" and posture.guard_trips == 1
    off = Posture(STAND, SIT, duration=1.0, initial="walk", sit_tilt=0.0)
    assert not off.attitude(1.0, 1.0, 0.0) and off.walking  # training: falls end episodes
    with pytest.raises(ValueError, match="initial"):
        Posture(STAND, SIT, duration=1.0, initial="run")


def test_script_parsing() -> None:
    assert parse_script("walk@3 stand@0") == [(0.0, "stand"), (3.0, "walk")]
    with pytest.raises(ValueError, match="COMMAND@SECONDS"):
        parse_script("stand@soon")
    with pytest.raises(ValueError, match="command one of"):
        parse_script("jump@1")
