"""train.launch.py robot:=stochlite in simulation, episodic, 2 short epochs: every transition the
gait controller publishes is stored, each epoch's data comes from the previous policy version,
a policy version is published, every process exits 0. An independent subscriber counts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stochlite_bringup.ros_test_env import isolated_ros_env

pytestmark = [pytest.mark.ros, pytest.mark.slow]

STEPS, EPOCHS = 60, 2


def test_stochlite_episodic_sim_launch(tmp_path: Path) -> None:
    env = isolated_ros_env(tmp_path / "ros_log", salt=61)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from mdemorl_msgs.msg import PolicyUpdate, TrainingStatus, Transition

    rclpy.init()
    probe = rclpy.create_node("independent_counter")
    transitions: list[Transition] = []
    statuses: list[TrainingStatus] = []
    policies: list[int] = []
    reliable = QoSProfile(depth=10_000, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    probe.create_subscription(Transition, "/mdemorl/transition", transitions.append, reliable)
    probe.create_subscription(TrainingStatus, "/mdemorl/training_status", statuses.append, 10)
    probe.create_subscription(
        PolicyUpdate, "/mdemorl/policy", lambda m: policies.append(m.version), latched
    )
    launch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stochlite_bringup.runner",
            "stochlite_bringup",
            "train.launch.py",
            "robot:=stochlite",
            f"run_dir:={tmp_path / 'run'}",
            f"epochs:={EPOCHS}",
            f"steps_per_epoch:={STEPS}",
            "algo:=sac",
            "realtime_priority:=0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 150.0
        while launch.poll() is None and time.monotonic() < deadline:
            rclpy.spin_once(probe, timeout_sec=0.05)
        for _ in range(20):
            rclpy.spin_once(probe, timeout_sec=0.05)
        if launch.poll() is None:
            launch.kill()
        output = launch.communicate(timeout=30)[0]
    finally:
        if launch.poll() is None:
            launch.kill()
        probe.destroy_node()
        rclpy.try_shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    assert launch.returncode == 0, output[-4000:]
    exits = dict(re.findall(r"\[launch_runner\] (\S+) exited with (-?\d+)", output))
    assert exits == {
        "stochlite_sim_node": "0",
        "gait_controller_node": "0",
        "trainer_node": "0",
    }, output[-4000:]
    assert [s.epoch for s in statuses] == list(range(1, EPOCHS + 1))
    assert len(transitions) == EPOCHS * STEPS
    assert statuses[-1].d_env == len(transitions) == statuses[-1].transitions_received
    assert all(s.stale_transitions == 0 for s in statuses)
    versions = [m.policy_version for m in transitions]
    assert versions == [v for v in range(EPOCHS) for _ in range(STEPS)]
    assert policies and max(policies) >= 1
    assert all(len(m.observation) == 10 and len(m.action) == 12 for m in transitions)
