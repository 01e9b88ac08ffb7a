"""The video autoencoder: :class:`tinysora.autoencoder.Autoencoder` applied to every frame.

Latent diffusion (Rombach et al. 2022) and Sora both diffuse in a compressed latent space, not in
pixels: the transformer then sees few tokens, so each training step is cheap and many fit in a
budget. Here a clip (B, T, 3, H, W) becomes a latent (B, T / s_t, C, H / s, W / s):

* space: the frames are folded into the batch (einops) and each is encoded by the image
  autoencoder of chapter 13, as video models that reuse an image VAE do;
* time (optional, ``temporal_down = s_t > 1``): ``s_t`` consecutive frames' latents are stacked
  on the channels and mixed by a 1x1 conv ("space-to-depth" in time).

The shapes world is simple, so a deterministic autoencoder suffices. One cheap regulariser keeps
its latent space friendly to diffusion: Gaussian noise of a fixed fraction of the latent's
standard deviation is added to the latent before decoding during training
(:func:`~tinysora.autoencoder.autoencoder_loss`), so a slightly wrong latent -- which is what a
diffusion model produces -- still decodes to a clean shape. (Noise of a fixed absolute size does
nothing: the encoder just scales its latents up. Bounding the latent with ``tanh`` instead
saturated it and the autoencoder collapsed to black frames.) ``encode``, ``decode``,
``fit_scale`` (unit-variance latents) and ``refine`` (a confident decoding) are the image
autoencoder's, unchanged.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from tinysora.autoencoder import (
    Autoencoder,
    _check_positive_int,
    autoencoder_loss,
    psnr,
    train_autoencoder,
)

__all__ = ["VideoAutoencoder", "autoencoder_loss", "psnr", "train_autoencoder"]


class VideoAutoencoder(Autoencoder):
    """Clip (B, T, 3, H, W) in [0, 1] <-> latent (B, T / s_t, C, H / s, W / s).

    Args:
        latent_channels: C.
        spatial_down: s (4: a 16x16 frame becomes 4x4).
        temporal_down: s_t (1: no compression in time).
        width: channels of the hidden layers.
    """

    def __init__(self, latent_channels: int = 4, spatial_down: int = 4, temporal_down: int = 1,
                 width: int = 64):
        _check_positive_int(temporal_down, "temporal_down")
        super().__init__(latent_channels, spatial_down, width, image_channels=3)
        self.temporal_down = temporal_down
        st, c = temporal_down, latent_channels
        self.time_down = nn.Conv2d(st * c, c, 1) if st > 1 else nn.Identity()
        self.time_up = nn.Conv2d(c, st * c, 1) if st > 1 else nn.Identity()

    @property
    def compression(self) -> float:
        """How many input values one latent value stands for: 3 s^2 s_t / C."""
        return super().compression * self.temporal_down

    def check_video(self, video: torch.Tensor) -> None:
        if not isinstance(video, torch.Tensor) or video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"video must be (B, T, 3, H, W), got {getattr(video, 'shape', None)}")
        t, h, w = video.shape[1], video.shape[3], video.shape[4]
        for size, s, name in ((h, self.spatial_down, "frame height"), (w, self.spatial_down, "frame width"),
                              (t, self.temporal_down, "frame count")):
            if size % s != 0:
                raise ValueError(f"{name} {size} is not divisible by the autoencoder's compression {s}")

    def moments(self, video: torch.Tensor) -> tuple[torch.Tensor, None]:
        """(B, T, 3, H, W) -> unnormalised latent (B, T/s_t, C, H/s, W/s), and no log-variance."""
        self.check_video(video)
        b = video.shape[0]
        z, _ = super().moments(rearrange(video, "b t c h w -> (b t) c h w"))         # (B*T, C, h, w)
        z = rearrange(z, "(b t st) c h w -> (b t) (st c) h w", b=b, st=self.temporal_down)
        return rearrange(self.time_down(z), "(b t) c h w -> b t c h w", b=b), None

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Unnormalised latent (B, T', C, h, w) -> logits of the clip (B, T' s_t, 3, h s, w s)."""
        b = z.shape[0]
        z = self.time_up(rearrange(z, "b t c h w -> (b t) c h w"))
        z = rearrange(z, "(b t) (st c) h w -> (b t st) c h w", b=b, st=self.temporal_down)
        return rearrange(super().decode_raw(z), "(b t) c h w -> b t c h w", b=b)
