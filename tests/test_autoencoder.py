import pytest
import torch
from torch.distributions import Normal, kl_divergence

from tinysora.autoencoder import Autoencoder, autoencoder_loss, gaussian_kl, psnr, train_autoencoder
from tinysora.data import load_digits


@pytest.mark.parametrize("channels, down, latent, shape", [(1, 2, 2, (3, 1, 8, 8)), (3, 4, 4, (2, 3, 16, 24))])
@pytest.mark.parametrize("kl", [False, True])
def test_latent_shape_and_compression(channels, down, latent, shape, kl):
    ae = Autoencoder(latent, down, 8, image_channels=channels, kl=kl)
    x = torch.rand(shape)
    z = ae.encode(x)
    assert z.shape == (shape[0], latent, shape[2] // down, shape[3] // down)
    out = ae.decode(z)
    assert out.shape == x.shape and (out >= 0).all() and (out <= 1).all()
    assert ae.compression == x[0].numel() / z[0].numel()


def test_kl_encoder_outputs_a_mean_and_a_log_variance():
    ae = Autoencoder(3, 2, 8, image_channels=1, kl=True)
    mean, logvar = ae.moments(torch.rand(2, 1, 8, 8))
    assert mean.shape == logvar.shape == (2, 3, 4, 4)
    assert ae.encoder[-1].out_channels == 6
    assert Autoencoder(3, 2, 8, image_channels=1).moments(torch.rand(2, 1, 8, 8))[1] is None


def test_bad_inputs_raise_clear_errors():
    ae = Autoencoder(2, 4, 8, image_channels=1)
    with pytest.raises(ValueError, match="image height 10 is not divisible"):
        ae.encode(torch.rand(1, 1, 10, 8))
    with pytest.raises(ValueError, match=r"images must be \(B, 1, H, W\)"):
        ae.encode(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="latent must be"):
        ae.decode_raw(torch.rand(1, 5, 2, 2))
    with pytest.raises(ValueError, match="image_channels must be a positive int"):
        Autoencoder(image_channels=0)
    with pytest.raises(ValueError, match="kl=True"):
        autoencoder_loss(ae, torch.rand(2, 1, 8, 8), kl_weight=0.1)


def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mean, logvar = torch.randn(4, 2, 3, 3), torch.randn(4, 2, 3, 3)
    expected = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).mean()
    torch.testing.assert_close(gaussian_kl(mean, logvar), expected)
    assert gaussian_kl(torch.zeros(3), torch.zeros(3)).item() == 0.0


def test_kl_loss_adds_the_weighted_kl_term():
    torch.manual_seed(0)
    ae = Autoencoder(2, 2, 8, image_channels=1, kl=True)
    x = torch.rand(4, 1, 8, 8)
    plain = autoencoder_loss(ae, x, 0.0, torch.Generator().manual_seed(1))
    weighted = autoencoder_loss(ae, x, 0.0, torch.Generator().manual_seed(1), kl_weight=0.5)
    torch.testing.assert_close(weighted - plain, 0.5 * gaussian_kl(*ae.moments(x)))


def test_fit_scale_on_images_gives_unit_latents():
    torch.manual_seed(0)
    ae = Autoencoder(2, 2, 8, image_channels=1)
    x = torch.rand(16, 1, 8, 8)
    ae.fit_scale(x)
    z = ae.encode(x)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 2, 3)), torch.ones(2), atol=1e-4, rtol=0)


@pytest.mark.parametrize("kl_weight", [0.0, 1e-3])
def test_training_on_digits_reconstructs_them(kl_weight):
    torch.manual_seed(0)
    images = load_digits("train")[0][:64, None]                   # (64, 1, 8, 8)
    ae = Autoencoder(4, 2, 16, image_channels=1, kl=True)
    before = psnr(images, ae(images).detach())
    losses = train_autoencoder(ae, lambda step: images, steps=80, lr=3e-3, latent_noise=0.0, kl_weight=kl_weight)
    after = psnr(images, ae(images).detach())
    assert len(losses) == 80 and losses[-1] < losses[0]
    assert after > before + 3          # dB
