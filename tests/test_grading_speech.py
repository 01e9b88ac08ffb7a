"""The chapter-09 checks accept right answers and explain the usual wrong ones."""

import numpy as np
import pytest
import torch

from tinysora import speech
from tinysora.grading import speech as grade
from tinysora.grading.core import CheckFailed


def normalise(x, axis):
    return (x - x.mean(axis, keepdims=True)) / np.sqrt(x.var(axis, keepdims=True) + 1e-5)


def make_quantizer(axis=-1, normalise_input=True, unit_codebook=True, layout="btn"):
    def quantize(frames, projections, codebooks):
        x = normalise(frames, axis) if normalise_input else frames
        codes = []
        for projection, book in zip(projections, codebooks):
            z = x @ projection
            z = z / np.linalg.norm(z, axis=-1, keepdims=True)
            c = book / np.linalg.norm(book, axis=-1, keepdims=True) if unit_codebook else book
            codes.append(((z[..., None, :] - c) ** 2).sum(-1).argmin(-1))     # (B, T)
        return np.stack(codes, axis=-1 if layout == "btn" else 1)
    return quantize


def test_quantizer_check_accepts_a_right_answer(capsys):
    grade.check_multi_codebook_quantizer(make_quantizer())
    assert "\u2713" in capsys.readouterr().out


def test_quantizer_check_accepts_the_packaged_quantizer_used_per_codebook(capsys):
    def quantize(frames, projections, codebooks):
        x = speech.normalize_frames(torch.tensor(frames))
        z = torch.nn.functional.normalize(torch.einsum("btd,nde->btne", x, torch.tensor(projections)), dim=-1)
        c = torch.nn.functional.normalize(torch.tensor(codebooks), dim=-1)
        return torch.einsum("btne,nke->btnk", z, c).argmax(-1)                    # largest cosine
    grade.check_multi_codebook_quantizer(quantize)


@pytest.mark.parametrize("wrong,message", [
    (make_quantizer(axis=1), "time axis"),
    (make_quantizer(normalise_input=False), "did not normalise"),
    (make_quantizer(unit_codebook=False), "l2-normalise every code"),
    (make_quantizer(layout="bnt"), "codebook axis last"),
])
def test_quantizer_check_explains_the_usual_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_multi_codebook_quantizer(wrong)


def test_quantizer_check_catches_batch_statistics():
    def batch_normalised(frames, projections, codebooks):
        x = (frames - frames.mean((0, 1), keepdims=True)) / frames.std((0, 1), keepdims=True)
        return make_quantizer(normalise_input=False)(x, projections, codebooks)
    with pytest.raises(CheckFailed):
        grade.check_multi_codebook_quantizer(batch_normalised)


def test_quantizer_check_survives_broken_answers():
    def unwritten(frames, projections, codebooks):
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not written yet"):
        grade.check_multi_codebook_quantizer(unwritten)
    with pytest.raises(CheckFailed, match="shape"):
        grade.check_multi_codebook_quantizer(lambda f, p, c: np.zeros(3))
    with pytest.raises(CheckFailed, match="raised"):
        grade.check_multi_codebook_quantizer(lambda f, p, c: f @ p)


def loop_deltas(x, width):
    """Straight from the formula, one frame at a time."""
    x = np.asarray(x, dtype=np.float64)
    t = x.shape[-2]
    out = np.zeros_like(x)
    for i in range(t):
        for n in range(1, width + 1):
            out[..., i, :] += n * (x[..., min(i + n, t - 1), :] - x[..., max(i - n, 0), :])
    return out / (2 * sum(n * n for n in range(1, width + 1)))


def test_deltas_check_accepts_a_right_answer(capsys):
    grade.check_deltas(loop_deltas)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,message", [
    (lambda x, w: np.gradient(x, axis=-2), "np.gradient"),
    (lambda x, w: np.swapaxes(loop_deltas(np.swapaxes(x, -1, -2), w), -1, -2), "feature axis"),
    (lambda x, w: -loop_deltas(x, w), "sign"),
    (lambda x, w: loop_deltas(x, w) * 2 * sum(n * n for n in range(1, w + 1)), "denominator"),
    (lambda x, w: grade._zero_padded_deltas(x, w), "zeros"),
    (lambda x, w: x[..., 1:, :] - x[..., :-1, :], "shape"),
])
def test_deltas_check_explains_the_usual_mistakes(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_deltas(wrong)
