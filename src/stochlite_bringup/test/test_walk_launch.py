"""walk.launch.py in simulation: the URDF is published, the robot stands up, walks forward and
sits down on the scripted commands; every process exits 0 on Ctrl-C.

No trained checkpoint here (training one that walks takes far longer than a test): the robot
walks the trajectory generator with zero shifts (default_action:=zero), the policy's starting
point. Threshold fixed before running: >= 0.5 m forward in the 10 s walking window (measured
about 2 m on an idle machine; the margin is for a loaded one, where the sim may run slower).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from stochlite_bringup.launch_probe import LaunchProbe, latched, launch_exits, reliable

pytestmark = [pytest.mark.ros, pytest.mark.slow]

MIN_DISTANCE = 0.5  # m


def run_walk_launch(
    tmp_path: Path, arguments: list[str], done: Callable[[list[tuple[float, float]]], bool]
) -> tuple[list[tuple[float, float]], list[str], str, int]:
    """Run walk.launch.py with ``arguments`` until ``done(poses)`` (or 120 s), then Ctrl-C.
    Returns the torso poses (x, z), the robot descriptions, the output and the exit code."""
    with LaunchProbe(tmp_path, salt=53, name="walk_probe") as probe:
        from geometry_msgs.msg import PoseStamped
        from std_msgs.msg import String

        poses: list[tuple[float, float]] = []
        probe.node.create_subscription(
            PoseStamped,
            "/sim/torso_pose",
            lambda m: poses.append((m.pose.position.x, m.pose.position.z)),
            reliable(10),
        )
        descriptions = probe.record(String, "/robot_description", latched())
        launch = probe.launch("walk.launch.py", arguments)
        probe.spin_until(lambda: done(poses) or launch.poll() is not None, 120.0)
        assert done(poses) or launch.poll() is None
        launch.send_signal(signal.SIGINT)
        output = launch.communicate(timeout=30)[0]
    return poses, [m.data for m in descriptions], output, launch.returncode


def check_exits(output: str, code: int) -> None:
    assert code == 0, output[-3000:]
    exits = dict(launch_exits(output))
    assert exits == {
        "robot_description_node": "0",
        "stochlite_sim_node": "0",
        "gait_controller_node": "0",
    }, output[-3000:]


def test_walk_launch_stands_walks_and_sits(tmp_path: Path) -> None:
    def walked_and_sat(poses: list[tuple[float, float]]) -> bool:
        return bool(poses) and max(x for x, _ in poses) >= MIN_DISTANCE and poses[-1][1] < 0.1

    poses, descriptions, output, code = run_walk_launch(
        tmp_path,
        ["posture_script:=stand@1 walk@4 sit@14", "default_action:=zero"],
        walked_and_sat,
    )
    assert poses, output
    assert max(z for _, z in poses) > 0.15  # stood
    assert max(x for x, _ in poses) >= MIN_DISTANCE, output[-3000:]
    assert poses[-1][1] < 0.1, output[-3000:]  # sat down
    assert descriptions and "<robot" in descriptions[0]
    check_exits(output, code)


def test_a_tilt_sits_the_walking_robot_down(tmp_path: Path) -> None:
    """No sit command: the soft attitude guard (sit_tilt, here below the gait's own sway of
    about 0.1 rad) sits the walking robot down by itself."""
    poses, _, output, code = run_walk_launch(
        tmp_path,
        ["posture_script:=stand@1 walk@4", "default_action:=zero", "sit_tilt:=0.03"],
        lambda poses: len(poses) > 300 and poses[-1][1] < 0.1,
    )
    assert poses and poses[-1][1] < 0.1, output[-3000:]
    assert "sitting down" in output, output[-3000:]
    check_exits(output, code)


def test_walk_launch_deploys_an_exported_actor(tmp_path: Path) -> None:
    """run_dir:=FILE: policy_publisher hands the actor file `mdemorl export` wrote to the gait
    controller, which walks with it (a one-epoch SAC run on random data: this checks the
    deployment path, not the gait; deploy.launch.py's test deploys a run directory)."""
    import gymnasium

    import mdemorl_core.envs  # noqa: F401  (registers the tasks)
    from mdemorl_core.config import build_train_config
    from mdemorl_core.training.actor_file import export_actor
    from mdemorl_core.training.online import OnlineTrainer

    env = gymnasium.make("StochLite-v1")  # walk.launch.py's default task
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    config = build_train_config(
        {"env_id": "StochLite-v1", "algo": "sac", "steps_per_epoch": 20, "epochs": 1}
    )
    trainer = OnlineTrainer(config, tmp_path / "run", obs_dim, act_dim)
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs = rng.uniform(-0.1, 0.1, obs_dim)
        trainer.add(obs, rng.uniform(-1, 1, act_dim), 0.1, obs, False, False)
    trainer.run_epoch()
    actor_file = tmp_path / "actor.pt"
    export_actor(tmp_path / "run", actor_file)
    poses, _, output, code = run_walk_launch(
        tmp_path,
        # Walk late: policy_publisher imports torch and loads the actor first (seconds, on a
        # loaded machine many).
        [f"run_dir:={actor_file}", "posture_script:=stand@1 walk@25 sit@30"],
        lambda poses: len(poses) > 3000 and poses[-1][1] < 0.1,
    )
    assert "deployed the sac actor" in output and "policy version 1 (sac) loaded" in output
    assert poses and max(z for _, z in poses) > 0.15 and poses[-1][1] < 0.1, output[-3000:]
    exits = dict(launch_exits(output))
    assert exits.get("policy_publisher") == "0" and exits.get("gait_controller_node") == "0"
    assert code == 0, output[-3000:]
