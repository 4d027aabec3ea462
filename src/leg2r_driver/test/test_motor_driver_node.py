"""motor_driver_node in its own process against simulated motors on a python-can virtual bus.

Covers: the joint follows the commanded torque; killing the command source zeroes the applied
torque (latency printed, not asserted); invalid commands are never applied and are counted on
/diagnostics; the e-stop latches through further commands until released; SIGTERM exits motor
mode.
"""

import math
import signal
import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from leg2r_driver.mit_protocol import MOTOR_MODELS, TORQUE_BITS, resolution
from mdemorl_msgs.msg import EffortCommand
from mdemorl_ros.ros_common import MONITOR_QOS, STATE_QOS
from mdemorl_ros.ros_testing import RosHarness

pytestmark = pytest.mark.ros

TORQUE_MAX = MOTOR_MODELS["AK80-6"].torque_max
ZERO_TOL = resolution(-TORQUE_MAX, TORQUE_MAX, TORQUE_BITS) / 2 + 1e-9
QUANT_TOL = 2 * ZERO_TOL
TIMEOUT = 0.010
DRIVER_PARAMS = {
    "can_interface": "virtual",
    "simulate_motors": True,
    "position_lower": [-100.0, -100.0],
    "position_upper": [100.0, 100.0],
    "torque_limits": [3.0, 3.0],
    "command_timeout": TIMEOUT,
    "diagnostics_rate": 5.0,
}


class Probe:
    """Test-side node: records joint states and diagnostics, publishes commands."""

    def __init__(self, harness: RosHarness) -> None:
        self.harness = harness
        self.node = harness.node("driver_probe")
        self.states: list[tuple[float, JointState]] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(
            JointState, "/joint_states", lambda m: self.states.append((time.time(), m)), STATE_QOS
        )
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", self.diagnostics.append, MONITOR_QOS
        )
        self.publisher = self.node.create_publisher(EffortCommand, "/effort_command", STATE_QOS)
        self.estop = self.node.create_client(SetBool, "/motor_driver_node/estop")
        self.sequence = 0

    def publish_for(self, seconds: float, names: list[str], efforts: list[float]) -> None:
        """Publish the command about every 2 ms for ``seconds`` while spinning."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = EffortCommand(name=names, effort=efforts, sequence=self.sequence)
            msg.header.stamp = self.node.get_clock().now().to_msg()
            self.publisher.publish(msg)
            self.sequence += 1
            self.harness.executor.spin_once(timeout_sec=0.002)

    def applied_since_clear(self, expected: list[float]) -> bool:
        """Whether any joint state since the last ``states.clear()`` shows ``expected`` efforts.

        (Not only the last one: on a loaded machine a single late command can be stale.)
        """
        return any(np.allclose(m.effort, expected, atol=QUANT_TOL) for _, m in self.states)

    def latest_effort(self) -> np.ndarray:
        return np.array(self.states[-1][1].effort)

    def safety_value(self, key: str) -> str:
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name.endswith("safety"):
                    return {kv.key: kv.value for kv in status.values}.get(key, "0")
        return "missing"


@pytest.fixture(scope="module")
def rig() -> Iterator[tuple[RosHarness, Probe, object]]:
    harness = RosHarness(salt=11)
    probe = Probe(harness)
    driver = harness.start(
        "leg2r_driver.motor_driver_node",
        {**DRIVER_PARAMS, "can_channel": f"driver-{uuid.uuid4().hex[:8]}"},
    )
    assert harness.spin_until(lambda: len(probe.states) > 10, 20.0), harness.output(driver)
    yield harness, probe, driver
    harness.close()


def test_joint_follows_torque_then_watchdog_zeroes_it_after_kill(rig) -> None:
    harness, probe, _ = rig
    publisher = harness.start(
        "leg2r_driver.effort_publisher", {"effort": [0.5, -0.4], "rate": 500.0}
    )
    assert harness.spin_until(
        lambda: np.allclose(probe.latest_effort(), [0.5, -0.4], atol=QUANT_TOL), 20.0
    ), harness.output(publisher)
    start = np.array(probe.states[-1][1].position)
    harness.spin_for(0.3)
    moved = np.array(probe.states[-1][1].position) - start
    assert moved[0] > 0.01 and moved[1] < -0.01  # each joint turns the way its torque pushes

    probe.states.clear()
    kill_time = time.time()
    publisher.send_signal(signal.SIGKILL)
    assert harness.spin_until(
        lambda: bool(probe.states) and np.all(np.abs(probe.latest_effort()) <= ZERO_TOL), 5.0
    )
    zero_stamp = next(
        m.header.stamp for _, m in probe.states if np.all(np.abs(np.array(m.effort)) <= ZERO_TOL)
    )
    latency = zero_stamp.sec + 1e-9 * zero_stamp.nanosec - kill_time
    print(
        f"\nwatchdog: applied torque zero {latency * 1e3:.2f} ms after SIGKILL "
        f"(command_timeout {TIMEOUT * 1e3:.0f} ms + period 2 ms)"
    )
    publisher.wait()
    harness.spin_for(0.1)
    assert np.all(np.abs(probe.latest_effort()) <= ZERO_TOL)  # and it stays zero


def test_killing_the_torque_controller_zeroes_the_applied_torque(rig) -> None:
    harness, probe, _ = rig
    controller = harness.start(
        "leg2r_driver.torque_controller_node", {"default_action": "random", "seed": 3}
    )
    assert harness.spin_until(
        lambda: bool(probe.states) and np.all(np.abs(probe.latest_effort()) > 2 * ZERO_TOL), 30.0
    ), harness.output(controller)
    probe.states.clear()
    kill_time = time.time()
    controller.send_signal(signal.SIGKILL)
    assert harness.spin_until(
        lambda: bool(probe.states) and np.all(np.abs(probe.latest_effort()) <= ZERO_TOL), 5.0
    )
    zero_stamp = next(
        m.header.stamp for _, m in probe.states if np.all(np.abs(np.array(m.effort)) <= ZERO_TOL)
    )
    latency = zero_stamp.sec + 1e-9 * zero_stamp.nanosec - kill_time
    controller.wait()
    probe.diagnostics.clear()
    assert harness.spin_until(lambda: len(probe.diagnostics) > 0, 3.0)
    trip_delay = float(probe.safety_value("watchdog_trip_delay_ms"))
    assert trip_delay >= TIMEOUT * 1e3  # it never trips before command_timeout
    print(
        f"\nwatchdog: torque_controller_node SIGKILL -> applied torque zero in "
        f"{latency * 1e3:.2f} ms; driver: last command -> zero output {trip_delay:.2f} ms"
    )


def test_invalid_commands_are_never_applied_and_reported(rig) -> None:
    harness, probe, _ = rig
    names = ["hip", "knee"]
    for efforts, count_names in (
        ([math.nan, 0.5], names),
        ([0.5, math.inf], names),
        ([0.5], ["hip"]),
        ([0.5, 0.5, 0.5], names),
        ([0.5, 0.5], ["hip", "ankle"]),
    ):
        probe.states.clear()
        probe.publish_for(0.15, count_names, efforts)
        applied = np.array([m.effort for _, m in probe.states])
        assert len(applied) > 0 and np.all(np.abs(applied) <= ZERO_TOL), (efforts, count_names)
    probe.states.clear()
    probe.publish_for(0.3, names, [50.0, -1e6])  # oversized: clamped to the limits
    assert probe.applied_since_clear([3.0, -3.0])
    assert all(np.all(np.abs(m.effort) <= 3.0 + QUANT_TOL) for _, m in probe.states)
    probe.diagnostics.clear()
    assert harness.spin_until(lambda: len(probe.diagnostics) > 0, 3.0)
    assert int(probe.safety_value("rejected_non_finite")) > 10
    assert int(probe.safety_value("rejected_wrong_length")) > 10
    assert int(probe.safety_value("rejected_unknown_joint")) > 10
    assert int(probe.safety_value("clamped")) > 10


def test_estop_latches_through_commands_until_released(rig) -> None:
    harness, probe, _ = rig
    names = ["hip", "knee"]
    probe.states.clear()
    probe.publish_for(0.2, names, [0.3, 0.3])
    assert probe.applied_since_clear([0.3, 0.3])
    assert harness.call(probe.estop, SetBool.Request(data=True)).success
    probe.states.clear()
    probe.publish_for(0.5, names, [0.3, 0.3])
    efforts = np.array([m.effort for _, m in probe.states[5:]])
    assert len(efforts) > 20 and np.all(np.abs(efforts) <= ZERO_TOL)
    probe.diagnostics.clear()
    assert harness.spin_until(lambda: len(probe.diagnostics) > 0, 3.0)
    assert probe.safety_value("estop") == "True"
    assert int(probe.safety_value("ignored_estop")) > 50
    assert harness.call(probe.estop, SetBool.Request(data=False)).success
    probe.states.clear()
    probe.publish_for(0.2, names, [0.3, 0.3])
    assert probe.applied_since_clear([0.3, 0.3])


def test_sigterm_exits_motor_mode(rig) -> None:
    harness, _, driver = rig
    assert harness.terminate(driver, signal.SIGTERM) == 0
    output = harness.output(driver)
    assert "simulated motors in motor mode: [False, False]" in output, output


def test_estop_can_exit_motor_mode_and_reenter_on_release(rig) -> None:
    harness, probe, _ = rig  # the module's driver was stopped by the previous test
    driver = harness.start(
        "leg2r_driver.motor_driver_node",
        {
            **DRIVER_PARAMS,
            "can_channel": f"driver-{uuid.uuid4().hex[:8]}",
            "estop_action": "exit_motor_mode",
        },
    )
    estop = probe.node.create_client(SetBool, "/motor_driver_node/estop")
    names = ["hip", "knee"]
    assert harness.spin_until(lambda: estop.service_is_ready(), 20.0), harness.output(driver)
    probe.states.clear()

    def commanded_torque_applied() -> bool:
        # A freshly started driver on a loaded machine may need more than one burst.
        probe.publish_for(0.1, names, [0.3, 0.3])
        return probe.applied_since_clear([0.3, 0.3])

    assert harness.spin_until(commanded_torque_applied, 10.0), harness.output(driver)
    assert harness.call(estop, SetBool.Request(data=True)).success
    probe.publish_for(0.1, names, [0.3, 0.3])
    probe.states.clear()
    probe.diagnostics.clear()
    probe.publish_for(0.5, names, [0.3, 0.3])
    assert not probe.states  # motors are off: no fresh state to publish

    def bus_value(key: str) -> str | None:
        for array in reversed(probe.diagnostics):
            for status in array.status:
                if status.name.endswith("can bus"):
                    return {kv.key: kv.value for kv in status.values}.get(key)
        return None

    assert harness.spin_until(lambda: bus_value("motor_mode") is not None, 3.0)
    assert bus_value("motor_mode") == "False"
    assert harness.call(estop, SetBool.Request(data=False)).success
    probe.states.clear()
    probe.publish_for(0.3, names, [0.3, 0.3])
    assert probe.applied_since_clear([0.3, 0.3])
    assert harness.terminate(driver) == 0
