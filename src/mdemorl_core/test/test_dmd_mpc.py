"""DMD-MPC: eq. 9, utilities, improvement under a perfect model, chunking and large batches."""

import math

import pytest
import torch

from mdemorl_core.agents.sac import SAC, SACConfig
from mdemorl_core.models.ensemble import DynamicsEnsemble, EnsembleConfig
from mdemorl_core.models.model_env import ModelEnv
from mdemorl_core.planning.dmd_mpc import (
    DMDMPCPlanner,
    PlannerConfig,
    auto_chunk_size,
    dmd_update,
    elite_weights,
    exp_weights,
    rollout_policy,
)

torch.set_num_threads(1)


def test_dmd_step_matches_eq9_by_hand() -> None:
    shifted = torch.tensor([[[0.2, -0.4], [1.0, 0.0]]])
    target = torch.tensor([[[0.6, 0.0], [-1.0, 0.8]]])
    expected = torch.tensor([[[0.3, -0.3], [0.5, 0.2]]])  # 0.75 * shifted + 0.25 * target
    torch.testing.assert_close(dmd_update(shifted, target, 0.25), expected)


def test_elite_selection_keeps_the_p_best() -> None:
    returns = torch.tensor([[5.0, -1.0, 3.0, 10.0, 0.0, 2.0, -7.0, 4.0, 1.0, 6.0, 8.0, -2.0]])
    weights = elite_weights(returns, elite_fraction=0.25)  # ceil(0.25 * 12) = 3 elites
    assert set(torch.nonzero(weights[0]).flatten().tolist()) == {3, 10, 9}
    torch.testing.assert_close(weights.sum(1), torch.ones(1))
    assert int((elite_weights(returns, 0.1) > 0).sum()) == 2  # ceil(1.2) = 2


@pytest.mark.parametrize(
    "returns",
    [
        [-3.0, 2.0, -0.5, 0.0, 1.0, -8.0, 4.0, -1.0, 0.5, 3.0],  # crosses zero
        [-1e6, -2e6, -3.5e6, -1.2e6, -9e5, -4e6, -5e6, -6e6, -7e6, -8e6],  # all negative, huge
        [-2.0] * 10,  # all equal
    ],
)
@pytest.mark.parametrize("weighting", ["uniform", "softmax"])
def test_weights_stay_valid_when_returns_change_sign(returns: list[float], weighting: str) -> None:
    table = torch.tensor([returns])
    for weights in (elite_weights(table, 0.3, weighting, 0.5), exp_weights(table, 0.5)):
        assert bool(torch.isfinite(weights).all()) and bool((weights >= 0).all())
        torch.testing.assert_close(weights.sum(1), torch.ones(1))
    elite = elite_weights(table, 0.3, weighting, 0.5)
    assert int((elite > 0).sum()) == 3
    if len(set(returns)) == len(returns):  # with ties any of the tied samples may be kept
        best = int(torch.argmax(table))
        assert float(elite[0, best]) == pytest.approx(float(elite.max()))


# A perfect model of a 1-D integrator x' = x + 0.5 u with reward -(x^2) - 0.1 u^2.
def _true_dynamics(
    obs: torch.Tensor, act: torch.Tensor, _: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    return obs + 0.5 * act, -(obs[:, 0] ** 2) - 0.1 * act[:, 0] ** 2


def _bad_policy(obs: torch.Tensor, _: torch.Generator, __: bool) -> torch.Tensor:
    return torch.full((obs.shape[0], 1), 0.8)  # drives the state away from the origin


def _true_return(start: float, actions: torch.Tensor, gamma: float) -> float:
    x, total = start, 0.0
    for h, u in enumerate(actions[:, 0].tolist()):
        total += gamma**h * (-(x**2) - 0.1 * u**2)
        x = x + 0.5 * u
    return total


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"open_loop": True},
        {"utility": "exp"},
        {"iterations": 3},
        {"elite_weighting": "softmax"},
    ],
)
def test_planner_with_perfect_model_beats_the_policy_nominal(overrides: dict) -> None:
    config = PlannerConfig(num_samples=200, gamma=0.95, dmd_step=0.8, noise_std=0.5, **overrides)
    planner = DMDMPCPlanner(config)
    start = torch.tensor([[1.0], [-0.5]])
    result = planner.plan(
        start, 8, ModelEnv(_true_dynamics), _bad_policy, torch.Generator().manual_seed(0)
    )
    assert result.actions.shape == (2, 8, 1) and result.returns.shape == (2,)
    for row, x0 in enumerate((1.0, -0.5)):
        nominal = _true_return(x0, torch.full((8, 1), 0.8), 0.95)
        planned = _true_return(x0, result.actions[row], 0.95)
        assert planned > nominal + 0.1
        assert float(result.returns[row]) == pytest.approx(planned, rel=1e-4)
        assert float(result.nominal_returns[row]) == pytest.approx(nominal, rel=1e-4)
    # The returned transitions are the open-loop rollout of the plan from x0.
    torch.testing.assert_close(result.obs[:, 0], start)
    torch.testing.assert_close(result.obs[:, 1:], result.next_obs[:, :-1])
    torch.testing.assert_close(result.next_obs, result.obs + 0.5 * result.actions)


def test_terminal_value_and_discount_enter_the_return() -> None:
    planner = DMDMPCPlanner(PlannerConfig(num_samples=4, gamma=0.5, noise_std=0.0))
    result = planner.plan(
        torch.zeros(1, 1),
        2,
        ModelEnv(
            lambda o, a, g: (o, torch.ones(o.shape[0])),
            value_fn=lambda o, g: torch.full((o.shape[0],), 8.0),
        ),
        _bad_policy,
        torch.Generator().manual_seed(0),
    )
    assert float(result.returns[0]) == pytest.approx(1.0 + 0.5 + 0.25 * 8.0)


def test_large_batch_is_processed_in_bounded_chunks() -> None:
    torch.manual_seed(0)
    obs_dim, act_dim = 4, 2
    model = DynamicsEnsemble(obs_dim, act_dim, EnsembleConfig(hidden_size=32, num_layers=2))
    sac = SAC(obs_dim, act_dim, SACConfig(hidden_size=32), torch.device("cpu"))
    planner = DMDMPCPlanner(PlannerConfig(num_samples=100, chunk_size=1000))
    result = planner.plan(
        torch.randn(10000, obs_dim),
        15,
        ModelEnv(model.step, value_fn=sac.soft_value),
        sac.actor.policy_action,
        torch.Generator().manual_seed(0),
    )
    assert result.actions.shape == (10000, 15, act_dim)
    assert result.returns.shape == (10000,) and result.rewards.shape == (10000, 15)
    assert result.obs.shape == result.next_obs.shape == (10000, 15, obs_dim)
    assert bool(torch.isfinite(result.returns).all()) and bool((result.actions.abs() <= 1).all())
    assert planner.max_rows_per_call == 1000 * (100 + 1)  # M samples + the nominal particle


def test_auto_chunk_size_bounds_rows_per_call() -> None:
    assert auto_chunk_size(torch.device("cpu"), 100) == 30
    assert auto_chunk_size(torch.device("cuda"), 100) == 1000
    assert auto_chunk_size(torch.device("cpu"), 10_000) == 1
    planner = DMDMPCPlanner(PlannerConfig(num_samples=10))
    result = planner.plan(
        torch.ones(1000, 1), 2, ModelEnv(_true_dynamics), _bad_policy, torch.Generator()
    )
    assert result.actions.shape == (1000, 2, 1)
    assert planner.max_rows_per_call == 300 * (10 + 1)
    with pytest.raises(ValueError, match="chunk_size"):
        PlannerConfig(chunk_size=-1)


def test_single_start_state_and_bad_input() -> None:
    planner = DMDMPCPlanner(PlannerConfig(num_samples=10))
    result = planner.plan(
        torch.ones(1, 1), 3, ModelEnv(_true_dynamics), _bad_policy, torch.Generator()
    )
    assert result.actions.shape == (1, 3, 1)
    with pytest.raises(ValueError, match="start_obs"):
        planner.plan(torch.ones(3), 3, ModelEnv(_true_dynamics), _bad_policy, torch.Generator())
    with pytest.raises(ValueError, match="utility"):
        PlannerConfig(utility="best")


def test_policy_rollout_shapes_and_consistency() -> None:
    obs, act, rew, next_obs, terminated, valid = rollout_policy(
        torch.ones(5, 1), 4, ModelEnv(_true_dynamics), _bad_policy, torch.Generator()
    )
    assert not bool(terminated.any()) and bool(valid.all())
    assert obs.shape == (5, 4, 1) and act.shape == (5, 4, 1) and rew.shape == (5, 4)
    torch.testing.assert_close(next_obs[:, -1, 0], torch.full((5,), 1.0 + 4 * 0.4))
    assert math.isclose(float(rew[0, 0]), -1.0 - 0.1 * 0.64, rel_tol=1e-6)


def _crossing(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Terminal once the integrator's state passes 2 (a 'fall')."""
    return next_obs[:, 0] > 2.0


def test_termination_masks_rewards_values_and_rows() -> None:
    # Reward 1 per step and terminal value 100: a particle that terminates keeps only the rewards
    # up to and including its terminal step, and no value.
    env = ModelEnv(
        lambda o, a, g: (o + 0.5 * a, torch.ones(o.shape[0])),
        termination_fn=_crossing,
        value_fn=lambda o, g: torch.full((o.shape[0],), 100.0),
    )
    planner = DMDMPCPlanner(PlannerConfig(num_samples=4, gamma=1.0, noise_std=0.0))
    start = torch.tensor([[1.0], [-10.0]])  # policy +0.8: row 0 passes 2 at step 3 (1 + 3*0.4)
    result = planner.plan(start, 5, env, _bad_policy, torch.Generator())
    assert float(result.returns[0]) == pytest.approx(3.0)
    assert float(result.returns[1]) == pytest.approx(5.0 + 100.0)
    assert result.terminated[0].tolist() == [False, False, True, False, False]
    assert result.valid[0].tolist() == [True, True, True, False, False]
    assert bool(result.valid[1].all()) and not bool(result.terminated[1].any())
    obs, act, rew, next_obs, terminated, valid = rollout_policy(
        start, 5, env, _bad_policy, torch.Generator()
    )
    torch.testing.assert_close(terminated, result.terminated)
    torch.testing.assert_close(valid, result.valid)


def test_nominal_is_a_candidate_so_the_plan_never_loses_to_it() -> None:
    # A good policy (drive x to 0) and large noise: every sample is worse than the nominal, and
    # with the nominal among the candidates, elite fraction 1/M keeps exactly it.
    def good_policy(obs: torch.Tensor, _: torch.Generator, __: bool) -> torch.Tensor:
        return (-2.0 * obs).clamp(-1.0, 1.0)

    start = torch.tensor([[0.5]])
    results = {}
    for include in (True, False):
        config = PlannerConfig(
            num_samples=8, noise_std=1.0, elite_fraction=0.1, dmd_step=1.0, include_nominal=include
        )
        results[include] = DMDMPCPlanner(config).plan(
            start, 6, ModelEnv(_true_dynamics), good_policy, torch.Generator().manual_seed(3)
        )
    with_nominal, without = results[True], results[False]
    assert float(with_nominal.returns[0]) >= float(with_nominal.nominal_returns[0]) - 1e-6
    assert float(without.returns[0]) < float(without.nominal_returns[0])


def test_fixed_candidates_and_closed_loop_rollout() -> None:
    planner = DMDMPCPlanner(PlannerConfig(num_samples=4, noise_std=0.5, elite_fraction=0.1))
    start = torch.tensor([[1.0]])
    best = torch.full((1, 1, 4, 1), -1.0)  # the optimal first moves towards the origin
    result = planner.plan(start, 4, ModelEnv(_true_dynamics), _bad_policy, torch.Generator(), best)
    # One elite out of 4 noisy + nominal + fixed; the fixed sequence is the best of them.
    torch.testing.assert_close(result.actions, 0.5 * torch.full((1, 4, 1), 0.8) + 0.5 * best[0])
    with pytest.raises(ValueError, match="fixed"):
        planner.plan(start, 3, ModelEnv(_true_dynamics), _bad_policy, torch.Generator(), best)
    closed = DMDMPCPlanner(
        PlannerConfig(num_samples=4, noise_std=0.5, closed_loop_rollout=True)
    ).plan(start, 4, ModelEnv(_true_dynamics), _bad_policy, torch.Generator().manual_seed(1))
    # Closed loop: u_h = pi(x_h) + mu_h - nominal_h; with a constant policy that equals mu.
    torch.testing.assert_close(closed.rollout_actions, closed.actions)
    torch.testing.assert_close(closed.next_obs, closed.obs + 0.5 * closed.rollout_actions)
