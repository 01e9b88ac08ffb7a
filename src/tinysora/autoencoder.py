"""An image autoencoder: latent diffusion's first stage (chapter 13).

Latent diffusion (Rombach et al. 2022) trains the diffusion model on a compressed latent grid
instead of pixels, so each step is cheaper. This module is that compressor, for any number of
image channels (1 for digits, 3 for the shapes world's frames):

* :class:`Autoencoder` -- image (B, C_img, H, W) in [0, 1] <-> latent (B, C, H / f, W / f).
  Each image is cut into f x f pixel patches (space-to-depth: C_img f^2 values per latent cell)
  and 1x1 / 3x3 convolutions on the small grid map them to C channels and back.
  ``kl=True`` makes it latent diffusion's KL autoencoder: the encoder outputs a diagonal Gaussian
  (mean and log-variance per latent value) and training samples from it.
* :func:`gaussian_kl` -- KL(N(mean, exp(logvar)) || N(0, 1)), the KL autoencoder's regulariser.
* :func:`autoencoder_loss`, :func:`train_autoencoder` -- binary cross-entropy of the decoded
  image, from a latent with relative Gaussian noise (the engine's regulariser) and/or sampled
  from the posterior plus ``kl_weight`` times the KL term.
* :meth:`Autoencoder.fit_scale` -- measures the latents' per-channel mean and std so that
  :meth:`~Autoencoder.encode` returns roughly unit-variance latents (Stable Diffusion's
  ``0.18215``, measured instead of hard-coded); :meth:`~Autoencoder.refine` nudges a latent
  towards a decoding whose pixels are confidently 0 or 1.
* :func:`psnr` -- the reconstruction's peak signal-to-noise ratio.

:class:`tinysora.video.autoencoder.VideoAutoencoder` is this autoencoder applied to every frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tinysora.runtime import progress


def psnr(reference: torch.Tensor, estimate: torch.Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over a whole batch: 10 log10(peak^2 / MSE)."""
    if reference.shape != estimate.shape:
        raise ValueError(f"shapes differ: {tuple(reference.shape)} vs {tuple(estimate.shape)}")
    mse = F.mse_loss(estimate.float(), reference.float()).item()
    return float("inf") if mse == 0 else 10 * math.log10(peak**2 / mse)


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)) per latent value, averaged over all of them.

    For one value: 0.5 (mean^2 + sigma^2 - 1 - log sigma^2). Latent diffusion sums it over the
    latent instead; the mean keeps the weight independent of the latent's size.
    """
    if mean.shape != logvar.shape:
        raise ValueError(f"mean and logvar shapes differ: {tuple(mean.shape)} vs {tuple(logvar.shape)}")
    return 0.5 * (mean**2 + logvar.exp() - 1 - logvar).mean()


def _check_positive_int(value, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class Autoencoder(nn.Module):
    """Image (B, C_img, H, W) in [0, 1] <-> latent (B, C, H / f, W / f).

    Space-to-depth, then convolutions on the latent grid only (never at full resolution), so it
    is cheap; each 3x3 layer lets a cell see its neighbours, so an edge that crosses a patch
    border is drawn consistently.

    Args:
        latent_channels: C.
        spatial_down: f (4: a 16x16 image becomes 4x4).
        width: channels of the hidden layers.
        image_channels: C_img (3 for RGB, 1 for digits).
        kl: the encoder outputs a diagonal Gaussian (2C channels: mean, log-variance) instead of
            the latent itself; :meth:`encode` returns the mean.
    """

    def __init__(self, latent_channels: int = 4, spatial_down: int = 4, width: int = 64, *,
                 image_channels: int = 3, kl: bool = False):
        super().__init__()
        for value, name in ((latent_channels, "latent_channels"), (spatial_down, "spatial_down"),
                            (width, "width"), (image_channels, "image_channels")):
            _check_positive_int(value, name)
        self.latent_channels, self.spatial_down, self.image_channels = latent_channels, spatial_down, image_channels
        self.kl = bool(kl)
        patch_values, c = image_channels * spatial_down**2, latent_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(patch_values, width, 1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, 2 * c if kl else c, 1))
        self.decoder = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, patch_values, 1))
        # latent statistics for unit-variance latents (set by fit_scale; identity until then)
        self.register_buffer("latent_mean", torch.zeros(c))
        self.register_buffer("latent_std", torch.ones(c))

    @property
    def compression(self) -> float:
        """How many input values one latent value stands for: C_img f^2 / C."""
        return self.image_channels * self.spatial_down**2 / self.latent_channels

    def check_images(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.image_channels:
            raise ValueError(f"images must be (B, {self.image_channels}, H, W), got {getattr(x, 'shape', None)}")
        for size, name in ((x.shape[2], "image height"), (x.shape[3], "image width")):
            if size % self.spatial_down != 0:
                raise ValueError(f"{name} {size} is not divisible by the autoencoder's compression {self.spatial_down}")

    def moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images -> the latent's mean (B, C, h, w) and log-variance (None unless ``kl``)."""
        self.check_images(x)
        s = self.spatial_down
        cells = rearrange(x * 2 - 1, "b c (h p) (w q) -> b (c p q) h w", p=s, q=s)   # (B, C_img f^2, h, w)
        out = self.encoder(cells)
        if not self.kl:
            return out, None
        mean, logvar = out.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)                       # latent diffusion's clamp

    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_img, H, W) -> unnormalised latent (B, C, H/f, W/f) (the posterior mean if ``kl``)."""
        return self.moments(x)[0]

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised latent (B, C, h, w) -> logits of the image (B, C_img, h f, w f)."""
        if z.ndim != 4 or z.shape[1] != self.latent_channels:
            raise ValueError(f"latent must be (B, {self.latent_channels}, h, w), got {tuple(z.shape)}")
        s = self.spatial_down
        return rearrange(self.decoder(z), "b (c p q) h w -> b c (h p) (w q)", p=s, q=s)

    def _stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.latent_mean[:, None, None], self.latent_std[:, None, None]       # (C, 1, 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Image in [0, 1] -> normalised latent (about zero mean, unit variance per channel)."""
        z = self.encode_raw(x)
        mean, std = self._stats()
        return (z - mean) / std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latent -> image in [0, 1]."""
        mean, std = self._stats()
        return torch.sigmoid(self.decode_raw(z * std + mean))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def refine(self, z: torch.Tensor, steps: int = 20, lr: float = 0.05, anchor: float = 1.0) -> torch.Tensor:
        """Move normalised latents a few gradient steps towards a confident decoding.

        For images whose pixels are 0 or 1 (the shapes world), a latent whose decoded pixels sit
        near 0.5 is off the data: between two renderings (a square 6 or 7 px tall, drawn with half
        a row). Adam minimises the decoded pixels' mean binary entropy plus ``anchor`` times the
        mean squared distance from the start, so the latent moves to the nearest rendering the
        decoder is sure of, not anywhere. The decoder's weights are not changed; ``steps = 0``
        returns ``z``.
        """
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"steps must be a non-negative int, got {steps!r}")
        if lr <= 0 or anchor < 0:
            raise ValueError(f"lr must be positive and anchor non-negative, got lr={lr}, anchor={anchor}")
        if steps == 0:
            return z
        mean, std = self._stats()
        start = z.detach()
        with torch.enable_grad():
            z = start.clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=lr)
            for _ in range(steps):
                logits = self.decode_raw(z * std + mean)
                p = torch.sigmoid(logits)
                entropy = -(p * F.logsigmoid(logits) + (1 - p) * F.logsigmoid(-logits)).mean()
                loss = entropy + anchor * ((z - start) ** 2).mean()
                (grad,) = torch.autograd.grad(loss, z)
                z.grad = grad
                opt.step()
        return z.detach()

    @torch.no_grad()
    def fit_scale(self, x: torch.Tensor) -> None:
        """Measure the raw latents' per-channel mean and std on ``x`` and store them."""
        z = self.encode_raw(x)
        dims = tuple(d for d in range(z.ndim) if d != z.ndim - 3)           # all but the channel axis
        self.latent_mean.copy_(z.mean(dim=dims))
        self.latent_std.copy_(z.std(dim=dims).clamp(min=1e-4))


def autoencoder_loss(ae: Autoencoder, x: torch.Tensor, latent_noise: float = 0.1,
                     generator: torch.Generator | None = None, kl_weight: float = 0.0) -> torch.Tensor:
    """Reconstruction error (binary cross-entropy) of ``x`` decoded from a perturbed latent.

    The latent is the encoder's output (``ae.kl = False``) or a sample of its Gaussian
    (``ae.kl = True``, and then ``kl_weight`` times :func:`~tinysora.autoencoder.gaussian_kl` is added).
    Either way, Gaussian noise of ``latent_noise`` times the latent's std is added before decoding. The noise
    is relative, so the encoder cannot escape it by making its latents larger: the decoder has to
    learn to draw a clean image from a slightly wrong latent.
    """
    if kl_weight < 0 or (kl_weight > 0 and not ae.kl):
        raise ValueError(f"kl_weight must be >= 0, and > 0 only for an autoencoder built with kl=True; "
                         f"got {kl_weight} (kl={ae.kl})")
    if ae.kl:
        mean, logvar = ae.moments(x)
        z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator).to(mean)
    else:
        z = ae.encode_raw(x)
    scale = latent_noise * z.detach().std()
    noisy = z + scale * torch.randn(z.shape, generator=generator).to(z)
    loss = F.binary_cross_entropy_with_logits(ae.decode_raw(noisy), x)
    return loss + kl_weight * gaussian_kl(mean, logvar) if ae.kl else loss


def train_autoencoder(ae: Autoencoder, batches: Callable[[int], torch.Tensor], steps: int,
                      lr: float = 2e-3, latent_noise: float = 0.1, seed: int = 0,
                      desc: str = "autoencoder", kl_weight: float = 0.0) -> list[float]:
    """Train ``ae`` for ``steps`` steps on ``batches(step) -> inputs`` with AdamW and cosine decay.

    Returns the loss of every step. The data function takes the step number, so the same step
    always sees the same inputs (a run can be repeated or resumed exactly).
    """
    opt = torch.optim.AdamW(ae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    generator = torch.Generator().manual_seed(seed)
    losses = []
    ae.train()
    for step in progress(range(steps), desc=desc):
        loss = autoencoder_loss(ae, batches(step), latent_noise, generator, kl_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    ae.eval()
    return losses
