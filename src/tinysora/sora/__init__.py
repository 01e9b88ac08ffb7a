"""Chapter 17: a tiny Sora -- a text-to-video latent diffusion transformer for the shapes world.

* :mod:`tinysora.sora.text` -- captions (English or Chinese) -> word tokens and a pooled vector;
* :mod:`tinysora.sora.model` -- the latent video DiT (spacetime patches, adaLN-Zero, cross-attention);
* :mod:`tinysora.sora.train` -- the per-scale config, autoencoder + DiT training, checkpoints;
* :mod:`tinysora.sora.capabilities` -- text/image-to-video, extension, loops, editing, any size;
* :mod:`tinysora.sora.report` -- ``python -m tinysora.sora train --scale cpu --out DIR``.

Why it is built this way. Measured on the book's 2-core machine, shared with other jobs (so the
times vary with the load), 256 clips for the 12 held-out prompts, scored by
:func:`tinysora.video.metrics.score_clips`:

=============================================  ======  =====  =========  ===========  ==========
run (dim-96 DiT, 4 blocks, 32 tokens a clip)   colour  shape  direction  persistence  smoothness
=============================================  ======  =====  =========  ===========  ==========
DDPM eps, linear betas, 16 DDIM steps, 800x48  0.91    0.48   0.20       0.38         0.09
rectified flow, 16 Euler steps, 800x48         1.00    0.65   0.98       0.99         0.43
  same without cross-attention (adaLN only)    1.00    0.61   0.37       0.88         0.43
  1200 steps x 32 clips                        1.00    0.65   0.99       1.00         0.39
  + autoencoder with relative latent noise     1.00    0.68   1.00       1.00         0.66
  + 4000 steps (the cpu config)                1.00    0.70   1.00       1.00         0.91
=============================================  ======  =====  =========  ===========  ==========

* **Latents, not pixels.** A per-frame autoencoder turns each 16x16 frame into a 4x4 grid of 4
  numbers; 2x2 patches of that grid make 4 tokens a frame, 32 a clip (pixel-space probes used
  64-256 tokens and produced fragmented blobs). Fewer tokens = more steps in the same minutes.
* **Rectified flow beats DDPM** at the same steps (table), as SD3 found for few sampling steps.
* **Words by cross-attention.** Without it (pooled caption into adaLN only) direction on held-out
  prompts fell from 0.98 to 0.37. Word embeddings are not mixed (an embedding bag), so an unseen
  combination is made of seen words.
* **The autoencoder sets the ceiling.** Its reconstructions score shape 0.97; noise of 10% of the
  latent's std added before decoding in training made generated clips smoother (0.39 -> 0.66).
* **Sampling** barely matters: guidance 1.5-4 and 8-32 Euler steps changed shape by < 0.03; guidance
  1 lost direction (0.90), 4 lost smoothness (0.85). Kept: guidance 2, 16 steps.
* **Frame masks** (Open-Sora): one mechanism for image-to-video, extension and loops.

Not solved at cpu scale: generated squares have rounded corners (fill ~0.9 against the metric's
0.945), so they are read as circles and shape accuracy stays near 2/3.
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
