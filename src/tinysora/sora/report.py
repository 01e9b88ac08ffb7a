"""Train the tiny Sora from nothing at a scale and write a report of what it can do.

``python -m tinysora.sora train --scale cpu --out DIR`` calls :func:`run`, which is three steps:

1. :func:`train` -- the autoencoder, the latent pool and the DiT (resuming from ``DIR/checkpoint.pt``);
2. :func:`evaluate` -- text-to-video on ``eval_clips`` HELD-OUT prompts (the 12 ``TEST_COMBOS``,
   attribute combinations never seen in training), scored by
   :func:`tinysora.video.metrics.score_clips` next to the same latents decoded without
   :meth:`~tinysora.autoencoder.Autoencoder.refine`, the autoencoder's reconstructions (the
   ceiling of a latent model) and the ground truth; then every capability row of
   :mod:`tinysora.sora.evaluate`, each against its bar (:data:`tinysora.sora.evaluate.BARS`);
3. :func:`write` -- to DIR: ``report.md`` (the tables, times, memory), ``metrics.json`` (the same
   numbers), ``samples.png`` (one row per held-out prompt, one column per frame), ``samples.gif``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from dataclasses import dataclass

import numpy as np
import torch

from tinysora.data import TEST_COMBOS, caption_en, make_clips
from tinysora.distributed import Distributed, init_distributed, shutdown, state_bytes
from tinysora.runtime import pick_device
from tinysora.sora.capabilities import TinySora, text_to_video
from tinysora.sora.config import SoraConfig, sora_config
from tinysora.sora.evaluate import (
    AUTOENCODER_BARS,
    BARS,
    KEEP_BAR,
    bar_met,
    evaluate_capabilities,
    held_out_prompts,
    seam_is_smooth,  # noqa: F401 (re-exported: tests and chapter 17 import it from here)
)
from tinysora.sora.train import TrainState, build_latent_pool, train_dit, train_video_autoencoder
from tinysora.video import metrics
from tinysora.video.autoencoder import VideoAutoencoder, psnr
from tinysora.video.metrics import analyse_clips, score_clips

METRICS = ("colour_acc", "shape_acc", "direction_acc", "persistence", "smoothness", "consistency", "all_acc")
GENERATED = "generated (held-out prompts)"


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB), or of the GPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def source_commit() -> str:
    """The git commit of the package's source (with "+ local changes" if the tree differs), or "unknown"."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + (" + local changes" if dirty else "")


COLUMNS = (*METRICS, "kept_exact", "seamless")


def capability_table(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown: per capability, the generated clips, the autoencoder's reconstructions and the
    ground truth (one line each), then its bar (:data:`tinysora.sora.evaluate.BARS`) and whether it is met."""
    lines = ["| capability | clips | " + " | ".join(COLUMNS) + " | bar met |", "|---" * (len(COLUMNS) + 3) + "|"]
    for name, row in rows.items():
        met = bar_met(name, row)
        failed = [m for m, ok in met.items() if not ok]
        verdict = "-" if not met else ("NO: " + ", ".join(failed) if failed else "yes")
        for which, label, last in (("generated", name, verdict), ("autoencoder", "", ""), ("ground truth", "", "")):
            cells = [f"{row[which][c]:.2f}" if c in row[which] else "-" for c in COLUMNS]
            lines.append(f"| {label} | {which} | " + " | ".join(cells) + f" | {last} |")
        bars = BARS.get(name, {})
        ceiling = AUTOENCODER_BARS.get(name, {})
        if bars or ceiling:
            cells = [" ".join(([f">= {bars[c]:.2f}"] if c in bars else [])
                              + ([f"(AE >= {ceiling[c]:.2f})"] if c in ceiling else [])) for c in COLUMNS]
            lines.append("| | bar | " + " | ".join(cells) + " | |")
    return "\n".join(lines)


def metric_table(columns: dict[str, dict[str, float]]) -> str:
    """Markdown table: one row per metric, one column per set of clips, then the two bars of text-to-video."""
    names = list(columns)
    lines = ["| metric | " + " | ".join(names) + " | bar (issue 15) | kept from before (issue 13) |",
             "|---" * (len(names) + 3) + "|"]
    for metric in METRICS:
        bar = BARS["text-to-video"].get(metric, BARS["all metrics on one clip"].get(metric))
        keep = KEEP_BAR.get(metric)
        lines.append(f"| {metric} | " + " | ".join(f"{columns[n][metric]:.3f}" for n in names)
                     + f" | {'-' if bar is None else f'>= {bar:.2f}'} | {'-' if keep is None else f'>= {keep:.2f}'} |")
    return "\n".join(lines)


def save_grid(video: torch.Tensor, captions: list[str], path: str,
              title: str = "held-out prompts (rows), frames (columns)") -> None:
    """PNG: one row per clip (its caption on the left), one column per frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = video.detach().cpu().permute(0, 1, 3, 4, 2).numpy()           # (N, T, H, W, 3)
    n, t = frames.shape[:2]
    fig, axes = plt.subplots(n, t, figsize=(0.9 * t + 2.0, 0.9 * n), squeeze=False)
    for i in range(n):
        for j in range(t):
            ax = axes[i, j]
            ax.imshow(np.clip(frames[i, j], 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_ylabel(captions[i], rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_gif(video: torch.Tensor, path: str, zoom: int = 8, per_row: int = 6, ms: int = 200, border: int = 1) -> None:
    """Animated GIF of the clips tiled in a grid (``border`` grey pixels between them), each pixel
    drawn as a zoom x zoom block."""
    from PIL import Image

    frames = (video.detach().cpu().clamp(0, 1) * 255).round().byte()          # (N, T, 3, H, W)
    n, t, _, h, w = frames.shape
    per_row = min(per_row, n)
    rows = -(-n // per_row)
    canvas = torch.zeros(t, 3, rows * (h + border) - border, per_row * (w + border) - border, dtype=torch.uint8) + 64
    for k in range(n):
        r, c = divmod(k, per_row)
        top, left = r * (h + border), c * (w + border)
        canvas[:, :, top: top + h, left: left + w] = frames[k]
    canvas = canvas.repeat_interleave(zoom, dim=2).repeat_interleave(zoom, dim=3)
    images = [Image.fromarray(canvas[i].permute(1, 2, 0).numpy()) for i in range(t)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=ms, loop=0)


@dataclass
class Trained:
    """What :func:`train` made: the parts, the training state and how long they took."""

    config: SoraConfig
    autoencoder: VideoAutoencoder
    state: TrainState
    ctx: Distributed
    strategy: str
    bf16: bool
    load_average: float
    autoencoder_seconds: float
    train_seconds: float

    @property
    def sora(self) -> TinySora:
        return TinySora(self.autoencoder, self.state.ema.eval(), self.config)


def train(cfg: SoraConfig, out: str, *, ctx: Distributed | None = None, strategy: str = "none",
          data_shards: int | None = None, bf16: bool = False, stop_at: int | None = None) -> Trained:
    """Train the autoencoder and the DiT (checkpoints in ``out/checkpoint.pt``, resumed from it).

    Under torchrun every rank trains its own copy of the autoencoder (the same seed gives the same
    weights) and its share of the DiT's batches; rank 0 writes the checkpoint and
    ``out/training_state.json`` (the bytes of training state it holds, the time, the steps).
    """
    ctx = Distributed() if ctx is None else ctx
    os.makedirs(out, exist_ok=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.time()
    ae, _ = train_video_autoencoder(cfg, ctx.device)
    ae_seconds = time.time() - start
    pool = build_latent_pool(cfg, ae)
    state = train_dit(cfg, pool, checkpoint=os.path.join(out, "checkpoint.pt"), ae=ae, ctx=ctx, strategy=strategy,
                      data_shards=data_shards, bf16=bf16, stop_at=stop_at)
    train_seconds = time.time() - start
    held = state_bytes(state.model, state.optimizer)              # this rank's training state (its shards)
    strategy = strategy if ctx.is_distributed else "none"
    if ctx.is_main:
        with open(os.path.join(out, "training_state.json"), "w") as f:
            json.dump(dict(processes=ctx.world_size, strategy=strategy, parameters=state.module.num_params(),
                           bytes_on_rank0=held, train_seconds=round(train_seconds, 1), dit_steps=state.step), f,
                      indent=2)
    return Trained(cfg, ae, state, ctx, strategy, bf16, load, ae_seconds, train_seconds)


def evaluate(trained: Trained, capabilities: bool = True) -> dict:
    """Score text-to-video on ``eval_clips`` held-out prompts and every capability row.

    Returns a dict: ``facts`` (sizes, times, memory), ``metrics`` ({set of clips: scores}),
    ``capabilities`` ({row: {"generated" | "autoencoder" | "ground truth": scores}}), ``bar_met``
    ({row: {metric: bool}}) and ``samples`` (the first 12 generated clips, a tensor: not for JSON).
    """
    cfg, sora, ae, state = trained.config, trained.sora, trained.autoencoder, trained.state
    device = ae.latent_mean.device
    prompts = held_out_prompts(cfg.eval_clips)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    t0 = time.time()
    video = text_to_video(sora, prompts, seed=cfg.seed + 1)
    sync()
    sample_time = (time.time() - t0) / len(prompts)                  # batched: time per clip
    t0 = time.time()
    text_to_video(sora, prompts[:1], seed=cfg.seed + 1)
    sync()
    single_time = time.time() - t0                                   # one clip on its own
    truth = make_clips(len(prompts), frames=cfg.frames, height=cfg.height, width=cfg.width,
                       split="test", seed=cfg.seed + 2, combos=prompts, device=device)
    with torch.no_grad():
        recon = ae(truth.video)
    # The same latents decoded without refine (the ablation of Autoencoder.refine).
    unrefined = TinySora(ae, sora.dit, cfg.replace(refine_steps=0))
    columns = {GENERATED: score_clips(video, prompts),
               "generated, decoded without refine": score_clips(
                   text_to_video(unrefined, prompts, seed=cfg.seed + 1), prompts),
               "AE reconstruction": score_clips(recon, prompts),
               "ground truth": score_clips(truth.video, prompts)}
    square = {"generated": columns[GENERATED], "autoencoder": columns["AE reconstruction"],
              "ground truth": columns["ground truth"]}
    rows = {"text-to-video": square, "all metrics on one clip": square}
    t0 = time.time()
    if capabilities:
        rows.update(evaluate_capabilities(sora, seed=cfg.seed))
    capability_seconds = time.time() - t0
    deviation = analyse_clips(video).max_deviation.float().cpu()       # px off a bouncing path
    facts = dict(scale=cfg.scale, commit=source_commit(), device=str(device), processes=trained.ctx.world_size,
                 strategy=trained.strategy, bf16=trained.bf16, threads=torch.get_num_threads(),
                 load_average_at_start=round(trained.load_average, 2),
                 load_average_at_end=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan"),
                 dit_params=state.module.num_params(), dit_steps=state.step,
                 autoencoder_psnr_db=round(psnr(truth.video, recon), 2),
                 autoencoder_seconds=round(trained.autoencoder_seconds, 1),
                 train_seconds=round(trained.train_seconds, 1),
                 sampling_seconds_per_clip_batched=round(sample_time, 4),
                 sampling_seconds_one_clip_alone=round(single_time, 4), sample_steps=cfg.sample_steps,
                 cfg_scale=cfg.cfg_scale, capability_seconds=round(capability_seconds, 1),
                 capability_clips=cfg.capability_clips, peak_memory_mb=round(peak_memory_mb(), 1),
                 final_loss=round(float(np.mean(state.losses[-100:])), 4),
                 smooth_tolerance_px=metrics.SMOOTH_TOLERANCE,
                 max_deviation_px_median=round(deviation.median().item(), 2),
                 max_deviation_px_p90=round(deviation.quantile(0.9).item(), 2))
    met = {name: bar_met(name, row) for name, row in rows.items()}
    met["kept from before (issue 13)"] = {m: columns[GENERATED][m] >= b for m, b in KEEP_BAR.items()}
    return dict(facts=facts, config=cfg.to_dict(), metrics=columns, capabilities=rows, bar_met=met,
                samples=video[: len(TEST_COMBOS)])


def write(result: dict, out: str) -> str:
    """Write ``report.md``, ``metrics.json``, ``samples.png`` and ``samples.gif`` to ``out``; returns the report."""
    os.makedirs(out, exist_ok=True)
    samples = result["samples"]
    captions = [caption_en(*p) for p in TEST_COMBOS[: len(samples)]]
    save_grid(samples, captions, os.path.join(out, "samples.png"))
    save_gif(samples, os.path.join(out, "samples.gif"))
    facts, met = result["facts"], result["bar_met"]

    def verdict(checks: dict[str, bool]) -> str:
        return ", ".join(f"{m} {'yes' if ok else 'NO'}" for m, ok in checks.items())

    capabilities = result["capabilities"]
    text = "\n\n".join([
        f"# tiny Sora report ({facts['scale']} scale, commit {facts['commit']})",
        "Metrics on clips generated for the held-out prompts (attribute combinations never seen in training):",
        metric_table(result["metrics"]),
        "bar (issue 15) met: " + verdict(met["text-to-video"]) + "; " + verdict(met["all metrics on one clip"]),
        "kept from before (issue 13) met: " + verdict(met["kept from before (issue 13)"]),
        "| fact | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in facts.items()),
        f"Capabilities ({facts['capability_clips']} held-out prompts a row, the first row on the clips above; given "
        "frames from test clips); each next to the autoencoder's reconstructions and the ground truth of the "
        "same size and length:",
        capability_table(capabilities) + ("" if len(capabilities) > 2 else "\n\n(the other capabilities: skipped)"),
        "![samples](samples.png)",
    ])
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({k: v for k, v in result.items() if k != "samples"}, f, indent=2)
    return text


def run(scale: str, out: str, *, threads: int | None = None, capabilities: bool = True, strategy: str = "none",
        data_shards: int | None = None, bf16: bool = False, train_only: bool = False,
        stop_at: int | None = None, overrides: dict | None = None) -> dict | None:
    """:func:`train` at ``scale`` (resuming from ``out/checkpoint.pt``), :func:`evaluate`, :func:`write`.

    Under torchrun (``strategy`` "ddp" or "fsdp") rank 0 alone evaluates and reports; the others
    return None. ``train_only`` stops after training, ``stop_at`` after that DiT step (the same call
    resumes from the checkpoint). ``overrides`` replace config values (``{"steps": 500}``); an
    unknown key is an error. Returns :func:`evaluate`'s dict (without the samples).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    cfg = sora_config(scale, **(overrides or {}))
    ctx = init_distributed(pick_device().type)
    trained = train(cfg, out, ctx=ctx, strategy=strategy, data_shards=data_shards, bf16=bf16, stop_at=stop_at)
    shutdown(ctx)
    if train_only or not ctx.is_main:
        return None
    result = evaluate(trained, capabilities)
    print(write(result, out))
    result.pop("samples")
    return result
