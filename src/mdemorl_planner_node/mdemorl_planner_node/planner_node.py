"""planner_node — serves DMD-MPC plans (``~/plan``, mdemorl_msgs/srv/PlanActions) from the latest
checkpoint of a training run, reloading it whenever the trainer writes a new one.

Parameters:
  run_dir (string, required): the run directory (``mdemorl train --out`` or the trainer node's).
  default_horizon (int, 10): horizon when a request leaves it 0.
  reload_period (double, 2.0 s): how often the checkpoint file is checked for a newer version.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from mdemorl_core.planning.service import PlanningService, PlanningUnavailable
from mdemorl_core.training.checkpoint import checkpoint_path
from mdemorl_core.training.run_dir import RunPaths
from mdemorl_msgs.srv import PlanActions


class PlannerNode(Node):
    def __init__(self) -> None:
        super().__init__("planner_node")
        run_dir = self.declare_parameter("run_dir", "").value
        if not run_dir:
            raise ValueError("parameter 'run_dir' is required (the training run to plan with)")
        self.run_dir = Path(str(run_dir))
        self.default_horizon = int(self.declare_parameter("default_horizon", 10).value)
        reload_period = float(self.declare_parameter("reload_period", 2.0).value)
        self.checkpoint_file = checkpoint_path(RunPaths(self.run_dir).checkpoint_dir)
        self.service: PlanningService | None = None
        self.unavailable_reason = "no checkpoint loaded yet"
        self.loaded_mtime: float | None = None
        self.lock = threading.Lock()
        self.create_service(PlanActions, "~/plan", self.on_plan)
        self.create_timer(
            reload_period, self.reload_if_newer, callback_group=MutuallyExclusiveCallbackGroup()
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
            self.unavailable_reason = str(error)
            self.get_logger().warning(f"cannot plan with {self.run_dir}: {error}")
            return
        with self.lock:
            self.service = service
        self.loaded_mtime = mtime
        self.get_logger().info(f"planning with checkpoint of epoch {service.version}")

    def on_plan(
        self, request: PlanActions.Request, response: PlanActions.Response
    ) -> PlanActions.Response:
        started = time.perf_counter()
        with self.lock:
            service = self.service
        if service is None:
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
            response.success = False
            response.message = str(error)
            return response
        response.actions = plan.actions.reshape(-1).tolist()
        response.horizon, response.action_dim = plan.actions.shape
        response.predicted_return = plan.predicted_return
        response.plan_seconds = time.perf_counter() - started
        response.model_version = response.policy_version = service.version
        response.success = True
        return response


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    try:
        node = PlannerNode()
    except ValueError as error:
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
