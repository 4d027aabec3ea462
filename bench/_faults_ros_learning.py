"""Corrupted learning messages: PolicyUpdate into the torque controller, Transition into the
trainer node (each in its own process, as in the training graph).

A corrupted PolicyUpdate must be rejected (``policies_rejected`` +1 each, ``policies_accepted``
unchanged) and a valid one afterwards still loaded; a corrupted Transition must be rejected
(``rejected`` +1 each, ``epoch_transitions`` unchanged) and a valid one afterwards stored.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _faults_ros_common import (
    Recorder,
    config_dir,
    count_tracebacks,
    policy_update_cases,
    record_for,
)
from _faults_ros_inputs import joint_state_faults


def policy_cases() -> tuple[dict[str, Callable[[int], Any]], Callable[[int], Any]]:
    """The leg's corrupted PolicyUpdates (see :func:`policy_update_cases`)."""
    from mdemorl_core.envs.leg2r_task import ACTION_DIM, OBSERVATION_DIM

    return policy_update_cases(OBSERVATION_DIM, ACTION_DIM, hidden=32)


def policy_faults(harness: Any, recorder: Recorder, process: Any, repeats: int) -> dict[str, Any]:
    """Corrupted PolicyUpdates into a running torque controller, one at a time, then a valid
    one: it must be loaded."""
    from mdemorl_msgs.msg import PolicyUpdate
    from mdemorl_ros.ros_common import POLICY_QOS

    cases, valid = policy_cases()
    per_case: dict[str, dict[str, int]] = {}
    publisher = recorder.node.create_publisher(PolicyUpdate, "/mdemorl/policy", POLICY_QOS)
    harness.spin_until(lambda: publisher.get_subscription_count() > 0, 60.0)
    values = recorder.fresh_diagnostics("torque_controller_node", 30.0) or {}
    accepted_before = int(values.get("policies_accepted", "0"))
    version = 100
    for kind, make in cases.items():
        counted = 0
        for _ in range(repeats):
            before = int(values.get("policies_rejected", "0"))
            version += 1
            publisher.publish(make(version))
            # One at a time (depth-1 latched topic); the first load imports torch.
            for _ in range(60):
                values = recorder.fresh_diagnostics("torque_controller_node") or values
                if int(values.get("policies_rejected", "0")) > before:
                    counted += 1
                    break
                if int(values.get("policies_accepted", "0")) > accepted_before:
                    break
        per_case[kind] = {"sent": repeats, "counted": counted}
    bad = int(values.get("policies_accepted", "0")) - accepted_before
    publisher.publish(valid(version + 1))
    alive = harness.spin_until(
        lambda: f"policy version {version + 1} (sac) loaded" in harness.output(process), 30.0
    )
    tracebacks = count_tracebacks(harness.output(process))
    return record_for(
        "corrupted PolicyUpdate on /mdemorl/policy",
        "torque_controller_node",
        per_case,
        bad,
        alive=alive,
        tracebacks=tracebacks,
    )


def corrupt_controller(repeats: int, policy_repeats: int, salt: int) -> list[dict[str, Any]]:
    """One torque controller process: corrupted joint states, then corrupted policies."""
    from mdemorl_ros.ros_testing import RosHarness

    harness = RosHarness(salt=salt)
    try:
        recorder = Recorder(harness, "faults_controller_probe")
        process = harness.start(
            "leg2r_driver.torque_controller_node",
            {"default_action": "random", "diagnostics_rate": 5.0},
            params_file=config_dir("leg2r_driver") / "torque_controller.yaml",
        )
        return [
            joint_state_faults(harness, recorder, process, repeats),
            policy_faults(harness, recorder, process, policy_repeats),
        ]
    finally:
        harness.close()


def transition_cases() -> tuple[dict[str, Callable[[], Any]], Callable[[], Any]]:
    from mdemorl_core.envs.leg2r_task import ACTION_DIM, OBSERVATION_DIM
    from mdemorl_msgs.msg import Transition

    def transition(
        obs: int = OBSERVATION_DIM,
        act: int = ACTION_DIM,
        next_obs: int = OBSERVATION_DIM,
        value: float = 0.1,
        action: float = 0.5,
        reward: float = 0.5,
    ) -> Callable[[], Any]:
        def make() -> Any:
            return Transition(
                observation=[value] * obs,
                action=[action] * act,
                next_observation=[0.1] * next_obs,
                reward=reward,
            )

        return make

    cases = {
        "short_observation": transition(obs=OBSERVATION_DIM - 1),
        "long_next_observation": transition(next_obs=OBSERVATION_DIM + 3),
        "wrong_action_dim": transition(act=ACTION_DIM + 1),
        "nan_observation": transition(value=math.nan),
        "inf_reward": transition(reward=math.inf),
        "action_out_of_range": transition(action=2.0),
    }
    return cases, transition()


def corrupt_transitions(repeats: int, salt: int) -> list[dict[str, Any]]:
    """Corrupted Transitions into a trainer node, then the corrupted controller phases of
    :func:`_faults_ros_phase.phase_faults`; one record each."""
    from _faults_ros_phase import phase_faults, trainer_took_hold

    from mdemorl_msgs.msg import Transition
    from mdemorl_ros.ros_common import TRANSITION_QOS
    from mdemorl_ros.ros_testing import RosHarness

    cases, valid = transition_cases()
    harness = RosHarness(salt=salt)
    per_case: dict[str, dict[str, int]] = {}
    run_dir = Path(tempfile.mkdtemp(prefix="faults_trainer_"))
    try:
        recorder = Recorder(harness, "faults_transition_probe")
        process = harness.start(
            "mdemorl_planner_node.trainer_node",
            {
                "run_dir": str(run_dir / "run"),
                "config_file": str(config_dir("stochlite_bringup") / "trainer_leg2r.yaml"),
                "algo": "sac",
                "epochs": 1,
                "record_bag": False,
                "diagnostics_rate": 5.0,
            },
        )
        publisher = recorder.node.create_publisher(
            Transition, "/mdemorl/transition", TRANSITION_QOS
        )
        harness.spin_until(lambda: publisher.get_subscription_count() > 0, 120.0)
        values = recorder.fresh_diagnostics("trainer_node", 60.0) or {}
        stored_before = int(values.get("epoch_transitions", "0"))
        for kind, make in cases.items():
            before = int(values.get("rejected", "0"))
            for _ in range(repeats):
                publisher.publish(make())
                recorder.wait(0.01)
            recorder.wait(0.1)
            values = recorder.fresh_diagnostics("trainer_node") or values
            per_case[kind] = {"sent": repeats, "counted": int(values.get("rejected", "0")) - before}
        bad = int(values.get("epoch_transitions", "0")) - stored_before
        publisher.publish(valid())
        recorder.wait(0.1)
        values = recorder.fresh_diagnostics("trainer_node") or values
        alive = int(values.get("epoch_transitions", "0")) == stored_before + bad + 1
        tracebacks = count_tracebacks(harness.output(process))
        phases = phase_faults(
            harness, recorder, process, repeats, "trainer_node", "trainer_node", trainer_took_hold
        )
    finally:
        harness.close()
    transitions = record_for(
        "corrupted Transition on /mdemorl/transition",
        "trainer_node",
        per_case,
        bad,
        alive=alive,
        tracebacks=tracebacks,
    )
    return [transitions, phases]
