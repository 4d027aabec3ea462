"""Kill -9 the trainer in the middle of an episodic epoch, then start it again with resume:=true:
the controller finishes its phase and holds while no trainer runs, the resumed trainer continues
from the last completed epoch with all of its transitions, and asks for the next epoch's data.

The sim robot and torque controller run with the shipped YAML files (as train.launch.py starts
them), the trainer as its own process so that it can die alone.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory

from stochlite_bringup.launch_probe import LaunchProbe, latched, reliable

pytestmark = [pytest.mark.ros, pytest.mark.slow]

STEPS, EPOCHS = 100, 3


def _node(module: str, params_files: list[str], params: dict[str, str], env: dict[str, str]):  # noqa: ANN202
    cmd = [sys.executable, "-m", module, "--ros-args"]
    for path in params_files:
        cmd += ["--params-file", path]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_killed_trainer_resumes_and_the_leg_holds_meanwhile(tmp_path: Path) -> None:
    with LaunchProbe(tmp_path, salt=31, name="restart_probe") as probe:
        from mdemorl_msgs.msg import ControllerPhase, TrainingStatus, Transition

        env = probe.env
        driver = Path(get_package_share_directory("leg2r_driver")) / "config"
        bringup = Path(get_package_share_directory("stochlite_bringup")) / "config"
        sim = _node(
            "leg2r_driver.sim_robot_node",
            [str(driver / "sim_robot.yaml"), str(bringup / "training_sim_leg2r.yaml")],
            {},
            env,
        )
        controller = _node(
            "leg2r_driver.torque_controller_node",
            [
                str(driver / "torque_controller.yaml"),
                str(bringup / "training_controller_leg2r.yaml"),
            ],
            {"protocol": "episodic"},
            env,
        )
        trainer_params = {
            "run_dir": str(tmp_path / "run"),
            "config_file": str(bringup / "trainer_leg2r.yaml"),
            "algo": "sac",
            "epochs": str(EPOCHS),
            "steps_per_epoch": str(STEPS),
        }
        transitions = probe.record_timed(Transition, "/mdemorl/transition", reliable(10_000))
        phases = probe.record_timed(ControllerPhase, "/mdemorl/controller_phase", latched())
        statuses = probe.record(TrainingStatus, "/mdemorl/training_status", 10)
        processes = [sim, controller]
        try:
            first = _node("mdemorl_planner_node.trainer_node", [], trainer_params, env)
            processes.append(first)
            # Mid-epoch 2: the controller is acting with version 1 and has sent part of the phase.
            assert probe.spin_until(
                lambda: sum(m.policy_version == 1 for _, m in transitions) >= STEPS // 3, 90.0
            ), "epoch 2 never started"
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            killed_at = time.monotonic()
            # With no trainer the controller ends its phase and holds; nothing more is published.
            assert probe.spin_until(lambda: phases[-1][1].phase == "holding", 10.0)
            published_when_held = len(transitions)
            probe.spin_until(lambda: False, 3.0)
            assert len(transitions) == published_when_held
            assert phases[-1][1].phase == "holding"

            second = _node(
                "mdemorl_planner_node.trainer_node", [], {**trainer_params, "resume": "true"}, env
            )
            processes.append(second)
            assert probe.spin_until(lambda: second.poll() is not None, 120.0), (
                "resumed trainer never ended"
            )
            probe.spin_until(lambda: False, 0.5)
            output = second.communicate(timeout=10)[0]
            assert second.returncode == 0, output
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
    assert sim.returncode == 0 and controller.returncode == 0

    # The first trainer reported epoch 1; the resumed one epochs 2 and 3 with all of epoch 1's
    # transitions (from its checkpoint) plus a full fresh phase each: nothing of a completed
    # epoch was lost, nothing stale was counted.
    assert [s.epoch for s in statuses] == [1, 2, 3]
    assert [s.d_env for s in statuses] == [STEPS, 2 * STEPS, 3 * STEPS]
    assert all(s.stale_transitions == 0 and s.queue_peak == 0 for s in statuses)
    # After the kill the controller published only the rest of its version-1 phase; the resumed
    # trainer's data came in full phases of version 1, then 2.
    after = [m for t, m in transitions if t > killed_at]
    resumed = [m for m in after if m.step == 0]
    assert len(resumed) == 2, [(m.policy_version, m.step) for m in after]
    tail = after[after.index(resumed[0]) :]
    assert [m.policy_version for m in tail] == [1] * STEPS + [2] * STEPS
