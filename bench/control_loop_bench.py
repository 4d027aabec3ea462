"""Benchmark of the 500 Hz torque-control loop: controller and simulated robot in two processes.

Starts ``sim_robot_node`` and ``torque_controller_node`` (random safe-default actions, so every
policy step also publishes a transition) as separate processes in an isolated ROS domain, lets them
run for ``--seconds`` after a warm-up, stops the controller with SIGINT and reads the loop
statistics it writes at shutdown: achieved rate, period p50/p99/max and missed deadlines
(periods > 2x nominal). Prints the results as JSON and writes ``bench/results/control_loop.json``.

Where the time of long periods went: the controller's ``longest_periods`` (work, sleep overrun,
CPU time during the sleep, see ``loop_timing.LongPeriod``), its garbage collections, the sim
robot's longest periods in the same window (both loops slow at once: the machine), the VM's CPU
steal, and ``wakeup_probe``, a ROS-free SCHED_FIFO thread that only sleeps to 2 ms deadlines
alongside (its late wake-ups are the platform's floor). The controller's statistics window is
exactly ``--seconds`` long (``statistics_warmup``/``statistics_duration``), so neither start-up
nor shutdown is in it.

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
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mdemorl_msgs.msg import Transition
from mdemorl_ros.ros_common import TRANSITION_QOS
from mdemorl_ros.ros_testing import RosHarness

RESULTS = Path(__file__).resolve().parent / "results" / "control_loop.json"
WARMUP = 2.0
PROBE_PERIOD = 0.002  # s, the wake-up probe's period (the loop's)
CLOSE_MARGIN = 1.0  # s; stop the controller only after its statistics window has closed


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


def scheduling_line(log: str, marker: str = "loop thread:") -> str:
    """The controller's report of its loop (or, with ``marker="middleware threads:"``, its DDS)
    threads' scheduling policy."""
    for line in log.splitlines():
        if marker in line:
            return line.split(marker, 1)[1].strip()
    return "unknown"


def steal_seconds() -> float:
    """CPU time the hypervisor gave to others while this VM wanted it (``/proc/stat`` steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def wakeup_probe(seconds: float, priority: int, out: Path) -> None:
    """Platform baseline without ROS: a thread (SCHED_FIFO ``priority`` unless 0) that only
    sleeps to 2 ms deadlines for ``seconds``; writes its late wake-ups (> 1 ms) as
    ``{"wakeups": n, "late": [[clock s, late ms], ...]}``. A loop cannot be more punctual than
    the kernel wakes it: late wake-ups here at the moments the controller had long periods mean
    the machine, not the loop, lost that time."""
    if priority:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    late: list[list[float]] = []
    wakeups = 0
    deadline = time.perf_counter() + PROBE_PERIOD
    end = deadline + seconds
    while deadline < end:
        remaining = deadline - time.perf_counter()
        if remaining > 0.0:
            time.sleep(remaining)
        now = time.perf_counter()
        wakeups += 1
        if now - deadline > 1e-3:
            late.append([now, 1e3 * (now - deadline)])
        deadline = now + PROBE_PERIOD if now - deadline > PROBE_PERIOD else deadline + PROBE_PERIOD
    out.write_text(json.dumps({"wakeups": wakeups, "late": late}))


def probe_in_window(probe: dict, controller: dict, seconds: float) -> dict[str, object]:
    """The probe's late wake-ups inside the controller's window, and how many of the
    controller's longest periods above 2x nominal overlap one of them."""
    start = controller.get("window_start_clock", 0.0)
    late = [(t, ms) for t, ms in probe.get("late", []) if start <= t <= start + seconds]
    misses = [p for p in controller.get("longest_periods", []) if p["period_ms"] > 4.0]
    overlapping = sum(
        any(start + p["at_s"] - 1e-3 * p["period_ms"] <= t <= start + p["at_s"] for t, _ in late)
        for p in misses
    )
    return {
        "wakeups": probe.get("wakeups", 0),
        "late_over_1ms": len(late),
        "late_over_2ms": sum(ms > 2.0 for _, ms in late),
        "max_late_ms": max((ms for _, ms in late), default=0.0),
        "longest_misses_overlapping_probe_late": f"{overlapping} of {len(misses)}",
    }


def sim_periods_in_window(controller: dict, sim: dict) -> list[dict]:
    """The sim robot's longest loop periods that fall in the controller's statistics window,
    their ``at_s`` moved to the controller's time axis: a long period of both loops at the same
    moment (two processes) points at the machine, not at either loop."""
    if "window_start_clock" not in controller or "window_start_clock" not in sim:
        return []
    shift = sim["window_start_clock"] - controller["window_start_clock"]
    moved = [{**p, "at_s": p["at_s"] + shift} for p in sim.get("longest_periods", [])]
    return [p for p in moved if p["at_s"] >= 0.0]


def run_scenario(name: str, seconds: float, strategy: str, priority: int) -> dict[str, object]:
    harness = RosHarness(salt=61)
    work_dir = Path(tempfile.mkdtemp(prefix="control_loop_"))
    stats_file, sim_stats_file = work_dir / "stats.json", work_dir / "sim_stats.json"
    try:
        sim = harness.start(
            "leg2r_driver.sim_robot_node",
            {
                "publish_imu": True,
                "realtime_priority": priority,
                "statistics_file": str(sim_stats_file),
            },
        )
        wait_for_line(harness, sim, "simulation at")
        load = SCENARIOS[name](harness)
        controller = harness.start(
            "leg2r_driver.torque_controller_node",
            {
                "default_action": "random",
                "statistics_warmup": WARMUP,
                "statistics_duration": seconds,
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
        steal_before = steal_seconds()
        probe_file = work_dir / "probe.json"
        probe_process = subprocess.Popen(
            [sys.executable, __file__, "--wakeup-probe", str(probe_file)]
            + ["--seconds", str(WARMUP + seconds + CLOSE_MARGIN)]
            + ["--realtime-priority", str(priority)]
        )
        time.sleep(WARMUP + seconds + CLOSE_MARGIN)
        steal = steal_seconds() - steal_before
        probe_process.wait(timeout=30.0)
        harness.terminate(controller, signal.SIGINT)
        for process in load:
            harness.terminate(process)
        harness.terminate(sim, signal.SIGINT)
        if not stats_file.exists():
            raise RuntimeError(f"no statistics written:\n{harness.output(controller)}")
        record = json.loads(stats_file.read_text())
        sim_record = json.loads(sim_stats_file.read_text()) if sim_stats_file.exists() else {}
        probe_record = json.loads(probe_file.read_text()) if probe_file.exists() else {}
        scheduling = scheduling_line(harness.output(controller))
        middleware = scheduling_line(harness.output(controller), "middleware threads:")
    finally:
        harness.close()
    return {
        "rate_hz": record["rate_hz"],
        "period_p50_ms": record["period_p50_ms"],
        "period_p99_ms": record["period_p99_ms"],
        "period_max_ms": record["period_max_ms"],
        "missed": record["missed"],
        "window_closed": record.get("window_closed", False),
        "seconds": seconds,
        "executor_strategy": strategy,
        "realtime_priority": priority,
        "scheduling": scheduling,
        "middleware_scheduling": middleware,
        "transitions": record["transitions"],
        "skipped_no_state": record["skipped_no_state"],
        "cpu_count": os.cpu_count() or 0,
        "load_average_1min": os.getloadavg()[0],
        "steal_s": steal,
        "longest_periods": record.get("longest_periods", []),
        "gc": record.get("gc", {}),
        "sim_longest_periods": sim_periods_in_window(record, sim_record),
        "wakeup_probe": probe_in_window(probe_record, record, seconds),
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
    parser.add_argument("--wakeup-probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.wakeup_probe is not None:
        wakeup_probe(args.seconds, args.realtime_priority, args.wakeup_probe)
        return
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
