"""The engine's sizes: one :class:`SoraConfig` per scale.

The dataclass's defaults are the ``cpu`` config (chosen by the measurements of chapter 17's design
table, to train in about 10 minutes on 2 cores); ``smoke`` and ``gpu`` state only what they
change. :func:`sora_config` returns a fresh copy for a scale, with overrides::

    cfg = sora_config("cpu")                 # default scale: $TINYSORA_SCALE
    cfg = sora_config("smoke", steps=50)     # an unknown key is a ValueError that lists the keys
    cfg.replace(lr=1e-3)                     # a validated copy
    cfg.to_dict(), SoraConfig.from_dict(d)   # plain values, as a checkpoint stores them

``SORA_CONFIG.pick(scale)`` (the interface of :class:`tinysora.config.Scaled`) gives the same.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from tinysora.config import SCALES, check_scale, current_scale

OBJECTIVES = ("flow", "ddpm")


@dataclass
class SoraConfig:
    """Every size of the engine (a scale change is data, not code). Defaults: the ``cpu`` scale."""

    scale: str = "cpu"
    seed: int = 0
    # the training clip: text-to-video's default size
    frames: int = 8
    height: int = 16
    width: int = 16
    # (frames, height, width, share of the DiT's steps); a step draws one bucket
    buckets: tuple = ((8, 16, 16, 0.7), (8, 16, 32, 0.1), (8, 32, 16, 0.1), (12, 16, 16, 0.1))
    # the per-frame autoencoder: latent channels, spatial down-sampling, width; its training
    ae_channels: int = 4
    ae_down: int = 4
    ae_width: int = 64
    ae_steps: int = 2500
    ae_batch: int = 64
    ae_lr: float = 3e-3
    ae_noise: float = 0.25              # latent noise in training, a fraction of the latent's std
    # the video DiT
    dim: int = 96
    depth: int = 4
    heads: int = 4
    patch: tuple = (1, 4, 4)            # (p_t, p, p) over the latent grid: one token a latent frame
    factorised: bool = False            # Latte variant 1: alternate spatial / temporal blocks
    cross_attention: bool = True        # words by cross-attention (plus the pooled caption into adaLN)
    # its training
    objective: str = "flow"             # "flow" (rectified flow) or "ddpm"
    steps: int = 8000
    batch: int = 32
    lr: float = 2e-3
    warmup: int = 100
    ema: float = 0.999
    mask_prob: float = 0.25             # share of clips with Open-Sora frame masks
    pool: int = 4096                    # training clips, encoded once
    checkpoint_every: int = 500
    # sampling and decoding
    sample_steps: int = 16
    cfg_scale: float = 2.0
    refine_steps: int = 20
    refine_lr: float = 0.05
    refine_anchor: float = 1.0
    # the report: clips scored for text-to-video, and for each capability row
    eval_clips: int = 256
    capability_clips: int = 24

    def __post_init__(self):
        check_scale(self.scale)
        self.buckets = tuple(tuple(b) for b in self.buckets)
        self.patch = tuple(self.patch)
        for name in ("frames", "height", "width", "ae_channels", "ae_down", "ae_width", "ae_batch", "dim", "depth",
                     "heads", "steps", "batch", "pool", "sample_steps", "eval_clips", "capability_clips",
                     "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"SoraConfig.{name} must be a positive int, got {value!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}: expected 'flow' or 'ddpm'")
        if len(self.patch) != 3:
            raise ValueError(f"patch must be (p_t, p, p), got {self.patch!r}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by {self.heads} heads")
        for bucket in self.buckets:
            if len(bucket) != 4:
                raise ValueError(f"a bucket is (frames, height, width, share), got {bucket!r}")
        if abs(sum(b[3] for b in self.buckets) - 1) > 1e-6:
            raise ValueError(f"the buckets' shares must sum to 1, got {sum(b[3] for b in self.buckets)}")

    @property
    def size_step(self) -> int:
        """The smallest change of height or width one model allows: ``ae_down * patch[1]`` pixels."""
        return self.ae_down * self.patch[1]

    def replace(self, **changes) -> "SoraConfig":
        """A copy with ``changes``; an unknown key is a ValueError that lists the known ones."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown config key {unknown[0]!r}; the {self.scale} config has "
                             f"{', '.join(sorted(known))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain values (ints, floats, strings, tuples): what a checkpoint stores."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict) -> "SoraConfig":
        """The config a checkpoint stored (lists read back as tuples; keys this version lacks are named)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"the stored config has keys this SoraConfig does not know: {', '.join(unknown)}")
        return cls(**values)


CPU = SoraConfig()
SORA_CONFIGS: dict[str, SoraConfig] = {
    "smoke": CPU.replace(
        scale="smoke", frames=4, buckets=((4, 16, 16, 0.8), (4, 16, 24, 0.1), (4, 24, 16, 0.1)),
        ae_width=16, ae_steps=30, ae_batch=32, ae_noise=0.1, dim=32, depth=2, heads=2, patch=(1, 2, 2),
        steps=30, batch=16, lr=1e-3, warmup=5, ema=0.9, pool=64, checkpoint_every=10, sample_steps=4,
        refine_steps=5, eval_clips=16, capability_clips=4),
    "cpu": CPU,
    # a sensible guess (wider, deeper, bigger batches, more steps), NOT measured: no GPU was available
    "gpu": CPU.replace(
        scale="gpu", buckets=((8, 16, 16, 0.7), (8, 16, 24, 0.1), (8, 24, 16, 0.1), (12, 16, 16, 0.1)),
        ae_width=128, ae_steps=3000, ae_batch=256, ae_lr=2e-3, ae_noise=0.2, dim=256, depth=8, heads=8,
        patch=(1, 2, 2),
        steps=20000, batch=256, lr=5e-4, warmup=500, ema=0.9995, pool=32768, checkpoint_every=2000,
        sample_steps=20, capability_clips=96),
}


def sora_config(scale: str | None = None, **overrides) -> SoraConfig:
    """A fresh copy of the config for ``scale`` (default :func:`tinysora.config.current_scale`)."""
    scale = current_scale() if scale is None else check_scale(scale)
    return SORA_CONFIGS[scale].replace(**overrides)


@dataclass(frozen=True)
class _Configs:
    """``SORA_CONFIG.pick(scale)`` and ``.table()``, as a chapter's :class:`tinysora.config.Scaled`."""

    configs: dict = field(default_factory=lambda: SORA_CONFIGS)

    def pick(self, scale: str | None = None) -> SoraConfig:
        return sora_config(scale)

    def table(self) -> str:
        """Every field at every scale, as plain text (the buckets, long, after the table)."""
        names = [f.name for f in fields(SoraConfig) if f.name not in ("scale", "buckets")]
        width = max(len(n) for n in names)
        rows = [f"{'':{width}}  " + "".join(f"{s:>12}" for s in SCALES)]
        rows += [f"{n:{width}}  " + "".join(f"{getattr(self.configs[s], n)!s:>12}" for s in SCALES) for n in names]
        rows.append("buckets (frames x height x width: share of the steps)")
        rows += [f"  {s:5}  " + ", ".join(f"{f}x{h}x{w}: {share:g}" for f, h, w, share in self.configs[s].buckets)
                 for s in SCALES]
        return "\n".join(rows)


SORA_CONFIG = _Configs()
