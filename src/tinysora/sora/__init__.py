"""Chapter 17: a tiny Sora -- a text-to-video latent diffusion transformer for the shapes world.

* :mod:`tinysora.sora.text` -- captions (English or Chinese) -> word tokens and a pooled vector;
* :mod:`tinysora.sora.model` -- the latent video DiT (spacetime patches, adaLN-Zero, cross-attention);
* :mod:`tinysora.sora.train` -- the per-scale config, autoencoder + DiT training, checkpoints;
* :mod:`tinysora.sora.capabilities` -- text/image-to-video, extension, loops, editing, any size;
* :mod:`tinysora.sora.report` -- ``python -m tinysora.sora train --scale cpu --out DIR``.

Why it is built this way (measured on the book's 2-core machine, shared, so times are pessimistic;
details in the report of the engine's first version):

* **Latents, not pixels.** A per-frame autoencoder turns each 16x16 frame into a 4x4 grid of 4
  numbers; 2x2 patches of that grid make 4 tokens a frame, 32 a clip (pixel-space probes used
  64-256 tokens and produced fragmented blobs). Fewer tokens = more steps in the same minutes.
* **Rectified flow beats DDPM.** Same model, data and 800 steps: rectified flow (logit-normal t,
  16 Euler steps) reached colour 1.00 / shape 0.65 / direction 0.98 / persistence 0.99 on held-out
  prompts; DDPM (eps, linear betas, 16 DDIM steps) 0.91 / 0.48 / 0.20 / 0.38.
* **Exact, compositional conditioning.** Word embeddings without mixing (an embedding bag), read by
  cross-attention and, pooled, by adaLN: an unseen combination is made of seen words.
* **Frame masks** (Open-Sora): one mechanism for image-to-video, extension and loops.
"""

from tinysora.sora.capabilities import (TinySora, extend, image_to_video, sample_latents, seamless_loop,
                                        text_to_video, video_to_video)
from tinysora.sora.model import VideoDiT, VideoDiTConfig
from tinysora.sora.text import CaptionTokenizer, TextEncoder
from tinysora.sora.train import SORA_CONFIG, train_dit, train_video_autoencoder

__all__ = [
    "CaptionTokenizer", "SORA_CONFIG", "TextEncoder", "TinySora", "VideoDiT", "VideoDiTConfig",
    "extend", "image_to_video", "sample_latents", "seamless_loop", "text_to_video", "train_dit",
    "train_video_autoencoder", "video_to_video",
]
