"""Agent: the interleaved schedule, the acting planner, and one model environment for all."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from mdemorl_core.agent import Agent, AgentConfig
from mdemorl_core.agents.model_data import PlannedActions
from mdemorl_core.agents.sac import SACConfig
from mdemorl_core.models.ensemble import EnsembleConfig
from mdemorl_core.planning.dmd_mpc import PlannerConfig
from mdemorl_core.planning.schedules import ScheduleConfig
from mdemorl_core.planning.service import PlanningService
from mdemorl_core.testing import write_small_run

torch.set_num_threads(1)
OBS_DIM, ACT_DIM = 3, 1


def _config(algo: str, **changes: object) -> AgentConfig:
    config = AgentConfig(
        algo=algo,
        sac=SACConfig(hidden_size=32, batch_size=16),
        model=EnsembleConfig(
            ensemble_size=3, num_elites=2, hidden_size=16, num_layers=2, max_epochs=3
        ),
        planner=PlannerConfig(num_samples=8),
        schedule=ScheduleConfig(h_start=2, h_end=2, b_start=10, b_end=10),
        update_mode="interleaved",
        train_every=10,
        utd_ratio=0.5,
        model_train_every=40,
        min_model_data=40,
        initial_random_steps=30,
    )
    return dataclasses.replace(config, **changes)


def _step(agent: Agent, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    act = agent.act(obs)
    next_obs = (0.9 * obs + 0.1 * act[0] + 0.01 * rng.normal(size=OBS_DIM)).astype(np.float32)
    agent.observe(obs, act, float(-np.sum(obs**2)), next_obs, False)
    agent.after_env_step()
    return next_obs


def test_interleaved_updates_and_refits_run_at_the_configured_steps() -> None:
    agent = Agent(OBS_DIM, ACT_DIM, _config("mdemorl"), torch.device("cpu"), seed=0)
    rng = np.random.default_rng(0)
    obs = np.zeros(OBS_DIM, dtype=np.float32)
    history = []
    for _ in range(130):
        obs = _step(agent, obs, rng)
        history.append((agent.env_steps, agent.sac_updates, agent.refits))
    # SAC: 0.5 x 10 = 5 gradient steps at every 10th env step once D_ENV holds a minibatch (16).
    updates_at = {steps: updates for steps, updates, _ in history}
    assert updates_at[19] == 0 and updates_at[20] == 5 and updates_at[29] == 5
    assert updates_at[130] == 5 * 12
    # Model: a refit (and an inner loop) every 40 env steps from 40 on.
    refit_steps = [steps for steps, _, refits in history if refits > 0 and steps % 40 == 0]
    assert agent.refits == 3 and refit_steps[:3] == [40, 80, 120]
    assert len(agent.d_mpc) == 3 * 10 * 2  # retention 1000 steps keeps all three inner loops
    metrics = agent.update(epoch=1)
    assert metrics["sac_steps"] == 60 and metrics["refits"] == 3


def test_epoch_mode_runs_nothing_between_epochs() -> None:
    agent = Agent(
        OBS_DIM, ACT_DIM, _config("mdemorl", update_mode="epoch"), torch.device("cpu"), seed=0
    )
    rng = np.random.default_rng(0)
    obs = np.zeros(OBS_DIM, dtype=np.float32)
    for _ in range(100):
        obs = _step(agent, obs, rng)
    assert agent.sac_updates == 0 and agent.refits == 0
    assert agent.update(epoch=1)["sac_steps"] == 50 and agent.refits == 1


def _acting_run(seed: int, **changes: object) -> tuple[list[np.ndarray], Agent]:
    config = _config("mdemorl", **{"act": "planner", **changes})
    agent = Agent(OBS_DIM, ACT_DIM, config, torch.device("cpu"), seed)
    rng = np.random.default_rng(1)
    obs = np.zeros(OBS_DIM, dtype=np.float32)
    actions = []
    for _ in range(70):
        actions.append(agent.act(obs))
        next_obs = (0.9 * obs + 0.1 * actions[-1][0]).astype(np.float32)
        agent.observe(obs, actions[-1], float(-np.sum(obs**2)), next_obs, False)
        agent.after_env_step()
        obs = next_obs + 0.01 * rng.normal(size=OBS_DIM).astype(np.float32)
    return actions, agent


def test_planner_in_the_loop_is_deterministic_under_a_seed() -> None:
    first, agent = _acting_run(seed=3)
    second, _ = _acting_run(seed=3)
    np.testing.assert_array_equal(np.stack(first), np.stack(second))
    assert agent.acting_planner.previous is not None  # it planned after the first refit (40)
    third, _ = _acting_run(seed=4)
    assert not np.array_equal(np.stack(first)[40:], np.stack(third)[40:])
    with pytest.raises(ValueError, match="needs a model"):
        AgentConfig(algo="sac", act="planner")


def test_distillation_pulls_the_actor_toward_the_planned_actions() -> None:
    for distill in (False, True):
        actions, agent = _acting_run(seed=3, distill=distill)
        assert len(agent.planned_actions) == 70 - 40  # every action after the first refit (40)
        np.testing.assert_array_equal(agent.planned_actions.act[:30], np.stack(actions[40:]))
        assert np.isfinite(agent.update(epoch=1)["distill_loss"]) == distill
    # The term itself: SAC steps with a constant planner action move the actor's mean onto it,
    # and further than the same steps without the term do.
    rng = np.random.default_rng(0)
    states = rng.normal(size=(50, OBS_DIM)).astype(np.float32)
    mean_actions = {}
    for distill in (False, True):
        _, agent = _acting_run(seed=3, distill=distill)
        agent.planned_actions = PlannedActions(OBS_DIM, ACT_DIM, 50)
        for state in states:
            agent.planned_actions.add(state, np.array([0.7], dtype=np.float32))
        agent._sac_steps(200)
        with torch.no_grad():
            mean, _ = agent.actor(torch.as_tensor(states))
        mean_actions[distill] = torch.tanh(mean).numpy()
    assert np.abs(mean_actions[True] - 0.7).mean() < 0.5 * np.abs(mean_actions[False] - 0.7).mean()


def test_labelled_acting_keeps_the_actor_in_control_and_records_the_planner() -> None:
    actions, agent = _acting_run(seed=3, act="labelled", distill=True)
    assert len(agent.planned_actions) == 30  # a label at every state after the first refit
    # The executed actions are the actor's samples, not the planner's labels.
    assert not np.allclose(np.stack(actions[40:]), agent.planned_actions.act[:30])
    planner_actions, _ = _acting_run(seed=3, act="planner", distill=True)
    np.testing.assert_array_equal(np.stack(actions[:40]), np.stack(planner_actions[:40]))


def test_planning_service_plans_exactly_like_agent_plan(tmp_path: Path) -> None:
    saved = write_small_run(tmp_path / "run", seed=2, epoch=1)
    service = PlanningService.from_run(tmp_path / "run", default_horizon=6)
    assert len(service.agent.d_env) == 0  # the planner loads no replay buffer
    obs = np.array([0.2, -0.1, 0.4], dtype=np.float32)
    generator_state = saved.torch_generator.get_state()
    service.agent.torch_generator.set_state(generator_state)
    served = service.plan(obs)
    expected = saved.plan(obs, horizon=6)
    np.testing.assert_array_equal(served.actions, expected.actions[0].numpy())
    assert served.predicted_return == pytest.approx(float(expected.returns[0]), rel=0, abs=0)
    # The next request: the previous reply, shifted one step, is a candidate (the acting
    # planner's warm start), exactly as Agent.plan with it as a fixed sequence.
    shifted = torch.cat([expected.actions[:, 1:], expected.actions[:, -1:]], dim=1)
    next_served = service.plan(obs + 0.05)
    next_expected = saved.plan(obs + 0.05, horizon=6, fixed=shifted.unsqueeze(1))
    np.testing.assert_array_equal(next_served.actions, next_expected.actions[0].numpy())


def test_model_env_applies_known_reward_and_termination_for_every_caller() -> None:
    # Leg2R's known reward and (never-)termination through the same ModelEnv in the inner loop
    # (mbpo and mdemorl) and in Agent.plan.
    from mdemorl_core.envs.task_rewards import leg2r_reward

    obs_dim = 14
    for algo in ("mbpo", "mdemorl"):
        config = _config(
            algo, task_reward="Leg2R-v0", task_termination="Leg2R-v0", update_mode="epoch"
        )
        agent = Agent(obs_dim, 2, config, torch.device("cpu"), seed=0)
        rng = np.random.default_rng(0)
        for _ in range(60):
            obs = rng.normal(size=obs_dim).astype(np.float32)
            act = rng.uniform(-1, 1, 2).astype(np.float32)
            agent.observe(obs, act, 0.0, obs + 0.01 * rng.normal(size=obs_dim), False)
        agent.update(epoch=1)
        rows = agent.d_mpc.all()
        expected = leg2r_reward(
            torch.as_tensor(rows["obs"]),
            torch.as_tensor(rows["act"]),
            torch.as_tensor(rows["next_obs"]),
        )
        np.testing.assert_allclose(rows["rew"], expected.numpy(), rtol=1e-5, atol=1e-6)
        assert not rows["done"].any()
        env = agent.model_env()
        assert env.reward_fn is leg2r_reward and env.termination_fn is not None


def test_model_rollouts_stop_at_predicted_terminal_states() -> None:
    # InvertedPendulum-v5 terminates when |pole angle| (obs[1]) > 0.2: start states near the
    # limit make many model rollouts terminate; D_MPC then holds terminal rows flagged done and
    # no row that starts after a terminal state.
    for algo in ("mbpo", "mdemorl"):
        config = _config(algo, task_termination="InvertedPendulum-v5", update_mode="epoch")
        config = dataclasses.replace(config, schedule=ScheduleConfig(4, 4, 50, 50))
        agent = Agent(4, 1, config, torch.device("cpu"), seed=0)
        rng = np.random.default_rng(0)
        for _ in range(60):
            obs = np.array([0.0, rng.uniform(-0.2, 0.2), 0.0, 0.0], dtype=np.float32)
            act = rng.uniform(-1, 1, 1).astype(np.float32)
            next_obs = obs + np.array([0.0, 0.1 * abs(obs[1]) + 0.05, 0.0, 0.0], np.float32)
            agent.observe(obs, act, 1.0, next_obs, bool(abs(next_obs[1]) > 0.2))
        agent.update(epoch=1)
        rows = agent.d_mpc.all()
        assert rows["done"].sum() > 0 and len(rows["done"]) < 50 * 4
        np.testing.assert_array_equal(rows["done"] > 0, np.abs(rows["next_obs"][:, 1]) > 0.2)
        assert bool(np.all(np.abs(rows["obs"][:, 1]) <= 0.2))
