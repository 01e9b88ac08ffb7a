"""A small video autoencoder: compress clips in space (and optionally time) into a latent grid.

Latent diffusion (Rombach et al. 2022) and Sora both diffuse in a compressed latent space, not in
pixels: the transformer then sees few tokens, so each training step is cheap and many fit in a
budget. Here a clip (B, T, 3, H, W) becomes a latent (B, T / s_t, C, H / s, W / s):

* space: each frame is cut into s x s patches and a small conv net on the patch grid maps each
  to C numbers (frames are folded into the batch, as video models that reuse an image VAE do);
* time (optional, ``temporal_down = s_t > 1``): ``s_t`` consecutive frames' latents are stacked
  on the channels and mixed by a 1x1 conv ("space-to-depth" in time).

The shapes world is simple, so a deterministic autoencoder suffices. One cheap regulariser keeps
its latent space friendly to diffusion: Gaussian noise of a fixed fraction of the latent's
standard deviation is added to the latent before decoding during training, so a slightly wrong
latent -- which is what a diffusion model produces -- still decodes to a clean shape. (Noise of a
fixed absolute size does nothing: the encoder just scales its latents up. Bounding the latent
with ``tanh`` instead saturated it and the autoencoder collapsed to black frames.)
After training, :meth:`VideoAutoencoder.fit_scale` stores the latents' mean and standard
deviation so that :meth:`encode` returns roughly unit-variance latents (SD's ``0.18215`` factor,
measured instead of hard-coded).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from tinysora.runtime import progress


def psnr(reference: torch.Tensor, estimate: torch.Tensor, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over a whole batch: 10 log10(peak^2 / MSE)."""
    if reference.shape != estimate.shape:
        raise ValueError(f"shapes differ: {tuple(reference.shape)} vs {tuple(estimate.shape)}")
    mse = F.mse_loss(estimate.float(), reference.float()).item()
    return float("inf") if mse == 0 else 10 * math.log10(peak**2 / mse)


class VideoAutoencoder(nn.Module):
    """Clip (B, T, 3, H, W) in [0, 1] <-> latent (B, T / s_t, C, H / s, W / s).

    Space: each frame is cut into s x s pixel patches (space-to-depth, 3 s^2 values per latent
    cell); 1x1 and 3x3 convolutions on the latent grid map them to C channels, and back. Working
    on the small grid only (never at full resolution) makes it cheap, and each 3x3 layer lets a
    cell see its neighbours, so an edge that crosses a patch border is drawn consistently.

    Args:
        latent_channels: C.
        spatial_down: s (4: a 16x16 frame becomes 4x4).
        temporal_down: s_t (1: no compression in time).
        width: channels of the hidden layers.
    """

    def __init__(self, latent_channels: int = 4, spatial_down: int = 4, temporal_down: int = 1,
                 width: int = 64):
        super().__init__()
        for value, name in ((latent_channels, "latent_channels"), (spatial_down, "spatial_down"),
                            (temporal_down, "temporal_down"), (width, "width")):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.latent_channels, self.spatial_down, self.temporal_down = latent_channels, spatial_down, temporal_down
        patch_values = 3 * spatial_down**2
        self.encoder = nn.Sequential(
            nn.Conv2d(patch_values, width, 1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, latent_channels, 1))
        self.decoder = nn.Sequential(
            nn.Conv2d(latent_channels, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
            nn.Conv2d(width, patch_values, 1))
        st, c = temporal_down, latent_channels
        self.time_down = nn.Conv2d(st * c, c, 1) if st > 1 else nn.Identity()
        self.time_up = nn.Conv2d(c, st * c, 1) if st > 1 else nn.Identity()
        # latent statistics for unit-variance latents (set by fit_scale; identity until then)
        self.register_buffer("latent_mean", torch.zeros(c))
        self.register_buffer("latent_std", torch.ones(c))

    def check_video(self, video: torch.Tensor) -> None:
        if not isinstance(video, torch.Tensor) or video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"video must be (B, T, 3, H, W), got {getattr(video, 'shape', None)}")
        t, h, w = video.shape[1], video.shape[3], video.shape[4]
        for size, s, name in ((h, self.spatial_down, "frame height"), (w, self.spatial_down, "frame width"),
                              (t, self.temporal_down, "frame count")):
            if size % s != 0:
                raise ValueError(f"{name} {size} is not divisible by the autoencoder's compression {s}")

    def encode_raw(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> unnormalised latent (B, T/s_t, C, H/s, W/s)."""
        self.check_video(video)
        b, s = video.shape[0], self.spatial_down
        cells = rearrange(video * 2 - 1, "b t c (h p) (w q) -> (b t) (c p q) h w", p=s, q=s)
        z = self.encoder(cells)                                                    # (B*T, C, h, w)
        z = rearrange(z, "(b t st) c h w -> (b t) (st c) h w", b=b, st=self.temporal_down)
        return rearrange(self.time_down(z), "(b t) c h w -> b t c h w", b=b)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised latent (B, T', C, h, w) -> logits of the clip (B, T' s_t, 3, h s, w s)."""
        b = z.shape[0]
        z = self.time_up(rearrange(z, "b t c h w -> (b t) c h w"))
        z = rearrange(z, "(b t) (st c) h w -> (b t st) c h w", b=b, st=self.temporal_down)
        s = self.spatial_down
        return rearrange(self.decoder(z), "(b t) (c p q) h w -> b t c (h p) (w q)", b=b, p=s, q=s)

    def _stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.latent_mean[:, None, None], self.latent_std[:, None, None]       # (C, 1, 1)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Clip in [0, 1] -> normalised latent (about zero mean, unit variance per channel)."""
        z = self.encode_raw(video)
        mean, std = self._stats()
        return (z - mean) / std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latent -> clip in [0, 1]."""
        mean, std = self._stats()
        return torch.sigmoid(self.decode_raw(z * std + mean))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(video))

    def refine(self, z: torch.Tensor, steps: int = 20, lr: float = 0.05, anchor: float = 1.0) -> torch.Tensor:
        """Move normalised latents (B, T, C, h, w) a few gradient steps towards a confident decoding.

        The shapes world's pixels are 0 or 1, so a latent whose decoded pixels sit near 0.5 is off
        the data: between two renderings (a square 6 or 7 px tall, drawn with half a row). Adam
        minimises the decoded pixels' mean binary entropy plus ``anchor`` times the mean squared
        distance from the start, so the latent moves to the nearest rendering the decoder is sure
        of, not anywhere. The decoder's weights are not changed; ``steps = 0`` returns ``z``.
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
    def fit_scale(self, video: torch.Tensor) -> None:
        """Measure the raw latents' per-channel mean and std on ``video`` and store them."""
        z = self.encode_raw(video)
        self.latent_mean.copy_(z.mean(dim=(0, 1, 3, 4)))
        self.latent_std.copy_(z.std(dim=(0, 1, 3, 4)).clamp(min=1e-4))


def autoencoder_loss(ae: VideoAutoencoder, video: torch.Tensor, latent_noise: float = 0.1,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Reconstruction error (binary cross-entropy: the shapes world's pixels are 0 or 1) of a clip
    decoded from its latent plus Gaussian noise of ``latent_noise`` times the latent's std.

    The noise is relative, so the encoder cannot escape it by making its latents larger: the
    decoder has to learn to draw a clean shape from a slightly wrong latent."""
    z = ae.encode_raw(video)
    scale = latent_noise * z.detach().std()
    noisy = z + scale * torch.randn(z.shape, generator=generator).to(z)
    return F.binary_cross_entropy_with_logits(ae.decode_raw(noisy), video)


def train_autoencoder(ae: VideoAutoencoder, batches: Callable[[int], torch.Tensor], steps: int,
                      lr: float = 2e-3, latent_noise: float = 0.1, seed: int = 0,
                      desc: str = "autoencoder") -> list[float]:
    """Train ``ae`` for ``steps`` steps on ``batches(step) -> clips`` with AdamW and cosine decay.

    Returns the loss of every step. The data function takes the step number, so the same step
    always sees the same clips (a run can be repeated or resumed exactly).
    """
    opt = torch.optim.AdamW(ae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    generator = torch.Generator().manual_seed(seed)
    losses = []
    ae.train()
    for step in progress(range(steps), desc=desc):
        loss = autoencoder_loss(ae, batches(step), latent_noise, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    ae.eval()
    return losses
