"""Tests for tinysora.speech (chapter 09): BEST-RQ's quantiser, span masking, the Conformer, HuBERT's parts."""

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from tinysora import audio, speech
from tinysora.mlp import FFN
from tinysora.transformer import EncoderBlock, MultiHeadAttention

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clips():
    return speech.make_speech(2, seed=0)            # 20 one-second clips, (20, 101, 40)


def small_config(**changes):
    return speech.SpeechConfig(**{"d_model": 32, "n_heads": 2, "n_layers": 2, "dropout": 0.0, **changes})


# ----------------------------------------------------------------------------- data


def test_make_speech_labels_every_frame_with_a_syllable_of_its_word(clips):
    assert clips.logmel.shape == (20, 101, 40) and clips.syllables.shape == (20, 101)
    for i, word in enumerate(clips.vocabulary[w] for w in clips.words):
        said = {clips.syllable_names[s] for s in clips.syllables[i]} - {"sil"}
        assert said == set(audio.syllabify(word))
    assert clips.frame_syllables(4).shape == (20, 25)
    again = speech.make_speech(2, seed=0)
    torch.testing.assert_close(again.logmel, clips.logmel)


def test_make_speech_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_per_word"):
        speech.make_speech(0)


def test_stack_frames_concatenates_consecutive_frames():
    x = torch.arange(2 * 9 * 3, dtype=torch.float32).reshape(2, 9, 3)
    stacked = speech.stack_frames(x, 4)
    assert stacked.shape == (2, 2, 12)
    torch.testing.assert_close(stacked[1, 1], x[1, 4:8].flatten())
    with pytest.raises(ValueError, match="stack"):
        speech.stack_frames(x, 0)
    with pytest.raises(ValueError, match="shape"):
        speech.stack_frames(x[0], 2)


# ----------------------------------------------------------------------------- quantiser


def numpy_codes(quantizer, logmel):
    """Independent reference: per-frame z-score, project, the code of largest cosine similarity."""
    x = speech.stack_frames(logmel, quantizer.stack).double().numpy()
    x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    z = x @ quantizer.projection.double().numpy()
    c = quantizer.codebook.double().numpy()
    cosine = z @ c.T / np.linalg.norm(z, axis=-1, keepdims=True) / np.linalg.norm(c, axis=-1)
    return cosine.argmax(-1)


def test_quantizer_matches_a_numpy_reference(clips):
    quantizer = speech.BestRQQuantizer(codebook_size=64, seed=3)
    codes = quantizer(clips.logmel)
    assert codes.shape == (20, 25) and codes.dtype == torch.int64
    np.testing.assert_array_equal(codes.numpy(), numpy_codes(quantizer, clips.logmel))


def test_quantizer_is_deterministic_and_frozen(clips):
    a, b = speech.BestRQQuantizer(seed=1), speech.BestRQQuantizer(seed=1)
    assert torch.equal(a(clips.logmel), b(clips.logmel))
    assert not torch.equal(a(clips.logmel), speech.BestRQQuantizer(seed=2)(clips.logmel))
    assert list(a.parameters()) == []                         # buffers only: no optimiser can move them
    x = clips.logmel.clone().requires_grad_(True)
    assert not a(x).requires_grad
    rows = a.codebook.norm(dim=-1)
    torch.testing.assert_close(rows, torch.ones_like(rows))
    bound = (6 / (160 + 16)) ** 0.5                           # Xavier uniform for (160, 16)
    assert a.projection.abs().max() <= bound


def test_a_frames_code_depends_on_that_frame_alone(clips):
    quantizer = speech.BestRQQuantizer(codebook_size=64)
    x = clips.logmel[:4].clone()
    codes = quantizer(x)
    changed = x.clone()
    changed[:, 8:12] = torch.randn(4, 4, 40) * 5          # stacked frame 2 only
    new = quantizer(changed)
    keep = torch.ones(25, dtype=torch.bool)
    keep[2] = False
    assert torch.equal(new[:, keep], codes[:, keep])
    assert not torch.equal(new[:, 2], codes[:, 2])


def test_scaling_or_shifting_one_frame_keeps_its_code(clips):
    quantizer = speech.BestRQQuantizer(codebook_size=64)
    x = clips.logmel[:4].double().float()
    scaled = x.clone()
    scaled[:, 12:16] = 3.0 * x[:, 12:16] + 2.0               # stacked frame 3, louder and shifted
    assert torch.equal(quantizer(scaled), quantizer(x))


def test_time_axis_normalisation_would_break_frame_independence(clips):
    """The speechbrain bug: F.normalize(x) on (B, T, D) normalises over T (dim=1)."""
    x = speech.stack_frames(clips.logmel[:2], 4)
    changed = x.clone()
    changed[:, 5] *= 10
    wrong, wrong_changed = F.normalize(x), F.normalize(changed)
    assert not torch.allclose(wrong[:, 0], wrong_changed[:, 0])
    right, right_changed = speech.normalize_frames(x), speech.normalize_frames(changed)
    torch.testing.assert_close(right[:, 0], right_changed[:, 0])


def test_quantizer_rejects_bad_input(clips):
    with pytest.raises(ValueError, match="at least one code"):
        speech.BestRQQuantizer(codebook_size=0)
    quantizer = speech.BestRQQuantizer()
    with pytest.raises(ValueError, match="mel bands"):
        quantizer(clips.logmel[..., :20])
    with pytest.raises(ValueError, match="shape"):
        quantizer(clips.logmel[0])
    with pytest.raises(TypeError, match="tensor"):
        quantizer(clips.logmel.numpy())


def test_codebook_usage_counts_codes():
    share, perplexity = speech.codebook_usage(torch.tensor([0, 0, 1, 1]), 4)
    assert share == 0.5 and perplexity == pytest.approx(2.0)
    with pytest.raises(ValueError):
        speech.codebook_usage(torch.tensor([5]), 4)


# ----------------------------------------------------------------------------- masking


@pytest.mark.parametrize("length,p,span", [(25, 0.1, 4), (50, 0.02, 10), (10, 0.5, 3), (8, 0.3, 8)])
def test_expected_mask_fraction_matches_simulation(length, p, span):
    generator = torch.Generator().manual_seed(0)
    mask = speech.span_mask(20000, length, p, span, generator)
    assert mask.shape == (20000, length) and mask.dtype == torch.bool
    assert mask.float().mean().item() == pytest.approx(speech.expected_mask_fraction(length, p, span), abs=0.005)


def test_span_mask_makes_runs_of_at_least_the_span_length():
    mask = speech.span_mask(200, 40, 0.02, 5, torch.Generator().manual_seed(1)).numpy()
    for row in mask:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
        for start, end in zip(edges[::2], edges[1::2]):
            assert end - start >= 5 or end == len(row)    # a run cut short only by the end of the clip


def test_span_mask_extremes_and_errors():
    assert not speech.span_mask(3, 10, 0.0, 2).any()
    assert speech.span_mask(3, 10, 1.0, 2).all()
    with pytest.raises(ValueError, match="longer than the clip"):
        speech.span_mask(2, 5, 0.1, 6)
    with pytest.raises(ValueError, match="probability"):
        speech.span_mask(2, 5, 1.5, 2)
    with pytest.raises(ValueError, match="longer than the clip"):
        speech.expected_mask_fraction(5, 0.1, 6)


def test_mask_frames_replaces_only_masked_frames_with_noise():
    x = torch.full((4, 500, 8), 7.0)
    mask = speech.span_mask(4, 500, 0.2, 3, torch.Generator().manual_seed(0))
    out = speech.mask_frames(x, mask, noise_std=0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[~mask], x[~mask])
    assert out[mask].std().item() == pytest.approx(0.1, rel=0.1) and abs(out[mask].mean().item()) < 0.02
    with pytest.raises(ValueError, match="mask"):
        speech.mask_frames(x, mask[:, :10])


# ----------------------------------------------------------------------------- encoder


def test_conformer_block_reuses_the_books_attention_and_ffn():
    block = speech.ConformerBlock(small_config())
    assert isinstance(block.attn, MultiHeadAttention)
    assert isinstance(block.ffn_in, FFN) and isinstance(block.ffn_out, FFN)
    assert block(torch.randn(2, 11, 32)).shape == (2, 11, 32)
    encoder = speech.ConformerEncoder(small_config(block="transformer"))
    assert all(isinstance(b, EncoderBlock) for b in encoder.blocks)


def test_conv_module_sees_only_its_kernel():
    conv = speech.ConvModule(16, kernel=5).eval()
    x = torch.randn(1, 30, 16)
    changed = x.clone()
    changed[0, 15] = torch.randn(16)
    moved = (conv(changed) - conv(x)).abs().sum(-1)[0] > 1e-6
    assert moved.nonzero().flatten().tolist() == list(range(13, 18))   # frames 15 +- kernel // 2


def test_encoder_shapes_layers_and_errors(clips):
    encoder = speech.ConformerEncoder(small_config()).eval()
    encoder.set_input_statistics(clips.logmel)
    out = encoder(clips.logmel[:3])
    assert out.shape == (3, 25, 32)
    assert encoder(clips.logmel[:3], n_layers=1).shape == (3, 25, 32)
    with pytest.raises(ValueError, match="n_layers"):
        encoder(clips.logmel[:3], n_layers=3)
    with pytest.raises(ValueError, match="mel bands"):
        encoder(clips.logmel[:3, :, :10])
    with pytest.raises(ValueError, match="divisible"):
        speech.SpeechConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="block"):
        speech.SpeechConfig(block="lstm")


def test_encoder_normalises_its_input_with_training_statistics(clips):
    encoder = speech.ConformerEncoder(small_config())
    encoder.set_input_statistics(clips.logmel)
    frames = encoder.frames(clips.logmel)
    torch.testing.assert_close(frames.mean(dim=(0, 1)), torch.zeros(160), atol=1e-4, rtol=0)
    torch.testing.assert_close(frames.std(dim=(0, 1)), torch.ones(160), atol=1e-4, rtol=0)


def test_features_are_eval_mode_and_take_a_mask_or_fewer_layers(clips):
    encoder = speech.ConformerEncoder(small_config(dropout=0.5))
    encoder.set_input_statistics(clips.logmel)
    full = speech.features(encoder, clips.logmel[:4])
    assert encoder.training                                   # restored afterwards
    torch.testing.assert_close(full, speech.features(encoder, clips.logmel[:4]))   # no dropout
    mask = torch.zeros(4, 25, dtype=torch.bool)
    mask[:, 10:14] = True
    masked = speech.features(encoder, clips.logmel[:4], mask=mask)
    assert not torch.allclose(masked[:, 12], full[:, 12])
    assert speech.features(encoder, clips.logmel[:4], n_layers=1).shape == (4, 25, 32)
    with pytest.raises(ValueError, match="mask"):
        speech.features(encoder, clips.logmel[:4], mask=mask[:, :5])


# ----------------------------------------------------------------------------- loss and training


def test_masked_loss_counts_masked_frames_only():
    logits, targets = torch.randn(2, 6, 5), torch.randint(5, (2, 6))
    mask = torch.tensor([[1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]], dtype=torch.bool)
    expected = F.cross_entropy(logits[mask], targets[mask])
    torch.testing.assert_close(speech.masked_loss(logits, targets, mask), expected)
    changed = logits.clone()
    changed[~mask] = 100 * torch.randn_like(changed[~mask])
    torch.testing.assert_close(speech.masked_loss(changed, targets, mask), expected)
    weighted = speech.masked_loss(logits, targets, mask, unmasked_weight=0.5)
    torch.testing.assert_close(weighted, expected + 0.5 * F.cross_entropy(logits[~mask], targets[~mask]))
    with pytest.raises(ValueError, match="no frame is masked"):
        speech.masked_loss(logits, targets, torch.zeros(2, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="need logits"):
        speech.masked_loss(logits, targets[:, :3], mask)


def test_pretraining_learns_and_leaves_the_quantizer_alone(clips):
    torch.manual_seed(0)
    result = speech.pretrain_bestrq(clips.logmel, small_config(), codebook_size=32, steps=60, batch_size=8,
                                    lr=3e-3, mask_prob=0.2)
    before = speech.BestRQQuantizer(codebook_size=32)
    assert torch.equal(result.quantizer.projection, before.projection)
    assert np.mean(result.losses[:5]) > np.mean(result.losses[-5:])
    targets = result.quantizer(clips.logmel)
    accuracy = speech.masked_accuracy(result.model, clips.logmel, targets, mask_prob=0.2)
    baseline = (targets == targets.flatten().bincount().argmax()).float().mean().item()
    assert accuracy > baseline
    z = speech.features(result.encoder, clips.logmel)
    assert z.shape == (20, 25, 32) and not result.encoder.training
    torch.testing.assert_close(z, speech.features(result.encoder, clips.logmel))
    with pytest.raises(ValueError, match="targets"):
        speech.pretrain(result.model, clips.logmel, targets[:, :5], steps=1)


# ----------------------------------------------------------------------------- HuBERT's parts


def test_dct_matrix_and_mfcc_match_scipy():
    x = np.random.default_rng(0).normal(size=(3, 7, 40))
    expected = scipy.fft.dct(x, type=2, norm="ortho", axis=-1)
    np.testing.assert_allclose(x @ speech.dct_matrix(40).T, expected, atol=1e-10)
    np.testing.assert_allclose(speech.mfcc(torch.tensor(x), 13).numpy(), expected[..., :13], atol=1e-10)
    basis = speech.dct_matrix(40)
    np.testing.assert_allclose(basis @ basis.T, np.eye(40), atol=1e-10)   # orthonormal
    with pytest.raises(ValueError):
        speech.dct_matrix(5, 6)


def test_kmeans_matches_scikit_learn_on_the_same_initialisation():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(loc, 1.0, size=(200, 5)) for loc in (-4, 0, 4)] + [rng.normal(size=(300, 5))])
    init = x[rng.choice(len(x), 8, replace=False)]
    ours = speech.kmeans(x, 8, init=init, n_iter=300, tol=0)
    theirs = KMeans(8, init=init, n_init=1, max_iter=300, tol=0, algorithm="lloyd").fit(x)
    assert ours.inertia == pytest.approx(theirs.inertia_, rel=0.01)
    np.testing.assert_array_equal(ours.labels, speech.assign_clusters(x, ours.centroids))
    seeded = speech.kmeans(x, 8, seed=1)
    assert seeded.inertia == speech.kmeans(x, 8, seed=1).inertia


def test_kmeans_rejects_bad_input():
    with pytest.raises(ValueError, match="k must"):
        speech.kmeans(np.zeros((3, 2)), 4)
    with pytest.raises(ValueError, match="non-empty"):
        speech.kmeans(np.zeros((0, 2)), 1)
    with pytest.raises(ValueError, match="init"):
        speech.kmeans(np.zeros((5, 2)), 2, init=np.zeros((3, 2)))


def test_nmi_matches_scikit_learn():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, 500)
    b = np.where(rng.random(500) < 0.7, a, rng.integers(0, 9, 500))
    assert speech.normalized_mutual_information(a, b) == pytest.approx(normalized_mutual_info_score(a, b))
    assert speech.normalized_mutual_information(a, (a + 3) % 6) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        speech.normalized_mutual_information(a, b[:10])


def test_probe_reads_a_linearly_separable_feature():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    z = rng.normal(size=(90, 4, 6)) + 3 * np.eye(6)[labels][:, None]
    assert speech.probe_accuracy(z[:60], labels[:60], z[60:], labels[60:]) == 1.0
    with pytest.raises(ValueError, match="label"):
        speech.probe_accuracy(z[:60], labels[:50], z[60:], labels[60:])
