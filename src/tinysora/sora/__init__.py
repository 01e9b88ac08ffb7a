"""Chapter 17: a tiny Sora -- a text-to-video latent diffusion transformer for the shapes world.

* :mod:`tinysora.sora.text` -- captions (English or Chinese) -> word tokens and a pooled vector;
* :mod:`tinysora.sora.model` -- the latent video DiT (spacetime patches, adaLN-Zero, cross-attention);
* :mod:`tinysora.sora.config` -- :class:`~tinysora.sora.config.SoraConfig`, one per scale;
* :mod:`tinysora.sora.train` -- autoencoder + DiT training, checkpoints;
* :mod:`tinysora.sora.capabilities` -- text/image-to-video, extension, loops, editing, images,
  connecting clips, long videos, any size;
* :mod:`tinysora.sora.evaluate` -- every capability scored exactly, with its bar;
* :mod:`tinysora.sora.report` -- ``python -m tinysora.sora train --scale cpu --out DIR``.

Why it is built this way (latents, rectified flow, cross-attention, the autoencoder's latent
noise, the refine step, 8000 steps), with the measured table of what was tried, is chapter 17's
section 17.10.
"""

from tinysora.sora.capabilities import (
    TinySora,
    connect,
    extend,
    generate_image,
    image_to_video,
    long_video,
    sample_latents,
    seamless_loop,
    text_to_video,
    video_to_video,
)
from tinysora.sora.config import SORA_CONFIG, SoraConfig, sora_config
from tinysora.sora.model import VideoDiT, VideoDiTConfig
from tinysora.sora.text import CaptionTokenizer, TextEncoder
from tinysora.sora.train import train_dit, train_video_autoencoder

__all__ = [
    "CaptionTokenizer", "SORA_CONFIG", "SoraConfig", "TextEncoder", "TinySora", "VideoDiT", "VideoDiTConfig",
    "connect", "extend", "generate_image", "image_to_video", "long_video", "sample_latents", "seamless_loop",
    "sora_config", "text_to_video", "train_dit", "train_video_autoencoder", "video_to_video",
]
