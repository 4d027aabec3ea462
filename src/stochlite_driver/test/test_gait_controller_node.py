"""gait_controller_node + stochlite_sim_node in their own processes (episodic protocol), for
StochLite-v0 and StochLite-v1 (``task`` parameter of both nodes: the v1 robot, its [11]
observation).

Covers: the controller holds the stand pose (no transitions) until a PolicyUpdate; it then acts
exactly the requested policy steps with that version, the last one truncated, and holds again;
the robot walks forward meanwhile; while it holds the sim pauses (pause_after_hold), and the next
PolicyUpdate resumes both for a new episode; SIGTERM exits both with 0.
"""

import time
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped

from mdemorl_core.agents.sac import TanhGaussianActor
from mdemorl_core.envs.stochlite import ACTION_DIM
from mdemorl_core.policy_io import serialize_actor, sha256_hex
from mdemorl_msgs.msg import ControllerPhase, PolicyUpdate, Transition
from mdemorl_ros.ros_common import MONITOR_QOS, POLICY_QOS, TRANSITION_QOS
from mdemorl_ros.ros_testing import RosHarness

pytestmark = pytest.mark.ros

# Per task: observation dim and policy steps of one acting phase (~1.3 s of walking).
TASKS = {"StochLite-v0": (10, 40), "StochLite-v1": (11, 120)}


def policy_message(version: int, task: str) -> PolicyUpdate:
    observation_dim, acting_steps = TASKS[task]
    torch.manual_seed(0)
    actor = TanhGaussianActor(observation_dim, ACTION_DIM, hidden_size=16)
    with torch.no_grad():
        for parameter in actor.parameters():
            parameter.mul_(0.01)  # near-zero shifts: the trot walks
    blob = serialize_actor(actor, algorithm="sac", version=version)
    return PolicyUpdate(
        version=version,
        acting_steps=acting_steps,
        algorithm="sac",
        observation_dim=observation_dim,
        action_dim=ACTION_DIM,
        weights=list(blob),
        checksum=sha256_hex(blob),
    )


@pytest.fixture
def harness() -> Iterator[RosHarness]:
    harness = RosHarness(salt=33)
    yield harness
    harness.close()


@pytest.mark.parametrize("task", sorted(TASKS))
def test_episodic_acting_phase_through_the_sim(harness: RosHarness, task: str) -> None:
    observation_dim, acting_steps = TASKS[task]
    node = harness.node("gait_probe")
    transitions: list[Transition] = []
    phases: list[ControllerPhase] = []
    poses: list[PoseStamped] = []
    node.create_subscription(Transition, "/mdemorl/transition", transitions.append, TRANSITION_QOS)
    node.create_subscription(
        ControllerPhase, "/mdemorl/controller_phase", phases.append, POLICY_QOS
    )
    node.create_subscription(PoseStamped, "/sim/torso_pose", poses.append, MONITOR_QOS)
    diagnostics: list[DiagnosticArray] = []
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, MONITOR_QOS)
    policy_pub = node.create_publisher(PolicyUpdate, "/mdemorl/policy", POLICY_QOS)
    loose = {"command_timeout": 0.5, "max_command_age": 0.5}  # the CI machine is shared
    sim = harness.start(
        "stochlite_driver.stochlite_sim_node",
        # A paused sim still publishes the frozen pose, so a probe that discovers it late (a
        # loaded 2-core machine) sees one either way.
        {**loose, "pause_after_hold": 3.0, "diagnostics_rate": 4.0, "task": task},
    )
    controller = harness.start(
        "stochlite_driver.gait_controller_node",
        {"protocol": "episodic", "max_state_age": 0.5, "task": task},
    )
    assert harness.spin_until(lambda: bool(phases) and bool(poses), 60.0), harness.output(
        controller
    )
    assert phases[-1].phase == "waiting"
    harness.spin_for(1.0)
    assert not transitions  # holding: nothing is published
    x_start = poses[-1].pose.position.x
    policy_pub.publish(policy_message(7, task))
    done = harness.spin_until(lambda: len(transitions) >= acting_steps, 90.0)
    assert done, (len(transitions), harness.output(controller)[-2000:])
    harness.spin_until(lambda: phases[-1].phase == "holding", 10.0)
    harness.spin_for(1.0)
    assert len(transitions) == acting_steps  # and no more while holding
    assert [t.step for t in transitions] == list(range(acting_steps))
    assert {t.policy_version for t in transitions} == {7}
    assert [t.truncated for t in transitions][-2:] == [False, True]
    assert all(len(t.observation) == observation_dim for t in transitions)
    assert poses[-1].pose.position.x - x_start > 0.05
    assert not any(t.terminated for t in transitions)

    def sim_paused() -> bool:
        statuses = [s for d in diagnostics[-3:] for s in d.status if s.name.endswith("safety")]
        values = {kv.key: kv.value for s in statuses[-1:] for kv in s.values}
        return values.get("paused") == "True"

    assert harness.spin_until(sim_paused, 15.0)  # holding: the physics stops
    policy_pub.publish(policy_message(8, task))
    assert harness.spin_until(lambda: len(transitions) >= 2 * acting_steps, 90.0)
    harness.spin_for(1.0)
    second = transitions[acting_steps:]
    assert len(second) == acting_steps and {t.policy_version for t in second} == {8}
    assert second[0].step == 0 and second[0].episode == transitions[0].episode + 1
    assert not any(t.terminated for t in second)  # resumed standing, no limp fall
    assert harness.terminate(controller) == 0
    assert harness.terminate(sim) == 0
    time.sleep(0.1)
    assert np.isfinite([t.reward for t in transitions]).all()
