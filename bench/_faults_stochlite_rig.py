"""The StochLite fault family's rig (bench/_faults_stochlite.py): servo_driver_node with its
simulated B3M bus in this process, so the harness can read what the servos were told.

The driver runs as in its own process (its servo loop thread, its node spun by an executor
thread here), in the rclpy default context on the domain of a :class:`RosHarness` (whose
environment and subprocesses the scenarios share). A probe node in the same executor publishes
targets and IMU samples and receives /joint_states; every DiagnosticArray the driver publishes
is kept (it still goes out on /diagnostics). Exceptions escaping any thread of this process
(the servo loop, the executor) are counted as tracebacks.
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from _faults_ros_common import diagnostic_values

DRIVER_DIAGNOSTICS_RATE = 20.0  # Hz: a fresh status within 50 ms
SAFETY_STATUS = "servo_driver_node: safety"


def joint_limits() -> tuple[np.ndarray, np.ndarray]:
    from mdemorl_core.envs.stochlite_gait import task_params
    from stochlite_driver.robot import joint_limits as limits

    lower, upper = limits(task_params("StochLite-v0"))
    return np.array(lower), np.array(upper)


def poses() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P0 (the valid feed), P1 (what corrupted messages ask for), P2 (the 'alive' check): [12]
    rad, inside the joint limits and far enough apart that any move towards P1 shows."""
    lower, upper = joint_limits()
    span = upper - lower
    return lower + 0.4 * span, lower + 0.6 * span, lower + 0.5 * span


class ThreadFaults:
    """Counts exceptions that escape any thread (threading.excepthook) while installed."""

    def __init__(self) -> None:
        self.caught: list[str] = []
        self._previous = threading.excepthook

        def hook(args: Any) -> None:
            self.caught.append(f"{args.thread.name}: {args.exc_type.__name__}: {args.exc_value}")
            self._previous(args)

        threading.excepthook = hook

    def close(self) -> None:
        threading.excepthook = self._previous


class DriverRig:
    """servo_driver_node (``simulate_bus: true``) plus a probe, spun in a thread."""

    def __init__(self, domain_id: int, overrides: dict[str, str] | None = None) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Imu, JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from mdemorl_ros.ros_common import IMU_TOPIC, JOINT_STATES_TOPIC, STATE_QOS
        from stochlite_driver.ros_io import JOINT_TARGETS_TOPIC, POSITION_COMMANDS_TOPIC
        from stochlite_driver.servo_driver_node import ServoDriverNode

        parameters = {
            "simulate_bus": "true",
            "diagnostics_rate": str(DRIVER_DIAGNOSTICS_RATE),
            **(overrides or {}),
        }
        args = ["--ros-args"]
        for key, value in parameters.items():
            args += ["-p", f"{key}:={value}"]
        self.faults = ThreadFaults()
        rclpy.init(args=args, domain_id=domain_id)
        self.node = ServoDriverNode()
        assert self.node.sim_bus is not None
        self.sim = self.node.sim_bus
        self.diagnostics: list[Any] = []
        publish = self.node.diag_pub.publish

        def keep(msg: Any) -> None:
            self.diagnostics.append(msg)
            publish(msg)

        self.node.diag_pub.publish = keep
        self.probe = rclpy.create_node("stochlite_faults_probe")
        self.trajectory_pub = self.probe.create_publisher(
            JointTrajectory, JOINT_TARGETS_TOPIC, STATE_QOS
        )
        self.array_pub = self.probe.create_publisher(
            Float64MultiArray, POSITION_COMMANDS_TOPIC, STATE_QOS
        )
        self.imu_pub = self.probe.create_publisher(Imu, IMU_TOPIC, STATE_QOS)
        self.states = 0
        self.probe.create_subscription(JointState, JOINT_STATES_TOPIC, self._on_state, STATE_QOS)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.executor.add_node(self.probe)
        self.spinner = threading.Thread(target=self.executor.spin, name="rig-executor", daemon=True)
        self.spinner.start()
        self.feed: Callable[[], None] | None = None
        self.imu_feed = True  # False: no level IMU sample; imu_substitute() instead, if set
        self._imu_lock = threading.Lock()  # held while the feeder publishes an IMU sample
        self.imu_substitute: Callable[[], None] | None = None
        self._stop_feed = threading.Event()
        self.feeder = threading.Thread(target=self._feed, name="rig-feeder", daemon=True)
        self.feeder.start()

    def _on_state(self, msg: Any) -> None:
        self.states += 1

    def _feed(self) -> None:
        """Every 10 ms: a level IMU sample (or ``imu_substitute()``, or nothing, while
        ``imu_feed`` is False), and ``feed()`` (valid targets) when set."""
        from sensor_msgs.msg import Imu

        while not self._stop_feed.is_set():
            with self._imu_lock:
                if self.imu_feed:
                    imu = Imu()
                    imu.orientation.w = 1.0
                    imu.header.stamp = self.probe.get_clock().now().to_msg()
                    self.imu_pub.publish(imu)
                elif (substitute := self.imu_substitute) is not None:
                    substitute()
            feed = self.feed
            if feed is not None:
                feed()
            time.sleep(0.01)

    @contextmanager
    def imu_feed_paused(self) -> Iterator[None]:
        """No level IMU sample from the feeder during the body, none of its own in flight when
        the body starts."""
        with self._imu_lock:
            self.imu_feed = False
        try:
            yield
        finally:
            self.imu_feed = True

    def stamp(self, offset: float = 0.0) -> Any:
        from rclpy.duration import Duration

        return (self.probe.get_clock().now() + Duration(nanoseconds=int(offset * 1e9))).to_msg()

    def trajectory(self, names: list[str], positions: list[float], offset: float = 0.0) -> Any:
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        msg = JointTrajectory(joint_names=names)
        msg.header.stamp = self.stamp(offset)
        msg.points = [JointTrajectoryPoint(positions=positions)]
        return msg

    def feed_array(self, pose: np.ndarray) -> None:
        from std_msgs.msg import Float64MultiArray

        self.feed = lambda: self.array_pub.publish(Float64MultiArray(data=pose.tolist()))

    def feed_trajectory(self, pose: np.ndarray) -> None:
        from stochlite_driver.robot import JOINT_NAMES

        names = list(JOINT_NAMES)
        self.feed = lambda: self.trajectory_pub.publish(self.trajectory(names, pose.tolist()))

    def desired(self) -> np.ndarray:
        """Every simulated servo's desired-position register [12] rad (what it was told)."""
        from stochlite_driver.b3m import DESIRED_POSITION

        with self.sim._lock:
            return np.array(
                [
                    math.radians(struct.unpack_from("<h", servo.memory, DESIRED_POSITION)[0] / 100)
                    for servo in self.sim.servos.values()
                ]
            )

    def modes(self) -> list[int]:
        """Every simulated servo's run mode (b3m.RunMode values)."""
        with self.sim._lock:
            return [servo.run_mode for servo in self.sim.servos.values()]

    def phase(self) -> str:
        output = self.node.core.last_output
        return "none" if output is None else output.phase.value

    def wait_for(self, condition: Callable[[], bool], timeout: float, step: float = 0.002) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition():
                return True
            time.sleep(step)
        return condition()

    def latest_status(self, suffix: str) -> dict[str, str]:
        """Key/values of the driver's latest status named ``...suffix`` ({} if none yet)."""
        return diagnostic_values(self.diagnostics, suffix) or {}

    def fresh_status(self, suffix: str, timeout: float = 2.0) -> dict[str, str]:
        """Key/values of the next driver status named ``...suffix`` ({} on timeout)."""
        self.diagnostics.clear()
        self.wait_for(lambda: diagnostic_values(self.diagnostics, suffix) is not None, timeout)
        return diagnostic_values(self.diagnostics, suffix) or {}

    def tracking(self, pose: np.ndarray, tolerance: float = 2e-3, timeout: float = 3.0) -> bool:
        """The servos were told ``pose`` (within ``tolerance`` rad) within ``timeout`` s."""
        return self.wait_for(
            lambda: (
                self.phase() == "active"
                and float(np.max(np.abs(self.desired() - pose))) < tolerance
            ),
            timeout,
        )

    def release_estop(self) -> None:
        from std_srvs.srv import SetBool

        self.node.on_estop(SetBool.Request(data=False), SetBool.Response())

    def close(self) -> None:
        import rclpy

        self._stop_feed.set()
        self.feeder.join()
        self.node.stop()
        self.executor.shutdown()
        self.node.destroy_node()
        self.probe.destroy_node()
        rclpy.try_shutdown()
        self.spinner.join(timeout=2.0)
        self.faults.close()
