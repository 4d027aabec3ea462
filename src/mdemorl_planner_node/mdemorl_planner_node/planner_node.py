"""planner_node — serves DMD-MPC plans (``~/plan``, mdemorl_msgs/srv/PlanActions) from the latest
checkpoint of a training run, reloading it whenever the trainer writes a new one.

Parameters:
  run_dir (string, required): the run directory (``mdemorl train --out`` or the trainer node's).
  default_horizon (int, 0): horizon when a request leaves it 0; 0 = the run's
    ``agent.act_horizon``, the acting planner's H (what the ``*_mpc`` study rows evaluated).
  reload_period (double, 2.0 s): how often the checkpoint file is checked for a newer version.
  torch_threads (int, 1): torch's intra-op threads for planning. A one-state plan is a chain of
    small matrix products: measured on the 2-core development machine with one core busy
    (in-process, interleaved, H=5, M=100), 1 thread planned in 14.9 ms p50 / 25.8 ms p99 and 2
    threads in 28.2 / 238 ms, the threads waiting on each other behind the busy core.
  diagnostics_rate (double, 1.0 Hz): ``/diagnostics`` status ``planner_node``: loaded version,
    checkpoint age, plans served and failed, plan latency p50/p99/max over the last
    ``LATENCY_WINDOW`` plans; WARN while nothing is loaded or when p99 exceeds
    ``latency_budget`` (double, 0.01 s: a 100 Hz controller's policy step), ERROR when the last
    reload failed.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy._rclpy_pybind11 import RCLInvalidROSArgsError
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from mdemorl_core.limits import Limits
from mdemorl_core.planning.service import PlanningService, PlanningUnavailable
from mdemorl_core.training.checkpoint import checkpoint_path
from mdemorl_core.training.run_dir import RunPaths
from mdemorl_msgs.srv import PlanActions
from mdemorl_ros.node_parameters import PERIOD_S, RATE_HZ, REQUIRED, Rule
from mdemorl_ros.ros_common import DIAGNOSTICS_TOPIC, MONITOR_QOS, declare, diagnostic_status

LATENCY_WINDOW = 500
DEFAULTS: dict[str, object] = {
    "run_dir": "",
    "default_horizon": 0,
    "reload_period": 2.0,
    "torch_threads": 1,
    "diagnostics_rate": 1.0,
    "latency_budget": 0.01,
}
PARAMETER_RULES: dict[str, Rule] = {
    "run_dir": REQUIRED,
    "default_horizon": Limits(0, 10_000),
    "reload_period": PERIOD_S,
    "torch_threads": Limits(1, 1024),
    "diagnostics_rate": RATE_HZ,
    "latency_budget": PERIOD_S,
}
"""The value rules of DEFAULTS (node_parameters); ros_common.declare enforces them."""


class PlannerNode(Node):
    def __init__(self) -> None:
        super().__init__("planner_node")
        s = declare(self, DEFAULTS, PARAMETER_RULES)
        self.run_dir = Path(str(s["run_dir"]))
        self.default_horizon = int(s["default_horizon"])
        torch.set_num_threads(int(s["torch_threads"]))
        reload_period = float(s["reload_period"])
        diagnostics_rate = float(s["diagnostics_rate"])
        self.latency_budget = float(s["latency_budget"])
        self.latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self.counts = {"plans": 0, "failed": 0}
        self.reload_error = ""
        self.checkpoint_file = checkpoint_path(RunPaths(self.run_dir).checkpoint_dir)
        self.service: PlanningService | None = None
        self.unavailable_reason = "no checkpoint loaded yet"
        self.loaded_mtime: float | None = None
        self.lock = threading.Lock()
        self.create_service(PlanActions, "~/plan", self.on_plan)
        self.create_timer(
            reload_period, self.reload_if_newer, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self.diag_pub = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, MONITOR_QOS)
        self.create_timer(
            1.0 / diagnostics_rate,
            self.publish_diagnostics,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self.reload_if_newer()

    def reload_if_newer(self) -> None:
        try:
            mtime = self.checkpoint_file.stat().st_mtime
        except FileNotFoundError:
            self.unavailable_reason = f"no checkpoint at {self.checkpoint_file} yet"
            return
        if mtime == self.loaded_mtime:
            return
        try:
            service = PlanningService.from_run(self.run_dir, self.default_horizon)
        except (PlanningUnavailable, ValueError, KeyError, OSError) as error:
            self.unavailable_reason = self.reload_error = str(error)
            self.get_logger().warning(f"cannot plan with {self.run_dir}: {error}")
            return
        with self.lock:
            self.service = service
        self.loaded_mtime = mtime
        self.reload_error = ""
        self.get_logger().info(f"planning with checkpoint of epoch {service.version}")

    def on_plan(
        self, request: PlanActions.Request, response: PlanActions.Response
    ) -> PlanActions.Response:
        started = time.perf_counter()
        with self.lock:
            service = self.service
        if service is None:
            self.counts["failed"] += 1
            response.success = False
            response.message = self.unavailable_reason
            return response
        try:
            plan = service.plan(
                np.asarray(request.observation, dtype=np.float32),
                int(request.horizon),
                int(request.num_samples),
                float(request.elite_fraction),
            )
        except ValueError as error:
            self.counts["failed"] += 1
            response.success = False
            response.message = str(error)
            return response
        response.actions = plan.actions.reshape(-1).tolist()
        response.horizon, response.action_dim = plan.actions.shape
        response.predicted_return = plan.predicted_return
        response.plan_seconds = time.perf_counter() - started
        self.latencies.append(response.plan_seconds)
        self.counts["plans"] += 1
        response.model_version = response.policy_version = service.version
        response.success = True
        return response

    def publish_diagnostics(self) -> None:
        service = self.service
        latencies = np.array(self.latencies) if self.latencies else np.full(1, np.nan)
        p99 = float(np.percentile(latencies, 99))
        age = time.time() - self.loaded_mtime if self.loaded_mtime is not None else float("nan")
        if self.reload_error:
            level, message = DiagnosticStatus.ERROR, f"reload failed: {self.reload_error}"
        elif service is None:
            level, message = DiagnosticStatus.WARN, self.unavailable_reason
        elif p99 > self.latency_budget:
            level = DiagnosticStatus.WARN
            message = f"plan p99 {1e3 * p99:.1f} ms > {1e3 * self.latency_budget:.1f} ms"
        else:
            level, message = DiagnosticStatus.OK, f"planning with epoch {service.version}"
        values = {
            "version": service.version if service is not None else -1,
            "checkpoint_age_s": age,
            **self.counts,
            "latency_p50_ms": 1e3 * float(np.percentile(latencies, 50)),
            "latency_p99_ms": 1e3 * p99,
            "latency_max_ms": 1e3 * float(np.max(latencies)),
            "latency_budget_ms": 1e3 * self.latency_budget,
        }
        array = DiagnosticArray(
            status=[diagnostic_status("planner_node", "mdemorl", level, message, values)]
        )
        array.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(array)


def main(args: list[str] | None = None) -> None:
    try:
        rclpy.init(args=args)
        node = PlannerNode()
    except (ValueError, RCLInvalidROSArgsError) as error:
        print(f"planner_node: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
