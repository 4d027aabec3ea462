"""Benchmark of the 500 Hz torque-control loop: controller and simulated robot in two processes.

Starts ``sim_robot_node`` and ``torque_controller_node`` (random safe-default actions, so every
policy step also publishes a transition) as separate processes in an isolated ROS domain, lets them
run for ``--seconds`` after a warm-up, stops the controller with SIGINT and reads the loop
statistics it writes at shutdown: achieved rate, period p50/p99/max and missed deadlines
(periods > 2x nominal). Prints the results as JSON and writes ``bench/results/control_loop.json``.

Scenarios are entries of ``SCENARIOS`` (name -> function returning extra processes to run
alongside); "idle" runs nothing else. A "loaded" scenario (a trainer epoch running concurrently)
plugs in there.

Run with the workspace sourced: ``python bench/control_loop_bench.py [--seconds 30] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from leg2r_driver.ros_common import TRANSITION_QOS
from leg2r_driver.ros_testing import RosHarness
from mdemorl_msgs.msg import Transition

RESULTS = Path(__file__).resolve().parent / "results" / "control_loop.json"
WARMUP = 2.0


def no_load(harness: RosHarness) -> list[subprocess.Popen[bytes]]:
    return []


SCENARIOS: dict[str, Callable[[RosHarness], list[subprocess.Popen[bytes]]]] = {"idle": no_load}


def wait_for_line(
    harness: RosHarness, process: subprocess.Popen[bytes], text: str, timeout: float = 30.0
) -> None:
    """Wait until ``text`` shows up in the process's log (it is up and running)."""
    deadline = time.monotonic() + timeout
    while text not in harness.output(process):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"process did not start:\n{harness.output(process)}")
        time.sleep(0.1)


def scheduling_line(log: str) -> str:
    """The controller's report of its loop thread's scheduling policy."""
    for line in log.splitlines():
        if "loop thread:" in line:
            return line.split("loop thread:", 1)[1].strip()
    return "unknown"


def run_scenario(
    name: str, seconds: float, strategy: str, priority: int
) -> dict[str, float | int | str]:
    harness = RosHarness(salt=61)
    stats_file = Path(tempfile.mkdtemp(prefix="control_loop_")) / "stats.json"
    try:
        sim = harness.start(
            "leg2r_driver.sim_robot_node", {"publish_imu": True, "realtime_priority": priority}
        )
        wait_for_line(harness, sim, "simulation at")
        load = SCENARIOS[name](harness)
        controller = harness.start(
            "leg2r_driver.torque_controller_node",
            {
                "default_action": "random",
                "statistics_warmup": WARMUP,
                "statistics_file": str(stats_file),
                "executor_strategy": strategy,
                "realtime_priority": priority,
            },
        )
        wait_for_line(harness, controller, "control at")
        probe = harness.node("bench_probe")
        transitions: list[Transition] = []
        probe.create_subscription(
            Transition, "/mdemorl/transition", transitions.append, TRANSITION_QOS
        )
        if not harness.spin_until(lambda: len(transitions) > 0, 30.0):
            raise RuntimeError(f"no transitions:\n{harness.output(controller)}")
        time.sleep(WARMUP + seconds)
        harness.terminate(controller, signal.SIGINT)
        for process in load:
            harness.terminate(process)
        if not stats_file.exists():
            raise RuntimeError(f"no statistics written:\n{harness.output(controller)}")
        record = json.loads(stats_file.read_text())
        scheduling = scheduling_line(harness.output(controller))
    finally:
        harness.close()
    return {
        "rate_hz": record["rate_hz"],
        "period_p50_ms": record["period_p50_ms"],
        "period_p99_ms": record["period_p99_ms"],
        "period_max_ms": record["period_max_ms"],
        "missed": record["missed"],
        "seconds": seconds,
        "executor_strategy": strategy,
        "realtime_priority": priority,
        "scheduling": scheduling,
        "transitions": record["transitions"],
        "skipped_no_state": record["skipped_no_state"],
        "cpu_count": os.cpu_count() or 0,
        "load_average_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per scenario")
    parser.add_argument("--quick", action="store_true", help="3 s per scenario (smoke test)")
    parser.add_argument("--scenarios", nargs="+", default=["idle"], choices=sorted(SCENARIOS))
    parser.add_argument("--executor", choices=["thread", "inline"], default="inline")
    parser.add_argument(
        "--realtime-priority", type=int, default=0, help="SCHED_FIFO priority of both loops"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    results = {
        name: run_scenario(name, seconds, args.executor, args.realtime_priority)
        for name in args.scenarios
    }
    text = json.dumps(results, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
