"""ServoDriverCore against the simulated 12-servo B3M bus: targets reached, watchdog, e-stop,
bus failures."""

import time
from collections.abc import Iterator

import numpy as np
import pytest
import serial

from mdemorl_core.envs.stochlite_gait import StochLiteParams
from stochlite_driver.b3m import B3MBus, RunMode
from stochlite_driver.b3m_sim import SimulatedB3MBus
from stochlite_driver.robot import JOINT_NAMES, SERVO_IDS, joint_limits
from stochlite_driver.servo_driver_core import ServoDriverCore
from stochlite_driver.servo_safety import ServoPhase, ServoSafety, ServoSafetyConfig

LOWER, UPPER = joint_limits(StochLiteParams())
DIRECTIONS = [1.0, -1.0, 1.0] * 4
OFFSETS = [0.0, 0.1, -1.0] * 4  # a knee servo at 0 is the joint at -1 rad


@pytest.fixture
def rig() -> Iterator[tuple[ServoDriverCore, SimulatedB3MBus]]:
    sim = SimulatedB3MBus(SERVO_IDS, speed=7.0)
    port = serial.Serial(sim.port_name, 1_500_000, timeout=0.25)
    config = ServoSafetyConfig(
        JOINT_NAMES, LOWER, UPPER, command_timeout=0.1, free_timeout=0.3, max_target_rate=3.0
    )
    safety = ServoSafety(config, time.monotonic)
    core = ServoDriverCore(B3MBus(port), safety, SERVO_IDS, DIRECTIONS, OFFSETS, 2, 3)
    core.start()
    yield core, sim
    port.close()
    sim.close()


def run(core: ServoDriverCore, seconds: float, targets: np.ndarray | None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if targets is not None:
            core.safety.submit(JOINT_NAMES, targets.tolist(), 0.0)
        core.tick()
        time.sleep(0.005)


def test_start_reads_every_servo_limp(rig: tuple[ServoDriverCore, SimulatedB3MBus]) -> None:
    core, sim = rig
    np.testing.assert_allclose(core.position, OFFSETS, atol=1e-4)  # servos at 0
    assert all(sim.state(i)[1] == RunMode.FREE for i in SERVO_IDS)


def test_driver_moves_the_servos_to_the_targets(
    rig: tuple[ServoDriverCore, SimulatedB3MBus],
) -> None:
    core, sim = rig
    goal = np.array([0.1, 0.5, -1.2] * 4)
    run(core, 0.6, goal)
    state = core.tick()
    np.testing.assert_allclose(state.position, goal, atol=2e-3)
    servo_goal = (goal - np.array(OFFSETS)) * np.array(DIRECTIONS)
    for servo_id, expected in zip(SERVO_IDS, servo_goal, strict=True):
        position, mode = sim.state(servo_id)
        assert mode == RunMode.NORMAL and position == pytest.approx(expected, abs=2e-3)
    assert np.all(np.isfinite(core.temperature)) and np.all(np.isfinite(core.current))


def test_watchdog_holds_then_relaxes_the_servos(
    rig: tuple[ServoDriverCore, SimulatedB3MBus],
) -> None:
    core, sim = rig
    run(core, 0.2, np.array(OFFSETS))
    run(core, 0.2, None)
    assert core.last_output is not None and core.last_output.phase is ServoPhase.WATCHDOG_HOLD
    assert all(sim.state(i)[1] == RunMode.HOLD for i in SERVO_IDS)
    run(core, 0.3, None)
    assert core.last_output.phase is ServoPhase.WATCHDOG_FREE
    assert all(sim.state(i)[1] == RunMode.FREE for i in SERVO_IDS)


def test_estop_relaxes_and_a_silent_servo_latches_it(
    rig: tuple[ServoDriverCore, SimulatedB3MBus],
) -> None:
    core, sim = rig
    run(core, 0.1, np.array(OFFSETS))
    sim.inject(32, "silent", count=100)
    for _ in range(3):  # max_missed_replies ticks; each waits out the read timeout once
        core.safety.submit(JOINT_NAMES, OFFSETS, 0.0)
        core.tick()
    core.tick()
    assert core.safety.estop_reason.startswith("bus: servo 32")
    assert all(sim.state(i)[1] == RunMode.FREE for i in SERVO_IDS if i != 32)
    assert core.errors[SERVO_IDS.index(32)]["B3MTimeout"] >= 3


def test_servos_stay_free_until_every_position_is_known(
    rig: tuple[ServoDriverCore, SimulatedB3MBus],
) -> None:
    core, sim = rig
    core.position[5] = np.nan  # as if servo 23 had never answered
    sim.inject(23, "silent", count=1)
    core.safety.submit(JOINT_NAMES, OFFSETS, 0.0)
    core.tick()
    assert core.last_output is not None and core.last_output.run_mode is RunMode.FREE
    assert core.unknown_position_ticks == 1
    assert all(sim.state(i)[1] == RunMode.FREE for i in SERVO_IDS)
    run(core, 0.2, np.array(OFFSETS))  # read again: enabled
    assert core.last_output.run_mode is RunMode.NORMAL


def test_a_vanished_port_latches_the_estop_without_raising(
    monkeypatch: pytest.MonkeyPatch,  # first: undone after the rig's teardown
    rig: tuple[ServoDriverCore, SimulatedB3MBus],
) -> None:
    core, sim = rig
    run(core, 0.1, np.array(OFFSETS))
    assert core.last_output is not None and core.last_output.run_mode is RunMode.NORMAL
    sim.close()  # the adaptor is unplugged mid-run: every write and read fails
    monkeypatch.setattr(sim, "close", lambda: None)  # closed already, not again at teardown
    for _ in range(3):  # max_missed_replies ticks
        core.safety.submit(JOINT_NAMES, OFFSETS, 0.0)
        core.tick()
    assert core.safety.estop_reason.startswith("bus: servo 11")
    assert all(errors["B3MPortError"] >= 3 for errors in core.errors)


def test_a_lost_mode_write_reply_leaves_the_mode_unknown_and_rewritten(
    rig: tuple[ServoDriverCore, SimulatedB3MBus],
) -> None:
    core, sim = rig
    run(core, 0.1, np.array(OFFSETS))
    time.sleep(0.12)  # past command_timeout: the next tick starts with the HOLD writes
    sim.inject(11, "bad_checksum", count=1)  # servo 11 takes the HOLD write; its reply is bad
    core.tick()
    assert core.last_output is not None and core.last_output.phase is ServoPhase.WATCHDOG_HOLD
    assert sim.state(11)[1] == RunMode.HOLD
    run(core, 0.1, np.array(OFFSETS))  # targets resume: every servo must track again
    assert all(sim.state(i)[1] == RunMode.NORMAL for i in SERVO_IDS)
