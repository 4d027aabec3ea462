"""servo_driver_node's attitude guard under corrupted and lost /imu/data (bench/_faults_stochlite.py),
against :class:`_faults_stochlite_rig.DriverRig` while valid targets P0 stream in.

Corrupted samples (NaN/Inf, non-unit quaternions, stale, future and missing stamps; every
finite one tilted beyond ``tilt_limit``, so one that were used would latch the e-stop): for each,
the rig's level IMU feed pauses, a level sample goes out and is taken, the corrupted one goes
out and is counted, a level sample goes out and is taken, and the feed resumes. /imu/data is
best-effort keep-last-1, so two samples in flight could overwrite one, and the guard must not go
blind for ``attitude_timeout`` meanwhile (a kind that left the e-stop latched by a blind guard,
the harness starved, is sent again). Per kind the driver's /diagnostics counter must grow by
exactly ``repeats`` (``counted``), no e-stop may latch (``applied``), and a tilted valid sample
afterwards must still latch it (``alive``).

IMU lost (the guard's documented semantics, stochlite_driver.servo_safety): the IMU silent, or
only NaN samples, for longer than ``attitude_timeout`` latches the e-stop (reported ERROR, servos
FREE); once the IMU is back, the release brings tracking back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from _faults_ros_common import fault_record, record_for, summary
from _faults_stochlite_driver import COUNT_WAIT, ERROR, await_latch
from _faults_stochlite_rig import SAFETY_STATUS, DriverRig, poses

from stochlite_driver.servo_safety import BLIND_REASON, TILT_REASON

ROLL = 1.5  # rad: beyond the driver's default tilt_limit (1.3 rad)
TILTED = (math.sin(ROLL / 2), 0.0, 0.0, math.cos(ROLL / 2))  # x, y, z, w
# Norm 1.2; its roll, were it used as it is, is about 1.51 rad: beyond the limit too.
LONG = (1.2 * math.sin(0.6), 0.0, 0.0, 1.2 * math.cos(0.6))
BLIND_ATTEMPTS = 3  # per kind, when the guard went blind (see imu_faults)


def imu_cases(rig: DriverRig) -> dict[str, tuple[str, Callable[[], Any]]]:
    """kind -> (the driver's counter, Imu factory)."""
    from sensor_msgs.msg import Imu

    def sample(orientation: tuple[float, ...], offset: float | None = 0.0) -> Callable[[], Any]:
        def make() -> Any:
            msg = Imu()
            o = msg.orientation
            o.x, o.y, o.z, o.w = orientation
            if offset is not None:  # None: never stamped (0 s)
                msg.header.stamp = rig.stamp(offset)
            return msg

        return make

    nan, inf = math.nan, math.inf
    return {
        "nan_orientation": ("imu_rejected_non_finite", sample((nan, 0.0, 0.0, 1.0))),
        "inf_orientation": ("imu_rejected_non_finite", sample((0.0, inf, 0.0, 1.0))),
        "zero_quaternion": ("imu_rejected_not_unit_quaternion", sample((0.0, 0.0, 0.0, 0.0))),
        "non_unit_quaternion": ("imu_rejected_not_unit_quaternion", sample(LONG)),
        "stale_stamp": ("imu_rejected_stale", sample(TILTED, -1.0)),
        "future_stamp": ("imu_rejected_future_stamp", sample(TILTED, 1.0)),
        "unstamped": ("imu_rejected_stale", sample(TILTED, None)),
    }


def _level(rig: DriverRig) -> bool:
    """Send one level sample and wait until the driver has used it."""
    from sensor_msgs.msg import Imu

    before = rig.node.last_imu
    msg = Imu()
    msg.orientation.w = 1.0
    msg.header.stamp = rig.stamp()
    rig.imu_pub.publish(msg)
    return rig.wait_for(lambda: rig.node.last_imu != before, COUNT_WAIT, 0.0005)


def _inject(rig: DriverRig, counter: str, make: Callable[[], Any]) -> None:
    """One corrupted sample between two level ones, the feeder paused only meanwhile: the
    driver has taken the level sample before (nothing in flight to overwrite the corrupted
    one), then counted the corrupted one (in process: no /diagnostics wait while the guard has
    no fresh attitude), then taken the level sample after."""
    with rig.imu_feed_paused():
        _level(rig)
        seen = rig.node.safety.counters[counter]
        rig.imu_pub.publish(make())
        rig.wait_for(lambda: rig.node.safety.counters[counter] > seen, COUNT_WAIT, 0.0005)
        _level(rig)


def _one_kind(
    rig: DriverRig, counter: str, make: Callable[[], Any], repeats: int
) -> tuple[int, str]:
    """Send ``repeats`` samples of one kind: (how many /diagnostics counted, the e-stop reason
    they left latched or "")."""
    before = int(rig.fresh_status(SAFETY_STATUS).get(counter, "0"))
    for _ in range(repeats):
        _inject(rig, counter, make)
    counted = int(rig.fresh_status(SAFETY_STATUS).get(counter, "0")) - before
    return counted, rig.node.safety.estop_reason


def imu_faults(rig: DriverRig, repeats: int) -> dict[str, Any]:
    """Every kind of corrupted sample ``repeats`` times. A kind whose e-stop came from the guard
    going blind (this process starved the level feed for attitude_timeout: a harness stall, not
    a corrupted sample used) is sent again, up to ``BLIND_ATTEMPTS`` times; blind latches are
    recorded per kind, and a kind blind in every attempt is a harness error (not measured)."""
    from sensor_msgs.msg import Imu

    p0 = poses()[0]
    rig.feed_array(p0)
    if not rig.tracking(p0, timeout=10.0):
        raise RuntimeError(f"the driver never tracked P0 (phase {rig.phase()})")
    per_case: dict[str, dict[str, int]] = {}
    reasons: dict[str, str] = {}  # kind -> the e-stop it latched
    unmeasured: list[str] = []
    applied = 0
    for kind, (counter, make) in imu_cases(rig).items():
        blind = 0
        for _ in range(BLIND_ATTEMPTS):
            counted, latched = _one_kind(rig, counter, make, repeats)
            if latched:
                rig.release_estop()
                rig.tracking(p0, timeout=3.0)
            if not latched.startswith(BLIND_REASON):
                break
            blind += 1
        else:
            unmeasured.append(kind)
            latched = ""
        per_case[kind] = {
            "sent": repeats,
            "counted": counted,
            "estop": int(bool(latched)),
            "blind_latches": blind,
        }
        if latched:
            applied += 1
            reasons[kind] = latched
    # Alive: the guard still acts on a valid tilted sample.
    with rig.imu_feed_paused():
        _level(rig)
        tilted = Imu()
        tilted.orientation.x, tilted.orientation.w = TILTED[0], TILTED[3]
        tilted.header.stamp = rig.stamp()
        rig.imu_pub.publish(tilted)
        alive = rig.wait_for(lambda: rig.node.safety.estop_active, COUNT_WAIT)
        alive = alive and rig.node.safety.estop_reason.startswith(TILT_REASON)
        _level(rig)
    rig.release_estop()
    rig.tracking(p0, timeout=3.0)
    extra: dict[str, Any] = {}
    if unmeasured:
        extra["harness_error"] = (
            f"the guard went blind in all {BLIND_ATTEMPTS} attempts of {unmeasured} "
            "(the level feed starved): not measured"
        )
    return record_for(
        "corrupted /imu/data into servo_driver_node's attitude guard",
        "servo_driver_node",
        per_case,
        applied,
        acted_note="kinds of corrupted IMU samples latched the e-stop",
        ignored_note="a valid tilted IMU sample afterwards did not latch the e-stop",
        alive=alive,
        estop_reasons=reasons,
        **extra,
    )


def imu_lost(rig: DriverRig, name: str, bad_feed: Callable[[], None] | None) -> dict[str, Any]:
    """The level IMU feed stops (``bad_feed``, if any, publishes instead every 10 ms) for longer
    than attitude_timeout: the e-stop latches, ERROR, servos FREE; the IMU back, release,
    tracking again."""

    p0 = poses()[0]
    rig.feed_array(p0)
    tracking_before = rig.tracking(p0)
    timeout = rig.node.settings["attitude_timeout"]
    began = time.monotonic()
    rig.imu_feed, rig.imu_substitute = False, bad_feed
    try:
        latched_after, relaxed, values, level = await_latch(rig, began, timeout + 2.0)
        latched = latched_after is not None
    finally:
        rig.imu_feed, rig.imu_substitute = True, None
    time.sleep(0.2)  # the IMU is back, valid targets keep coming: the stop must hold
    held = rig.phase() == "estop"
    rig.release_estop()
    resumed = rig.tracking(p0, timeout=3.0)
    reason = values.get("estop_reason", "")
    outcome = {
        "tracking_before": tracking_before,
        "estop_latched": latched,
        # The last valid sample came up to one feed period (10 ms) before the feed stopped.
        "not_before_timeout": latched_after is not None and latched_after >= timeout - 0.02,
        "reported_error": level == ERROR and reason.startswith(BLIND_REASON),
        "servos_free": relaxed,
        "estop_until_release": held,
        "tracking_after_release": resumed,
    }
    return fault_record(
        f"IMU: {name} (servo_driver_node's attitude guard)",
        "servo_driver_node",
        1,
        outcomes=outcome,
        figures={"fault_to_estop": summary([latched_after] if latched_after else [])},
        expected_ms={"estop_after": timeout * 1e3},
        estop_reason=reason,
        misbehaving=[key for key, value in outcome.items() if not value],
    )


def imu_loss_faults(rig: DriverRig) -> list[dict[str, Any]]:
    from sensor_msgs.msg import Imu

    def nan_sample() -> None:
        msg = Imu()
        msg.orientation.x, msg.orientation.w = math.nan, 1.0
        msg.header.stamp = rig.stamp()
        rig.imu_pub.publish(msg)

    return [
        imu_lost(rig, "silent for longer than attitude_timeout", None),
        imu_lost(rig, "only NaN samples for longer than attitude_timeout", nan_sample),
    ]
