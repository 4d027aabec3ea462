"""Planner service round trip at 100 Hz: what a ``mode:=mpc`` controller waits for a plan.

    python bench/planner_round_trip.py [--quick] [--requests 1000] [--rate 100] [--horizon 0]

Writes a Leg2R-v0 mdemorl run into a temporary directory (default-sized ensemble, actor and critic,
``agent.task_reward: Leg2R-v0`` as the study uses, briefly trained on random-action Leg2R-v0
transitions so that the critic's terminal value is in the plan, as after the first SAC step),
starts the real ``planner_node`` as its own process with ``run_dir`` pointing there, and calls
``/planner_node/plan`` (mdemorl_msgs/srv/PlanActions) from a client node in this process at
``--rate`` Hz with one request in flight at most, as the torque controller's PlanClient does: a
tick whose previous request is still unanswered sends nothing, one unanswered for the
controller's ``PLAN_TIMEOUT`` is abandoned and counted as failed. Each request carries a fresh
observation from a random-action Leg2R-v0 rollout, M = ``--samples`` and H = ``--horizon`` (0, the
default: what the shipped planner node plans, the run's ``agent.act_horizon``).

The round trip is send -> response seen by the client's executor (``time.perf_counter``); an
answer later than one period (10 ms at 100 Hz) is late. The node's own planning time of each
request (the response's ``plan_seconds``) and its last ``/diagnostics`` latency window are
reported next to it, so the JSON separates service/DDS overhead from planning. The node runs with
its shipped parameters (one torch thread), as the launch files start it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from _common import base_parser, configure_torch, emit, latency_summary_ms
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.client import Client
from rclpy.task import Future

import mdemorl_core.envs  # noqa: F401  (registers Leg2R-v0)
from leg2r_driver.plan_client import PLAN_TIMEOUT
from mdemorl_core.agent import Agent
from mdemorl_core.config import build_train_config
from mdemorl_core.envs.leg2r_task import ACTION_DIM, OBSERVATION_DIM
from mdemorl_core.training.loop import save_run_checkpoint
from mdemorl_core.training.run_dir import RunPaths, prepare_new_run
from mdemorl_msgs.srv import PlanActions
from mdemorl_ros.ros_common import DIAGNOSTICS_TOPIC, MONITOR_QOS
from mdemorl_ros.ros_testing import RosHarness

ENV_ID = "Leg2R-v0"
PLANNER_MODULE = "mdemorl_planner_node.planner_node"
PLANNER_NAME = "planner_node"
START_TIMEOUT = 120.0  # s; the node imports torch and loads the checkpoint before serving
WARMUP_REQUESTS = 20  # untimed plans first: torch's first calls allocate and pick kernels
# Overrides that only shorten the brief training; none changes a network or planner shape.
TRAINING_OVERRIDES: dict[str, Any] = {
    "schedule": {"b_start": 10, "b_end": 10},
    "utd_ratio": 0.05,
    "task_reward": ENV_ID,
}
STARTED = time.perf_counter()


def log(message: str) -> None:
    """Progress on stderr (stdout carries only the JSON)."""
    print(f"[planner_round_trip {time.perf_counter() - STARTED:5.1f} s] {message}", file=sys.stderr)


@dataclass
class Outcomes:
    """What the timed requests produced: round trips and node plan times (s) of answered plans."""

    round_trips: list[float] = field(default_factory=list)
    plan_seconds: list[float] = field(default_factory=list)
    failed: int = 0
    abandoned: int = 0
    skipped_ticks: int = 0
    messages: set[str] = field(default_factory=set)


def random_rollout(count: int, seed: int) -> dict[str, np.ndarray]:
    """``count`` random-action Leg2R-v0 steps (new episodes as they end): ``observations`` and
    ``next_observations`` ``[count, O]``, ``actions`` ``[count, A]``, ``rewards`` ``[count]``."""
    env = gym.make(ENV_ID)
    env.action_space.seed(seed)
    observation, _ = env.reset(seed=seed)
    steps: dict[str, list[Any]] = {
        "observations": [],
        "actions": [],
        "rewards": [],
        "next_observations": [],
    }
    for _ in range(count):
        action = env.action_space.sample()
        next_observation, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(steps, (observation, action, reward, next_observation), strict=True):
            steps[key].append(value)
        observation = env.reset()[0] if terminated or truncated else next_observation
    env.close()
    return {key: np.asarray(values, np.float32) for key, values in steps.items()}


def write_run(run_dir: Path, transitions: int, model_epochs: int, seed: int) -> dict[str, Any]:
    """A Leg2R-v0 mdemorl run directory with a checkpoint (epoch 1) of a default-sized agent
    updated once on ``transitions`` random-action steps (at most ``model_epochs`` ensemble
    epochs). Returns its sizes for the JSON."""
    agent_section = {**TRAINING_OVERRIDES, "model": {"max_epochs": model_epochs}}
    config = build_train_config(
        {"env_id": ENV_ID, "algo": "mdemorl", "seed": seed, "agent": agent_section}
    )
    agent = Agent(OBSERVATION_DIM, ACTION_DIM, config.agent, torch.device("cpu"), seed=seed)
    rollout = random_rollout(transitions, seed + 1)
    for obs, act, reward, next_obs in zip(*rollout.values(), strict=True):
        agent.observe(obs, act, float(reward), next_obs, False)
    agent.update(1)
    paths = RunPaths(run_dir)
    prepare_new_run(paths, config)
    save_run_checkpoint(paths, config, 1, agent)
    model, sac = config.agent.model, config.agent.sac
    return {
        "ensemble": f"{model.ensemble_size} members ({model.num_elites} elites), "
        f"{model.num_layers} x {model.hidden_size}",
        "actor_critic_hidden": [sac.hidden_size] * sac.num_layers,
        "planner_num_samples": config.agent.planner.num_samples,
        "act_horizon": config.agent.act_horizon,
        "task_reward": config.agent.task_reward,
        "trained_on_transitions": transitions,
        "sac_updates": agent.sac_updates,
    }


def wait_for_first_plan(
    harness: RosHarness,
    process: subprocess.Popen[bytes],
    client: Client,
    request: PlanActions.Request,
) -> PlanActions.Response:
    """Calls until the node answers successfully (it loads the checkpoint before serving)."""
    deadline = time.monotonic() + START_TIMEOUT
    if not harness.spin_until(
        lambda: client.service_is_ready() or process.poll() is not None, START_TIMEOUT
    ):
        raise RuntimeError(f"planner service not up in {START_TIMEOUT:.0f} s")
    while time.monotonic() < deadline and process.poll() is None:
        response = harness.call(client, request, timeout=START_TIMEOUT)
        if response is not None and response.success:
            return response
        harness.spin_for(0.2)
    raise RuntimeError("the planner node never planned successfully")


def timed_requests(
    harness: RosHarness,
    process: subprocess.Popen[bytes],
    client: Client,
    requests: list[PlanActions.Request],
    rate_hz: float,
) -> Outcomes:
    """Sends ``requests`` on a ``rate_hz`` tick with one in flight at most (see module doc).
    Raises RuntimeError when the node ``process`` exits meanwhile."""
    outcomes = Outcomes()
    period = 1.0 / rate_hz
    pending = iter(requests)
    remaining = len(requests)
    future: Future | None = None
    sent_at = 0.0
    next_tick = time.perf_counter()
    while remaining or future is not None:
        now = time.perf_counter()
        if now >= next_tick:
            next_tick += period
            if process.poll() is not None:
                raise RuntimeError(f"the planner node exited with {process.returncode}")
            if future is None:
                # Stamp before the call: call_async sends the request, and a client descheduled
                # right after sending it would otherwise time less than the node's planning.
                sent_at = time.perf_counter()
                future = client.call_async(next(pending))
                remaining -= 1
            elif now - sent_at >= PLAN_TIMEOUT:
                client.remove_pending_request(future)
                future = None
                outcomes.failed += 1
                outcomes.abandoned += 1
            elif remaining:
                outcomes.skipped_ticks += 1
        harness.executor.spin_once(timeout_sec=max(0.0, next_tick - time.perf_counter()))
        if future is not None and future.done():
            arrived = time.perf_counter()
            response = future.result()
            future = None
            if response is None or not response.success:
                outcomes.failed += 1
                outcomes.messages.add(response.message if response is not None else "no response")
                continue
            outcomes.round_trips.append(arrived - sent_at)
            outcomes.plan_seconds.append(float(response.plan_seconds))
    return outcomes


def latest_planner_status(diagnostics: list[DiagnosticArray]) -> dict[str, str]:
    """Key/value pairs of the newest ``planner_node`` status on /diagnostics ({} if none)."""
    statuses = [s for array in diagnostics for s in array.status if s.name == PLANNER_NAME]
    return {value.key: value.value for value in statuses[-1].values} if statuses else {}


def node_diagnostics(
    harness: RosHarness, diagnostics: list[DiagnosticArray], plans: int
) -> dict[str, float] | None:
    """The node's latency window once its report counts ``plans`` plans (None if it never did)."""
    harness.spin_until(lambda: latest_planner_status(diagnostics).get("plans") == str(plans), 5.0)
    status = latest_planner_status(diagnostics)
    if status.get("plans") != str(plans):
        return None
    keys = ("plans", "failed", "latency_p50_ms", "latency_p99_ms", "latency_max_ms")
    return {key: float(status[key]) for key in keys if key in status}


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def measure(
    args: argparse.Namespace, run_dir: Path, observations: np.ndarray, horizon: int
) -> dict[str, Any]:
    """Starts the planner node on ``run_dir``, runs warm-up and timed requests (``args.horizon``;
    0: the node's default, which must be ``horizon``), stops the node."""
    harness = RosHarness(salt=11)
    process = None
    try:
        process = harness.start(PLANNER_MODULE, {"run_dir": str(run_dir)})
        node = harness.node("planner_round_trip_client")
        diagnostics: list[DiagnosticArray] = []
        node.create_subscription(
            DiagnosticArray, DIAGNOSTICS_TOPIC, diagnostics.append, MONITOR_QOS
        )
        client = node.create_client(PlanActions, f"/{PLANNER_NAME}/plan")
        requests = [
            PlanActions.Request(
                observation=row.tolist(), horizon=args.horizon, num_samples=args.samples
            )
            for row in observations
        ]
        first = wait_for_first_plan(harness, process, client, requests[0])
        log("planner node answered its first plan")
        if (first.horizon, first.action_dim) != (horizon, ACTION_DIM):
            raise RuntimeError(f"plan of shape {first.horizon} x {first.action_dim}")
        for request in requests[1 : args.warmup]:
            harness.call(client, request, timeout=START_TIMEOUT)
        log(f"{args.warmup} warm-up plans done; {args.requests} timed requests at {args.rate:g} Hz")
        outcomes = timed_requests(harness, process, client, requests[args.warmup :], args.rate)
        # Every call so far was answered or abandoned: the node's count of successful plans is
        # the answered warm-up and timed requests (abandoned ones it may still finish later).
        served = args.warmup + len(outcomes.round_trips)
        log(f"timed requests done: {len(outcomes.round_trips)} answered, {outcomes.failed} failed")
        window = node_diagnostics(harness, diagnostics, served) if not outcomes.abandoned else None
        return {"outcomes": outcomes, "node_diagnostics": window}
    except Exception:
        if process is not None:
            print(harness.output(process)[-3000:], file=sys.stderr)
        raise
    finally:
        harness.close()


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="timed requests")
    parser.add_argument("--rate", type=float, default=100.0, help="request rate, Hz")
    parser.add_argument("--samples", type=int, default=100, help="M of every request")
    parser.add_argument(
        "--horizon", type=int, default=0, help="H of every request (0: the node's default)"
    )
    parser.add_argument("--train-transitions", type=int, default=1000)
    args = parser.parse_args(argv)
    args.warmup, args.model_epochs = WARMUP_REQUESTS, 5
    if args.quick:
        args.requests, args.warmup, args.train_transitions, args.model_epochs = 10, 2, 300, 1
    for name in ("requests", "rate", "samples"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"--{name} must be > 0, got {getattr(args, name)}")
    if args.horizon < 0:
        raise SystemExit(f"--horizon must be >= 0 (0: the node's default), got {args.horizon}")
    configure_torch(args.threads, args.seed)
    load_at_start = os.getloadavg()[0]  # the machine block's load is taken after the run
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    observations = random_rollout(args.requests + args.warmup, args.seed)["observations"]
    with tempfile.TemporaryDirectory(prefix="mdemorl_round_trip_") as temporary:
        run_dir = Path(temporary) / "run"
        agent = write_run(run_dir, args.train_transitions, args.model_epochs, args.seed)
        log(f"run written to {run_dir}; starting {PLANNER_MODULE}")
        horizon = args.horizon or int(agent["act_horizon"])
        result = measure(args, run_dir, observations, horizon)
    outcomes: Outcomes = result["outcomes"]
    budget_s = 1.0 / args.rate
    answered = len(outcomes.round_trips)
    if not answered:
        raise SystemExit(f"no plan answered: {sorted(outcomes.messages)}")
    overheads = [
        rt - plan for rt, plan in zip(outcomes.round_trips, outcomes.plan_seconds, strict=True)
    ]
    late = sum(1 for rt in outcomes.round_trips if rt > budget_s)
    round_trip = latency_summary_ms(outcomes.round_trips)
    emit(
        "planner_round_trip",
        {
            **round_trip,
            "requests": args.requests,
            "answered": answered,
            "late": late,
            "failed": outcomes.failed,
            "abandoned": outcomes.abandoned,
            "skipped_ticks": outcomes.skipped_ticks,
            "budget_ms": 1e3 * budget_s,
            "failure_messages": sorted(outcomes.messages),
            "node_plan": latency_summary_ms(outcomes.plan_seconds),
            "overhead": latency_summary_ms(overheads),
            "node_diagnostics": result["node_diagnostics"],
            "what": (
                f"PlanActions round trip (send -> response) to the planner_node process from a "
                f"client at {args.rate:g} Hz, one request in flight, M={args.samples}, "
                f"H={horizon}, default-sized {ENV_ID} mdemorl agent, {args.requests} "
                f"requests after {args.warmup} warm-up; late = answer after {1e3 * budget_s:g} ms. "
                "node_plan: the node's own plan_seconds; overhead: round trip minus it."
            ),
            "setup": {
                "env_id": ENV_ID,
                "obs_dim": OBSERVATION_DIM,
                "act_dim": ACTION_DIM,
                "M": args.samples,
                "H": horizon,
                "rate_hz": args.rate,
                "warmup_requests": args.warmup,
                "abandon_after_s": PLAN_TIMEOUT,
                "node_omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                "load_avg_1m_at_start": round(load_at_start, 2),
                "agent": agent,
            },
            "targets": [
                {
                    "description": f"round trip p99 ≤ {1e3 * budget_s:g} ms at {args.rate:g} Hz, "
                    "no request failed",
                    "met": round_trip["p99_ms"] <= 1e3 * budget_s and not outcomes.failed,
                    "detail": f"p99 {round_trip['p99_ms']:.2f} ms, {late} late, "
                    f"{outcomes.failed} failed of {args.requests}",
                }
            ],
        },
        quick=args.quick,
        out_dir=args.out_dir,
    )
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt as interrupt:
        # measure() has stopped the node and the temporary run directory is gone by now.
        print(f"planner_round_trip: interrupted ({str(interrupt) or 'SIGINT'})", file=sys.stderr)
        raise SystemExit(130) from None
