"""deploy.launch.py runs a finished run's actor on the simulated leg with no trainer."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from mdemorl_core.config import build_train_config
from mdemorl_core.envs.leg2r_task import ACTION_DIM, OBSERVATION_DIM
from mdemorl_core.training.online import OnlineTrainer
from stochlite_bringup.launch_probe import LaunchProbe, launch_exits, reliable

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
    with LaunchProbe(tmp_path, salt=29, name="deploy_probe") as probe:
        from mdemorl_msgs.msg import Transition

        transitions = probe.record(Transition, "/mdemorl/transition", reliable(1000))
        launch = probe.launch(
            "deploy.launch.py", [f"run_dir:={tmp_path / 'run'}", "realtime_priority:=0"]
        )
        probe.spin_until(lambda: len(transitions) >= 50 or launch.poll() is not None, 60.0)
        assert len(transitions) >= 50 or launch.poll() is None
        launch.send_signal(signal.SIGINT)
        output = launch.communicate(timeout=30)[0]
    assert launch.returncode == 0, output
    exits = dict(launch_exits(output))
    assert exits == {"sim_robot_node": "0", "torque_controller_node": "0", "policy_publisher": "0"}
    assert len(transitions) >= 50, output
    assert {t.policy_version for t in transitions} == {1}  # the checkpoint's epoch
    assert "trainer_node" not in output
