"""Training the tiny Sora from nothing: first the video autoencoder, then the DiT on its latents.

One :class:`~tinysora.sora.config.SoraConfig` per scale holds every size
(:func:`tinysora.sora.config.sora_config`). The stages:

1. :func:`train_video_autoencoder` -- frames of random training clips, a few hundred steps;
2. :func:`build_latent_pool` -- clips of every size bucket, encoded once (the DiT never sees pixels);
3. :func:`train_dit` -- rectified flow (or DDPM) on the latents, with

   * condition dropout (10%) so classifier-free guidance works,
   * Open-Sora frame masks: in ``mask_prob`` of the clips some latent frames (the head, the tail,
     both, or random ones) are kept clean, given t = 0, and left out of the loss (the ``keep``
     argument of :meth:`tinysora.diffusion.Objective.loss`) -- this one mechanism later gives
     image-to-video, extension and loops;
   * size buckets (square, wide, tall, longer clips), each step one bucket, batch size scaled so
     a step holds about the same number of tokens;
   * an EMA of the weights for sampling, checkpoints every ``checkpoint_every`` steps, and exact
     resume: everything random in step ``s`` comes from a generator seeded by ``(seed, s)``, so a
     resumed run repeats the uninterrupted one bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import pickle
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from tinysora.data import caption_en, caption_zh, make_clips
from tinysora.diffusion import DDPM, Objective, RectifiedFlow, linear_beta_schedule
from tinysora.distributed import (
    Distributed,
    autocast,
    full_state_dict,
    load_full_state_dict,
    shard_generator,
    unwrap,
    wrap_model,
)
from tinysora.runtime import progress, seed_everything
from tinysora.sora.config import SORA_CONFIG, SoraConfig, sora_config  # noqa: F401 (SORA_CONFIG, sora_config: re-exported)
from tinysora.sora.model import VideoDiT, VideoDiTConfig
from tinysora.video.autoencoder import VideoAutoencoder, train_autoencoder

# --- construction -------------------------------------------------------------------------------

def make_autoencoder(cfg: SoraConfig) -> VideoAutoencoder:
    return VideoAutoencoder(cfg.ae_channels, cfg.ae_down, 1, cfg.ae_width)


def make_dit(cfg: SoraConfig) -> VideoDiT:
    return VideoDiT(VideoDiTConfig(
        latent_channels=cfg.ae_channels, patch=tuple(cfg.patch), dim=cfg.dim, depth=cfg.depth,
        heads=cfg.heads, cross_attention=cfg.cross_attention, factorised=cfg.factorised,
        time_scale=1000.0 if cfg.objective == "flow" else 1.0))


def make_objective(cfg: SoraConfig) -> Objective:
    """RectifiedFlow (logit-normal t) or DDPM (linear betas, 1000 steps): one interface, either."""
    if cfg.objective == "flow":
        return RectifiedFlow()
    if cfg.objective == "ddpm":
        return DDPM(linear_beta_schedule(1000))
    raise ValueError(f"unknown objective {cfg.objective!r}: expected 'flow' or 'ddpm'")


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random numbers of one training step: the same (seed, step) always draws the same."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


# --- stage 1: the autoencoder -------------------------------------------------------------------

def train_video_autoencoder(cfg: SoraConfig, device: str | torch.device = "cpu"
                            ) -> tuple[VideoAutoencoder, list[float]]:
    """Train the per-frame autoencoder on frames of training clips, then fit its latent scale."""
    seed_everything(cfg.seed)
    ae = make_autoencoder(cfg).to(device)
    frames = 2                                      # two frames per clip: more clips per batch

    def batches(step: int) -> torch.Tensor:
        return make_clips(cfg.ae_batch // frames, frames=frames, height=cfg.height, width=cfg.width,
                          split="train", seed=10_000_000 + cfg.seed * 100_000 + step, device=device).video

    losses = train_autoencoder(ae, batches, cfg.ae_steps, lr=cfg.ae_lr, latent_noise=cfg.ae_noise, seed=cfg.seed)
    ae.fit_scale(make_clips(256, frames=cfg.frames, height=cfg.height, width=cfg.width,
                            split="train", seed=cfg.seed + 1, device=device).video)
    return ae, losses


# --- stage 2: the latent pool -------------------------------------------------------------------

@dataclass
class LatentBucket:
    """Encoded training clips of one size: latents (N, T, C, h, w) and their combos.

    ``captions`` (optional, N strings): train on these instead of each combo's full caption in
    English or Chinese (chapter 17 trains on partial, noisy or re-written captions this way).
    """

    frames: int
    height: int
    width: int
    share: float
    latents: torch.Tensor
    combos: list = field(repr=False)
    captions: list | None = field(default=None, repr=False)


@torch.no_grad()
def build_latent_pool(cfg: SoraConfig, ae: VideoAutoencoder) -> list[LatentBucket]:
    """Generate and encode ``pool * share`` training clips per bucket (at least 16 each).

    The latents stay on the autoencoder's device."""
    device = ae.latent_mean.device
    buckets = []
    for i, (frames, height, width, share) in enumerate(cfg.buckets):
        n = max(16, int(round(cfg.pool * share)))
        clips = make_clips(n, frames=frames, height=height, width=width, split="train",
                           seed=20_000_000 + cfg.seed * 1000 + i, device=device)
        latents = torch.cat([ae.encode(chunk) for chunk in clips.video.split(256)])
        buckets.append(LatentBucket(frames, height, width, share, latents, clips.combos))
    return buckets


def captions_for(combos, generator: torch.Generator) -> list[str]:
    """Each combo's caption in English or Chinese (half and half, at random)."""
    chinese = torch.rand(len(combos), generator=generator) < 0.5
    return [caption_zh(*c) if zh else caption_en(*c) for c, zh in zip(combos, chinese.tolist())]


# --- stage 3: the DiT ---------------------------------------------------------------------------

def frame_mask(batch: int, frames: int, prob: float, generator: torch.Generator) -> torch.Tensor:
    """Open-Sora-style conditioning masks: bool (B, T), True = frame given clean.

    With probability ``prob`` a clip keeps k in [1, T/2] frames: the first k (image-to-video,
    extension forward), the last k (backward), both ends (loops) or k random frames.
    """
    keep = torch.zeros(batch, frames, dtype=torch.bool)
    masked = torch.rand(batch, generator=generator) < prob
    kind = torch.randint(4, (batch,), generator=generator)
    k = torch.randint(1, max(frames // 2, 1) + 1, (batch,), generator=generator)
    order = torch.rand(batch, frames, generator=generator).argsort(dim=1)
    for b in torch.nonzero(masked).flatten().tolist():
        kb = int(k[b])
        if kind[b] == 0:
            keep[b, :kb] = True
        elif kind[b] == 1:
            keep[b, frames - kb:] = True
        elif kind[b] == 2:
            keep[b, : max(kb // 2, 1)] = True
            keep[b, frames - max(kb // 2, 1):] = True
        else:
            keep[b, order[b, :kb]] = True
    return keep


@dataclass
class TrainState:
    """Everything a checkpoint holds: resuming from it continues the run exactly.

    ``model`` is the training model as wrapped for the strategy (DDP or FSDP2; :attr:`module` is the
    plain VideoDiT inside); ``ema`` is a full, plain copy on every rank, used for sampling.
    """

    model: torch.nn.Module
    ema: VideoDiT
    optimizer: torch.optim.Optimizer
    step: int = 0
    losses: list = field(default_factory=list)
    data_shards: int = 1

    @property
    def module(self) -> VideoDiT:
        return unwrap(self.model)


def make_train_state(cfg: SoraConfig, device: str | torch.device = "cpu", ctx: Distributed = Distributed(),
                     strategy: str = "none") -> TrainState:
    """A fresh DiT, its EMA and AdamW; the model wrapped for ``strategy`` before the optimizer sees it."""
    seed_everything(cfg.seed)
    model = make_dit(cfg).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    model = wrap_model(model, ctx, strategy)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    return TrainState(model, ema, optimizer, data_shards=ctx.world_size)


def learning_rate(cfg: SoraConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 10% of ``lr`` at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    done = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


def save_checkpoint(path: str, state: TrainState, cfg: SoraConfig, ae: VideoAutoencoder | None = None,
                    ctx: Distributed = Distributed()) -> None:
    """Model, EMA, optimizer, step, losses, torch's RNG and the config (plain values), atomically.

    Every rank must call it (FSDP gathers its shards); rank 0 writes. The file holds only tensors and
    plain Python values, so it loads with ``weights_only=True`` in any number of processes.
    """
    model_state, optimizer_state = full_state_dict(state.model, state.optimizer)
    if not ctx.is_main:
        return
    tmp = path + ".tmp"
    torch.save(dict(model=model_state, ema=state.ema.state_dict(), optimizer=optimizer_state, step=state.step,
                    losses=list(state.losses), data_shards=state.data_shards, rng=torch.get_rng_state(),
                    config=cfg.to_dict(), autoencoder=None if ae is None else ae.state_dict()), tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str) -> dict:
    """The checkpoint at ``path`` as data: tensors and plain values only, never pickled objects."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(f"{path} holds pickled Python objects, not only tensors and plain values; refusing to "
                         f"load it, since unpickling a stranger's file can run code ({error})") from None


def load_checkpoint(path: str, state: TrainState) -> dict:
    """Restore ``state`` in place from ``path`` (written by any number of processes); returns the dict."""
    ckpt = read_checkpoint(path)
    load_full_state_dict(state.model, state.optimizer, ckpt["model"], ckpt["optimizer"])
    state.ema.load_state_dict(ckpt["ema"])
    state.step, state.losses = ckpt["step"], list(ckpt["losses"])
    state.data_shards = ckpt.get("data_shards", 1)
    torch.set_rng_state(ckpt["rng"])
    return ckpt


def my_shards(data_shards: int, ctx: Distributed) -> range:
    """The shards of every step's batch that this rank trains on (the world size must divide them)."""
    if data_shards % ctx.world_size:
        raise ValueError(f"the run draws each batch as {data_shards} data shards, which do not divide between "
                         f"{ctx.world_size} processes; use a number of processes that divides {data_shards}")
    per_rank = data_shards // ctx.world_size
    return range(ctx.rank * per_rank, (ctx.rank + 1) * per_rank)


def _full(tensor: torch.Tensor) -> torch.Tensor:
    """A parameter as one whole tensor (FSDP's DTensor shards gathered)."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def train_dit(cfg: SoraConfig, pool: list[LatentBucket], state: TrainState | None = None,
              checkpoint: str | None = None, stop_at: int | None = None,
              ae: VideoAutoencoder | None = None, *, ctx: Distributed = Distributed(), strategy: str = "none",
              data_shards: int | None = None, bf16: bool = False) -> TrainState:
    """Train the video DiT on the latent pool up to ``cfg.steps`` (or ``stop_at``) steps.

    With ``checkpoint`` set, saves there every ``cfg.checkpoint_every`` steps and at the end, and
    resumes from it first when the file exists.

    Several processes (``ctx`` from :func:`tinysora.distributed.init_distributed`, ``strategy`` "ddp" or
    "fsdp"): each step's batch is drawn as ``data_shards`` shards (default: one per process), each from its
    own random stream, and each rank trains on its share; so one process with ``data_shards=2`` repeats a
    two-process run, and a checkpoint resumes under any number of processes that divides its shards.
    ``bf16``: autocast the forward and the loss to bfloat16.
    """
    device = pool[0].latents.device
    state = make_train_state(cfg, device, ctx, strategy) if state is None else state
    if data_shards is not None:
        state.data_shards = data_shards
    if checkpoint is not None and os.path.exists(checkpoint):
        load_checkpoint(checkpoint, state)
        if state.data_shards % ctx.world_size:
            print(f"the checkpoint drew {state.data_shards} data shards a step, which {ctx.world_size} processes "
                  f"cannot share: continuing with {ctx.world_size} (the data stream changes from here)")
            state.data_shards = ctx.world_size
    shards = my_shards(state.data_shards, ctx)
    if cfg.batch % state.data_shards:
        raise ValueError(f"batch {cfg.batch} does not divide into {state.data_shards} data shards "
                         f"(one per process by default): choose a batch that is a multiple of {state.data_shards}")
    objective = make_objective(cfg)
    model, module = state.model, state.module
    tokenizer = module.tokenizer
    shares = torch.tensor([bucket.share for bucket in pool])
    base_tokens = pool[0].latents[0].numel()
    end = cfg.steps if stop_at is None else min(stop_at, cfg.steps)
    model.train()
    steps = range(state.step, end)
    for step in progress(steps, desc="video DiT", initial=state.step, total=end, disable=not ctx.is_main):
        g = step_generator(cfg.seed, step)
        bucket = pool[int(torch.multinomial(shares, 1, generator=g))]       # the same bucket on every rank
        batch = max(1, round(cfg.batch * base_tokens / bucket.latents[0].numel() / state.data_shards))
        for group in state.optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        state.optimizer.zero_grad(set_to_none=True)
        step_loss = torch.zeros((), device=device)
        for i, shard in enumerate(shards):
            gs = g if state.data_shards == 1 else shard_generator(cfg.seed, step, shard, state.data_shards)
            idx = torch.randint(len(bucket.latents), (batch,), generator=gs)
            z = bucket.latents[idx.to(device)]
            if bucket.captions is None:
                texts = captions_for([bucket.combos[j] for j in idx.tolist()], gs)
            else:
                texts = [bucket.captions[j] for j in idx.tolist()]
            ids = module.text.drop(tokenizer.encode(texts), gs)
            ids = ids.to(device)
            keep = frame_mask(batch, bucket.frames, cfg.mask_prob, gs)
            last = i == len(shards) - 1
            sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with autocast(device, bf16):
                    loss = objective.loss(lambda x, t, ids=ids: model(x, t, ids), z, gs, keep=keep)
                (loss / len(shards)).backward()
            step_loss += loss.detach() / len(shards)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        state.optimizer.step()
        with torch.no_grad():                      # EMA, warmed up: decay min(ema, (1+s)/(10+s))
            decay = min(cfg.ema, (1 + step) / (10 + step))
            for p_ema, p in zip(state.ema.parameters(), model.parameters()):
                p_ema.lerp_(_full(p), 1 - decay)
        if ctx.is_distributed:                     # the logged loss is the mean over every rank's shards
            dist.all_reduce(step_loss)
            step_loss /= ctx.world_size
        state.losses.append(step_loss.item())
        state.step = step + 1
        if checkpoint is not None and (state.step % cfg.checkpoint_every == 0 or state.step == end):
            save_checkpoint(checkpoint, state, cfg, ae, ctx)
    model.eval()
    return state
