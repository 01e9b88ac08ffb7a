"""tinysora.gpt: the model against an independent attention, the counts against the formulas."""

import math

import numpy as np
import pytest
import torch

from tinysora.gpt import (
    GPT,
    IGNORE,
    GPTConfig,
    attention_training_flops,
    compute_optimal,
    evaluate_lm,
    fit_power_law,
    gpt_parameter_count,
    hoffmann_loss,
    lm_examples,
    measure_flops,
    non_embedding_parameters,
    sample_texts,
    train_lm,
    training_flops,
)
from tinysora.tokenizer import CharTokenizer
from tinysora.transformer import attention


def _model(**kwargs):
    torch.manual_seed(0)
    return GPT(GPTConfig(**{"vocab_size": 13, "block_size": 8, "n_layer": 2, "n_head": 2, "d_model": 16, **kwargs}))


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("n_layer, d_model, block_size", [(1, 8, 4), (2, 16, 8), (3, 32, 16)])
def test_parameter_formula_equals_the_models_count(tied, n_layer, d_model, block_size):
    model = GPT(GPTConfig(vocab_size=29, block_size=block_size, n_layer=n_layer, n_head=4, d_model=d_model,
                          tie_weights=tied))
    assert sum(p.numel() for p in model.parameters()) == gpt_parameter_count(29, n_layer, d_model, block_size, tied)
    blocks = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("blocks", "ln_f")))
    assert blocks == non_embedding_parameters(model.config)


def test_gpt3_shape_gives_175_billion():
    n = gpt_parameter_count(50257, n_layer=96, d_model=12288, block_size=2048)
    assert abs(n / 175e9 - 1) < 0.01
    assert abs(12 * 96 * 12288**2 / n - 1) < 0.01      # 12 L D^2 is nearly all of it


def test_tied_head_shares_the_embedding():
    model = _model()
    assert model.head.weight is model.tok_emb.weight


def test_causal_self_attention_equals_masked_attention_with_split_weights():
    model = _model().double()
    attn = model.blocks[0].attn
    x = torch.randn(3, 6, 16, dtype=torch.float64)
    w, b = attn.qkv.weight.detach().numpy(), attn.qkv.bias.detach().numpy()
    qkv = x.numpy() @ w.T + b                                            # (B, T, 3D)
    q, k, v = (qkv[..., i * 16:(i + 1) * 16].reshape(3, 6, 2, 8).transpose(0, 2, 1, 3) for i in range(3))
    out, _ = attention(q, k, v, np.tril(np.ones((6, 6), bool)))
    out = out.transpose(0, 2, 1, 3).reshape(3, 6, 16)
    expected = out @ attn.proj.weight.detach().numpy().T + attn.proj.bias.detach().numpy()
    assert np.allclose(attn(x).detach().numpy(), expected, atol=1e-10)


def test_changing_a_future_token_never_changes_earlier_logits():
    model = _model().eval()
    idx = torch.randint(13, (2, 8), generator=torch.Generator().manual_seed(0))
    base, _ = model(idx)
    for t in range(1, 8):
        changed = idx.clone()
        changed[:, t:] = (changed[:, t:] + 5) % 13
        out, _ = model(changed)
        assert torch.allclose(out[:, :t], base[:, :t], atol=1e-6)
        assert not torch.allclose(out[:, t:], base[:, t:])


def test_context_length_guard():
    model = _model()
    with pytest.raises(ValueError, match="exceeds the context length block_size=8"):
        model(torch.zeros(1, 9, dtype=torch.long))
    out = model.generate(torch.zeros(2, 6, dtype=torch.long), max_new_tokens=10)   # 16 > 8: cropped each step
    assert out.shape == (2, 16)
    assert torch.equal(out[:, :6], torch.zeros(2, 6, dtype=torch.long))


def test_top_k_one_is_greedy_and_temperature_is_checked():
    model = _model().eval()
    start = torch.tensor([[1, 4, 5]])
    out = model.generate(start, 4, top_k=1)
    idx = start
    for _ in range(4):
        idx = torch.cat([idx, model(idx)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, idx)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.generate(start, 2, temperature=0)
    with pytest.raises(ValueError, match="top_k must be in"):
        model.generate(start, 2, top_k=14)


def test_low_temperature_concentrates_samples():
    model = _model().eval()
    start = torch.ones(200, 1, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    cold = model.generate(start, 1, temperature=1e-5, generator=g)[:, 1]
    hot = model.generate(start, 1, temperature=100.0, generator=g)[:, 1]
    assert cold.unique().numel() == 1
    assert hot.unique().numel() > 5


def test_generate_stops_at_eos():
    model = _model().eval()
    with torch.no_grad():   # make <eos> (id 2) certain: the final LN outputs ones, the tied head row 2 is large
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.tok_emb.weight[2] = 10.0
    out = model.generate(torch.ones(3, 1, dtype=torch.long), 5, eos_id=2)
    assert out.shape == (3, 2) and (out[:, 1] == 2).all()


def test_lm_examples_shift_and_ignore_padding():
    tokens = torch.tensor([[1, 5, 6, 2, 0], [1, 7, 2, 0, 0]])
    inputs, targets = lm_examples(tokens, pad_id=0)
    assert inputs.tolist() == [[1, 5, 6, 2], [1, 7, 2, 0]]
    assert targets.tolist() == [[5, 6, 2, IGNORE], [7, 2, IGNORE, IGNORE]]


@pytest.mark.parametrize("batch, seq_len", [(4, 8), (2, 5)])
def test_training_flops_measured_equal_six_n_d_plus_attention(batch, seq_len):
    model = _model()
    c = model.config
    idx = torch.randint(13, (batch, seq_len))

    def step():
        _, loss = model(idx, idx)
        loss.backward()

    matmul_weights = c.n_layer * 12 * c.d_model**2 + c.vocab_size * c.d_model
    expected = training_flops(matmul_weights, idx.numel()) + attention_training_flops(c.n_layer, c.d_model, seq_len,
                                                                                      idx.numel())
    assert measure_flops(step) == expected


def test_attention_flops_refuse_bad_sizes():
    with pytest.raises(ValueError, match="seq_len"):
        attention_training_flops(2, 16, 0, 10)


def test_hoffmann_formula_and_compute_optimum():
    assert hoffmann_loss(1e40, 1e40) == pytest.approx(1.69, abs=1e-6)
    assert hoffmann_loss(70e9, 1.4e12) == pytest.approx(1.69 + 406.4 / 70e9**0.34 + 410.7 / 1.4e12**0.28)
    c = 5.76e23
    n_opt, d_opt = compute_optimal(c)
    assert 6 * n_opt * d_opt == pytest.approx(c)
    grid = np.geomspace(n_opt / 10, n_opt * 10, 2001)
    best = grid[np.argmin(hoffmann_loss(grid, c / (6 * grid)))]
    assert best == pytest.approx(n_opt, rel=0.01)


def test_fit_power_law_recovers_a_known_law():
    x = np.geomspace(1e3, 1e6, 6)
    a, alpha = fit_power_law(x, 5.0 * x ** -0.7)
    assert a == pytest.approx(5.0) and alpha == pytest.approx(0.7)
    with pytest.raises(ValueError, match="must be > 0"):
        fit_power_law([1, 2], [1, -1])


def test_a_small_gpt_learns_captions_below_uniform():
    tok = CharTokenizer.from_corpus(["abc", "abd", "bca"])
    data = tok.encode_batch(["abc", "abd", "bca"], bos=True, eos=True)
    torch.manual_seed(0)
    model = GPT(GPTConfig(tok.vocab_size, block_size=8, n_layer=1, n_head=2, d_model=16))
    before = evaluate_lm(model, data, tok.pad_id)
    assert before == pytest.approx(math.log(tok.vocab_size), rel=0.05)   # init: near uniform
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a tiny model: threads only fight over it
    try:
        train_lm(model, data, tok.pad_id, steps=80, batch_size=8, lr=1e-2)
    finally:
        torch.set_num_threads(threads)
    assert evaluate_lm(model, data, tok.pad_id) < 0.5 * before
    samples = sample_texts(model, tok, 20, temperature=0.5)
    assert sum(s in ("abc", "abd", "bca") for s in samples) >= 15


def test_config_errors():
    with pytest.raises(ValueError, match="not divisible"):
        GPTConfig(10, n_head=3, d_model=16)
    with pytest.raises(TypeError, match="must be an int"):
        GPTConfig(10.0)
    with pytest.raises(ValueError, match="int64"):
        _model()(torch.zeros(1, 3))


def test_features_are_what_the_head_reads():
    model = _model().eval()
    idx = torch.randint(13, (2, 5))
    features = model.features(idx)
    assert features.shape == (2, 5, 16)
    torch.testing.assert_close(model.head(features), model(idx)[0])


def test_fit_offset_power_law_recovers_floor_and_exponent():
    from tinysora.gpt import fit_offset_power_law

    x = np.geomspace(1e3, 1e6, 7)
    c, a, alpha = fit_offset_power_law(x, 0.002 + 3.0 * x ** -0.6, grid=4000)
    assert c == pytest.approx(0.002, rel=0.02) and alpha == pytest.approx(0.6, rel=0.02)
    c0, _, alpha0 = fit_offset_power_law(x, 3.0 * x ** -0.6)
    assert c0 < 1e-4 and alpha0 == pytest.approx(0.6, rel=0.02)
    with pytest.raises(ValueError, match=">= 3"):
        fit_offset_power_law([1, 2], [1, 2])
