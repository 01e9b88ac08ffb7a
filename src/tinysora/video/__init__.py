"""Video: spacetime patches, the video autoencoder, factorised attention, packing and exact metrics.

* :mod:`tinysora.video.patches` -- patchify / unpatchify any (B, T, C, H, W) clip, 3-D sin-cos positions;
* :mod:`tinysora.video.tubelets` -- ViViT's uniform frame sampling and tubelet embedding, token counts;
* :mod:`tinysora.video.autoencoder` -- the per-frame autoencoder, optionally compressing time too;
* :mod:`tinysora.video.latte` -- Latte's space-time factorisations of a video DiT (chapter 16);
* :mod:`tinysora.video.packing` -- clips of different sizes in one sequence with masks, and buckets;
* :mod:`tinysora.video.framing` -- what a square crop of a wide or tall clip loses;
* :mod:`tinysora.video.metrics` -- the shapes world's exact metrics (colour, shape, motion, ...).
"""
