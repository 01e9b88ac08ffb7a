"""tinysora.moe: routing, the balancing loss and the MoE layer against direct per-token formulas."""

import numpy as np
import pytest
import torch

from tinysora.gpt import GPT, GPTConfig, train_lm
from tinysora.mlp import FFN
from tinysora.moe import (
    MoE,
    TopKGate,
    active_parameters,
    balancing_loss,
    dense_equivalent,
    expert_use,
    imbalance,
    load_balancing_loss,
    moe_gpt,
    moe_layers,
)


def test_gate_weights_sum_to_one_and_pick_the_top_scores():
    torch.manual_seed(0)
    gate = TopKGate(8, n_experts=5, top_k=2)
    x = torch.randn(30, 8)
    weights, indices, probs = gate(x)
    scores = gate.proj(x)
    assert torch.allclose(weights.sum(-1), torch.ones(30))
    assert torch.equal(indices, scores.argsort(-1, descending=True)[:, :2])
    assert torch.allclose(probs, scores.softmax(-1))
    # the weights are the full softmax renormalised over the kept experts
    kept = probs.gather(1, indices)
    assert torch.allclose(weights, kept / kept.sum(-1, keepdim=True))


def test_gate_noise_only_while_training():
    torch.manual_seed(0)
    gate = TopKGate(8, 6, 2, noise_std=1.0)
    x = torch.randn(50, 8)
    gate.eval()
    a, b = gate(x)[1], gate(x)[1]
    assert torch.equal(a, b)
    gate.train()
    assert not torch.equal(gate(x)[1], gate(x)[1])


def test_balancing_loss_is_one_when_even_and_larger_when_skewed():
    n_experts = 4
    even_probs = torch.full((8, 4), 0.25)
    even_indices = torch.arange(8).remainder(4)[:, None]
    assert load_balancing_loss(even_probs, even_indices, n_experts).item() == pytest.approx(1.0)
    skew_probs = torch.tensor([[0.7, 0.1, 0.1, 0.1]]).repeat(8, 1)
    skew_indices = torch.zeros(8, 1, dtype=torch.long)
    assert load_balancing_loss(skew_probs, skew_indices, n_experts).item() == pytest.approx(4 * 0.7)


def test_balancing_loss_matches_a_direct_formula():
    rng = np.random.default_rng(0)
    probs = torch.tensor(rng.dirichlet(np.ones(6), size=20))
    indices = torch.tensor(rng.integers(0, 6, size=(20, 2)))
    f = np.array([(indices.numpy() == i).sum() / 40 for i in range(6)])
    expected = 6 * sum(f[i] * probs[:, i].mean().item() for i in range(6))
    assert load_balancing_loss(probs, indices, 6).item() == pytest.approx(expected)


def test_moe_equals_a_per_token_weighted_sum_of_experts():
    torch.manual_seed(0)
    moe = MoE(8, 16, n_experts=4, top_k=2)
    x = torch.randn(2, 5, 8)
    out = moe(x)
    tokens = x.reshape(10, 8)
    weights, indices, _ = moe.gate(tokens)
    for n in range(10):
        expected = sum(weights[n, j] * moe.experts[int(indices[n, j])](tokens[n]) for j in range(2))
        assert torch.allclose(out.reshape(10, 8)[n], expected, atol=1e-6)
    assert int(moe.counts.sum()) == 20


def test_one_expert_is_its_ffn():
    torch.manual_seed(0)
    moe = MoE(8, 16, n_experts=1, top_k=1)
    x = torch.randn(3, 4, 8)
    assert torch.allclose(moe(x), moe.experts[0](x), atol=1e-6)


def test_gradients_reach_the_gate_and_the_chosen_experts():
    torch.manual_seed(0)
    moe = MoE(8, 16, n_experts=4, top_k=2)
    (moe(torch.randn(2, 6, 8)) ** 2).sum().backward()
    assert moe.gate.proj.weight.grad.abs().sum() > 0
    used = moe.counts > 0
    for e, expert in enumerate(moe.experts):
        has_grad = expert.up.weight.grad is not None and expert.up.weight.grad.abs().sum() > 0
        assert has_grad == bool(used[e])


def test_moe_gpt_active_parameters_match_the_dense_twin():
    config = GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, d_model=16)
    moe = moe_gpt(config, n_experts=4, top_k=2)
    dense = dense_equivalent(config, top_k=2)
    assert len(moe_layers(moe)) == 2
    per_expert = 2 * 16 * 32 + 32 + 16
    total = sum(p.numel() for p in moe.parameters())
    assert active_parameters(moe) == total - 2 * (4 - 2) * per_expert
    n_dense = sum(p.numel() for p in dense.parameters())
    # the gate (16 x 4) and one extra output bias (16) per layer are the whole difference
    assert active_parameters(moe) - n_dense == 2 * (16 * 4 + 16)
    assert active_parameters(dense) == n_dense


def test_moe_gpt_trains_and_reports_expert_use():
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, d_model=16)
    model = moe_gpt(config, n_experts=4, top_k=2)
    data = torch.randint(3, 10, (16, 7))
    data[:, 0], data[:, -1] = 1, 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        losses = train_lm(model, data, 0, steps=20, batch_size=8, aux_loss=lambda m: 0.01 * balancing_loss(m))
    finally:
        torch.set_num_threads(threads)
    assert all(np.isfinite(losses))
    shares = expert_use(model, data, 0)
    assert shares.shape == (1, 4)
    assert torch.allclose(shares.sum(1), torch.ones(1))
    assert imbalance(torch.full((2, 4), 0.25)) == 0.0
    assert imbalance(torch.tensor([[1.0, 0, 0, 0]])) == pytest.approx(np.sqrt(3))


def test_argument_errors():
    with pytest.raises(ValueError, match="larger than the number of experts"):
        TopKGate(8, 2, top_k=3)
    with pytest.raises(ValueError, match="noise_std"):
        TopKGate(8, 2, 1, noise_std=-1)
    with pytest.raises(ValueError, match="expects \\(B, T, D\\)"):
        MoE(8, 16, 2)(torch.randn(4, 8))
    with pytest.raises(ValueError, match="no MoE layers"):
        balancing_loss(GPT(GPTConfig(10)))
    with pytest.raises(TypeError, match="n_experts must be an int"):
        moe_gpt(GPTConfig(10), n_experts=2.0)
    assert isinstance(FFN(4), torch.nn.Module)
