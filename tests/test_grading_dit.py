import pytest
import torch
from einops import rearrange

from tinysora.dit import DiT
from tinysora.grading import CheckFailed
from tinysora.grading import dit as grade


def closed_form(c):
    d, p2, hidden = c.dim, c.patch * c.patch, int(c.dim * c.mlp_ratio)
    block = 4 * d * d + 4 * d + 2 * d * hidden + hidden + d + 6 * d * d + 6 * d
    embed = p2 * c.channels * d + d + 256 * d + d + d * d + d + (c.num_classes + 1) * d
    final = 2 * d * d + 2 * d + d * p2 * c.out_channels + p2 * c.out_channels
    return c.depth * block + embed + final


def by_einsum(tokens, channels, patch):
    b, n, _ = tokens.shape
    g = int(n ** 0.5)
    x = tokens.reshape(b, g, g, patch, patch, channels)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(b, channels, g * patch, g * patch)


def test_right_answers_pass():
    grade.check_dit_parameters(closed_form)
    grade.check_unpatchify_image(grade.reference_unpatchify_image)
    grade.check_unpatchify_image(by_einsum)


def test_not_written_yet_is_reported():
    def stub(*args):
        raise NotImplementedError()

    for check in (grade.check_dit_parameters, grade.check_unpatchify_image):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(stub)


def test_building_the_model_is_refused():
    with pytest.raises(CheckFailed, match="derive the count from the config"):
        grade.check_dit_parameters(lambda c: sum(p.numel() for p in DiT(c).parameters()))
    assert sum(p.numel() for p in DiT(grade._configs()[0]).parameters()) > 0      # and put back afterwards


@pytest.mark.parametrize("wrong, message", [
    (lambda c: closed_form(c) - c.dim, "null label"),
    (lambda c: closed_form(c) - c.depth * (2 * c.dim ** 2 + 2 * c.dim), "six vectors"),
    (lambda c: closed_form(c) + c.tokens * c.dim, "fixed"),
    (lambda c: closed_form(c) - (2 * c.dim ** 2 + 2 * c.dim), "final layer has its own adaLN"),
    (lambda c: closed_form(c) + 1, "off by \\+1"),
    (lambda c: "many", "should return a number"),
])
def test_parameter_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_dit_parameters(wrong)


def test_learn_sigma_mistake_is_named():
    def single_output(c):
        return closed_form(c) - (c.dim * c.patch ** 2 + c.patch ** 2) * c.channels * c.learn_sigma

    with pytest.raises(CheckFailed, match="learn_sigma"):
        grade.check_dit_parameters(single_output)


@pytest.mark.parametrize("pattern, message", [
    ("b (h w) (c p q) -> b c (h p) (w q)", "channel-first"),
    ("b (h w) (q p c) -> b c (h p) (w q)", "swapped p and q"),
    ("b (w h) (p q c) -> b c (h p) (w q)", "column by column"),
])
def test_unpatchify_mistakes_are_named(pattern, message):
    def wrong(tokens, channels, patch):
        return rearrange(tokens, pattern, h=int(tokens.shape[1] ** 0.5), p=patch, q=patch)

    with pytest.raises(CheckFailed, match=message):
        grade.check_unpatchify_image(wrong)


def test_reshape_and_frame_axis_are_named():
    with pytest.raises(CheckFailed, match="plain reshape"):
        grade.check_unpatchify_image(lambda t, c, p: t.reshape(t.shape[0], c, int(t.shape[1] ** 0.5) * p, -1))
    with pytest.raises(CheckFailed, match="no frame axis"):
        grade.check_unpatchify_image(lambda t, c, p: grade.reference_unpatchify_image(t, c, p)[:, None])
