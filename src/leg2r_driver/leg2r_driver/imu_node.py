"""imu_node: sensor_msgs/Imu on /imu/data from a BNO055 over UART, health on /diagnostics.

``port: sim`` runs a simulated BNO055 on a pseudo-terminal inside the node (a level, still
sensor: identity orientation, zero rate, gravity on +z), so the whole UART path is exercised
without hardware. Covariances are diagonal from the ``*_stddev`` parameters (defaults derived
from the datasheet noise densities at ~100 Hz bandwidth); a negative stddev publishes -1 in
element 0, REP-145's "not provided". Frame id ``imu_link`` (REP-145); units REP-103.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import Imu

from leg2r_driver.bno055 import BNO055, BNO055Error, Calibration
from leg2r_driver.bno055_sim import SimulatedBNO055
from mdemorl_core.limits import Limits
from mdemorl_ros.node_parameters import RATE_HZ, REQUIRED, STDDEV, Rule
from mdemorl_ros.ros_common import (
    DIAGNOSTICS_TOPIC,
    IMU_TOPIC,
    MONITOR_QOS,
    STATE_QOS,
    declare,
    diagnostic_status,
    run_node,
)

DEFAULTS: dict[str, object] = {
    "port": "/dev/ttyUSB0",
    "baudrate": 115200,
    "rate": 100.0,
    "frame_id": "imu_link",
    "orientation_stddev": 0.035,  # rad (~2 deg fused attitude accuracy)
    "angular_velocity_stddev": 0.0025,  # rad/s (0.014 deg/s/sqrt(Hz) at 100 Hz)
    "linear_acceleration_stddev": 0.015,  # m/s^2 (150 ug/sqrt(Hz) at 100 Hz)
    "diagnostics_rate": 1.0,
    "max_consecutive_errors": 10,
}
PARAMETER_RULES: dict[str, Rule] = {
    "port": REQUIRED,
    "baudrate": Limits(1200, 4_000_000),
    "rate": Limits(0.0, 1000.0, low_open=True),
    "frame_id": REQUIRED,
    "orientation_stddev": STDDEV,
    "angular_velocity_stddev": STDDEV,
    "linear_acceleration_stddev": STDDEV,
    "diagnostics_rate": RATE_HZ,
    "max_consecutive_errors": Limits(1, 1_000_000),
}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


def diagonal_covariance(stddev: float) -> list[float]:
    """Row-major 3x3 covariance; [-1, 0, ...] when ``stddev`` < 0 (not provided)."""
    if stddev < 0.0:
        return [-1.0] + [0.0] * 8
    variance = stddev * stddev
    return [variance, 0.0, 0.0, 0.0, variance, 0.0, 0.0, 0.0, variance]


class ImuNode(Node):
    def __init__(self) -> None:
        super().__init__("imu_node")
        s = declare(self, DEFAULTS, PARAMETER_RULES)
        self.settings = s
        self.simulator: SimulatedBNO055 | None = None
        port_name = s["port"]
        if port_name == "sim":
            self.simulator = SimulatedBNO055()
            port_name = self.simulator.port_name
        import serial  # pyserial; imported here so the module loads on machines without it

        self.serial = serial.Serial(port_name, s["baudrate"], timeout=0.05)
        self.device = BNO055(self.serial)
        self.device.initialize()
        self.covariances = [
            diagonal_covariance(s[k])
            for k in ("orientation_stddev", "angular_velocity_stddev", "linear_acceleration_stddev")
        ]
        self.samples = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_error = ""
        self.imu_pub = self.create_publisher(Imu, IMU_TOPIC, STATE_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, MONITOR_QOS)
        self.create_timer(1.0 / s["rate"], self.publish_sample)
        self.create_timer(1.0 / s["diagnostics_rate"], self.publish_diagnostics)
        self.get_logger().info(f"BNO055 on {s['port']} in NDOF mode, {s['rate']} Hz")

    def publish_sample(self) -> None:
        try:
            sample = self.device.sample()
        except BNO055Error as error:
            self.failures += 1
            self.consecutive_failures += 1
            self.last_error = str(error)
            return
        self.consecutive_failures = 0
        self.samples += 1
        msg = Imu()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.settings["frame_id"]
        x, y, z, w = sample.orientation_xyzw.tolist()
        msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = x, y, z, w
        gx, gy, gz = sample.angular_velocity.tolist()
        msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = gx, gy, gz
        ax, ay, az = sample.linear_acceleration.tolist()
        msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = ax, ay, az
        msg.orientation_covariance = self.covariances[0]
        msg.angular_velocity_covariance = self.covariances[1]
        msg.linear_acceleration_covariance = self.covariances[2]
        self.imu_pub.publish(msg)

    def publish_diagnostics(self) -> None:
        values: dict[str, object] = {
            "samples": self.samples,
            "read_failures": self.failures,
            "protocol_retries": self.device.errors,
        }
        level, message = DiagnosticStatus.OK, "fusion running"
        try:
            calibration = self.device.calibration()
            status, error = self.device.system_status()
        except BNO055Error as exc:
            calibration, status, error = Calibration(0, 0, 0, 0), -1, -1
            self.last_error = str(exc)
            level, message = DiagnosticStatus.ERROR, f"no answer: {exc}"
        values.update(
            calibration_system=calibration.system,
            calibration_gyroscope=calibration.gyroscope,
            calibration_accelerometer=calibration.accelerometer,
            calibration_magnetometer=calibration.magnetometer,
            sys_status=status,
            sys_error=error,
            last_error=self.last_error,
        )
        if level == DiagnosticStatus.OK:
            if status != 5 or error != 0:
                level, message = DiagnosticStatus.ERROR, f"sys_status {status}, sys_err {error}"
            elif self.consecutive_failures >= self.settings["max_consecutive_errors"]:
                level, message = DiagnosticStatus.ERROR, "reads failing"
            elif calibration.system < 3 or calibration.gyroscope < 3:
                level, message = DiagnosticStatus.WARN, "not fully calibrated"
        array = DiagnosticArray(
            status=[
                diagnostic_status("imu_node: bno055", self.settings["port"], level, message, values)
            ]
        )
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)

    def close(self) -> None:
        self.serial.close()
        if self.simulator is not None:
            self.simulator.close()


def _shutdown(node: Node) -> None:
    assert isinstance(node, ImuNode)
    node.close()


def main(args: list[str] | None = None) -> None:
    run_node(ImuNode, args, on_shutdown=_shutdown)


if __name__ == "__main__":
    main()
