"""Checks of chapter 13's exercises: a right answer passes, each typical mistake gets its sentence."""

import numpy as np
import pytest
import torch
from einops import rearrange

from tinysora.autoencoder import gaussian_kl
from tinysora.grading import CheckFailed
from tinysora.grading import vit as grade
from tinysora.vit import unpatchify


def unpatchify_right(tokens, p, h, w):
    return rearrange(tokens, "b (h w) (p q c) -> b c (h p) (w q)", h=h // p, p=p, q=p)


def unpatchify_dit_style(tokens, p, h, w):                   # DiT's reshape + einsum, also right
    c = tokens.shape[-1] // (p * p)
    x = tokens.reshape(tokens.shape[0], h // p, w // p, p, p, c)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(tokens.shape[0], c, h, w)


def test_unpatchify_right_answers_pass(capsys):
    grade.check_unpatchify_pqc(unpatchify_right)
    grade.check_unpatchify_pqc(unpatchify_dit_style)
    assert "puts DiT's tokens back" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (unpatchify, "tinysora.vit.unpatchify"),
    (lambda t, p, h, w: rearrange(t, "b (h w) (q p c) -> b c (h p) (w q)", h=h // p, p=p, q=p), "transposed"),
    (lambda t, p, h, w: rearrange(t, "b (w h) (p q c) -> b c (h p) (w q)", w=w // p, p=p, q=p), "column by column"),
    (lambda t, p, h, w: rearrange(t, "b (h w) (p q c) -> b c (p h) (q w)", h=h // p, p=p, q=p), "interleaved"),
    (lambda t, p, h, w: t.reshape(t.shape[0], -1, h, w), "off by"),
    (lambda t, p, h, w: t, "shape"),
])
def test_unpatchify_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_unpatchify_pqc(wrong)


def test_unpatchify_not_written_and_crashing_answers_are_reported():
    def todo(t, p, h, w):
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not written yet"):
        grade.check_unpatchify_pqc(todo)
    with pytest.raises(CheckFailed, match="raised"):
        grade.check_unpatchify_pqc(lambda t, p, h, w: t.reshape(7, 7, 7))


def kl_right(m1, lv1, m2, lv2):
    return 0.5 * (lv2 - lv1 + (np.exp(lv1) + (m1 - m2) ** 2) / np.exp(lv2) - 1)


def kl_torch(m1, lv1, m2, lv2):
    p = torch.distributions.Normal(torch.tensor(m1), torch.tensor(np.exp(lv1 / 2)))
    q = torch.distributions.Normal(torch.tensor(m2), torch.tensor(np.exp(lv2 / 2)))
    return torch.distributions.kl_divergence(p, q)


def test_kl_right_answers_pass(capsys):
    grade.check_kl_diagonal_gaussians(kl_right)
    grade.check_kl_diagonal_gaussians(kl_torch)
    assert "matches the closed form" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda m1, lv1, m2, lv2: kl_right(m1, lv1, 0 * m2, 0 * lv2), "gaussian_kl"),
    (lambda m1, lv1, m2, lv2: kl_right(m1, 2 * lv1, m2, 2 * lv2), "log sigma"),
    (lambda m1, lv1, m2, lv2: 2 * kl_right(m1, lv1, m2, lv2), "factor 1/2"),
    (lambda m1, lv1, m2, lv2: kl_right(m2, lv2, m1, lv1), "not symmetric"),
    (lambda m1, lv1, m2, lv2: 0.5 * (lv2 - lv1 + np.exp(lv1 - lv2) + (m1 - m2) ** 2 - 1), "second variance"),
    (lambda m1, lv1, m2, lv2: kl_right(m1, lv1, m2, lv2).mean(), "the mean of the KL"),
    (lambda m1, lv1, m2, lv2: kl_right(m1, lv1, m2, lv2).sum(), "the sum of the KL"),
    (lambda m1, lv1, m2, lv2: gaussian_kl(torch.tensor(m1), torch.tensor(lv1)), "shape"),
    (lambda m1, lv1, m2, lv2: kl_right(m1, lv1, m2, lv2) + 0.1, "off by"),
])
def test_kl_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_kl_diagonal_gaussians(wrong)
