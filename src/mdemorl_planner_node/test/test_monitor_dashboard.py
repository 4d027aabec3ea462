"""`mdemorl monitor`: the dashboard's rendering of known messages, and the real command (`mdemorl
monitor`, which hands over to mdemorl_monitor) attached to a graph, run headless in a tmux pane
whose captured text must show the published values."""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rich.console import Console

from mdemorl_msgs.msg import ControllerPhase, TrackingState, TrainingStatus
from mdemorl_planner_node.monitor_dashboard import DashboardState, sparkline
from mdemorl_planner_node.monitor_topics import MONITOR_TOPICS
from mdemorl_ros.ros_testing import RosHarness

pytestmark = pytest.mark.ros


def status(epoch: int, train: float, evaluation: float) -> TrainingStatus:
    return TrainingStatus(
        epoch=epoch,
        env_steps=1000 * epoch,
        train_return=train,
        eval_return=evaluation,
        model_loss=0.25,
        critic_loss=1.5,
        actor_loss=-3.0,
        alpha=0.05,
        horizon=5,
        mpc_batch=100,
        d_env=1000 * epoch,
        d_mpc=7777,
    )


def diagnostics() -> DiagnosticArray:
    def entry(name: str, level: bytes, message: str, values: dict[str, str]) -> DiagnosticStatus:
        kvs = [KeyValue(key=k, value=v) for k, v in values.items()]
        return DiagnosticStatus(name=name, level=level, message=message, values=kvs)

    return DiagnosticArray(
        status=[
            entry(
                "trainer_node",
                DiagnosticStatus.WARN,
                "12 stale transitions",
                {
                    "epoch": "3",
                    "epochs": "5",
                    "phase": "collecting",
                    "epoch_transitions": "250",
                    "steps_per_epoch": "1000",
                    "policy_version": "3",
                },
            ),
            entry(
                "torque_controller_node",
                DiagnosticStatus.OK,
                "acting, policy v3",
                {
                    "rate_hz": "499.8",
                    "period_p99_ms": "2.013",
                    "period_max_ms": "3.5",
                    "missed": "4",
                },
            ),
        ]
    )


def tracking(error: float) -> TrackingState:
    return TrackingState(
        desired_position=[0.01, -0.3],
        actual_position=[0.0125, -0.3034],
        tracking_error=error,
        reward=0.875,
    )


def phase() -> ControllerPhase:
    return ControllerPhase(
        phase="acting",
        protocol="episodic",
        policy_version=3,
        episode=4,
        phase_steps=250,
        acting_steps=1000,
    )


EXPECTED = (
    "epoch 3/5",
    "250/1000 steps",
    "12 stale transitions",
    "812.5",
    "640.2",
    "torque_controller_node",
    "499.8",
    "2.01",
    "error 4.2 mm",
    "reward 0.875",
    "controller acting",
    "D_MPC 7777",
)


def test_sparkline_scales_to_the_range() -> None:
    assert sparkline([0.0, 1.0, 2.0], 10) == "▁▅█"
    assert sparkline([3.0, 3.0], 10) == "▁▁"
    assert sparkline([1.0, math.nan, 2.0], 3) == "▁ █"
    assert sparkline(list(range(100)), 5) == "▁▃▅▆█"


def test_rendered_dashboard_shows_the_values() -> None:
    state = DashboardState()
    state.on_status(status(2, 640.2, 700.0))
    state.on_status(status(3, 812.5, 900.0))
    state.on_phase(phase())
    state.on_diagnostics(diagnostics())
    for i in range(30):
        state.on_tracking(tracking(0.001 * (i % 10) if i < 29 else 0.0042))
    console = Console(record=True, width=120, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(state.render())
    text = console.export_text()
    for expected in EXPECTED:
        assert expected in text, expected
    assert len(state.errors) == 3  # 30 messages in blocks of 10


@pytest.fixture()
def tmux_socket() -> Iterator[str]:
    tmux = shutil.which("tmux")
    assert tmux is not None, "tmux is needed (apt-get install tmux)"
    socket = f"mdemorl_monitor_test_{id(object())}"
    yield socket
    subprocess.run([tmux, "-L", socket, "kill-server"], capture_output=True)


def test_monitor_command_in_tmux(tmux_socket: str) -> None:
    harness = RosHarness(salt=73)
    try:
        probe = harness.node("dashboard_feed")
        publishers = {
            topic: probe.create_publisher(type(msg), topic, MONITOR_TOPICS[topic].qos)
            for topic, msg in (
                ("/mdemorl/training_status", TrainingStatus()),
                ("/mdemorl/controller_phase", ControllerPhase()),
                ("/mdemorl/tracking", TrackingState()),
                ("/diagnostics", DiagnosticArray()),
            )
        }
        variables = " ".join(f"{k}={v}" for k, v in harness.env.items() if k.startswith("ROS_"))
        mdemorl = shutil.which("mdemorl")
        assert mdemorl is not None, "the workspace's mdemorl command is not on PATH"
        command = f"env {variables} {mdemorl} monitor --duration 25"
        subprocess.run(
            ["tmux", "-L", tmux_socket, "new-session", "-d", "-x", "130", "-y", "60", command],
            check=True,
            env=harness.env,
        )
        assert harness.spin_until(
            lambda: all(p.get_subscription_count() > 0 for p in publishers.values()), timeout=15.0
        ), "the dashboard did not subscribe"
        publishers["/mdemorl/training_status"].publish(status(2, 640.2, 700.0))
        publishers["/mdemorl/training_status"].publish(status(3, 812.5, 900.0))
        pane = ""
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            publishers["/mdemorl/controller_phase"].publish(phase())
            publishers["/diagnostics"].publish(diagnostics())
            for _ in range(10):
                publishers["/mdemorl/tracking"].publish(tracking(0.0042))
            harness.spin_for(0.3)
            pane = subprocess.run(
                ["tmux", "-L", tmux_socket, "capture-pane", "-p"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            if all(expected in pane for expected in EXPECTED):
                break
        missing = [expected for expected in EXPECTED if expected not in pane]
        assert not missing, f"missing {missing} in the pane:\n{pane}"
    finally:
        harness.close()
