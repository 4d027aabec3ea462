"""Servo-loop period of servo_driver_node (on its simulated B3M bus) or stochlite_sim_node.

    python -m stochlite_driver.loop_bench {driver|sim} [--seconds 30] [--warmup 8]

Starts the node in its own process (isolated ROS domain), streams one-point JointTrajectory
targets (a 1 Hz, 0.1 rad sine about a standing pose) at ~200 Hz for ``--seconds``, stops the node
and prints one JSON line: the loop statistics the node wrote (period p50/p99/max in ms, missed
deadlines = periods > 2x nominal, reanchors), the nominal period and the machine's load average.
The statistics cover the node's whole run, start-up included (the warm-up only delays targets).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from trajectory_msgs.msg import JointTrajectory

from mdemorl_ros.ros_common import STATE_QOS
from mdemorl_ros.ros_testing import RosHarness
from stochlite_driver.ros_io import trajectory_message

NODES = {
    "driver": ("stochlite_driver.servo_driver_node", {"simulate_bus": True}, 1.0 / 200.0),
    "sim": ("stochlite_driver.stochlite_sim_node", {}, 1.0 / 240.0),
}
STANDING = np.array([0.05, 0.6, -1.2] * 4)  # rad


def run(kind: str, seconds: float, warmup: float) -> dict[str, object]:
    module, parameters, nominal = NODES[kind]
    harness = RosHarness(salt=71)
    statistics = Path(tempfile.mkdtemp(prefix="stochlite_bench_")) / "loop.json"
    try:
        node = harness.node("loop_bench")
        publisher = node.create_publisher(JointTrajectory, "/joint_targets", STATE_QOS)
        process = harness.start(module, {**parameters, "statistics_file": str(statistics)})
        harness.spin_for(warmup)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            goal = STANDING + 0.1 * np.sin(2.0 * np.pi * time.monotonic())
            publisher.publish(trajectory_message(goal, node.get_clock().now().to_msg()))
            harness.executor.spin_once(timeout_sec=0.005)
        code = harness.terminate(process)
    finally:
        harness.close()
    record = json.loads(statistics.read_text())
    keys = ("ticks", "rate_hz", "period_p50_ms", "period_p99_ms", "period_max_ms", "missed")
    return {
        "node": module.rsplit(".", 1)[-1],
        "nominal_period_ms": 1e3 * nominal,
        "seconds": seconds,
        **{key: record[key] for key in keys},
        "reanchors": record["reanchors"],
        "exit_code": code,
        "load_average_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(NODES))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    args = parser.parse_args()
    print(json.dumps(run(args.kind, args.seconds, args.warmup)))


if __name__ == "__main__":
    main()
