"""A PlanActions client calls the planner node, which plans from a training run's checkpoint."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mdemorl_core.testing import write_small_run
from stochlite_bringup.ros_test_env import isolated_ros_env

pytestmark = pytest.mark.ros


@pytest.fixture
def ros_context(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = isolated_ros_env(tmp_path / "ros_log", salt=7)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import rclpy

    rclpy.init()
    yield env
    rclpy.try_shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _call(node, client, request, timeout: float = 30.0):  # noqa: ANN001, ANN202
    import rclpy

    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    assert future.done(), "planner did not answer in time"
    return future.result()


def test_client_gets_plans_from_planner_node(tmp_path: Path, ros_context: dict[str, str]) -> None:
    import rclpy

    from mdemorl_msgs.srv import PlanActions

    run_dir = tmp_path / "run"
    server = subprocess.Popen(
        [
            "python",
            "-m",
            "mdemorl_planner_node.planner_node",
            "--ros-args",
            "-p",
            f"run_dir:={run_dir}",
            "-p",
            "default_horizon:=6",
            "-p",
            "reload_period:=0.2",
            "-p",
            "diagnostics_rate:=5.0",
        ],
        env=ros_context,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    from diagnostic_msgs.msg import DiagnosticArray

    node = rclpy.create_node("plan_client")
    diagnostics: list[DiagnosticArray] = []
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    try:
        client = node.create_client(PlanActions, "/planner_node/plan")
        assert client.wait_for_service(timeout_sec=30.0)

        empty = _call(node, client, PlanActions.Request(observation=[0.0, 0.0, 0.0]))
        assert not empty.success and "no checkpoint" in empty.message

        write_small_run(run_dir, seed=1, epoch=2)
        deadline = time.monotonic() + 30.0
        response = empty
        while not response.success and time.monotonic() < deadline:
            time.sleep(0.3)
            response = _call(node, client, PlanActions.Request(observation=[0.1, 0.2, -0.3]))
        assert response.success, response.message
        assert (response.horizon, response.action_dim) == (6, 1)
        assert len(response.actions) == 6
        assert all(-1.0 <= a <= 1.0 for a in response.actions)
        assert response.model_version == response.policy_version == 2
        # The node's first plan is Agent.plan of the same checkpoint for the same observation
        # (PlanningService: the model environment with the task reward and terminal value).
        from mdemorl_core.planning.service import PlanningService

        local = PlanningService.from_run(run_dir, default_horizon=6)
        expected = local.plan(np.array([0.1, 0.2, -0.3], dtype=np.float32))
        np.testing.assert_allclose(response.actions, expected.actions.reshape(-1), atol=1e-5)
        assert response.predicted_return == pytest.approx(expected.predicted_return, rel=1e-4)
        assert response.plan_seconds > 0.0

        override = _call(node, client, PlanActions.Request(observation=[0.0] * 3, horizon=9))
        assert override.success and override.horizon == 9 and len(override.actions) == 9

        bad = _call(node, client, PlanActions.Request(observation=[0.0, float("nan"), 0.0]))
        assert not bad.success and "NaN" in bad.message
        short = _call(node, client, PlanActions.Request(observation=[0.0]))
        assert not short.success and "3 values" in short.message

        def planner_status() -> dict[str, str]:
            latest = [s for d in diagnostics for s in d.status if s.name == "planner_node"]
            return {v.key: v.value for v in latest[-1].values} if latest else {}

        deadline = time.monotonic() + 10.0
        while planner_status().get("plans") != "2" and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        status = planner_status()
        assert status["plans"] == "2" and int(status["failed"]) >= 3
        assert status["version"] == "2" and float(status["latency_max_ms"]) > 0.0
    finally:
        node.destroy_node()
        server.terminate()
        server.communicate(timeout=30)


def test_missing_run_dir_parameter_is_a_clear_error(
    tmp_path: Path, ros_context: dict[str, str]
) -> None:
    result = subprocess.run(
        ["python", "-m", "mdemorl_planner_node.planner_node"],
        env=ros_context,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "run_dir" in result.stderr
