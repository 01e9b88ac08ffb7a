"""Native size versus square crop (chapter 16): the crop's losses, measured on exact masks."""

import pytest
import torch

from tinysora.data import make_clips
from tinysora.video.framing import center_crop, crop_loss


def test_center_crop_takes_the_middle():
    frame = torch.arange(4 * 8).reshape(4, 8)
    assert center_crop(frame, 4).tolist() == frame[:, 2:6].tolist()


def test_crop_loss_by_hand():
    masks = torch.zeros(1, 2, 4, 8, dtype=torch.bool)
    masks[0, 0, 1, 0] = True                        # frame 0: one pixel, outside the central 4x4
    masks[0, 1, 1, 3:5] = True                      # frame 1: two pixels, both inside
    loss = crop_loss(masks, 4)
    assert loss == dict(pixels_lost=pytest.approx(1 / 3), frames_cut=0.5, frames_gone=0.5, clips_vanish=1.0)


def test_square_clips_lose_nothing_and_wide_clips_lose_a_lot():
    square = make_clips(16, frames=8, height=16, width=16, seed=0)
    assert crop_loss(square.masks, 16)["pixels_lost"] == 0.0
    wide = make_clips(64, frames=8, height=16, width=32, seed=0)
    assert crop_loss(wide.masks, 16)["pixels_lost"] > 0.2


@pytest.mark.parametrize("call, message", [
    (lambda: center_crop(torch.zeros(4, 8), 5), "does not fit a 4x8 frame"),
    (lambda: center_crop(torch.zeros(4, 8), 0), "positive int"),
    (lambda: crop_loss(torch.zeros(1, 2, 4, 4), 2), "bool"),
    (lambda: crop_loss(torch.zeros(1, 2, 4, 4, dtype=torch.bool), 2), "may not be empty"),
])
def test_bad_input_raises_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
