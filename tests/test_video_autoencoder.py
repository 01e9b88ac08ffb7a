import math

import pytest
import torch

from tinysora.data import make_clips
from tinysora.video.autoencoder import VideoAutoencoder, autoencoder_loss, psnr, train_autoencoder


@pytest.mark.parametrize("spatial, temporal, shape", [
    (4, 1, (2, 8, 3, 16, 16)), (2, 1, (1, 3, 3, 8, 12)), (4, 2, (2, 8, 3, 16, 24)), (8, 4, (1, 4, 3, 16, 16)),
])
def test_latent_shape_is_compressed(spatial, temporal, shape):
    ae = VideoAutoencoder(latent_channels=5, spatial_down=spatial, temporal_down=temporal, width=8)
    video = torch.rand(shape)
    z = ae.encode(video)
    b, t, _, h, w = shape
    assert z.shape == (b, t // temporal, 5, h // spatial, w // spatial)
    out = ae.decode(z)
    assert out.shape == video.shape and (out >= 0).all() and (out <= 1).all()


def test_indivisible_sizes_raise_clear_errors():
    ae = VideoAutoencoder(spatial_down=4, temporal_down=2, width=8)
    with pytest.raises(ValueError, match="frame height 18 is not divisible"):
        ae.encode(torch.rand(1, 2, 3, 18, 16))
    with pytest.raises(ValueError, match="frame count 3 is not divisible"):
        ae.encode(torch.rand(1, 3, 3, 16, 16))


def test_psnr_matches_formula():
    a = torch.zeros(2, 3, 4, 4)
    b = a + 0.1
    assert psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.01))
    assert psnr(a, a) == float("inf")


def test_fit_scale_gives_unit_latents():
    torch.manual_seed(0)
    ae = VideoAutoencoder(width=8)
    video = torch.rand(8, 4, 3, 8, 8)
    ae.fit_scale(video)
    z = ae.encode(video)
    torch.testing.assert_close(z.mean(dim=(0, 1, 3, 4)), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 1, 3, 4)), torch.ones(4), atol=1e-4, rtol=0)
    torch.testing.assert_close(ae.decode(z), torch.sigmoid(ae.decode_raw(ae.encode_raw(video))))


def test_training_lowers_the_reconstruction_loss():
    torch.manual_seed(0)
    ae = VideoAutoencoder(width=16)
    video = make_clips(8, frames=2, height=8, width=8, seed=0).video
    before = autoencoder_loss(ae, video, 0.0).item()
    losses = train_autoencoder(ae, lambda step: video, steps=60, lr=3e-3)
    assert len(losses) == 60 and autoencoder_loss(ae, video, 0.0).item() < 0.7 * before
