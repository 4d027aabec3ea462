"""Agent: Algorithm 1 per algo, warm-up, determinism and exact resume from state_dict."""

import dataclasses
import io
import math

import numpy as np
import pytest
import torch

from mdemorl_core.agent import Agent, AgentConfig
from mdemorl_core.agents.sac import SACConfig
from mdemorl_core.models.ensemble import EnsembleConfig
from mdemorl_core.planning.dmd_mpc import PlannerConfig
from mdemorl_core.planning.schedules import ScheduleConfig
from mdemorl_core.training.progress_log import AGENT_METRICS

torch.set_num_threads(1)
OBS_DIM, ACT_DIM = 3, 1


def _config(algo: str) -> AgentConfig:
    return AgentConfig(
        algo=algo,
        sac=SACConfig(hidden_size=32, batch_size=32),
        model=EnsembleConfig(
            ensemble_size=3, num_elites=2, hidden_size=16, num_layers=2, max_epochs=3
        ),
        planner=PlannerConfig(num_samples=8, chunk_size=16),
        schedule=ScheduleConfig(
            h_start=2, h_end=4, b_start=20, b_end=40, ramp_start_epoch=0, ramp_end_epoch=2
        ),
        update_mode="epoch",
        utd_ratio=0.1,
        initial_random_steps=50,
        min_model_data=50,
        mpc_buffer_capacity=500,
    )


def _collect(agent: Agent, steps: int, seed: int) -> None:
    """A damped linear system with a quadratic reward, driven by the agent's own actions."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=OBS_DIM).astype(np.float32)
    for _ in range(steps):
        act = agent.act(obs)
        next_obs = (0.9 * obs + 0.1 * act[0] + 0.01 * rng.normal(size=OBS_DIM)).astype(np.float32)
        agent.observe(obs, act, float(-np.sum(obs**2)), next_obs, False)
        obs = next_obs


@pytest.mark.parametrize("algo", ["mdemorl", "mopac", "mbpo", "sac"])
def test_update_runs_every_algorithm(algo: str) -> None:
    agent = Agent(OBS_DIM, ACT_DIM, _config(algo), torch.device("cpu"), seed=0)
    _collect(agent, 100, seed=1)
    calls: list[tuple[int, int]] = []
    metrics = agent.update(epoch=1, progress=lambda done, total: calls.append((done, total)))
    assert all(name in metrics for name in AGENT_METRICS)
    assert metrics["d_env"] == 100 and metrics["sac_steps"] == 10
    assert calls == [(i, 10) for i in range(1, 11)]
    assert math.isfinite(metrics["critic_loss"]) and math.isfinite(metrics["alpha"])
    obs = np.zeros(OBS_DIM, dtype=np.float32)
    if algo == "sac":
        assert math.isnan(metrics["model_loss"]) and metrics["d_mpc"] == 0
        with pytest.raises(ValueError, match="no model"):
            agent.plan(obs)
    else:
        assert math.isfinite(metrics["model_loss"])
        assert (metrics["horizon"], metrics["mpc_batch"]) == (3, 30)
        assert metrics["d_mpc"] == 90  # B x H model transitions
        planned = agent.plan(obs)
        assert planned.actions.shape == (1, 3, ACT_DIM)
        assert agent.plan(np.zeros((5, OBS_DIM)), horizon=2).actions.shape == (5, 2, ACT_DIM)


def test_model_rows_enter_minibatches_only_as_the_model_earns_trust() -> None:
    agent = Agent(OBS_DIM, ACT_DIM, _config("mdemorl"), torch.device("cpu"), seed=0)
    _collect(agent, 100, seed=1)
    first = agent.update(epoch=1)
    # The model had never been fitted when the epoch's data arrived: real data only.
    assert first["model_reward_r2"] == 0.0 and first["real_ratio"] == 1.0
    _collect(agent, 100, seed=2)
    second = agent.update(epoch=2)
    assert 0.0 <= second["model_reward_r2"] <= 1.0
    expected = 1.0 - (1.0 - agent.config.real_ratio) * second["model_reward_r2"]
    assert second["real_ratio"] == pytest.approx(expected)
    fixed = Agent(
        OBS_DIM,
        ACT_DIM,
        dataclasses.replace(_config("mdemorl"), adaptive_real_ratio=False),
        torch.device("cpu"),
        seed=0,
    )
    _collect(fixed, 100, seed=1)
    assert fixed.update(epoch=1)["real_ratio"] == fixed.config.real_ratio


def test_model_reward_r2_is_high_for_a_learnable_reward() -> None:
    config = dataclasses.replace(
        _config("mbpo"),
        model=EnsembleConfig(ensemble_size=3, num_elites=2, hidden_size=32, max_epochs=200),
    )
    agent = Agent(OBS_DIM, ACT_DIM, config, torch.device("cpu"), seed=0)
    _collect(agent, 400, seed=1)
    agent.update(epoch=1)
    _collect(agent, 200, seed=2)
    # -|x|^2 is smooth and covered by the data, so the fitted model predicts fresh rows well.
    assert agent.update(epoch=2)["model_reward_r2"] > 0.5


def test_d_mpc_keeps_only_the_rows_of_the_retained_env_steps() -> None:
    config = dataclasses.replace(_config("mbpo"), mpc_retain_steps=120)
    agent = Agent(OBS_DIM, ACT_DIM, config, torch.device("cpu"), seed=0)
    sizes = []
    for epoch in range(1, 4):
        _collect(agent, 60, seed=epoch)
        sizes.append(agent.update(epoch=epoch)["d_mpc"])
    # Schedule: B x H = 30 x 3 at epoch 1, 40 x 4 from epoch 2 on; inner loops every 60 env
    # steps and a retention of 120 steps: only the rows of the last two inner loops stay.
    assert sizes == [90, 90 + 160, 160 + 160]


def test_terminal_value_is_zero_until_the_critic_was_trained() -> None:
    agent = Agent(OBS_DIM, ACT_DIM, _config("mdemorl"), torch.device("cpu"), seed=0)
    obs = torch.ones(4, OBS_DIM)
    assert torch.equal(agent._terminal_value(obs, agent.torch_generator), torch.zeros(4))
    _collect(agent, 100, seed=1)
    agent.update(epoch=1)
    assert not torch.equal(agent._terminal_value(obs, agent.torch_generator), torch.zeros(4))


def test_warmup_actions_are_random_then_the_policy_acts() -> None:
    agent = Agent(OBS_DIM, ACT_DIM, _config("sac"), torch.device("cpu"), seed=0)
    obs = np.ones(OBS_DIM, dtype=np.float32)
    warmup = np.stack([agent.act(obs) for _ in range(20)])
    assert warmup.std() > 0.3 and bool(np.all(np.abs(warmup) <= 1))
    _collect(agent, 50, seed=0)
    with torch.no_grad():
        mean, _ = agent.actor(torch.as_tensor(obs).unsqueeze(0))
    np.testing.assert_allclose(
        agent.act(obs, deterministic=True), torch.tanh(mean)[0].numpy(), rtol=1e-6
    )
    with pytest.raises(ValueError, match="obs"):
        agent.act(np.ones(OBS_DIM + 1))


def test_two_agents_with_the_same_seed_are_identical() -> None:
    metrics = []
    for _ in range(2):
        agent = Agent(OBS_DIM, ACT_DIM, _config("mdemorl"), torch.device("cpu"), seed=4)
        _collect(agent, 100, seed=2)
        metrics.append(agent.update(epoch=1))
    assert metrics[0].keys() == metrics[1].keys()
    for name, value in metrics[0].items():
        assert value == metrics[1][name] or (math.isnan(value) and math.isnan(metrics[1][name])), (
            name
        )
    other = Agent(OBS_DIM, ACT_DIM, _config("mdemorl"), torch.device("cpu"), seed=5)
    _collect(other, 100, seed=2)
    assert other.update(epoch=1)["critic_loss"] != metrics[0]["critic_loss"]


@pytest.mark.parametrize("algo", ["mdemorl", "sac"])
def test_state_dict_round_trip_continues_exactly(algo: str) -> None:
    original = Agent(OBS_DIM, ACT_DIM, _config(algo), torch.device("cpu"), seed=0)
    _collect(original, 100, seed=1)
    original.update(epoch=1)
    stream = io.BytesIO()
    torch.save(original.state_dict(), stream)
    stream.seek(0)
    resumed = Agent(OBS_DIM, ACT_DIM, _config(algo), torch.device("cpu"), seed=123)
    resumed.load_state_dict(torch.load(stream, weights_only=True))
    results = []
    for agent in (original, resumed):
        _collect(agent, 60, seed=9)
        obs = np.full(OBS_DIM, 0.3, dtype=np.float32)
        actions = np.stack([agent.act(obs) for _ in range(5)])
        results.append((actions, agent.update(epoch=2), agent.actor.state_dict()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    for name, value in results[0][1].items():
        assert value == results[1][1][name] or (
            math.isnan(value) and math.isnan(results[1][1][name])
        ), name
    for key, tensor in results[0][2].items():
        assert torch.equal(tensor, results[1][2][key]), key


def test_mismatched_state_and_bad_config_raise() -> None:
    agent = Agent(OBS_DIM, ACT_DIM, _config("sac"), torch.device("cpu"), seed=0)
    with pytest.raises(ValueError, match="algo"):
        Agent(OBS_DIM, ACT_DIM, _config("mdemorl"), torch.device("cpu"), seed=0).load_state_dict(
            agent.state_dict()
        )
    with pytest.raises(ValueError, match="algo"):
        AgentConfig(algo="ppo")
