"""Probabilistic ensemble: shapes, log-variance bounds, TS-1 routing, NLL training and elites."""

import math

import pytest
import torch

from mdemorl_core.models.ensemble import (
    DynamicsEnsemble,
    EnsembleConfig,
    GaussianEnsemble,
    holdout_size,
)

torch.set_num_threads(1)


def _small_config(**overrides: float) -> EnsembleConfig:
    values: dict = dict(ensemble_size=4, num_elites=3, hidden_size=32, num_layers=2, batch_size=64)
    values.update(overrides)
    return EnsembleConfig(**values)


def test_predict_shapes_are_members_by_rows_by_dims() -> None:
    model = DynamicsEnsemble(obs_dim=3, act_dim=2, config=_small_config())
    obs, act = torch.randn(10, 3), torch.randn(10, 2)
    mean, var = model.predict(torch.cat([obs, act], dim=1))
    assert mean.shape == (4, 10, 4) and var.shape == (4, 10, 4)
    assert bool((var > 0).all())
    next_obs, reward = model.step(obs, act, torch.Generator().manual_seed(0))
    assert next_obs.shape == (10, 3) and reward.shape == (10,)
    with pytest.raises(ValueError, match="inputs"):
        model.predict(torch.randn(10, 4))


def test_log_variance_is_soft_bounded_for_extreme_inputs() -> None:
    model = GaussianEnsemble(1, 1, _small_config())
    _, log_var = model.forward_normalized(torch.full((4, 5, 1), 1e4))
    # softplus(x) > x by at most log 2 * exp(-|x|): the second bound overshoots by < 1e-4.
    assert bool((log_var <= model.max_log_var + 1e-4).all())
    assert bool((log_var >= model.min_log_var - 1e-4).all())
    _, low_log_var = model.forward_normalized(torch.full((4, 5, 1), -1e4))
    assert bool(torch.isfinite(low_log_var).all())


def test_ts1_routes_each_row_through_exactly_one_elite() -> None:
    model = DynamicsEnsemble(2, 1, _small_config())
    model.elite_indices.copy_(torch.tensor([3, 0, 2]))
    generator = torch.Generator().manual_seed(0)
    for rows in (1, 2, 7, 30):
        inputs = torch.randn(rows, 3)
        routed_mean, _ = model.predict_elites_partitioned(inputs, generator)
        member_means, _ = model.predict(inputs)
        distance = (member_means - routed_mean.unsqueeze(0)).abs().amax(dim=2)  # K x N
        matches = distance < 1e-5
        assert bool(matches[[3, 0, 2]].any(dim=0).all()), "every row must equal one elite's output"
        assert not bool(matches[1].any()), "the non-elite member must never be used"


def test_fewer_rows_than_elites_run_only_the_elites_they_need_with_the_same_result() -> None:
    model = DynamicsEnsemble(2, 1, _small_config())
    model.elite_indices.copy_(torch.tensor([3, 0, 2]))
    used: list[int] = []
    forward = model.forward_normalized

    def counting(inputs: torch.Tensor, members: torch.Tensor | None = None) -> tuple:
        used.append(int(inputs.shape[0]))
        return forward(inputs, members)

    model.forward_normalized = counting  # type: ignore[method-assign]
    for rows in (1, 2):
        inputs = torch.randn(rows, 3)
        routed, _ = model.predict_elites_partitioned(inputs, torch.Generator().manual_seed(5))
        # The padded routing this replaces: row permutation[j] goes through elite j.
        permutation = torch.randperm(rows, generator=torch.Generator().manual_seed(5))
        member_means, _ = model.predict(inputs)
        inverse = permutation.argsort()
        expected = member_means[model.elite_indices[inverse], torch.arange(rows)]
        torch.testing.assert_close(routed, expected, rtol=1e-5, atol=1e-6)
    assert used[0] == 1 and used[2] == 2  # members run per call (predict's calls in between)


def test_holdout_is_twenty_percent_capped_at_5000() -> None:
    assert holdout_size(1000, 0.2, 5000) == 200
    assert holdout_size(100000, 0.2, 5000) == 5000


def test_training_lowers_holdout_nll_on_noisy_sine() -> None:
    generator = torch.Generator().manual_seed(0)
    noise_std = 0.1

    def data(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.rand(rows, 1, generator=generator) * 6.0 - 3.0
        return x, torch.sin(x) + noise_std * torch.randn(rows, 1, generator=generator)

    train_x, train_y = data(1500)
    test_x, test_y = data(500)
    model = GaussianEnsemble(1, 1, _small_config(max_epochs=60, learning_rate=3e-3))
    nll_before = model.nll(test_x, test_y)
    metrics = model.fit(train_x, train_y, generator)
    nll_after = model.nll(test_x, test_y)
    best_possible = 0.5 * math.log(2 * math.pi * noise_std**2) + 0.5  # about -0.88
    assert nll_after < nll_before - 1.0
    assert nll_after < best_possible + 0.5
    assert metrics["holdout_mse"] < 0.5 * metrics["holdout_mse_start"]
    assert 1 <= metrics["model_epochs"] <= 60
    elites = model.elite_indices.tolist()
    assert len(set(elites)) == 3


def test_early_stopping_stops_before_max_epochs_on_a_constant() -> None:
    inputs = torch.randn(400, 2)
    targets = torch.ones(400, 1)
    model = GaussianEnsemble(2, 1, _small_config(max_epochs=500, patience=3))
    metrics = model.fit(inputs, targets, torch.Generator().manual_seed(0))
    assert metrics["model_epochs"] < 500


def test_invalid_elite_count_raises() -> None:
    with pytest.raises(ValueError, match="num_elites"):
        EnsembleConfig(ensemble_size=3, num_elites=5)


def test_member_subset_gather_follows_weight_updates_under_no_grad() -> None:
    from mdemorl_core.models.ensemble import EnsembleLinear

    torch.manual_seed(0)
    layer = EnsembleLinear(4, 3, 2)
    x = torch.randn(2, 5, 3)
    members = torch.tensor([1, 3])
    with torch.no_grad():
        first = layer(x, members)
        torch.testing.assert_close(first, layer(x, members))
        layer.weight.add_(1.0)
        expected = torch.baddbmm(layer.bias[members], x, layer.weight[members])
        torch.testing.assert_close(layer(x, members), expected)
        other = torch.tensor([0, 2])
        expected_other = torch.baddbmm(layer.bias[other], x, layer.weight[other])
        torch.testing.assert_close(layer(x, other), expected_other)
    assert not torch.allclose(first, expected)


def test_alternating_member_sets_keep_one_gather_each_until_the_weights_change() -> None:
    """A one-state plan alternates all elites (M samples) and one elite (the rollout of mu):
    each set's weights are gathered once, and an update still reaches both."""
    from mdemorl_core.models.ensemble import EnsembleLinear

    torch.manual_seed(0)
    layer = EnsembleLinear(4, 3, 2)
    sets = [torch.tensor([1, 3, 0]), torch.tensor([1])]
    with torch.no_grad():
        for _ in range(3):
            for members in sets:
                x = torch.randn(len(members), 5, 3)
                expected = torch.baddbmm(layer.bias[members], x, layer.weight[members])
                assert torch.equal(layer(x, members), expected)
        assert len(layer._subsets) == len(sets)
        layer.bias.add_(2.0)
        for members in sets:
            x = torch.randn(len(members), 5, 3)
            expected = torch.baddbmm(layer.bias[members], x, layer.weight[members])
            assert torch.equal(layer(x, members), expected)


def test_mean_only_ts1_prediction_is_the_full_predictions_mean() -> None:
    model = DynamicsEnsemble(2, 1, _small_config())
    inputs = torch.randn(30, 3)
    with torch.no_grad():
        full_mean, full_var = model.predict_elites_partitioned(
            inputs, torch.Generator().manual_seed(4)
        )
        mean, var = model.predict_elites_partitioned(
            inputs, torch.Generator().manual_seed(4), with_variance=False
        )
    assert var is None and full_var is not None and full_var.shape == full_mean.shape
    assert torch.equal(mean, full_mean)


def test_bf16_inference_step_tracks_fp32_and_returns_fp32() -> None:
    torch.manual_seed(0)
    exact = DynamicsEnsemble(3, 2, _small_config())
    fast = DynamicsEnsemble(3, 2, _small_config(bf16_inference=True))
    fast.load_state_dict(exact.state_dict())
    obs, act = torch.randn(50, 3), torch.randn(50, 2)
    with torch.no_grad():
        next_exact, reward_exact = exact.step(obs, act, torch.Generator().manual_seed(1))
        next_fast, reward_fast = fast.step(obs, act, torch.Generator().manual_seed(1))
    assert next_fast.dtype == torch.float32 and reward_fast.dtype == torch.float32
    assert not torch.equal(next_fast, next_exact)  # the bf16 path was taken
    # bfloat16 keeps 8 mantissa bits: outputs agree to about 1 % of their scale.
    torch.testing.assert_close(next_fast, next_exact, atol=0.05, rtol=0.02)
    torch.testing.assert_close(reward_fast, reward_exact, atol=0.05, rtol=0.02)
    # With gradients enabled (training) the float32 path is used.
    torch.testing.assert_close(fast.step(obs, act, torch.Generator().manual_seed(1))[0], next_exact)
