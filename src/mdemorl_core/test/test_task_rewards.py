"""Known task rewards: equal to the env's reward on real transitions; used by the agent's model."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

import mdemorl_core.envs  # noqa: F401  (registers Leg2R-v0)
from mdemorl_core.agent import Agent, AgentConfig
from mdemorl_core.agents.sac import SACConfig
from mdemorl_core.envs.leg2r import Leg2REnv
from mdemorl_core.envs.leg2r_hardware import Leg2RHardwareEnv
from mdemorl_core.envs.leg2r_task import OBSERVATION_DIM, tracking_controller_action
from mdemorl_core.envs.task_rewards import leg2r_reward, task_reward_function
from mdemorl_core.models.ensemble import EnsembleConfig
from mdemorl_core.planning.dmd_mpc import PlannerConfig
from mdemorl_core.planning.schedules import ScheduleConfig

torch.set_num_threads(1)


def _leg2r_transitions(steps: int, task: str = "Leg2R-v0") -> dict[str, np.ndarray]:
    """Real Leg2R transitions: random torques, and zero torque (the leg sags) every third step,
    plus the tracking controller's near-perfect steps so that rewards near 1 are covered. The
    controller reads the state a robot controller would: v1's measured one."""
    env = gym.make(task)
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(3)
    rows: dict[str, list[np.ndarray]] = {"obs": [], "act": [], "rew": [], "next_obs": []}
    unwrapped = env.unwrapped
    assert isinstance(unwrapped, Leg2REnv)
    for step in range(steps):
        if step < steps // 2:
            action = np.zeros(2) if step % 3 == 0 else rng.uniform(-1.0, 1.0, 2)
        else:
            if isinstance(unwrapped, Leg2RHardwareEnv):
                q, qd = unwrapped.measured_q, unwrapped.measured_qd
            else:
                q, qd = unwrapped.physics.q, unwrapped.physics.qd
            action = tracking_controller_action(q, qd, unwrapped.episode_time, unwrapped.params)
        next_obs, reward, _, truncated, _ = env.step(np.asarray(action, dtype=np.float32))
        for key, value in (("obs", obs), ("act", action), ("rew", reward), ("next_obs", next_obs)):
            rows[key].append(np.asarray(value, dtype=np.float32))
        obs = env.reset()[0] if truncated else next_obs
    env.close()
    return {key: np.stack(value) for key, value in rows.items()}


@pytest.mark.parametrize("task", ["Leg2R-v0", "Leg2RHardware-v0"])
def test_leg2r_reward_equals_the_env_reward(task: str) -> None:
    data = _leg2r_transitions(600, task)
    predicted = task_reward_function(task)(
        torch.as_tensor(data["obs"]),
        torch.as_tensor(data["act"]),
        torch.as_tensor(data["next_obs"]),
    ).numpy()
    assert predicted.shape == (600,)
    assert data["rew"].max() > 0.9 and data["rew"].min() < 0.1  # both ends of [0, 1] covered
    np.testing.assert_allclose(predicted, data["rew"], atol=1e-5)


def test_leg2r_reward_renormalises_joint_cos_sin() -> None:
    data = _leg2r_transitions(50)
    next_obs = torch.as_tensor(data["next_obs"])
    scaled = next_obs.clone()
    scaled[:, :4] *= 1.7  # a model's prediction off the unit circle
    args = (torch.as_tensor(data["obs"]), torch.as_tensor(data["act"]))
    torch.testing.assert_close(leg2r_reward(*args, scaled), leg2r_reward(*args, next_obs))


def test_unknown_task_reward_is_rejected_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="Leg2R-v0"):
        task_reward_function("HalfCheetah-v5")
    with pytest.raises(ValueError, match="task_reward"):
        AgentConfig(task_reward="HalfCheetah-v5")


@pytest.mark.parametrize("algo", ["mdemorl", "mbpo"])
def test_agent_model_rollouts_use_the_task_reward(algo: str) -> None:
    config = AgentConfig(
        algo=algo,
        sac=SACConfig(hidden_size=32, batch_size=32),
        model=EnsembleConfig(
            ensemble_size=3, num_elites=2, hidden_size=16, num_layers=2, max_epochs=3
        ),
        planner=PlannerConfig(num_samples=8, chunk_size=16),
        schedule=ScheduleConfig(h_start=3, h_end=3, b_start=20, b_end=20),
        utd_ratio=0.1,
        initial_random_steps=50,
        min_model_data=50,
        task_reward="Leg2R-v0",
        update_mode="epoch",  # the refit + inner loop run in update(), as checked below
    )
    agent = Agent(OBSERVATION_DIM, 2, config, torch.device("cpu"), seed=0)
    data = _leg2r_transitions(200)
    for row in range(200):
        agent.observe(
            data["obs"][row], data["act"][row], data["rew"][row], data["next_obs"][row], False
        )
    metrics = agent.update(epoch=1)
    assert metrics["d_mpc"] == 60
    model_rows = agent.d_mpc.all()
    expected = leg2r_reward(
        torch.as_tensor(model_rows["obs"]),
        torch.as_tensor(model_rows["act"]),
        torch.as_tensor(model_rows["next_obs"]),
    ).numpy()
    np.testing.assert_allclose(model_rows["rew"], expected, atol=1e-6)
    head = Agent(
        OBSERVATION_DIM, 2, dataclasses.replace(config, task_reward=""), torch.device("cpu"), seed=0
    )
    assert head.reward_fn is None and agent.reward_fn is leg2r_reward
