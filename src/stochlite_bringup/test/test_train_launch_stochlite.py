"""train.launch.py robot:=stochlite in simulation, episodic, 2 short epochs: every transition the
gait controller publishes is stored, each epoch's data comes from the previous policy version,
a policy version is published, every process exits 0. An independent subscriber counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from stochlite_bringup.launch_probe import LaunchProbe, latched, launch_exits, reliable

pytestmark = [pytest.mark.ros, pytest.mark.slow]

STEPS, EPOCHS = 60, 2


def test_stochlite_episodic_sim_launch(tmp_path: Path) -> None:
    with LaunchProbe(tmp_path, salt=61, name="independent_counter") as probe:
        from mdemorl_msgs.msg import PolicyUpdate, TrainingStatus, Transition

        transitions = probe.record(Transition, "/mdemorl/transition", reliable(10_000))
        statuses = probe.record(TrainingStatus, "/mdemorl/training_status", 10)
        policies = probe.record(PolicyUpdate, "/mdemorl/policy", latched())
        launch = probe.launch(
            "train.launch.py",
            [
                "robot:=stochlite",
                f"run_dir:={tmp_path / 'run'}",
                f"epochs:={EPOCHS}",
                f"steps_per_epoch:={STEPS}",
                "algo:=sac",
                "realtime_priority:=0",
            ],
        )
        probe.spin_until(lambda: launch.poll() is not None, 150.0)
        probe.spin_times(20)
        if launch.poll() is None:
            launch.kill()
        output = launch.communicate(timeout=30)[0]

    assert launch.returncode == 0, output[-4000:]
    exits = dict(launch_exits(output))
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
    assert policies and max(m.version for m in policies) >= 1
    # The launch's default task (StochLite-v1): its observation, the trainer's env's.
    import gymnasium

    import mdemorl_core.envs  # noqa: F401  (registers the tasks)

    env = gymnasium.make("StochLite-v1")
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    assert all(len(m.observation) == obs_dim and len(m.action) == act_dim for m in transitions)
