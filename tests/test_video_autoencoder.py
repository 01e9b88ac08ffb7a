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


def _decoded_entropy(ae: VideoAutoencoder, z: torch.Tensor) -> float:
    p = ae.decode(z).clamp(1e-6, 1 - 1e-6)
    return -(p * p.log() + (1 - p) * (1 - p).log()).mean().item()


def test_refine_makes_the_decoding_confident_and_leaves_the_decoder_alone():
    torch.manual_seed(0)
    ae = VideoAutoencoder(width=16)
    video = make_clips(8, frames=2, height=8, width=8, seed=0).video
    train_autoencoder(ae, lambda step: video, steps=60, lr=3e-3)
    ae.fit_scale(video)
    z = ae.encode(video).detach()
    midway = 0.5 * (z + z.roll(1, dims=0))                  # between two clips' latents: unsure pixels
    weights = [p.detach().clone() for p in ae.parameters()]
    with torch.no_grad():                                    # refine works inside no_grad (sampling)
        refined = ae.refine(midway, steps=20, lr=0.05, anchor=0.0)
    assert refined.shape == midway.shape and not refined.requires_grad
    assert _decoded_entropy(ae, refined) < 0.8 * _decoded_entropy(ae, midway)
    assert all(torch.equal(a, b) for a, b in zip(weights, ae.parameters()))
    pinned = ae.refine(midway, steps=20, lr=0.05, anchor=1e4)   # the anchor holds it near the start
    assert (pinned - midway).abs().max() < (refined - midway).abs().max()


def test_refine_with_no_steps_is_the_identity_and_bad_arguments_raise():
    ae = VideoAutoencoder(width=8)
    z = torch.randn(1, 2, 4, 2, 2)
    assert ae.refine(z, steps=0) is z
    with pytest.raises(ValueError, match="steps must be a non-negative int"):
        ae.refine(z, steps=-1)
    with pytest.raises(ValueError, match="lr must be positive"):
        ae.refine(z, steps=2, lr=0.0)


def test_video_autoencoder_is_the_image_autoencoder_applied_per_frame():
    from einops import rearrange

    from tinysora.autoencoder import Autoencoder
    torch.manual_seed(0)
    video_ae = VideoAutoencoder(latent_channels=3, spatial_down=2, width=8)
    image_ae = Autoencoder(3, 2, 8, image_channels=3)
    image_ae.load_state_dict(video_ae.state_dict())
    video = torch.rand(2, 3, 3, 8, 8)
    frames = rearrange(video, "b t c h w -> (b t) c h w")
    z = video_ae.encode(video)
    assert isinstance(video_ae, Autoencoder) and video_ae.compression == 3 * 2 * 2 / 3
    torch.testing.assert_close(z, rearrange(image_ae.encode(frames), "(b t) c h w -> b t c h w", b=2))
    torch.testing.assert_close(video_ae.decode(z), rearrange(image_ae.decode(rearrange(z, "b t c h w -> (b t) c h w")),
                                                             "(b t) c h w -> b t c h w", b=2))
