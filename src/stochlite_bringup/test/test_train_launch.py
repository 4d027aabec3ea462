"""The shipped train.launch.py with the shipped YAML, episodic protocol, simulated leg, 2 short
epochs: every transition published while acting is stored, each epoch's data comes from the
previous policy version, nothing queues, the leg is held between epochs, every process exits 0.

An independent subscriber (this test) counts what the torque controller publishes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mdemorl_core.envs.leg2r_task import Leg2RParams
from mdemorl_core.envs.task_hash import leg2r_task_hash
from stochlite_bringup.launch_probe import LaunchProbe, latched, launch_exits, reliable

pytestmark = [pytest.mark.ros, pytest.mark.slow]

STEPS, EPOCHS = 150, 2


def test_episodic_sim_launch_stores_every_acting_transition(tmp_path: Path) -> None:
    with LaunchProbe(tmp_path, salt=23, name="independent_counter") as probe:
        from diagnostic_msgs.msg import DiagnosticArray

        from mdemorl_msgs.msg import ControllerPhase, TrainingStatus, Transition

        transitions = probe.record_timed(Transition, "/mdemorl/transition", reliable(10_000))
        phases = probe.record_timed(ControllerPhase, "/mdemorl/controller_phase", latched())
        statuses = probe.record(TrainingStatus, "/mdemorl/training_status", 10)
        diagnostics = probe.record(DiagnosticArray, "/diagnostics", reliable(1000))
        launch = probe.launch(
            "train.launch.py",
            [
                f"run_dir:={tmp_path / 'run'}",
                f"epochs:={EPOCHS}",
                f"steps_per_epoch:={STEPS}",
                "algo:=sac",  # the cheapest update: this test is about the protocol
                "realtime_priority:=0",
            ],
        )
        probe.spin_until(lambda: launch.poll() is not None, 100.0)
        probe.spin_times(20)
        output = launch.communicate(timeout=30)[0]

    assert launch.returncode == 0, output
    exits = launch_exits(output)
    assert sorted(name for name, _ in exits) == [
        "sim_robot_node",
        "torque_controller_node",
        "trainer_node",
    ], output
    assert all(code == "0" for _, code in exits), exits
    # Every node of the launch reports on /diagnostics (status names start with the node's).
    reporting = {s.name.split(":")[0] for d in diagnostics for s in d.status}
    assert {name for name, _ in exits} <= reporting, reporting

    # Stored == published while acting, epoch by epoch; no queue; nothing stale.
    assert [s.epoch for s in statuses] == list(range(1, EPOCHS + 1))
    assert len(transitions) == EPOCHS * STEPS
    assert [s.epoch_transitions for s in statuses] == [STEPS] * EPOCHS
    assert statuses[-1].d_env == len(transitions) == statuses[-1].transitions_received
    assert all(s.queue_peak == 0 and s.stale_transitions == 0 for s in statuses)
    assert all(s.protocol == "episodic" and s.update_seconds > 0 for s in statuses)
    assert statuses[-1].acting_seconds > 0 and statuses[-1].holding_seconds > 0

    # Epoch k's data came from policy version k - 1, in a fresh episode starting at step 0.
    versions = [m.policy_version for _, m in transitions]
    assert versions == [v for v in range(EPOCHS) for _ in range(STEPS)]
    for k in range(EPOCHS):
        phase = [m for _, m in transitions[k * STEPS : (k + 1) * STEPS]]
        assert phase[0].step == 0 and phase[-1].truncated
        assert len({m.episode for m in phase}) == 1 + (STEPS - 1) // 1000

    # Held between epochs: a "holding" phase after each acting phase, with no transition
    # published between its start and the next version's acting phase.
    for k in range(EPOCHS):
        last_of_epoch = transitions[(k + 1) * STEPS - 1][0]
        holds = [
            (t, m)
            for t, m in phases
            if m.phase == "holding" and m.policy_version == k and m.phase_steps == STEPS
        ]
        assert holds, (
            f"no hold after version {k}: {[(m.phase, m.policy_version) for _, m in phases]}"
        )
        hold_start = holds[0][0]
        resumed = [t for t, m in phases if m.phase == "acting" and t > hold_start]
        hold_end = resumed[0] if resumed else float("inf")
        assert last_of_epoch <= hold_start + 0.5
        assert not [t for t, _ in transitions if hold_start + 0.5 < t < hold_end]
    assert phases[-1][1].phase == "holding"  # no request after the last epoch: the leg is held
    # The controller computes the trainer's task (the trainer would refuse another's data).
    assert phases[-1][1].task_hash == leg2r_task_hash(Leg2RParams())
