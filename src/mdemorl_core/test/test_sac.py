"""SAC: tanh-Gaussian density, parameter updates, Polyak targets, automatic entropy tuning."""

import copy

import numpy as np
import pytest
import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from mdemorl_core.agents.sac import SAC, SACConfig, TanhGaussianActor
from mdemorl_core.types import TransitionBatch

torch.set_num_threads(1)


def _batch(rows: int = 64, obs_dim: int = 3, act_dim: int = 2, seed: int = 0) -> TransitionBatch:
    g = torch.Generator().manual_seed(seed)
    return TransitionBatch(
        obs=torch.randn(rows, obs_dim, generator=g),
        act=torch.rand(rows, act_dim, generator=g) * 2 - 1,
        rew=torch.randn(rows, generator=g),
        next_obs=torch.randn(rows, obs_dim, generator=g),
        done=torch.zeros(rows),
    )


def _sac(**overrides: object) -> SAC:
    torch.manual_seed(0)
    values: dict = dict(hidden_size=32, num_layers=2)
    values.update(overrides)
    return SAC(3, 2, SACConfig(**values), torch.device("cpu"))


def test_actor_log_prob_matches_torch_tanh_distribution() -> None:
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, 2, hidden_size=16)
    obs = torch.randn(50, 3)
    action, log_prob = actor.sample(obs, torch.Generator().manual_seed(1))
    mean, log_std = actor(obs)
    reference = TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()])
    expected = reference.log_prob(action.clamp(-0.999999, 0.999999)).sum(-1)
    assert bool((action.abs() <= 1.0).all())
    torch.testing.assert_close(log_prob, expected, atol=2e-3, rtol=1e-3)
    deterministic, _ = actor.sample(obs, None, deterministic=True)
    torch.testing.assert_close(deterministic, torch.tanh(mean))


def test_update_changes_parameters_and_polyak_averages_targets() -> None:
    sac = _sac(tau=0.1)
    actor_before = copy.deepcopy(sac.actor.state_dict())
    target_before = [p.clone() for p in sac.critic_target.parameters()]
    metrics = sac.update(_batch(), torch.Generator().manual_seed(0))
    assert all(name in metrics for name in ("critic_loss", "actor_loss", "alpha", "entropy"))
    changed = [not torch.equal(actor_before[k], v) for k, v in sac.actor.state_dict().items()]
    assert all(changed)
    for old, target, online in zip(
        target_before, sac.critic_target.parameters(), sac.critic.parameters(), strict=True
    ):
        torch.testing.assert_close(target, 0.9 * old + 0.1 * online)


@pytest.mark.parametrize(("target_entropy", "direction"), [(-2.0, -1.0), (5.0, 1.0)])
def test_alpha_moves_toward_target_entropy(target_entropy: float, direction: float) -> None:
    # A fresh policy has entropy near that of a unit Gaussian squashed by tanh (about 0.4 per
    # dimension here): above -2 (alpha must fall) and below 5 (alpha must rise).
    sac = _sac(target_entropy=target_entropy, alpha_lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    alphas = [sac.update(_batch(seed=i), generator)["alpha"] for i in range(20)]
    assert direction * (alphas[-1] - 1.0) > 0.05


def test_default_target_entropy_is_minus_action_dim_and_alpha_is_fixed_without_auto() -> None:
    assert _sac().target_entropy == -2.0
    fixed = _sac(auto_alpha=False, init_alpha=0.2)
    fixed.update(_batch(), torch.Generator().manual_seed(0))
    assert fixed.alpha == pytest.approx(0.2)


def _critic_grad_norm(sac: SAC) -> float:
    grads = [p.grad for p in sac.critic.parameters() if p.grad is not None]
    return float(
        torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    )


def test_gradient_clipping_bounds_the_gradient_norm() -> None:
    # The gradients of the last step stay in .grad until the next zero_grad.
    free = _sac()
    free.update(_batch(), torch.Generator().manual_seed(0))
    clipped = _sac(grad_clip=0.05)
    clipped.update(_batch(), torch.Generator().manual_seed(0))
    assert _critic_grad_norm(free) > 0.05
    assert _critic_grad_norm(clipped) <= 0.05 + 1e-6


def test_soft_value_shape_and_invalid_config() -> None:
    sac = _sac()
    value = sac.soft_value(torch.randn(7, 3), torch.Generator().manual_seed(0))
    assert value.shape == (7,)
    with pytest.raises(ValueError, match="tau"):
        _sac(tau=0.0)


def test_act_numpy_fast_path_equals_the_deterministic_sample() -> None:
    torch.manual_seed(0)
    actor = TanhGaussianActor(5, 3, hidden_size=16, num_layers=2)
    obs = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    with torch.no_grad():
        expected = actor.sample(torch.as_tensor(obs), None, True)[0].numpy()
    np.testing.assert_allclose(actor.act_numpy(obs), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(actor.act_numpy(obs[1]), expected[1], rtol=1e-6, atol=1e-7)
