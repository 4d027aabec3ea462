"""SAC: tanh-Gaussian density, parameter updates, Polyak targets, automatic entropy tuning."""

import copy

import numpy as np
import pytest
import torch
from torch.distributions import Normal, TanhTransform, TransformedDistribution

from mdemorl_core.agents import sac as sac_module
from mdemorl_core.agents.sac import SAC, SACConfig, TanhGaussianActor, TwinQ, build_mlp
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


@pytest.fixture(autouse=True)
def _bf16_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    # bf16 autocast is exact in semantics on any CPU (only slower without native bf16 units), so
    # the tests exercise it even where SAC would fall back to float32 by itself.
    monkeypatch.setattr(sac_module, "native_bf16", lambda device_type: True)


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


def test_deterministic_policy_action_is_the_sample_action_and_draws_no_noise() -> None:
    torch.manual_seed(0)
    actor = TanhGaussianActor(5, 3, hidden_size=16, num_layers=2)
    obs = torch.randn(6, 5)
    generator = torch.Generator().manual_seed(2)
    before = generator.get_state()
    with torch.no_grad():
        action = actor.policy_action(obs, generator, True)
        assert torch.equal(action, actor.sample(obs, None, True)[0])
    assert torch.equal(generator.get_state(), before)
    with torch.no_grad():
        sampled = actor.policy_action(obs, generator, False)
        assert torch.equal(sampled, actor.sample(obs, torch.Generator().manual_seed(2))[0])


def _two_sequential_critics(critic: TwinQ) -> tuple[torch.nn.Sequential, torch.nn.Sequential]:
    """The former layout (two independent ``nn.Sequential`` MLPs) holding the fused weights."""
    in_dim = critic.layers[0].weight.shape[1]
    hidden = critic.layers[0].weight.shape[2]
    nets = []
    for head in range(2):
        net = build_mlp(in_dim, 1, hidden, len(critic.layers) - 1)
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for linear, layer in zip(linears, critic.layers, strict=True):
                linear.weight.copy_(layer.weight[head].t())
                linear.bias.copy_(layer.bias[head, 0])
        nets.append(net)
    return nets[0], nets[1]


def test_fused_critic_equals_two_independent_critics_in_values_and_gradients() -> None:
    torch.manual_seed(0)
    critic = TwinQ(3, 2, hidden_size=16, num_layers=2)
    q1_net, q2_net = _two_sequential_critics(critic)
    obs = torch.randn(9, 3)
    act = (torch.rand(9, 2) * 2 - 1).requires_grad_(True)
    act_ref = act.detach().clone().requires_grad_(True)
    q1, q2 = critic(obs, act)
    inputs = torch.cat([obs, act_ref], dim=-1)
    r1, r2 = q1_net(inputs).squeeze(-1), q2_net(inputs).squeeze(-1)
    torch.testing.assert_close(q1, r1)
    torch.testing.assert_close(q2, r2)
    # A loss that weights the heads differently, so swapped or summed gradients would show.
    (q1.pow(2).sum() + 3.0 * torch.minimum(q1, q2).sum()).backward()
    (r1.pow(2).sum() + 3.0 * torch.minimum(r1, r2).sum()).backward()
    torch.testing.assert_close(act.grad, act_ref.grad)
    for head, net in enumerate((q1_net, q2_net)):
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        for linear, layer in zip(linears, critic.layers, strict=True):
            assert layer.weight.grad is not None and layer.bias.grad is not None
            torch.testing.assert_close(layer.weight.grad[head], linear.weight.grad.t())
            torch.testing.assert_close(layer.bias.grad[head, 0], linear.bias.grad)


def test_actor_loss_pass_builds_no_critic_weight_gradients() -> None:
    critic = _sac().critic
    act = torch.zeros(4, 2, requires_grad=True)
    critic.q_values(torch.randn(4, 3), act, detach_weights=True).sum().backward()
    assert act.grad is not None and bool(act.grad.abs().sum() > 0)
    assert all(p.grad is None for p in critic.parameters())


def test_former_two_sequential_checkpoints_load_into_the_fused_critic() -> None:
    source = _sac()
    q1_net, q2_net = _two_sequential_critics(source.critic)
    legacy_critic = torch.nn.ModuleDict({"q1": q1_net, "q2": q2_net})
    # One Adam step in the former layout gives moments to convert.
    legacy_optimizer = torch.optim.Adam(legacy_critic.parameters(), lr=1e-3)
    obs, act = torch.randn(8, 3), torch.rand(8, 2)
    inputs = torch.cat([obs, act], dim=-1)
    (q1_net(inputs).pow(2).sum() + 2.0 * q2_net(inputs).sum()).backward()
    legacy_optimizer.step()

    state = {k: v for k, v in source.state_dict().items() if not k.startswith("critic.")}
    state.update({f"critic.{k}": v for k, v in legacy_critic.state_dict().items()})
    restored = _sac()
    restored.load_state_dict(state)
    optimizers = source.optimizer_state_dict()
    optimizers["critic"] = legacy_optimizer.state_dict()
    restored.load_optimizer_state_dict(optimizers)

    q1, q2 = restored.critic(obs, act)
    torch.testing.assert_close(q1, q1_net(inputs).squeeze(-1))
    torch.testing.assert_close(q2, q2_net(inputs).squeeze(-1))
    for layer_index, layer in enumerate(restored.critic.layers):
        for head, net in enumerate((q1_net, q2_net)):
            linear = [m for m in net if isinstance(m, torch.nn.Linear)][layer_index]
            moments = restored.critic_optimizer.state[layer.weight]
            expected = legacy_optimizer.state[linear.weight]["exp_avg_sq"].t()
            torch.testing.assert_close(moments["exp_avg_sq"][head], expected)
            bias_moments = restored.critic_optimizer.state[layer.bias]
            expected_bias = legacy_optimizer.state[linear.bias]["exp_avg"]
            torch.testing.assert_close(bias_moments["exp_avg"][head, 0], expected_bias)
    # The restored learner keeps training.
    restored.update(_batch(), torch.Generator().manual_seed(0))


@pytest.mark.parametrize("bf16", [False, True])
def test_updates_are_deterministic_under_a_seed(bf16: bool) -> None:
    runs = []
    for _ in range(2):
        sac = _sac(bf16=bf16)
        generator = torch.Generator().manual_seed(3)
        metrics = [sac.update(_batch(seed=i), generator) for i in range(3)]
        runs.append((metrics, sac.state_dict()))
    assert runs[0][0] == runs[1][0]
    for key, value in runs[0][1].items():
        assert torch.equal(value, runs[1][1][key]), key


def test_bf16_update_keeps_fp32_weights_and_tracks_the_fp32_update() -> None:
    exact, fast = _sac(), _sac(bf16=True)
    before = torch.cat([p.detach().flatten() for p in exact.parameters()])
    exact_metrics = exact.update(_batch(), torch.Generator().manual_seed(0))
    fast_metrics = fast.update(_batch(), torch.Generator().manual_seed(0))
    assert all(p.dtype == torch.float32 for p in fast.parameters())
    for name in ("critic_loss", "actor_loss", "entropy"):
        assert fast_metrics[name] == pytest.approx(exact_metrics[name], rel=0.05, abs=0.02)
    # Adam's first step is ~lr * sign(grad) per element: bf16 rounding may flip the sign of tiny
    # gradient entries, but the step as a whole must point the same way as the fp32 one.
    exact_step = torch.cat([p.detach().flatten() for p in exact.parameters()]) - before
    fast_step = torch.cat([p.detach().flatten() for p in fast.parameters()]) - before
    assert not torch.equal(exact_step, fast_step)
    assert float(torch.nn.functional.cosine_similarity(exact_step, fast_step, dim=0)) > 0.95


def test_bf16_falls_back_to_fp32_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sac_module, "native_bf16", lambda device_type: False)
    exact, fallback = _sac(), _sac(bf16=True)
    assert not fallback.uses_bf16
    assert exact.update(_batch(), torch.Generator().manual_seed(0)) == fallback.update(
        _batch(), torch.Generator().manual_seed(0)
    )
