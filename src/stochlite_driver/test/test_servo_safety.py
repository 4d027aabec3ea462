"""ServoSafety: validation, clamp, rate limit, watchdog HOLD then FREE, limits, attitude, e-stop."""

import math

import numpy as np
import pytest

from leg2r_driver.safety import Rejection
from mdemorl_core.envs.stochlite_gait import StochLiteParams
from stochlite_driver.b3m import RunMode
from stochlite_driver.robot import JOINT_NAMES, joint_limits
from stochlite_driver.servo_safety import ImuRejection, ServoPhase, ServoSafety, ServoSafetyConfig

LOWER, UPPER = joint_limits(StochLiteParams())
MID = (np.asarray(LOWER) + np.asarray(UPPER)) / 2


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(**overrides: float) -> tuple[ServoSafety, Clock]:
    clock = Clock()
    config = ServoSafetyConfig(JOINT_NAMES, LOWER, UPPER, **overrides)  # type: ignore[arg-type]
    return ServoSafety(config, clock), clock


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="tilt_limit"):
        ServoSafetyConfig(JOINT_NAMES, LOWER, UPPER, tilt_limit=0.0)
    with pytest.raises(ValueError, match="position_lower"):
        ServoSafetyConfig(JOINT_NAMES, LOWER[:-1], UPPER)


def test_free_until_the_first_valid_target_then_normal() -> None:
    safety, _ = make()
    assert safety.output(MID).run_mode is RunMode.FREE
    assert safety.submit(JOINT_NAMES, MID.tolist(), 0.0) is None
    out = safety.output(MID)
    assert out.phase is ServoPhase.ACTIVE and out.run_mode is RunMode.NORMAL
    np.testing.assert_allclose(out.targets, MID)


@pytest.mark.parametrize(
    ("names", "values", "age", "reason"),
    [
        (JOINT_NAMES, [float("nan")] + MID.tolist()[1:], 0.0, Rejection.NON_FINITE),
        (JOINT_NAMES[:-1], MID.tolist()[:-1], 0.0, Rejection.WRONG_LENGTH),
        (("nope",) + JOINT_NAMES[1:], MID.tolist(), 0.0, Rejection.UNKNOWN_JOINT),
        ((JOINT_NAMES[1],) + JOINT_NAMES[1:], MID.tolist(), 0.0, Rejection.DUPLICATE_JOINT),
        (JOINT_NAMES, MID.tolist(), 0.5, Rejection.STALE),
        (JOINT_NAMES, MID.tolist(), -0.5, Rejection.FUTURE),
    ],
)
def test_bad_targets_are_rejected_and_counted(names, values, age, reason) -> None:  # type: ignore[no-untyped-def]
    safety, _ = make()
    assert safety.submit(names, values, age) is reason
    assert safety.counters[reason.value] == 1
    assert safety.output(MID).run_mode is RunMode.FREE  # nothing was applied


def test_targets_are_clamped_to_the_joint_limits() -> None:
    safety, clock = make(max_target_rate=1e6)
    safety.output(MID)
    clock.now += 0.005
    wild = np.asarray(UPPER) + 1.0
    safety.submit(JOINT_NAMES, wild.tolist(), 0.0)
    safety.output(MID)
    clock.now += 0.005
    np.testing.assert_allclose(safety.output(MID).targets, UPPER)
    assert safety.counters["clamped"] == 1


def test_rate_limit_ramps_from_the_measured_position() -> None:
    safety, clock = make(max_target_rate=2.0)
    safety.output(MID)
    goal = MID.copy()
    goal[4] += 0.5
    safety.submit(JOINT_NAMES, goal.tolist(), 0.0)
    clock.now += 0.005
    first = safety.output(MID).targets  # enabled this tick: the ramp starts at the joints
    np.testing.assert_allclose(first, MID)
    for _ in range(6):
        clock.now += 0.005
        safety.submit(JOINT_NAMES, goal.tolist(), 0.0)
        targets = safety.output(MID).targets
    assert targets is not None and targets[4] == pytest.approx(MID[4] + 2.0 * 0.030)
    clock.now += 10.0  # a stalled caller: the step is bounded by command_timeout
    safety.submit(JOINT_NAMES, goal.tolist(), 0.0)
    stalled = safety.output(MID).targets
    assert stalled is not None
    assert stalled[4] - targets[4] == pytest.approx(2.0 * safety.config.command_timeout)
    np.testing.assert_allclose(np.delete(targets, 4), np.delete(MID, 4))


def test_watchdog_holds_then_frees_and_recovers() -> None:
    safety, clock = make(command_timeout=0.05, free_timeout=1.0)
    safety.submit(JOINT_NAMES, MID.tolist(), 0.0)
    safety.output(MID)
    clock.now += 0.04
    assert safety.output(MID).run_mode is RunMode.NORMAL
    clock.now += 0.02
    out = safety.output(MID)
    assert out.phase is ServoPhase.WATCHDOG_HOLD and out.run_mode is RunMode.HOLD
    assert safety.counters["watchdog_trips"] == 1
    clock.now += 1.0
    assert safety.output(MID).phase is ServoPhase.WATCHDOG_FREE
    safety.submit(JOINT_NAMES, MID.tolist(), 0.0)
    assert safety.output(MID).run_mode is RunMode.NORMAL


def test_estop_is_latched_frees_and_needs_a_fresh_target_after_release() -> None:
    safety, _ = make()
    safety.submit(JOINT_NAMES, MID.tolist(), 0.0)
    safety.latch_estop("service")
    safety.latch_estop("second reason")
    assert safety.output(MID).run_mode is RunMode.FREE
    assert safety.estop_reason == "service"
    assert safety.submit(JOINT_NAMES, MID.tolist(), 0.0) is Rejection.ESTOP
    safety.release_estop()
    assert safety.output(MID).phase is ServoPhase.WAITING
    safety.submit(JOINT_NAMES, MID.tolist(), 0.0)
    assert safety.output(MID).phase is ServoPhase.ACTIVE


def test_each_latch_is_handed_out_once_for_the_log() -> None:
    safety, _ = make()
    assert safety.take_new_latch() == ""
    safety.latch_estop("temperature")
    safety.latch_estop("second reason")  # already latched: not a new latch
    assert safety.take_new_latch() == "temperature"
    assert safety.take_new_latch() == ""
    safety.release_estop()
    safety.latch_estop("current")
    assert safety.take_new_latch() == "current"


def test_attitude_guard_latches_beyond_the_tilt_limit() -> None:
    safety, _ = make(tilt_limit=1.0)
    safety.submit(JOINT_NAMES, MID.tolist(), 0.0)
    safety.update_attitude(0.9, -0.9)
    assert not safety.estop_active
    safety.update_attitude(0.2, -1.1)
    assert safety.estop_active and safety.estop_reason.startswith("attitude")
    assert safety.output(MID).run_mode is RunMode.FREE


LEVEL = (0.0, 0.0, 0.0, 1.0)  # x, y, z, w
NAN = float("nan")


@pytest.mark.parametrize(
    ("quaternion", "age", "reason"),
    [
        ((NAN, 0.0, 0.0, 1.0), 0.0, ImuRejection.NON_FINITE),
        ((0.0, 0.0, float("inf"), 1.0), 0.0, ImuRejection.NON_FINITE),
        ((0.0, 0.0, 0.0, 0.0), 0.0, ImuRejection.NOT_UNIT),  # an Imu() nobody filled in
        ((0.9, 0.0, 0.0, 0.9), 0.0, ImuRejection.NOT_UNIT),  # roll 90 deg if normalised
        (LEVEL, 0.5, ImuRejection.STALE),
        (LEVEL, NAN, ImuRejection.STALE),
        (LEVEL, -0.5, ImuRejection.FUTURE),
    ],
)
def test_corrupted_imu_samples_are_rejected_counted_and_never_used(
    quaternion: tuple[float, ...], age: float, reason: ImuRejection
) -> None:
    safety, _ = make(tilt_limit=1.0)
    safety.submit(JOINT_NAMES, MID.tolist(), 0.0)
    # Tilted far beyond the limit in every rejected case, were it used (NaN never compares >).
    assert safety.submit_imu(quaternion, age) is reason
    assert safety.counters[reason.value] == 1
    assert not safety.estop_active and safety.output(MID).phase is ServoPhase.ACTIVE


def test_a_tilted_valid_imu_sample_latches() -> None:
    safety, _ = make(tilt_limit=1.0)
    assert safety.submit_imu((math.sin(0.6), 0.0, 0.0, math.cos(0.6)), 0.01) is None
    assert safety.estop_active and safety.estop_reason.startswith("attitude")


def test_non_finite_attitude_is_counted_not_used() -> None:
    safety, _ = make()
    safety.update_attitude(NAN, 0.0)
    assert safety.counters["imu_rejected_non_finite"] == 1
    safety.check_attitude()  # a NaN attitude does not arm the timeout either
    assert not safety.estop_active


def test_no_valid_attitude_for_the_timeout_latches_once_the_imu_was_seen() -> None:
    safety, clock = make(attitude_timeout=0.5)
    clock.now += 10.0
    safety.check_attitude()
    assert not safety.estop_active  # never seen: the IMU may start after the driver
    safety.submit_imu(LEVEL, 0.0)
    for _ in range(10):  # only bad samples for 0.5 s: the guard is blind
        clock.now += 0.05
        safety.submit_imu((NAN, 0.0, 0.0, 1.0), 0.0)
        safety.check_attitude()
    assert not safety.estop_active
    clock.now += 0.01
    safety.check_attitude()
    assert safety.estop_active and "no valid IMU sample" in safety.estop_reason
    safety.release_estop()
    safety.check_attitude()
    assert safety.estop_active  # released while still blind: latched again
    safety.release_estop()
    safety.submit_imu(LEVEL, 0.0)
    safety.check_attitude()
    assert not safety.estop_active


def test_temperature_and_sustained_current_latch() -> None:
    safety, clock = make(temperature_limit=70.0, current_limit=3.0, current_limit_duration=0.5)
    temps = np.full(12, np.nan)
    currents = np.zeros(12)
    temps[3] = 69.0
    safety.check_servos(temps, currents)
    currents[7] = -3.5
    safety.check_servos(temps, currents)
    clock.now += 0.4
    safety.check_servos(temps, currents)
    assert not safety.estop_active  # a short current peak is tolerated
    clock.now += 0.2
    safety.check_servos(temps, currents)
    assert safety.estop_reason.startswith(f"current: {JOINT_NAMES[7]}")
    hot, _ = make(temperature_limit=70.0)
    temps[3] = 71.0
    hot.check_servos(temps, np.zeros(12))
    assert hot.estop_reason.startswith(f"temperature: {JOINT_NAMES[3]}")
