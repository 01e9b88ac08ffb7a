import pytest
import torch
import torch.nn.functional as F

from tinysora import unet
from tinysora.grading import CheckFailed
from tinysora.grading import unet as grade


def test_right_answers_pass():
    grade.check_center_crop(grade.reference_center_crop)
    grade.check_dice_loss(grade.reference_dice_loss)


def test_not_written_yet_is_reported():
    def stub(*args):
        raise NotImplementedError()

    for check in (grade.check_center_crop, grade.check_dice_loss):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(stub)


def crop_symmetric(x, height, width):          # x[d:H-d]: one too many when the surplus is odd
    dy, dx = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
    return x[..., dy:x.shape[-2] - dy, dx:x.shape[-1] - dx]


def crop_ceil(x, height, width):               # the odd extra row dropped at the top
    top, left = -(-(x.shape[-2] - height) // 2), -(-(x.shape[-1] - width) // 2)
    return x[..., top:top + height, left:left + width]


def crop_no_check(x, height, width):
    top, left = max((x.shape[-2] - height) // 2, 0), max((x.shape[-1] - width) // 2, 0)
    return x[..., top:top + height, left:left + width]


@pytest.mark.parametrize("wrong, message", [
    (crop_symmetric, "off-by-one"),
    (crop_ceil, "top/left"),
    (lambda x, h, w: x[..., :h, :w], "top-left corner"),
    (lambda x, h, w: grade.reference_center_crop(x, w, h) if h <= x.shape[-1] and w <= x.shape[-2]
     else x[..., :w, :h], "axis -2"),
    (lambda x, h, w: unet.pad_to(x, h, w), "raised ValueError"),
    (lambda x, h, w: grade.reference_center_crop(x, h, w) * 2, "off by"),
    (crop_no_check, "should raise ValueError"),
    (lambda x, h, w: "crop", "should be an array"),
])
def test_center_crop_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_center_crop(wrong)


def soft_dice(probs, onehot, eps, dims=(0, 2, 3)):
    inter = (probs * onehot).sum(dims)
    return ((2 * inter + eps) / (probs.sum(dims) + onehot.sum(dims) + eps)).mean()


def onehot(target, k):
    return F.one_hot(target, k).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize("wrong, message", [
    (lambda z, y, eps: soft_dice(z.softmax(1), onehot(y, z.shape[1]), eps), "1 - Dice"),
    (lambda z, y, eps: 1 - soft_dice(z, onehot(y, z.shape[1]), eps), "raw logits"),
    (lambda z, y, eps: 1 - soft_dice(z.sigmoid(), onehot(y, z.shape[1]), eps), "sigmoid"),
    (lambda z, y, eps: 1 - soft_dice(z.softmax(-1), onehot(y, z.shape[1]), eps), "wrong axis"),
    (lambda z, y, eps: 1 - soft_dice(z.softmax(1), onehot(y, z.shape[1]), eps, dims=(2, 3)), "per image"),
    (lambda z, y, eps: 1 - soft_dice(z.softmax(1), onehot(y, z.shape[1]), 0.0), "ignores eps"),
    (lambda z, y, eps: F.cross_entropy(z, y), "cross-entropy"),
    (lambda z, y, eps: grade.reference_dice_loss(z, y, eps).item(), "return a torch tensor"),
    (lambda z, y, eps: 1 - (2 * (z.softmax(1) * onehot(y, z.shape[1])).sum((0, 2, 3)) + eps)
     / (z.softmax(1).sum((0, 2, 3)) + onehot(y, z.shape[1]).sum((0, 2, 3)) + eps), "scalar"),
    (lambda z, y, eps: grade.reference_dice_loss(z.detach(), y, eps), "no gradient"),
    (lambda z, y, eps: grade.reference_dice_loss(z, y, eps) + 0.01, "off by"),
])
def test_dice_loss_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_dice_loss(wrong)


def test_reference_dice_is_zero_for_a_perfect_prediction_and_positive_otherwise():
    target = torch.randint(3, (2, 5, 5))
    perfect = 40.0 * (onehot(target, 3) - 0.5)
    assert grade.reference_dice_loss(perfect, target).item() == pytest.approx(0.0, abs=1e-6)
    assert grade.reference_dice_loss(torch.zeros(2, 3, 5, 5), target).item() > 0.3
