"""Chapter 17: a tiny Sora -- a text-to-video latent diffusion transformer for the shapes world.

* :mod:`tinysora.sora.text` -- captions (English or Chinese) -> word tokens and a pooled vector;
* :mod:`tinysora.sora.model` -- the latent video DiT (spacetime patches, adaLN-Zero, cross-attention);
* :mod:`tinysora.sora.train` -- the per-scale config, autoencoder + DiT training, checkpoints;
* :mod:`tinysora.sora.capabilities` -- text/image-to-video, extension, loops, editing, any size;
* :mod:`tinysora.sora.report` -- ``python -m tinysora.sora train --scale cpu --out DIR``.

Why it is built this way. Measured on the book's 2-core machine, 256 clips for the 12 held-out
prompts, scored by :func:`tinysora.video.metrics.score_clips` (times vary with the load, so the
tables give steps, not seconds). First probes, 1200-step autoencoder, dim-96 DiT with 4 blocks,
2x2 patches (32 tokens a clip):

=============================================  ======  =====  =========  ===========  ==========
run                                            colour  shape  direction  persistence  smoothness
=============================================  ======  =====  =========  ===========  ==========
DDPM eps, linear betas, 16 DDIM steps, 800x48  0.91    0.48   0.20       0.38         0.09
rectified flow, 16 Euler steps, 800x48         1.00    0.65   0.98       0.99         0.43
  same without cross-attention (adaLN only)    1.00    0.61   0.37       0.88         0.43
  1200 steps x 32 clips                        1.00    0.65   0.99       1.00         0.39
  + autoencoder with relative latent noise     1.00    0.68   1.00       1.00         0.66
  + 4000 steps                                 1.00    0.70   1.00       1.00         0.91
=============================================  ======  =====  =========  ===========  ==========

Then a 3000-step autoencoder (its reconstructions score shape 1.00, not 0.97), rectified flow,
learning rate 1e-3 unless the row says otherwise:

================================================  =====  ==========  ===================
run (DiT steps x clips a step)                    shape  smoothness  colour / dir / pers
================================================  =====  ==========  ===================
latent noise 10%, 2x2 patches, 3000x32            0.74   0.86        1.00 / 1.00 / 1.00
  latent noise 20%                                0.84   0.89        1.00 / 1.00 / 1.00
  20%, 4x4 patches (8 tokens a clip), 6000x32     0.82   0.91        1.00 / 1.00 / 1.00
  20%, 4x4 patches, 4500x32 (605 s in all)        0.85   0.81        1.00 / 1.00 / 0.99
  same, 2500-step AE, 4200x32 (517 s in all)      0.80   0.77        1.00 / 1.00 / 1.00
  20%, 4x4 patches, 4500x32, learning rate 2e-3   0.85   0.91        1.00 / 1.00 / 1.00
  20%, 4x4 patches, 3000x64 (as long as 4500x32)  0.84   0.83        1.00 / 1.00 / 0.99
  20%, 2500-step AE, 4200x32, 2e-3 (cpu)          0.82   0.91        1.00 / 1.00 / 1.00
  20%, 4x4 patches, dim 128, 6 blocks, 2200x32    0.82   0.63        1.00 / 0.99 / 1.00
  10%, 2x2 patches, 6000x16                       0.78   0.91        1.00 / 1.00 / 1.00
  10%, MLP ratio 2                                0.73   0.78        1.00 / 1.00 / 0.99
  10%, logit-normal t with mean -0.5              0.73   0.63        1.00 / 0.98 / 1.00
  24x24 canvas, 3x3 patches (32 tokens), 3000x32  0.76   0.19        1.00 / 0.97 / 0.98
================================================  =====  ==========  ===================

* **Latents, not pixels.** A per-frame autoencoder turns each 16x16 frame into a 4x4 grid of 4
  numbers (pixel-space probes used 64-256 tokens and produced fragmented blobs). 4x4 patches of
  that grid make one token a frame, 8 a clip: a step costs 0.4x one with 2x2 patches, and 6000
  steps of it match 3000 of 2x2 patches. Fewer tokens = more steps in the same minutes.
* **Rectified flow beats DDPM** at the same steps (first table), as SD3 found for few sampling steps.
* **Words by cross-attention.** Without it (pooled caption into adaLN only) direction on held-out
  prompts fell from 0.98 to 0.37. Word embeddings are not mixed (an embedding bag), so an unseen
  combination is made of seen words.
* **The autoencoder sets the ceiling, and its robustness matters more.** Noise of 20% of the
  latent's std added before decoding in training (10% before) costs reconstruction PSNR
  (35.8 -> 30.8 dB) but makes the decoder forgive the DiT's small errors: shape 0.74 -> 0.84.
  50% collapsed it; 2 or 8 channels, width 128, an 8x8 latent per 32x32 frame, one global latent
  vector per frame: no better or worse.
* **Learning rate 2e-3**, not 1e-3 (smoothness 0.81 -> 0.91 at 4500 steps); 3e-3 was worse (0.86),
  and a shorter EMA (0.995 instead of 0.999) did not help (shape 0.84, smoothness 0.89).
* **Sampling** barely matters: guidance 1.5-4, 8-64 Euler steps, shifted schedules and restarts
  changed shape by < 0.03; guidance 1 lost direction (0.90), 4 lost smoothness (0.85). Kept:
  guidance 2, 16 steps.
* **Frame masks** (Open-Sora): one mechanism for image-to-video, extension and loops.

Shape was the last metric to fall, and the fix is in the decoding, not the DiT.

* **What went wrong.** Every shape error was a square read as a circle, but not because of round
  corners: a square of half-extent 3.2 px covers 6 or 7 pixel rows depending on where it sits,
  and the generated latents lay *between* those two renderings, so the decoder drew a partial
  7th row or column (1-3 pixels) that stretches the bounding box and drops the fill under
  SQUARE_FILL. The latents were right in kind: for 96% of generated square frames the nearest
  of 32k true frame latents is a square, and a linear probe trained on true latents calls 99% of
  them squares. They were not precise: a true square's latent noised to t = 0.1 / 0.3 / 0.5 and
  denoised again decodes as a square in 0.96 / 0.78 / 0.50 of clips.
* **What did not fix it** (same DiT latents unless the row says otherwise): the decoder
  fine-tuned with latent noise 0 / 0.3 (shape 0.79 / 0.84), or on the DiT's own denoised
  latents (0.85); full-resolution conv layers in the decoder (0.79-0.81); a temporal decoder
  (3x3x3 convs, 0.85); autoguidance (Karras et al. 2024) by a small, briefly trained DiT (0.81 at
  weight 1.5); fine-tuning the DiT with uniform t (0.83); and, retraining everything, latent noise
  relative to each channel's std instead of the global std (the decoder became far more robust to
  isotropic noise, yet shape stayed 0.82 and smoothness fell to 0.82).
* **Refine, then decode** (:meth:`tinysora.autoencoder.Autoencoder.refine`). The
  world's pixels are 0 or 1, so a latent whose decoded pixels sit near 0.5 is between renderings.
  20 Adam steps on the decoded pixels' mean binary entropy, anchored to the sample, move it to the
  nearest rendering the decoder is sure of: on the same latents, shape 0.82 -> 0.98 with
  smoothness unchanged (0.91), no circle turned into a square, and true latents decode the same
  as before (shape 0.996 both). It costs 20 small decoder passes: one clip alone now samples in
  0.3-0.5 s instead of 0.2 s.

The cpu config meets the bar in about 510 s of training (autoencoder included): colour 1.00, shape
0.98, direction 1.00, persistence 1.00, smoothness 0.91 (``report.md`` gives the same table without
refine). Extension samples one training-length window per new frame
(:func:`~tinysora.sora.capabilities.extend`; smoothness over the 12 frames 0.17 -> 0.67-0.71).
Still weak: wide and tall clips (16x32, 32x16: persistence 0.42 / 0.29; the object is often drawn
twice, once in each of a frame's two tokens, or vanishes for some frames; guidance 1.5-3 and 32
sampling steps do not change that) and 12-frame clips (smoothness 0.46). Giving the wide and tall
buckets 35% of the steps instead of 20% raised tall persistence to 0.54 but cost the square clips
their smoothness (0.91 -> 0.77), so the shares stayed.
"""

from tinysora.sora.capabilities import (
                                        TinySora,
                                        extend,
                                        image_to_video,
                                        sample_latents,
                                        seamless_loop,
                                        text_to_video,
                                        video_to_video,
)
from tinysora.sora.model import VideoDiT, VideoDiTConfig
from tinysora.sora.text import CaptionTokenizer, TextEncoder
from tinysora.sora.train import SORA_CONFIG, train_dit, train_video_autoencoder

__all__ = [
    "CaptionTokenizer", "SORA_CONFIG", "TextEncoder", "TinySora", "VideoDiT", "VideoDiTConfig",
    "extend", "image_to_video", "sample_latents", "seamless_loop", "text_to_video", "train_dit",
    "train_video_autoencoder", "video_to_video",
]
