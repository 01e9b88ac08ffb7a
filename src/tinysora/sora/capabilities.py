"""What the tiny Sora can do, one function per capability of the Sora report.

Every capability is the same sampler with a different *frame mask* (Open-Sora's "mask strategy"):
some latent frames are given (kept clean, fed with t = 0, pasted back after every step) and the
model fills in the rest, consistent with the caption and with the given frames.

============================  ===============================================================
capability                    frames given
============================  ===============================================================
text-to-video                 none
image-to-video                the first frame
extend forward / backward     the last / first frames of the clip, at the head / tail
seamless loop                 a frame at the head AND (as frame T) at the tail: the clip runs
                              from it and back into it, so frame T-1 flows into frame 0
video-to-video (SDEdit)       none, but sampling starts from the source clip noised to
                              t = strength instead of from pure noise, with the new caption
image generation              none: a clip of one frame
connect two clips             the end of clip A at the head, the start of clip B at the tail
long video                    text-to-video, then extension forward one window at a time
============================  ===============================================================

Every capability decodes the same way: the sampled latents first take ``refine_steps`` gradient
steps towards a decoding whose pixels are confidently 0 or 1 (:meth:`~tinysora.autoencoder.Autoencoder.refine`),
then the decoder draws them.

Wide, tall and square clips and different lengths need nothing special: a clip is a sequence of
spacetime patches of any length, with sin-cos positions computed for its grid.

The autoencoder here compresses space only, so a latent frame is exactly one video frame. The
decoder's output for a given frame is close to, not equal to, the frame; a given frame is
therefore also pasted back *in pixel space*, so image-to-video keeps it exactly
(with temporal compression one latent frame would span several video frames: Open-Sora#687).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from tinysora.data import caption_en
from tinysora.sora.config import SoraConfig
from tinysora.sora.model import VideoDiT
from tinysora.sora.train import make_autoencoder, make_dit, make_objective, read_checkpoint
from tinysora.video.autoencoder import VideoAutoencoder


@dataclass
class TinySora:
    """A trained tiny Sora: the autoencoder, the video DiT (its EMA weights) and the config."""

    autoencoder: VideoAutoencoder
    dit: VideoDiT
    config: SoraConfig

    @classmethod
    def from_checkpoint(cls, path: str) -> "TinySora":
        ckpt = read_checkpoint(path)
        cfg = SoraConfig.from_dict(ckpt["config"])
        ae, dit = make_autoencoder(cfg), make_dit(cfg)
        ae.load_state_dict(ckpt["autoencoder"])
        dit.load_state_dict(ckpt["ema"])
        return cls(ae.eval(), dit.eval(), cfg)


def _prompts(prompts: Sequence) -> list[str]:
    """Captions, or (colour, shape, direction) tuples turned into English captions."""
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of captions, not one string")
    return [p if isinstance(p, str) else caption_en(*p) for p in prompts]


@torch.no_grad()
def sample_latents(sora: TinySora, prompts: Sequence, frames: int, height: int, width: int, *,
                   keep: torch.Tensor | None = None, z_given: torch.Tensor | None = None,
                   start: float = 1.0, z_start: torch.Tensor | None = None, steps: int | None = None,
                   cfg_scale: float | None = None, seed: int = 0) -> torch.Tensor:
    """The sampler behind every capability: latents (N, T, C, h, w) for N prompts.

    Args:
        keep: optional bool (N, T): latent frames given by ``z_given`` (N, T, C, h, w).
        start, z_start: SDEdit -- begin at time ``start`` < 1 from ``z_start`` noised to it.
        steps, cfg_scale: default to the config's ``sample_steps`` and ``cfg_scale``.
    """
    cfg, model = sora.config, sora.dit
    steps = cfg.sample_steps if steps is None else steps
    cfg_scale = cfg.cfg_scale if cfg_scale is None else cfg_scale
    device = sora.autoencoder.latent_mean.device
    ids = model.tokenizer.encode(_prompts(prompts)).to(device)
    n, down, c = len(ids), sora.autoencoder.spatial_down, cfg.ae_channels
    patch_t, patch_h, patch_w = cfg.patch
    for size, name, patch in ((height, "height", patch_h), (width, "width", patch_w)):
        if size % (down * patch) != 0:
            raise ValueError(f"frame {name} {size} must be a multiple of {down * patch}: the autoencoder "
                             f"compresses by {down} and the DiT's patches are {patch} latent pixels")
    if frames % patch_t != 0:
        raise ValueError(f"frames {frames} must be a multiple of the DiT's tubelet length {patch_t}")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, frames, c, height // down, width // down, generator=generator).to(device)
    sdedit = {} if z_start is None else dict(start=start, x_start=z_start)         # part-noised source
    return make_objective(cfg).sample(lambda x, t: model.forward_with_cfg(x, t, ids, cfg_scale), noise,
                                      steps, keep=keep, x_given=z_given, **sdedit)


def _decode(sora: TinySora, z: torch.Tensor) -> torch.Tensor:
    """Latents -> clips, after the config's ``refine_steps`` of :meth:`~tinysora.autoencoder.Autoencoder.refine`."""
    cfg, ae = sora.config, sora.autoencoder
    z = ae.refine(z, cfg.refine_steps, cfg.refine_lr, cfg.refine_anchor)
    return ae.decode(z).clamp(0, 1)


def _check_clip(video: torch.Tensor, name: str = "video") -> None:
    if not isinstance(video, torch.Tensor) or video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"{name} must be (N, T, 3, H, W), got {getattr(video, 'shape', None)}")


def text_to_video(sora: TinySora, prompts: Sequence, *, frames: int | None = None,
                  height: int | None = None, width: int | None = None, seed: int = 0,
                  **sampling) -> torch.Tensor:
    """Clips (N, T, 3, H, W) for N captions; any length, any H and W divisible by ae_down * patch."""
    cfg = sora.config
    frames, height, width = frames or cfg.frames, height or cfg.height, width or cfg.width
    z = sample_latents(sora, prompts, frames, height, width, seed=seed, **sampling)
    return _decode(sora, z)


def _with_given_frames(sora: TinySora, prompts, given: dict[int, torch.Tensor], frames: int,
                       height: int, width: int, seed: int, **sampling) -> torch.Tensor:
    """Sample clips with frames ``given[index] = (N, 3, H, W)`` kept, exactly, in pixel space."""
    first = next(iter(given.values()))
    n, device = first.shape[0], first.device
    keep = torch.zeros(n, frames, dtype=torch.bool, device=device)
    video_given = torch.zeros(n, frames, 3, height, width, device=device)
    for index, frame in given.items():
        keep[:, index] = True
        video_given[:, index] = frame
    z_given = sora.autoencoder.encode(video_given)
    z = sample_latents(sora, prompts, frames, height, width, keep=keep, z_given=z_given, seed=seed, **sampling)
    video = _decode(sora, z)
    return torch.where(keep[:, :, None, None, None], video_given, video)    # exact given frames


def image_to_video(sora: TinySora, first_frame: torch.Tensor, prompts: Sequence, *,
                   frames: int | None = None, seed: int = 0, **sampling) -> torch.Tensor:
    """Clips that start with ``first_frame`` (N, 3, H, W), exactly, and follow the captions."""
    if first_frame.ndim != 4 or first_frame.shape[1] != 3:
        raise ValueError(f"first_frame must be (N, 3, H, W), got {tuple(first_frame.shape)}")
    frames = frames or sora.config.frames
    height, width = first_frame.shape[-2:]
    return _with_given_frames(sora, prompts, {0: first_frame}, frames, height, width, seed, **sampling)


def extend(sora: TinySora, video: torch.Tensor, prompts: Sequence, *, new_frames: int = 4,
           step: int = 1, backward: bool = False, seed: int = 0, **sampling) -> torch.Tensor:
    """Add ``new_frames`` frames after (or, ``backward=True``, before) each clip, ``step`` at a time.

    Each round samples a window as long as the training clips (``config.frames``): ``step`` new
    frames next to the seam, and the clip's frames on the other side of it, as many as fit, given.
    Small steps see the most of the motion they continue. Measured at cpu scale, 4 new frames
    after 8: step 1 gives smoothness 0.67 over the 12 frames, step 2 0.45, step 4 0.29, and one
    window of 2 given and 4 new frames 0.17. Returns (N, T + new_frames, 3, H, W); the input
    clip is kept exactly.
    """
    _check_clip(video)
    frames = sora.config.frames
    for value, name, low, high in ((new_frames, "new_frames", 1, None), (step, "step", 1, frames - 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low or (high and value > high):
            limit = f"in [1, {high}] (the model's clips are {frames} frames)" if high else "a positive int"
            raise ValueError(f"{name} must be {limit}, got {value!r}")
    height, width = video.shape[-2:]
    for round_ in range(-(-new_frames // step)):
        todo = min(step, new_frames - round_ * step)
        context = min(video.shape[1], frames - todo)
        if backward:                                 # window: todo new frames, then the clip's first
            given = {todo + i: video[:, i] for i in range(context)}
        else:                                        # window: the clip's last frames, then todo new
            given = {i: video[:, -context + i] for i in range(context)}
        new = _with_given_frames(sora, prompts, given, context + todo, height, width, seed + round_, **sampling)
        video = torch.cat([new[:, :todo], video] if backward else [video, new[:, context:]], dim=1)
    return video


def seamless_loop(sora: TinySora, first_frame: torch.Tensor, prompts: Sequence, *,
                  frames: int | None = None, seed: int = 0, **sampling) -> torch.Tensor:
    """Loops of T frames: frame 0 is ``first_frame`` and frame T-1 flows back into frame 0.

    Sampled as T + 1 frames with ``first_frame`` given at both ends; the copy at the end is then
    dropped, so playing the clip over and over never jumps.
    """
    frames = frames or sora.config.frames
    height, width = first_frame.shape[-2:]
    clip = _with_given_frames(sora, prompts, {0: first_frame, frames: first_frame}, frames + 1,
                              height, width, seed, **sampling)
    return clip[:, :frames]


def video_to_video(sora: TinySora, video: torch.Tensor, prompts: Sequence, *, strength: float = 0.7,
                   seed: int = 0, **sampling) -> torch.Tensor:
    """SDEdit: noise the source clip's latent to t = ``strength``, then denoise with new captions.

    Low strength keeps more of the source (its motion and place), high strength follows the
    caption more (a new colour needs enough noise to wash the old one out).
    """
    _check_clip(video)
    if not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    z = sora.autoencoder.encode(video)
    z_new = sample_latents(sora, prompts, video.shape[1], video.shape[3], video.shape[4],
                           start=strength, z_start=z, seed=seed, **sampling)
    return _decode(sora, z_new)


def generate_image(sora: TinySora, prompts: Sequence, *, height: int | None = None, width: int | None = None,
                   seed: int = 0, **sampling) -> torch.Tensor:
    """Images (N, 3, H, W) for N captions: text-to-video with one frame (Sora's images are one-frame videos)."""
    return text_to_video(sora, prompts, frames=1, height=height, width=width, seed=seed, **sampling)[:, 0]


def connect(sora: TinySora, clip_a: torch.Tensor, clip_b: torch.Tensor, prompts: Sequence, *, between: int = 4,
            seed: int = 0, **sampling) -> torch.Tensor:
    """Join clip A to clip B with ``between`` new frames: (N, Ta + between + Tb, 3, H, W).

    One window of the training length (``config.frames``) is sampled: A's last frames, the new
    ones, B's first frames (as many of each as fit, A's side getting the odd one), so the new
    frames see the motion on both sides. Both clips are kept exactly.
    """
    _check_clip(clip_a, "clip_a")
    _check_clip(clip_b, "clip_b")
    if clip_a.shape[0] != clip_b.shape[0] or clip_a.shape[2:] != clip_b.shape[2:]:
        raise ValueError(f"clip_a {tuple(clip_a.shape)} and clip_b {tuple(clip_b.shape)} must hold as many clips "
                         f"of the same frame size")
    frames = sora.config.frames
    if not isinstance(between, int) or isinstance(between, bool) or not 1 <= between <= frames - 2:
        raise ValueError(f"between must be in [1, {frames - 2}] (the model's clips are {frames} frames, and one "
                         f"frame of each clip must fit beside the new ones), got {between!r}")
    room = frames - between
    after = min(room // 2, clip_b.shape[1])
    before = min(room - after, clip_a.shape[1])
    given = {i: clip_a[:, clip_a.shape[1] - before + i] for i in range(before)}
    given.update({before + between + i: clip_b[:, i] for i in range(after)})
    height, width = clip_a.shape[-2:]
    window = _with_given_frames(sora, prompts, given, before + between + after, height, width, seed, **sampling)
    return torch.cat([clip_a, window[:, before: before + between], clip_b], dim=1)


def long_video(sora: TinySora, prompts: Sequence, *, frames: int = 32, step: int = 1, height: int | None = None,
               width: int | None = None, seed: int = 0, **sampling) -> torch.Tensor:
    """Clips (N, frames, 3, H, W) longer than the model's: text-to-video of ``config.frames`` frames,
    then :func:`extend` forward, ``step`` new frames a window, until ``frames``."""
    short = sora.config.frames
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < short:
        raise ValueError(f"frames must be an int of at least the model's clip length {short}, got {frames!r}")
    video = text_to_video(sora, prompts, height=height, width=width, seed=seed, **sampling)
    if frames == short:
        return video
    return extend(sora, video, prompts, new_frames=frames - short, step=step, seed=seed + 1, **sampling)
