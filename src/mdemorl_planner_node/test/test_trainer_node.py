"""The trainer node learns from published transitions, publishes policies and status, and records
a bag that reads back into the same transitions."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mdemorl_core.bags import read_transitions
from mdemorl_core.policy_io import deserialize_actor
from mdemorl_core.training.progress_log import read_progress
from stochlite_bringup.ros_test_env import isolated_ros_env

pytestmark = pytest.mark.ros

STEPS, EPOCHS = 60, 2
OVERRIDES = [
    "agent.model.ensemble_size=2",
    "agent.model.num_elites=1",
    "agent.model.hidden_size=16",
    "agent.model.max_epochs=2",
    "agent.sac.hidden_size=16",
    "agent.sac.batch_size=16",
    "agent.schedule.b_start=4",
    "agent.schedule.b_end=4",
    "agent.utd_ratio=0.2",
    "agent.min_model_data=20",
]


def _transitions(count: int) -> list[Any]:
    """``count`` transitions of a damped linear system in 30-step episodes (Pendulum sizes)."""
    from mdemorl_msgs.msg import Transition

    rng = np.random.default_rng(0)
    messages = []
    for i in range(count):
        obs = rng.uniform(-1, 1, 3).astype(np.float32)
        act = rng.uniform(-1, 1, 1).astype(np.float32)
        msg = Transition(episode=i // 30, step=i % 30, reward=float(-obs @ obs))
        msg.observation, msg.action = obs.tolist(), act.tolist()
        msg.next_observation = (0.9 * obs).tolist()
        msg.truncated = i % 30 == 29
        messages.append(msg)
    return messages


def _output_after_exit(node: Any, trainer: subprocess.Popen[str]) -> str:
    """Spin ``node`` until the trainer exits (120 s at most) and a little after; its output."""
    import rclpy

    deadline = time.monotonic() + 120.0
    while trainer.poll() is None and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    for _ in range(20):
        rclpy.spin_once(node, timeout_sec=0.05)
    output = trainer.communicate(timeout=30)[0]
    assert trainer.returncode == 0, output
    return output


def test_trainer_node_trains_publishes_and_records(tmp_path: Path) -> None:
    env = isolated_ros_env(tmp_path / "ros_log", salt=11)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from mdemorl_msgs.msg import PolicyUpdate, TrainingStatus, Transition

    run_dir = tmp_path / "run"
    overrides = "[" + ",".join(f'"{o}"' for o in OVERRIDES) + "]"
    trainer = subprocess.Popen(
        [
            "python",
            "-m",
            "mdemorl_planner_node.trainer_node",
            "--ros-args",
            "-p",
            f"run_dir:={run_dir}",
            "-p",
            "env_id:=Pendulum-v1",
            "-p",
            f"steps_per_epoch:={STEPS}",
            "-p",
            f"epochs:={EPOCHS}",
            "-p",
            f"overrides:={overrides}",
            "-p",
            "protocol:=async",  # this fake controller publishes everything at once
            "-p",
            "diagnostics_rate:=5.0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rclpy.init()
    node = rclpy.create_node("fake_controller")
    statuses: list[TrainingStatus] = []
    policies: list[PolicyUpdate] = []
    reliable = QoSProfile(depth=10_000, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    node.create_subscription(TrainingStatus, "/mdemorl/training_status", statuses.append, 10)
    node.create_subscription(PolicyUpdate, "/mdemorl/policy", policies.append, latched)
    diagnostics: list[DiagnosticArray] = []
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    pub = node.create_publisher(Transition, "/mdemorl/transition", reliable)
    try:
        deadline = time.monotonic() + 60.0
        while pub.get_subscription_count() < 2 and time.monotonic() < deadline:
            assert trainer.poll() is None, trainer.communicate()[0]
            rclpy.spin_once(node, timeout_sec=0.1)  # the trainer and its recorder both listen
        assert pub.get_subscription_count() == 2, "trainer never subscribed"

        def trainer_reports() -> list:
            return [s for d in diagnostics for s in d.status if s.name == "trainer_node"]

        # Before any data: no controller ever reported its phase, so the trainer says it lacks one.
        # Wait for that report here, while it is still collecting, instead of racing the updates.
        deadline = time.monotonic() + 30.0
        while not trainer_reports() and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        waiting = trainer_reports()
        assert waiting and waiting[0].level == b"\x02", [(s.level, s.message) for s in waiting]
        assert "controller unknown" in waiting[0].message
        # A malformed transition is rejected, never learned from.
        pub.publish(Transition(observation=[0.0], action=[0.0], next_observation=[0.0]))
        sent = _transitions(STEPS * EPOCHS)
        for msg in sent:
            pub.publish(msg)
            time.sleep(0.001)
        output = _output_after_exit(node, trainer)
    finally:
        if trainer.poll() is None:
            trainer.kill()
        node.destroy_node()
        rclpy.try_shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    assert [s.epoch for s in statuses] == [1, 2]
    assert statuses[-1].env_steps == STEPS * EPOCHS and statuses[-1].d_env == STEPS * EPOCHS
    assert policies and policies[-1].version == EPOCHS
    actor = deserialize_actor(bytes(policies[-1].weights), policies[-1].checksum)
    assert actor.act_numpy(np.zeros(3, dtype=np.float32)).shape == (1,)
    assert len(read_progress(run_dir / "progress.csv")) == EPOCHS
    assert "transition rejected" in output
    assert all(s.protocol == "async" and s.queue_peak >= 0 for s in statuses)
    assert statuses[-1].transitions_received == STEPS * EPOCHS + 1  # and the malformed one
    values = {v.key: v.value for v in trainer_reports()[-1].values}
    assert values["protocol"] == "async" and int(values["transitions_received"]) > 0
    data, report = read_transitions(next(run_dir.glob("bag_*")))
    assert len(data) == STEPS * EPOCHS and report.truncated_files == []
    np.testing.assert_array_equal(data.obs, np.array([m.observation for m in sent], np.float32))


def test_node_parameters_override_the_config_file_only_when_given() -> None:
    from mdemorl_planner_node.trainer_parameters import CONFIG_PARAMETERS, resolve_node_config

    document = {"env_id": "Pendulum-v1", "epochs": 7, "torch_threads": 2, "agent": {"utd_ratio": 3}}
    unset = dict(CONFIG_PARAMETERS)
    assert resolve_node_config(document, unset) == document
    given = {**unset, "epochs": 3, "algo": "sac"}
    resolved = resolve_node_config(document, given)
    assert resolved["epochs"] == 3 and resolved["algo"] == "sac" and resolved["torch_threads"] == 2
    assert resolve_node_config({}, unset) == {"env_id": "Leg2R-v0"}


def test_diagnostic_levels_most_severe_condition_wins() -> None:
    from diagnostic_msgs.msg import DiagnosticStatus

    from mdemorl_planner_node.trainer_reports import diagnostic_level

    base = dict(
        epoch=3,
        phase="updating",
        controller_phase="holding",
        rejected=0,
        stale=0,
        queue=0,
        steps_per_epoch=100,
        foreign_task="",
        task_hash="abc",
    )
    assert diagnostic_level(**base) == (DiagnosticStatus.OK, "epoch 3: updating")
    assert diagnostic_level(**{**base, "stale": 4})[0] == DiagnosticStatus.WARN
    assert diagnostic_level(**{**base, "queue": 101})[0] == DiagnosticStatus.WARN
    waiting = {**base, "phase": "collecting"}
    assert diagnostic_level(**waiting)[0] == DiagnosticStatus.WARN
    assert diagnostic_level(**{**waiting, "controller_phase": "acting"})[0] == DiagnosticStatus.OK
    assert diagnostic_level(**{**waiting, "controller_phase": "unknown"})[0] == (
        DiagnosticStatus.ERROR
    )
    level, message = diagnostic_level(**{**base, "foreign_task": "xyz", "stale": 4})
    assert level == DiagnosticStatus.ERROR and "xyz" in message


def _trainer_command(run_dir: Path, overrides: list[str], *params: str) -> list[str]:
    listed = "[" + ",".join(f'"{o}"' for o in overrides) + "]"
    command = ["python", "-m", "mdemorl_planner_node.trainer_node", "--ros-args"]
    for param in (
        f"run_dir:={run_dir}",
        "env_id:=Pendulum-v1",
        f"steps_per_epoch:={STEPS}",
        f"epochs:={EPOCHS}",
        f"overrides:={listed}",
        "record_bag:=false",
        *params,
    ):
        command += ["-p", param]
    return command


INTERLEAVED = [
    *OVERRIDES,
    "agent.update_mode=interleaved",
    "agent.train_every=1",
    "agent.utd_ratio=1.0",
    "agent.model_train_every=40",
    "agent.initial_random_steps=30",
]


def test_interleaved_async_trainer_learns_as_transitions_arrive(tmp_path: Path) -> None:
    """protocol async + update_mode interleaved: SAC steps follow each transition, the actor is
    pushed every policy_push_every steps (versions rising within an epoch), every transition is
    stored; episodic + interleaved is refused at start-up naming the key."""
    env = isolated_ros_env(tmp_path / "ros_log", salt=12)
    refused = subprocess.run(
        _trainer_command(tmp_path / "refused", INTERLEAVED, "protocol:=episodic"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "agent.update_mode" in refused.stderr, refused.stderr

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from mdemorl_msgs.msg import PolicyUpdate, TrainingStatus, Transition

    run_dir = tmp_path / "run"
    trainer = subprocess.Popen(
        _trainer_command(run_dir, INTERLEAVED, "protocol:=async", "policy_push_every:=20"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    rclpy.init()
    node = rclpy.create_node("fake_controller")
    reliable = QoSProfile(depth=10_000, reliability=ReliabilityPolicy.RELIABLE)
    statuses: list[TrainingStatus] = []
    policies: list[PolicyUpdate] = []
    node.create_subscription(TrainingStatus, "/mdemorl/training_status", statuses.append, 10)
    node.create_subscription(PolicyUpdate, "/mdemorl/policy", policies.append, reliable)
    pub = node.create_publisher(Transition, "/mdemorl/transition", reliable)
    try:
        deadline = time.monotonic() + 60.0
        while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            assert trainer.poll() is None, trainer.communicate()[0]
            rclpy.spin_once(node, timeout_sec=0.1)
        for msg in _transitions(STEPS * EPOCHS):
            pub.publish(msg)
            time.sleep(0.002)
            rclpy.spin_once(node, timeout_sec=0.0)
        _output_after_exit(node, trainer)
    finally:
        if trainer.poll() is None:
            trainer.kill()
        node.destroy_node()
        rclpy.try_shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    assert [s.epoch for s in statuses] == [1, 2]
    assert statuses[-1].d_env == STEPS * EPOCHS and statuses[-1].transitions_received == STEPS * 2
    rows = read_progress(run_dir / "progress.csv")
    # UTD 1 from the first full minibatch (16 rows) on: one SAC step per transition after it.
    assert int(float(rows[-1]["env_steps"])) == STEPS * EPOCHS
    sac_steps = STEPS * EPOCHS - 15
    versions = [p.version for p in policies]
    assert versions == sorted(versions) and versions[-1] == sac_steps // 20
    # Pushed within the epochs (not only at their two ends), never as an episodic acting request.
    assert len(set(versions)) >= 4 and all(p.acting_steps == 0 for p in policies)
