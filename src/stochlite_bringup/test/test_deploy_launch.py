"""deploy.launch.py runs a finished run's actor on the simulated leg with no trainer."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mdemorl_core.config import build_train_config
from mdemorl_core.envs.leg2r_task import ACTION_DIM, OBSERVATION_DIM
from mdemorl_core.training.online import OnlineTrainer
from stochlite_bringup.ros_test_env import isolated_ros_env

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def finished_run(run_dir: Path) -> None:
    """A one-epoch SAC run trained on random transitions (what deploy reads: a checkpoint)."""
    config = build_train_config(
        {"env_id": "Leg2R-v0", "algo": "sac", "steps_per_epoch": 20, "epochs": 1}
    )
    trainer = OnlineTrainer(config, run_dir, OBSERVATION_DIM, ACTION_DIM)
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs = rng.uniform(-1, 1, OBSERVATION_DIM)
        trainer.add(obs, rng.uniform(-1, 1, ACTION_DIM), 0.1, obs, False, False)
    trainer.run_epoch()


def test_deploy_acts_with_the_runs_actor_and_no_trainer(tmp_path: Path) -> None:
    finished_run(tmp_path / "run")
    env = isolated_ros_env(tmp_path / "ros_log", salt=29)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from mdemorl_msgs.msg import Transition

    rclpy.init()
    probe = rclpy.create_node("deploy_probe")
    transitions: list[Transition] = []
    reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    probe.create_subscription(Transition, "/mdemorl/transition", transitions.append, reliable)
    launch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stochlite_bringup.runner",
            "stochlite_bringup",
            "deploy.launch.py",
            f"run_dir:={tmp_path / 'run'}",
            "realtime_priority:=0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60.0
        while len(transitions) < 50 and time.monotonic() < deadline:
            assert launch.poll() is None
            rclpy.spin_once(probe, timeout_sec=0.05)
        launch.send_signal(signal.SIGINT)
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
    assert launch.returncode == 0, output
    exits = dict(re.findall(r"\[launch_runner\] (\S+) exited with (-?\d+)", output))
    assert exits == {"sim_robot_node": "0", "torque_controller_node": "0", "policy_publisher": "0"}
    assert len(transitions) >= 50, output
    assert {t.policy_version for t in transitions} == {1}  # the checkpoint's epoch
    assert "trainer_node" not in output
