"""tinysora.transformer: NumPy and torch pieces against direct formulas and torch.nn."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tinysora.transformer import (
    DecoderBlock,
    EncoderBlock,
    MultiHeadAttention,
    PositionalEncoding,
    Transformer,
    TransformerConfig,
    attention,
    attention_maps,
    causal_mask,
    decoder_block,
    encoder_block,
    exact_match,
    layer_norm,
    multi_head_attention,
    numpy_forward,
    numpy_params,
    padding_mask,
    positional_encoding,
    scaled_dot_product,
    seed_positional_encoding,
    softmax,
    train_translator,
)


@pytest.fixture(autouse=True)
def _float64():
    """Double precision in every test, so NumPy (float64) and torch agree to 1e-10."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_positional_encoding_is_the_papers_formula():
    n, d = 20, 16
    pe = positional_encoding(n, d)
    for pos in range(n):
        for i in range(d // 2):
            assert pe[pos, 2 * i] == pytest.approx(math.sin(pos / 10000 ** (2 * i / d)))
            assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(pos / 10000 ** (2 * i / d)))
    assert np.allclose(np.linalg.norm(pe, axis=1), math.sqrt(d / 2))


def test_seed_encoding_uses_a_doubled_exponent():
    n, d = 10, 8
    seed = seed_positional_encoding(n, d)
    assert np.allclose(seed[:, :2], positional_encoding(n, d)[:, :2])            # column 0/1: frequency 1 in both
    assert seed[5, 2] == pytest.approx(math.sin(5 / 10000 ** (4 / d)))          # i = 2 -> 2*i/d = 4/d
    assert not np.allclose(seed, positional_encoding(n, d))


def test_layer_norm_matches_torch():
    x = np.random.default_rng(0).normal(size=(2, 5, 8)) * 3 + 1
    gamma, beta = np.linspace(0.5, 2, 8), np.linspace(-1, 1, 8)
    expected = F.layer_norm(torch.tensor(x), (8,), torch.tensor(gamma), torch.tensor(beta)).numpy()
    assert np.allclose(layer_norm(x, gamma, beta), expected, atol=1e-10)


def test_softmax_is_stable_and_sums_to_one():
    z = np.array([[1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]])
    s = softmax(z)
    assert np.isfinite(s).all() and np.allclose(s.sum(-1), 1)
    assert np.allclose(s, torch.tensor(z).softmax(-1).numpy())


def _masks(t, s):
    rng = np.random.default_rng(1)
    padding = np.ones((2, 1, 1, s), bool)
    padding[1, ..., -2:] = False
    yield None
    if t == s:
        yield np.tril(np.ones((t, s), bool))
    yield padding
    yield (rng.random((2, 3, t, s)) < 0.7) | np.eye(t, s, dtype=bool)


@pytest.mark.parametrize("t, s, d", [(4, 4, 8), (6, 6, 4), (3, 5, 8)])
def test_numpy_attention_equals_torch_sdpa(t, s, d):
    rng = np.random.default_rng(0)
    q, k, v = rng.normal(size=(2, 3, t, d)), rng.normal(size=(2, 3, s, d)), rng.normal(size=(2, 3, s, d))
    for mask in _masks(t, s):
        if mask is not None and not mask.any(-1).all():
            continue
        ours, weights = attention(q, k, v, mask)
        expected = F.scaled_dot_product_attention(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                                  attn_mask=None if mask is None else torch.tensor(mask))
        assert np.allclose(ours, expected.numpy(), atol=1e-10)
        assert np.allclose(weights.sum(-1), 1)
        t_out, _ = scaled_dot_product(torch.tensor(q), torch.tensor(k), torch.tensor(v),
                                      None if mask is None else torch.tensor(mask))
        assert torch.allclose(t_out, expected, atol=1e-10)


def test_causal_attention_ignores_the_future():
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(7, 4)) for _ in range(3))
    mask = np.tril(np.ones((7, 7), bool))
    base, _ = attention(q, k, v, mask)
    k2, v2 = k.copy(), v.copy()
    k2[4:], v2[4:] = rng.normal(size=(3, 4)) * 10, rng.normal(size=(3, 4)) * 10
    changed, _ = attention(q, k2, v2, mask)
    assert np.array_equal(base[:4], changed[:4])
    assert not np.allclose(base[4:], changed[4:])


def _copy_mha(ours: MultiHeadAttention, theirs: nn.MultiheadAttention):
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
        theirs.out_proj.weight.copy_(ours.out_proj.weight)
        theirs.out_proj.bias.copy_(ours.out_proj.bias)


def test_multi_head_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    ours, theirs = MultiHeadAttention(16, 4), nn.MultiheadAttention(16, 4, batch_first=True)
    _copy_mha(ours, theirs)
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    keep = causal_mask(5)
    # nn.MultiheadAttention's boolean mask means the opposite: True = NOT allowed
    expected = theirs(x, x, x, attn_mask=~keep, need_weights=False)[0]
    assert torch.allclose(ours(x, mask=keep), expected, atol=1e-10)
    assert torch.allclose(ours(x, ctx), theirs(x, ctx, ctx, need_weights=False)[0], atol=1e-10)
    # and the NumPy version with the same weights
    p = numpy_params(_encoder_with(ours))["attn"]
    np_out, np_w = multi_head_attention(x.numpy(), None, p, 4, keep.numpy())
    assert np.allclose(np_out, expected.detach().numpy(), atol=1e-10)
    assert np_w.shape == (2, 4, 5, 5)


def _encoder_with(attn):
    block = EncoderBlock(16, 4, 32)
    block.attn = attn
    return block


def _copy_block(ours, theirs, decoder=False):
    with torch.no_grad():
        if decoder:
            _copy_mha(ours.self_attn, theirs.self_attn)
            _copy_mha(ours.cross_attn, theirs.multihead_attn)
            theirs.norm3.load_state_dict(ours.norm3.state_dict())
        else:
            _copy_mha(ours.attn, theirs.self_attn)
        theirs.linear1.load_state_dict(ours.ffn.up.state_dict())
        theirs.linear2.load_state_dict(ours.ffn.down.state_dict())
        theirs.norm1.load_state_dict(ours.norm1.state_dict())
        theirs.norm2.load_state_dict(ours.norm2.state_dict())


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_block_equals_torch_encoder_layer(norm_first):
    torch.manual_seed(0)
    ours = EncoderBlock(16, 4, 32, dropout=0.0, norm_first=norm_first)
    theirs = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first)
    _copy_block(ours, theirs)
    x = torch.randn(2, 6, 16)
    src = torch.tensor([[3, 4, 5, 6, 7, 8], [3, 4, 5, 6, 0, 0]])
    expected = theirs(x, src_key_padding_mask=src == 0)
    got = ours(x, padding_mask(src, 0))
    assert torch.allclose(got[0], expected[0], atol=1e-10)
    assert torch.allclose(got[1, :4], expected[1, :4], atol=1e-10)   # torch may skip pad queries
    if not norm_first:
        np_out = encoder_block(x.numpy(), numpy_params(ours), 4, padding_mask(src, 0).numpy())
        assert np.allclose(np_out, got.detach().numpy(), atol=1e-10)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_equals_torch_decoder_layer(norm_first):
    torch.manual_seed(0)
    ours = DecoderBlock(16, 4, 32, dropout=0.0, norm_first=norm_first)
    theirs = nn.TransformerDecoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=norm_first)
    _copy_block(ours, theirs, decoder=True)
    y, memory = torch.randn(2, 5, 16), torch.randn(2, 6, 16)
    keep = causal_mask(5)
    expected = theirs(y, memory, tgt_mask=~keep)
    got = ours(y, memory, keep)
    assert torch.allclose(got, expected, atol=1e-10)
    if not norm_first:
        np_out = decoder_block(y.numpy(), memory.numpy(), numpy_params(ours), 4, keep.numpy())
        assert np.allclose(np_out, got.detach().numpy(), atol=1e-10)


def _model(norm_first=False, **kwargs):
    torch.manual_seed(0)
    config = TransformerConfig(src_vocab=11, tgt_vocab=9, d_model=16, n_heads=4, n_layers=2, max_len=12,
                               dropout=0.0, norm_first=norm_first, **kwargs)
    return Transformer(config).eval()


def test_numpy_forward_equals_the_torch_model():
    model = _model()
    src = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    tgt = torch.tensor([[1, 3, 4], [1, 5, 0]])
    assert np.allclose(numpy_forward(model, src.numpy(), tgt.numpy()), model(src, tgt).detach().numpy(), atol=1e-9)


@pytest.mark.parametrize("norm_first", [False, True])
def test_changing_a_future_target_token_never_changes_earlier_logits(norm_first):
    model = _model(norm_first)
    src = torch.tensor([[3, 4, 5, 6, 7]])
    tgt = torch.tensor([[1, 3, 4, 5, 6, 7]])
    base = model(src, tgt)
    for t in range(1, 6):
        changed = tgt.clone()
        changed[0, t:] = torch.tensor([8, 2, 3, 4, 5])[: 6 - t]
        out = model(src, changed)
        assert torch.allclose(out[:, :t], base[:, :t], atol=1e-12)


def test_source_padding_does_not_change_the_output():
    model = _model()
    src, tgt = torch.tensor([[3, 4, 5]]), torch.tensor([[1, 3, 4]])
    padded = torch.tensor([[3, 4, 5, 0, 0, 0]])
    assert torch.allclose(model(src, tgt), model(padded, tgt), atol=1e-10)


def test_positional_encoding_module_refuses_too_long_inputs():
    pe = PositionalEncoding(8, max_len=4)
    assert pe(torch.zeros(1, 4, 8)).shape == (1, 4, 8)
    with pytest.raises(ValueError, match="longer than max_len=4"):
        pe(torch.zeros(1, 5, 8))


def test_attention_parameters_are_4_d_squared_plus_4_d():
    for d in (8, 32, 64):
        assert sum(p.numel() for p in MultiHeadAttention(d, 4).parameters()) == 4 * d * d + 4 * d


def test_attention_maps_have_the_right_shapes_and_rows_sum_to_one():
    model = _model()
    src, tgt = torch.tensor([[3, 4, 5, 6]]), torch.tensor([[1, 3, 4]])
    maps = attention_maps(model, src, tgt)
    assert set(maps) == {"encoder.0.self", "encoder.1.self", "decoder.0.self", "decoder.1.self",
                         "decoder.0.cross", "decoder.1.cross"}
    assert maps["encoder.0.self"].shape == (1, 4, 4, 4)
    assert maps["decoder.1.cross"].shape == (1, 4, 3, 4)
    assert maps["decoder.0.self"][0, :, 0, 1:].abs().max() == 0   # the first target token sees only itself
    for w in maps.values():
        assert torch.allclose(w.sum(-1), torch.ones(()))
    assert all(m.weights is None for m in model.modules() if isinstance(m, MultiHeadAttention))


def test_greedy_decode_stops_and_pads_after_eos():
    model = _model()
    out = model.greedy_decode(torch.tensor([[3, 4, 5], [6, 7, 8]]), bos_id=1, eos_id=2, max_len=6)
    assert out.shape[0] == 2 and 1 <= out.shape[1] <= 6
    for row in out.tolist():
        if 2 in row:
            assert all(t == 0 for t in row[row.index(2) + 1:])


def test_a_tiny_translator_learns_a_word_for_word_task():
    torch.set_default_dtype(torch.float32)   # training: float32 is enough (the fixture restores it)
    torch.manual_seed(0)
    src = torch.tensor([[3, 4], [4, 3], [3, 3], [4, 4]])
    tgt = torch.tensor([[1, 5, 6, 2], [1, 6, 5, 2], [1, 5, 5, 2], [1, 6, 6, 2]])   # 3 -> 5, 4 -> 6
    model = Transformer(TransformerConfig(src_vocab=5, tgt_vocab=7, d_model=32, n_heads=2, n_layers=1,
                                          max_len=8, dropout=0.0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # a tiny model: threads only fight over it (10x slower on a busy machine)
    try:
        losses = train_translator(model, src, tgt, steps=150, batch_size=8, lr=3e-3, warmup=20)
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < 0.1 * losses[0]
    assert torch.equal(model.greedy_decode(src, 1, 2, max_len=3), tgt[:, 1:])


def test_exact_match_and_argument_errors():
    assert exact_match(["a", "b"], ["a", "c"]) == 0.5
    with pytest.raises(ValueError, match="equally many"):
        exact_match(["a"], [])
    with pytest.raises(ValueError, match="not divisible"):
        TransformerConfig(5, 5, d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="d_model must be even"):
        positional_encoding(4, 5)
    with pytest.raises(ValueError, match="positive int"):
        causal_mask(0)
    model = _model()
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model(torch.tensor([[3, 40]]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="int64"):
        model(torch.tensor([[3.0]]), torch.tensor([[1]]))


def test_sinusoidal_embedding_is_the_numpy_table_at_integer_positions():
    from tinysora.transformer import sinusoidal_embedding
    emb = sinusoidal_embedding(torch.arange(20), 16)
    np.testing.assert_allclose(emb.numpy(), positional_encoding(20, 16), atol=1e-6)
    assert sinusoidal_embedding(torch.rand(3, 5) * 1000, 8).shape == (3, 5, 8)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embedding(torch.arange(3), 7)


def test_mha_options_default_off_keep_chapter_06_parameters():
    keys = set(MultiHeadAttention(16, 4).state_dict())
    assert keys == {f"{n}.{p}" for n in ("q_proj", "k_proj", "v_proj", "out_proj") for p in ("weight", "bias")}


def test_mha_fused_qkv_and_sdpa_equal_the_separate_explicit_path():
    torch.manual_seed(0)
    plain = MultiHeadAttention(16, 4)
    fused = MultiHeadAttention(16, 4, fused_qkv=True, sdpa=True)
    with torch.no_grad():
        fused.qkv.weight.copy_(torch.cat([plain.q_proj.weight, plain.k_proj.weight, plain.v_proj.weight]))
        fused.qkv.bias.copy_(torch.cat([plain.q_proj.bias, plain.k_proj.bias, plain.v_proj.bias]))
        fused.out_proj.load_state_dict(plain.out_proj.state_dict())
    x, keep = torch.randn(2, 5, 16), causal_mask(5)
    torch.testing.assert_close(fused(x, mask=keep), plain(x, mask=keep), rtol=1e-5, atol=1e-6)
    fused.keep_weights = True                                   # the explicit path, weights kept
    torch.testing.assert_close(fused(x), plain(x), rtol=1e-5, atol=1e-6)
    assert fused.weights.shape == (2, 4, 5, 5)
    with pytest.raises(ValueError, match="self-attention only"):
        fused(x, torch.randn(2, 3, 16))


def test_mha_qk_norm_normalises_each_heads_queries_and_keys():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, qk_norm=True, sdpa=True)
    assert sum(p.numel() for p in attn.parameters()) == 4 * 16 * 16 + 4 * 16 + 2 * 8
    x, ctx = torch.randn(2, 5, 16), torch.randn(2, 3, 16)
    rms = lambda z: z / z.pow(2).mean(-1, keepdim=True).add(torch.finfo(z.dtype).eps).sqrt()
    q = rms(attn.q_proj(x).reshape(2, 5, 2, 8).transpose(1, 2))
    k = rms(attn.k_proj(ctx).reshape(2, 3, 2, 8).transpose(1, 2))
    v = attn.v_proj(ctx).reshape(2, 3, 2, 8).transpose(1, 2)
    out = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(8), -1) @ v
    torch.testing.assert_close(attn(x, ctx), attn.out_proj(out.transpose(1, 2).reshape(2, 5, 16)),
                               rtol=1e-5, atol=1e-6)
