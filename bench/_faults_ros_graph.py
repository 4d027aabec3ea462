"""SIGKILL of the learning nodes next to the simulated leg: the planner and the trainer.

Planner: the sim robot, the torque controller (``mode: mpc``, async, random default) and the
planner node on a checkpoint that ``mdemorl train`` wrote for the purpose; once the controller
uses plans, the planner is killed: does the controller keep acting (fallback), stop, or zero the
torque, and does it use plans again once the planner is relaunched?

Trainer: kill -9 mid-epoch and ``resume: true`` are what ``test_trainer_restart.py`` asserts
(the leg holds while no trainer runs, the resumed run continues from the last completed epoch
with every transition of it); that test is run as it is and its verdict recorded.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO_ROOT
from _faults_ros_common import Recorder, count_tracebacks, fault_record

RESTART_TEST = "src/stochlite_bringup/test/test_trainer_restart.py"


def make_checkpoint(run_dir: Path) -> None:
    """A one-epoch M-DeMoRL run (200 env steps): enough for the planner to load a model."""
    subprocess.run(
        [
            "mdemorl", "train", "--env", "Leg2R-v0", "--algo", "mdemorl", "--epochs", "1",
            "--seed", "0", "--out", str(run_dir), "--set", "steps_per_epoch=200",
            "--set", "agent.initial_random_steps=200", "--set", "torch_threads=1",
            "--set", "agent.task_reward=Leg2R-v0",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def bad_plan_requests(harness: Any, recorder: Recorder) -> dict[str, int]:
    """Corrupted PlanActions requests: each must be answered success=false with a message."""
    import math

    from mdemorl_core.envs.leg2r_task import OBSERVATION_DIM
    from mdemorl_msgs.srv import PlanActions

    client = recorder.node.create_client(PlanActions, "/planner_node/plan")
    good = [0.1] * OBSERVATION_DIM
    requests = [
        PlanActions.Request(observation=[0.1] * (OBSERVATION_DIM - 1)),
        PlanActions.Request(observation=[math.nan] + good[1:]),
        PlanActions.Request(observation=good, horizon=1_000_000),
        PlanActions.Request(observation=good, num_samples=10**9),
        PlanActions.Request(observation=good, elite_fraction=math.nan),
    ]
    refused = 0
    for request in requests:
        response = harness.call(client, request, timeout=30.0)
        refused += bool(not response.success and response.message)
    return {"sent": len(requests), "refused_with_message": refused}


def planner_kill(salt: int) -> dict[str, Any]:
    from mdemorl_msgs.msg import Transition
    from mdemorl_ros.ros_common import TRANSITION_QOS
    from mdemorl_ros.ros_testing import RosHarness

    run_dir = Path(tempfile.mkdtemp(prefix="faults_planner_")) / "run"
    make_checkpoint(run_dir)
    harness = RosHarness(salt=salt)
    outcomes: dict[str, Any] = {}
    try:
        recorder = Recorder(harness, "faults_planner_probe")
        transitions: list[float] = []
        recorder.node.create_subscription(
            Transition, "/mdemorl/transition", lambda m: transitions.append(time.time()),
            TRANSITION_QOS,
        )  # fmt: skip
        sim = harness.start("leg2r_driver.sim_robot_node", {"pause_after_hold": -1.0})
        controller = harness.start(
            "leg2r_driver.torque_controller_node",
            {"mode": "mpc", "default_action": "random", "diagnostics_rate": 5.0},
        )
        planner = harness.start("mdemorl_planner_node.planner_node", {"run_dir": str(run_dir)})

        def used() -> int:
            values = recorder.fresh_diagnostics("torque_controller_node") or {}
            return int(values.get("plans_used", "0"))

        outcomes["plans_used_before_kill"] = (
            used() if harness.spin_until(lambda: used() >= 20, 120.0) else 0
        )
        outcomes["bad_plan_requests"] = bad_plan_requests(harness, recorder)
        killed_at = time.time()
        planner.send_signal(signal.SIGKILL)
        planner.wait()
        commands_before, transitions_before = len(recorder.commands), len(transitions)
        plans_at_kill = used()
        recorder.wait(3.0)
        values = recorder.fresh_diagnostics("torque_controller_node") or {}
        outcomes["commands_3s_after_kill"] = len(recorder.commands) - commands_before
        outcomes["transitions_3s_after_kill"] = len(transitions) - transitions_before
        outcomes["plans_used_after_kill"] = int(values.get("plans_used", "0")) - plans_at_kill
        outcomes["controller_alive"] = controller.poll() is None
        states_after = [e for s, e in recorder.states if s > killed_at + 0.1]
        outcomes["torque_applied_after_kill"] = any(
            abs(x) > 0.01 for efforts in states_after for x in efforts
        )
        relaunched = harness.start("mdemorl_planner_node.planner_node", {"run_dir": str(run_dir)})
        again = used()
        outcomes["plans_again_after_relaunch"] = harness.spin_until(lambda: used() > again, 60.0)
        tracebacks = sum(count_tracebacks(harness.output(p)) for p in (sim, controller, relaunched))
    finally:
        harness.close()
    behaviour = (
        "keeps acting (actor or default action)"
        if outcomes["commands_3s_after_kill"]
        else "stops commanding (driver watchdog zeroes)"
    )
    misbehaving = []
    bad = outcomes["bad_plan_requests"]
    if bad["refused_with_message"] != bad["sent"]:
        misbehaving.append(f"bad plan requests: {bad}")
    if not outcomes["plans_again_after_relaunch"]:
        misbehaving.append("the controller never used the relaunched planner's plans")
    if not outcomes["controller_alive"]:
        misbehaving.append("the controller died")
    return fault_record(
        "SIGKILL planner_node (mode mpc)",
        "torque_controller_node",
        1,
        outcomes=outcomes,
        behaviour=behaviour,
        tracebacks=tracebacks,
        misbehaving=misbehaving,
    )


def trainer_kill_and_resume() -> dict[str, Any]:
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", RESTART_TEST],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    passed = completed.returncode == 0
    return fault_record(
        "SIGKILL trainer_node mid-epoch, relaunch with resume: true",
        "torque_controller_node, trainer_node",
        1,
        outcomes={"test_passed": passed, "seconds": round(time.monotonic() - started, 1)},
        behaviour="the controller finishes its phase and holds its safe pose (PD) while no "
        "trainer runs; the resumed trainer continues from the last completed epoch"
        if passed
        else "see the test output",
        evidence=RESTART_TEST,
        misbehaving=[] if passed else [completed.stdout[-2000:]],
    )
