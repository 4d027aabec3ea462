"""The CAN bus and the serial IMU failing mid-run, with the driver nodes in this process.

python-can's virtual bus and the simulated BNO055's pty exist only inside one process, so the
motor driver and the IMU node run here (their own loop threads and executors, as in their
processes); what they would publish on /diagnostics is taken from their diagnostics publisher.

CAN (motor driver commanding 0.5 N*m on both joints at 500 Hz): a silent motor, the bus going
off (send raises), garbage frames from the motor side, the adaptor unplugged (send and receive
raise). Per fault: whether a fault was latched and reported (ERROR on /diagnostics), how long the
motors kept applying torque (the simulated firmware's own applied torque), whether torque
stayed zero after the bus recovered until the e-stop release, and whether it resumed after it.

IMU (imu_node, ``port: sim``): garbage bytes on the line, then the device unplugged (the pty's
device side closed): read failures counted, ERROR reported, the node keeps running.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from _faults_ros_common import diagnostic_level, diagnostic_values, fault_record, summary

ERROR = 2
TORQUE = 0.5  # N*m commanded on both joints
FAULT_SECONDS = 0.3  # how long each fault lasts
RESUME_TIMEOUT_S = 2.0  # longest wait for the commanded torque after the e-stop release


def _capture_diagnostics(node: Any) -> list[Any]:
    """Keep every DiagnosticArray the node publishes (it still goes out on /diagnostics)."""
    captured: list[Any] = []
    publish = node.diag_pub.publish

    def keep(msg: Any) -> None:
        captured.append(msg)
        publish(msg)

    node.diag_pub.publish = keep
    return captured


class CommandFeeder:
    """A thread feeding valid commands straight into the driver's callback every 2 ms."""

    def __init__(self, node: Any) -> None:
        from mdemorl_msgs.msg import EffortCommand

        self.node, self.message_type = node, EffortCommand
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            msg = self.message_type(name=["hip", "knee"], effort=[TORQUE, TORQUE])
            msg.header.stamp = self.node.get_clock().now().to_msg()
            self.node.on_command(msg)
            time.sleep(0.002)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


class FaultyBus:
    """Wraps the driver's python-can bus; ``mode`` None, "bus_off" or "unplugged"."""

    def __init__(self, bus: Any) -> None:
        self.bus, self.mode = bus, None

    def send(self, message: Any, timeout: float | None = None) -> None:
        import can

        if self.mode == "bus_off":
            raise can.CanOperationError("Transmit buffer full / bus off")
        if self.mode == "unplugged":
            raise can.CanOperationError("[Errno 19] No such device")
        self.bus.send(message, timeout)

    def recv(self, timeout: float | None = None) -> Any:
        import can

        if self.mode == "unplugged":
            time.sleep(min(timeout or 0.0, 0.0005))
            raise can.CanOperationError("[Errno 19] No such device")
        return self.bus.recv(timeout)

    def shutdown(self) -> None:
        self.bus.shutdown()


def garbage_fault(node: Any, diagnostics: list[Any], channel: str) -> dict[str, Any]:
    """Random frames from the motors' side of the bus (id 0), random lengths and bytes, while
    the driver obeys valid commands: the undecodable ones must be counted (malformed, unknown
    motor id) and the bus reported WARN; a 6-byte frame starting with a motor's id is a
    well-formed reply (the MIT reply has no checksum): it cannot be told apart."""
    import can

    ids = {motor.can_id for motor in node.bus.motors}
    counters = ("malformed_frames", "unknown_replies")
    before = {key: node.bus.counters[key] for key in counters}
    bus = can.Bus(interface="virtual", channel=channel)
    rng = random.Random(0)
    sent = undecodable = 0
    diagnostics.clear()
    end = time.monotonic() + FAULT_SECONDS
    while time.monotonic() < end:
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(9)))
        bus.send(can.Message(arbitration_id=0, data=data, is_extended_id=False))
        sent += 1
        undecodable += len(data) != 6 or data[0] not in ids
        time.sleep(0.0005)
    bus.shutdown()
    time.sleep(0.2)
    counted = sum(node.bus.counters[key] - before[key] for key in counters)
    levels = [
        int.from_bytes(status.level, "little")
        for array in diagnostics
        for status in array.status
        if status.name.endswith("can bus")
    ]
    outcome = {
        "undecodable_sent": undecodable,
        "undecodable_counted": counted,
        "well_formed_replies_accepted": sent - undecodable,
        "bus_reported_warn": bool(levels) and max(levels) >= 1,
        "fault_latched": node.fault_latched,
    }
    misbehaving = [] if counted == undecodable else [f"{counted} of {undecodable} counted"]
    if not outcome["bus_reported_warn"]:
        misbehaving.append("garbage not reported on /diagnostics")
    return fault_record(
        f"CAN: garbage frames for {FAULT_SECONDS * 1e3:.0f} ms",
        "motor_driver_node",
        sent,
        outcomes=outcome,
        misbehaving=misbehaving,
        limits=["a garbage 6-byte frame starting with a motor's id is taken as its reply"],
    )


def can_faults(salt: int) -> list[dict[str, Any]]:
    import rclpy
    from std_srvs.srv import SetBool

    from leg2r_driver.motor_driver_node import MotorDriverNode
    from mdemorl_ros.ros_testing import pick_domain_id

    channel = f"faults-{uuid.uuid4().hex[:8]}"
    args = ["--ros-args"]
    for parameter in (
        "can_interface:=virtual",
        f"can_channel:={channel}",
        "simulate_motors:=true",
        "position_lower:=[-100.0, -100.0]",
        "position_upper:=[100.0, 100.0]",
        "diagnostics_rate:=20.0",
    ):
        args += ["-p", parameter]
    rclpy.init(args=args, domain_id=pick_domain_id(salt=salt))
    node = MotorDriverNode()
    diagnostics = _capture_diagnostics(node)
    faulty = FaultyBus(node.bus._bus)
    node.bus._bus = faulty
    firmware = node.firmware
    assert firmware is not None
    feeder = CommandFeeder(node)
    records = []

    def torques() -> list[float]:
        return [firmware.joint(i).applied_torque for i in (1, 2)]

    def release() -> SetBool.Response:
        return node.on_estop(SetBool.Request(data=False), SetBool.Response())

    def inject(name: str, start: Callable[[], Any], end: Callable[[], Any]) -> dict[str, Any]:
        time.sleep(0.3)
        applying_before = all(abs(t - TORQUE) < 0.02 for t in torques())
        diagnostics.clear()
        started = time.monotonic()
        start()
        zero_after = detected_after = latched_after = None
        while time.monotonic() - started < FAULT_SECONDS:
            now = time.monotonic() - started
            if zero_after is None and all(abs(t) < 0.01 for t in torques()):
                zero_after = now
            if detected_after is None and node.motor_fault():
                detected_after = now
            if latched_after is None and node.fault_latched:
                latched_after = now
            time.sleep(0.0005)
        end()
        time.sleep(0.2)  # the bus works again, commands keep coming
        held_zero = all(abs(t) < 0.01 for t in torques())
        reported = diagnostic_level(diagnostics, "safety") == ERROR
        bus_values = diagnostic_values(diagnostics, "can bus") or {}
        release()
        # Wait for the commanded torque (up to RESUME_TIMEOUT_S: on a loaded machine the feeder's
        # next command and the loop's tick may take longer than one fixed pause).
        released_at = time.monotonic()
        resumed = False
        while not resumed and time.monotonic() - released_at < RESUME_TIMEOUT_S:
            time.sleep(0.005)
            resumed = all(abs(t - TORQUE) < 0.02 for t in torques())
        resumed_after = time.monotonic() - released_at if resumed else None
        outcome = {
            "applying_before": applying_before,
            "fault_reported_error": reported,
            "torque_zero_at_motors": zero_after is not None,
            "zero_after_bus_recovered_until_release": held_zero,
            "resumed_after_release": resumed,
        }
        # No frame reaches a motor while the bus is off: only its firmware's CAN timeout can
        # zero its torque then (HARDWARE.md: enable it; the simulated firmware has none).
        unreachable = name in ("bus off", "adaptor unplugged")
        limits = ["motors keep the last command until the bus recovers"] if unreachable else []
        misbehaving = [
            key
            for key, value in outcome.items()
            if not value and not (unreachable and key == "torque_zero_at_motors")
        ]
        return fault_record(
            f"CAN: {name} for {FAULT_SECONDS * 1e3:.0f} ms",
            "motor_driver_node",
            1,
            outcomes=outcome,
            figures={
                "fault_to_zero_torque_at_motors": summary([zero_after] if zero_after else []),
                "fault_to_detected": summary([detected_after] if detected_after else []),
                "fault_to_latched": summary([latched_after] if latched_after else []),
                "release_to_resumed": summary([resumed_after] if resumed_after else []),
            },
            bus_counters={k: v for k, v in bus_values.items() if k != "motor_mode"},
            misbehaving=misbehaving,
            limits=limits,
        )

    try:
        records.append(
            inject(
                "silent motor (id 2)",
                lambda: firmware.silent_ids.add(2),
                lambda: firmware.silent_ids.clear(),
            )
        )
        records.append(
            inject(
                "bus off",
                lambda: setattr(faulty, "mode", "bus_off"),
                lambda: setattr(faulty, "mode", None),
            )
        )
        records.append(
            inject(
                "adaptor unplugged",
                lambda: setattr(faulty, "mode", "unplugged"),
                lambda: setattr(faulty, "mode", None),
            )
        )
        records.append(garbage_fault(node, diagnostics, channel))
    finally:
        feeder.close()
        node.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    return records


def imu_faults(salt: int) -> dict[str, Any]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from leg2r_driver.imu_node import ImuNode
    from mdemorl_ros.ros_testing import pick_domain_id

    rclpy.init(
        args=["--ros-args", "-p", "port:=sim", "-p", "diagnostics_rate:=10.0"],
        domain_id=pick_domain_id(salt=salt),
    )
    node = ImuNode()
    diagnostics = _capture_diagnostics(node)
    published: list[Any] = []
    publish = node.imu_pub.publish
    node.imu_pub.publish = lambda msg: (published.append(msg), publish(msg))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    simulator = node.simulator
    assert simulator is not None
    outcomes: dict[str, Any] = {}
    crashed = ""

    def spin(seconds: float, during: Callable[[], None] = lambda: None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            during()
            executor.spin_once(timeout_sec=0.005)

    rng = random.Random(1)
    injected = 0
    try:
        spin(0.5)
        samples = node.samples

        def garbage() -> None:
            nonlocal injected
            os.write(simulator._master, bytes(rng.randrange(256) for _ in range(16)))
            injected += 1

        published.clear()
        spin(0.5, garbage)
        outcomes["garbage_read_failures"] = node.failures
        outcomes["garbage_protocol_retries"] = node.device.errors
        # The simulated sensor is level and still: anything else published is garbage as data.
        outcomes["garbage_published_as_data"] = sum(
            abs(m.orientation.w - 1.0) > 1e-3
            or abs(m.linear_acceleration.z - 9.81) > 0.05
            or abs(m.angular_velocity.x) + abs(m.angular_velocity.y) + abs(m.angular_velocity.z)
            > 1e-3
            for m in published
        )
        outcomes["samples_during_garbage"] = len(published)
        spin(0.5)
        outcomes["samples_after_garbage"] = node.samples - samples
        diagnostics.clear()
        os.close(simulator._master)  # the device side goes away: the host's reads fail
        spin(1.0)
        outcomes["unplugged_error_reported"] = diagnostic_level(diagnostics, "bno055") == ERROR
        outcomes["unplugged_read_failures"] = node.failures - outcomes["garbage_read_failures"]
    except Exception as error:  # what the node's executor would die of
        crashed = f"{type(error).__name__}: {error}"
    finally:
        simulator._stop.set()
        executor.shutdown()
        node.serial.close()
        node.destroy_node()
        rclpy.try_shutdown()
    misbehaving = [f"the node's executor raised {crashed}"] if crashed else []
    if outcomes.get("garbage_published_as_data"):
        misbehaving.append(f"{outcomes['garbage_published_as_data']} garbage samples published")
    if not crashed and not outcomes.get("unplugged_error_reported"):
        misbehaving.append("unplugged IMU not reported as ERROR")
    return fault_record(
        "serial IMU: garbage bytes, then unplugged",
        "imu_node (simulated BNO055 on a pty)",
        injected + 1,
        outcomes=outcomes,
        tracebacks=int(bool(crashed)),
        misbehaving=misbehaving,
    )
