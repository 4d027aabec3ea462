"""Safety gate: validation, clamp, soft limits, watchdog and e-stop latch with a fake clock."""

import numpy as np
import pytest

from leg2r_driver.safety import Mode, Rejection, SafetyConfig, SafetyGate

NAMES = ("hip", "knee")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_gate(**overrides: object) -> tuple[SafetyGate, FakeClock]:
    settings: dict[str, object] = dict(
        joint_names=NAMES,
        torque_limits=(2.0, 3.0),
        position_lower=(-1.0, -2.0),
        position_upper=(1.0, 0.5),
        soft_limit_margin=0.1,
        soft_limit_stiffness=10.0,
        soft_limit_damping=1.0,
        command_timeout=0.010,
        max_command_age=0.010,
    )
    settings.update(overrides)
    clock = FakeClock()
    return SafetyGate(SafetyConfig(**settings), clock), clock  # type: ignore[arg-type]


Q0 = np.zeros(2)


def test_waits_with_zero_torque_until_first_command() -> None:
    gate, _ = make_gate()
    out = gate.output(Q0, Q0)
    assert out.mode is Mode.WAITING
    assert np.all(out.torque == 0) and np.all(out.damping == 0)


def test_accepts_reorders_and_applies_by_name() -> None:
    gate, _ = make_gate()
    assert gate.submit(["knee", "hip"], [0.5, -1.5], stamp_age=0.001) is None
    out = gate.output(Q0, Q0)
    assert out.mode is Mode.ACTIVE
    np.testing.assert_allclose(out.torque, [-1.5, 0.5])
    assert gate.counters["accepted"] == 1


@pytest.mark.parametrize(
    ("names", "efforts", "age", "reason"),
    [
        (["hip", "knee"], [float("nan"), 0.0], 0.0, Rejection.NON_FINITE),
        (["hip", "knee"], [0.0, float("inf")], 0.0, Rejection.NON_FINITE),
        (["hip"], [0.1], 0.0, Rejection.WRONG_LENGTH),
        (["hip", "knee"], [0.1, 0.2, 0.3], 0.0, Rejection.WRONG_LENGTH),
        (["hip", "ankle"], [0.1, 0.2], 0.0, Rejection.UNKNOWN_JOINT),
        (["hip", "hip"], [0.1, 0.2], 0.0, Rejection.DUPLICATE_JOINT),
        (["hip", "knee"], [0.1, 0.2], 0.05, Rejection.STALE),
        (["hip", "knee"], [0.1, 0.2], float("nan"), Rejection.STALE),
        (["hip", "knee"], [0.1, 0.2], -0.5, Rejection.FUTURE),
    ],
)
def test_invalid_commands_are_rejected_counted_and_never_applied(
    names: list[str], efforts: list[float], age: float, reason: Rejection
) -> None:
    gate, _ = make_gate()
    assert gate.submit(["hip", "knee"], [1.0, 1.0], stamp_age=0.0) is None
    assert gate.submit(names, efforts, stamp_age=age) is reason
    assert gate.counters[reason.value] == 1
    np.testing.assert_allclose(gate.output(Q0, Q0).torque, [1.0, 1.0])


MS = 1_000_000  # ns


@pytest.mark.parametrize(
    ("stamp_ns", "sequence", "age"),
    [
        (999 * MS, 8, 0.003),  # delivered after a newer command (sequence says nothing)
        (1000 * MS, 7, 0.002),  # the same command delivered twice
    ],
)
def test_out_of_order_commands_are_rejected_counted_and_never_applied(
    stamp_ns: int, sequence: int, age: float
) -> None:
    gate, _ = make_gate()
    assert gate.submit(NAMES, [1.0, 1.0], stamp_age=0.002, order=(1000 * MS, 7)) is None
    reason = gate.submit(NAMES, [-2.0, -3.0], stamp_age=age, order=(stamp_ns, sequence))
    assert reason is Rejection.OUT_OF_ORDER
    assert gate.counters["rejected_out_of_order"] == 1 and gate.counters["accepted"] == 1
    np.testing.assert_allclose(gate.output(Q0, Q0).torque, [1.0, 1.0])


def test_rejected_out_of_order_commands_do_not_move_the_order() -> None:
    gate, _ = make_gate()
    gate.submit(NAMES, [1.0, 1.0], stamp_age=0.0, order=(1000 * MS, 5))
    gate.submit(NAMES, [2.0, 2.0], stamp_age=0.002, order=(998 * MS, 6))  # rejected
    assert gate.submit(NAMES, [0.5, 0.5], stamp_age=0.0, order=(999 * MS, 7)) is (
        Rejection.OUT_OF_ORDER
    )  # still older than the last accepted one
    assert gate.counters["rejected_out_of_order"] == 2


@pytest.mark.parametrize(
    ("stamp_ns", "sequence"),
    [
        (1001 * MS, 0),  # a restarted controller: sequence back at 0, newer stamp
        (1000 * MS, 8),  # a distinct command with the same stamp (coarse sender clock)
    ],
)
def test_newer_or_distinct_commands_are_accepted_whatever_their_sequence(
    stamp_ns: int, sequence: int
) -> None:
    gate, _ = make_gate()
    gate.submit(NAMES, [1.0, 1.0], stamp_age=0.0, order=(1000 * MS, 7))
    assert gate.submit(NAMES, [0.5, 0.5], stamp_age=0.0, order=(stamp_ns, sequence)) is None
    np.testing.assert_allclose(gate.output(Q0, Q0).torque, [0.5, 0.5])


def test_a_clock_stepped_back_does_not_block_commands_forever() -> None:
    gate, _ = make_gate()
    gate.submit(NAMES, [1.0, 1.0], stamp_age=0.0, order=(5000 * MS, 7))
    # The receiver's clock now reads 1 s earlier: the fresh command is "older" than the last one,
    # but the last one lies 1 s in the future of the clock, beyond max_future_skew.
    assert gate.submit(NAMES, [0.5, 0.5], stamp_age=0.001, order=(3999 * MS, 8)) is None
    np.testing.assert_allclose(gate.output(Q0, Q0).torque, [0.5, 0.5])


def test_oversized_efforts_are_clamped_and_counted() -> None:
    gate, _ = make_gate()
    assert gate.submit(NAMES, [50.0, -1e9], stamp_age=0.0) is None
    np.testing.assert_allclose(gate.output(Q0, Q0).torque, [2.0, -3.0])
    assert gate.counters["clamped"] == 1


def test_watchdog_zeroes_after_timeout_and_recovers() -> None:
    gate, clock = make_gate()
    gate.submit(NAMES, [1.0, 1.0], stamp_age=0.0)
    clock.now += 0.009
    assert gate.output(Q0, Q0).mode is Mode.ACTIVE
    clock.now += 0.002
    out = gate.output(Q0, Q0)
    assert out.mode is Mode.WATCHDOG
    assert np.all(out.torque == 0) and np.all(out.damping == 0)
    assert gate.counters["watchdog_trips"] == 1
    assert gate.last_trip_delay == pytest.approx(0.011)
    gate.output(Q0, Q0)
    assert gate.counters["watchdog_trips"] == 1  # counted once per trip, not per tick
    gate.submit(NAMES, [0.5, 0.5], stamp_age=0.0)
    np.testing.assert_allclose(gate.output(Q0, Q0).torque, [0.5, 0.5])


def test_watchdog_counts_from_the_stamp_not_from_delivery() -> None:
    gate, clock = make_gate()
    gate.submit(NAMES, [1.0, 1.0], stamp_age=0.006)  # delivered 6 ms after it was stamped
    clock.now += 0.003
    assert gate.output(Q0, Q0).mode is Mode.ACTIVE
    clock.now += 0.002  # 11 ms after the stamp, 5 ms after delivery
    assert gate.output(Q0, Q0).mode is Mode.WATCHDOG
    assert gate.last_trip_delay == pytest.approx(0.011)


def test_a_command_stamped_before_the_trip_cannot_rearm_the_watchdog() -> None:
    gate, clock = make_gate()
    gate.submit(NAMES, [1.0, 1.0], stamp_age=0.0, order=(1000 * MS, 1))
    assert gate.output(Q0, Q0).mode is Mode.ACTIVE
    clock.now += 0.011
    assert gate.output(Q0, Q0).mode is Mode.WATCHDOG
    # The sender's next command, queued while it died and delivered now: stamped 2 ms after the
    # first one (9 ms ago), fresh by max_command_age, but older than the trip.
    late = gate.submit(NAMES, [2.0, 2.0], stamp_age=0.009, order=(1002 * MS, 2))
    assert late is Rejection.BEFORE_TRIP
    assert gate.counters["rejected_before_trip"] == 1
    out = gate.output(Q0, Q0)
    assert out.mode is Mode.WATCHDOG and np.all(out.torque == 0)
    assert gate.counters["watchdog_trips"] == 1
    # A command stamped after the trip (a sender that is alive again) resumes at once.
    assert gate.submit(NAMES, [0.5, 0.5], stamp_age=0.0, order=(1012 * MS, 3)) is None
    np.testing.assert_allclose(gate.output(Q0, Q0).torque, [0.5, 0.5])


def test_rejected_commands_do_not_feed_the_watchdog() -> None:
    gate, clock = make_gate()
    gate.submit(NAMES, [1.0, 1.0], stamp_age=0.0)
    for _ in range(10):
        clock.now += 0.002
        gate.submit(NAMES, [float("nan"), 1.0], stamp_age=0.0)
    assert gate.output(Q0, Q0).mode is Mode.WATCHDOG


def test_damping_watchdog_mode() -> None:
    gate, clock = make_gate(watchdog_mode="damping", watchdog_damping=0.3)
    gate.submit(NAMES, [1.0, 1.0], stamp_age=0.0)
    clock.now += 1.0
    out = gate.output(Q0, np.array([2.0, -1.0]))
    assert out.mode is Mode.WATCHDOG
    np.testing.assert_allclose(out.damping, [0.3, 0.3])
    np.testing.assert_allclose(out.applied_torque(np.array([2.0, -1.0])), [-0.6, 0.3])


def test_estop_latches_through_commands_until_released() -> None:
    gate, clock = make_gate()
    gate.submit(NAMES, [1.0, 1.0], stamp_age=0.0)
    gate.set_estop(True)
    for _ in range(20):
        clock.now += 0.002
        assert gate.submit(NAMES, [1.0, 1.0], stamp_age=0.0) is Rejection.ESTOP
        out = gate.output(Q0, Q0)
        assert out.mode is Mode.ESTOP and np.all(out.torque == 0)
    assert gate.counters["ignored_estop"] == 20
    gate.set_estop(False)
    assert gate.output(Q0, Q0).mode is Mode.WAITING  # nothing from before the stop reapplies
    gate.submit(NAMES, [0.2, 0.2], stamp_age=0.0)
    np.testing.assert_allclose(gate.output(Q0, Q0).torque, [0.2, 0.2])
    assert gate.counters["estop_activations"] == 1


def test_soft_limits_push_back_and_damp_towards_the_limit() -> None:
    gate, _ = make_gate()
    gate.submit(NAMES, [0.0, 0.0], stamp_age=0.0)
    # hip 0.05 into the upper margin moving outward; knee 0.05 into its lower margin moving inward
    q = np.array([0.95, -1.95])
    qd = np.array([0.4, 0.2])
    out = gate.output(q, qd)
    np.testing.assert_allclose(out.torque, [-10.0 * 0.05 - 1.0 * 0.4, 10.0 * 0.05])
    assert np.all(gate.soft_limit_torque(np.zeros(2), np.ones(2)) == 0.0)
    beyond = gate.output(np.array([5.0, 0.0]), Q0)
    assert beyond.torque[0] == -2.0  # clamped to the limit


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("torque_limits", (1.0,), "torque_limits"),
        ("torque_limits", (1.0, -1.0), "torque_limits"),
        ("position_lower", (1.0, -2.0), "lower < upper"),
        ("watchdog_mode", "limp", "watchdog_mode"),
        ("command_timeout", 0.0, "command_timeout"),
    ],
)
def test_bad_config_raises(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_gate(**{field: value})


def test_output_checks_shapes() -> None:
    gate, _ = make_gate()
    with pytest.raises(ValueError, match="shape"):
        gate.output(np.zeros(3), np.zeros(2))
