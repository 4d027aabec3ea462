"""StochLiteSimulation: HOLD keeps the robot standing, NORMAL tracks targets, FREE collapses it."""

from collections.abc import Iterator

import numpy as np
import pytest

from stochlite_driver.b3m import RunMode
from stochlite_driver.sim_physics import StochLiteSimulation


@pytest.fixture(params=["StochLite-v0", "StochLite-v1"])
def sim(request: pytest.FixtureRequest) -> Iterator[StochLiteSimulation]:
    simulation = StochLiteSimulation(task=request.param)
    yield simulation
    simulation.close()


def test_hold_stands_normal_tracks_free_collapses(sim: StochLiteSimulation) -> None:
    start_height = sim.torso()[0][2]
    for _ in range(240):
        sim.step(RunMode.HOLD, None)
    assert sim.torso()[0][2] == pytest.approx(start_height, abs=0.02)
    _, _, specific_force = sim.imu()
    np.testing.assert_allclose(specific_force, [0.0, 0.0, 9.81], atol=0.3)  # at rest

    q0 = sim.joint_state()[0]
    target = q0.copy()
    target[0::3] += 0.1  # abduct every leg a little
    for _ in range(120):
        sim.step(RunMode.NORMAL, target)
    np.testing.assert_allclose(sim.joint_state()[0][0::3], target[0::3], atol=0.03)

    for _ in range(240):
        sim.step(RunMode.FREE, None)
    assert sim.torso()[0][2] < start_height - 0.05  # limp legs: the torso sinks
