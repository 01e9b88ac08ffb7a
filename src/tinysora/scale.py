"""Chapter 18: what scaling up costs, in tokens, dollars, GPUs and bytes.

A map of the module:

* **Tokens** -- :func:`patches_per_frame` and :func:`video_tokens` count the spacetime patches of a
  clip (the seeds' 460,800 and 921,600 tokens for one minute of video).
* **The seeds' prices** -- :func:`priced_like_llm_output` (a video minute billed as LLM output
  tokens: the "$14 a minute"), :func:`gpus_to_serve` (GPUs for a word rate: the "2,500 H100s") and
  :func:`daily_cost_if_every_view_is_generated` (the Douyin scenario).
* **Better-founded estimates** -- :func:`dit_sampling_flops` (a DiT's forward FLOPs times the
  sampling steps), :func:`gpu_seconds` (FLOPs over a measured or stated throughput), and
  :func:`cost_from_gpu_hours`.
* **Memory** -- :func:`zero_bytes_per_gpu`: the training state of mixed-precision Adam (16 bytes a
  parameter, Rajbhandari et al. 2020) as each ZeRO stage divides it over ``N`` GPUs.

Every function takes its assumptions as arguments, so a chapter can print them next to the answer;
none of them knows a price or a throughput of its own.
"""

from __future__ import annotations

import math

#: Bytes a parameter for mixed-precision Adam (ZeRO's notation: 2 + 2 + K with K = 12):
#: fp16/bf16 parameters, fp16/bf16 gradients, and fp32 master parameters, momentum and variance.
MIXED_PRECISION_ADAM_BYTES = {"parameters": 2, "gradients": 2, "optimizer": 12}


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


def patches_per_frame(height: int, width: int, patch_height: int, patch_width: int) -> int:
    """Patches of one frame, ``(height / patch_height) * (width / patch_width)``; sizes must divide."""
    _positive(height=height, width=width, patch_height=patch_height, patch_width=patch_width)
    if height % patch_height or width % patch_width:
        raise ValueError(f"a {height}x{width} frame does not split into {patch_height}x{patch_width} patches")
    return (height // patch_height) * (width // patch_width)


def video_tokens(seconds: float, fps: float, tokens_per_frame: int, *, frames_per_token: int = 1) -> int:
    """Spacetime tokens of a clip: ``seconds * fps / frames_per_token * tokens_per_frame``.

    ``frames_per_token`` is the temporal patch (a tubelet) or the autoencoder's time compression;
    the seeds count every frame on its own (1).
    """
    _positive(seconds=seconds, fps=fps, tokens_per_frame=tokens_per_frame, frames_per_token=frames_per_token)
    frames = seconds * fps
    if not float(frames).is_integer():
        raise ValueError(f"{seconds} s at {fps} fps is not a whole number of frames ({frames})")
    return math.ceil(int(frames) / frames_per_token) * int(tokens_per_frame)


def priced_like_llm_output(tokens: int, usd_per_million_tokens: float) -> float:
    """Dollars for ``tokens`` at an LLM's output price (the seed's way to price a video minute)."""
    _positive(tokens=tokens, usd_per_million_tokens=usd_per_million_tokens)
    return tokens / 1e6 * usd_per_million_tokens


def gpus_to_serve(units_per_minute: float, units_per_second_per_gpu: float) -> float:
    """GPUs needed to produce ``units_per_minute`` (words, tokens, video seconds) at a per-GPU rate.

    A per-minute demand divided by a per-second rate must first be brought to one time unit:
    ``units_per_minute / 60 / units_per_second_per_gpu``.
    """
    _positive(units_per_minute=units_per_minute, units_per_second_per_gpu=units_per_second_per_gpu)
    return units_per_minute / 60.0 / units_per_second_per_gpu


def daily_cost_if_every_view_is_generated(daily_users: float, hours_per_user: float, usd_per_minute: float) -> float:
    """The seed's Douyin scenario: every minute watched is a minute generated, at ``usd_per_minute``."""
    _positive(daily_users=daily_users, hours_per_user=hours_per_user, usd_per_minute=usd_per_minute)
    return daily_users * hours_per_user * 60.0 * usd_per_minute


def dit_sampling_flops(forward_macs: float, sampling_steps: int, *, guidance: bool = True) -> float:
    """FLOPs to sample one clip: ``2 * MACs`` per forward, two forwards a step with guidance."""
    _positive(forward_macs=forward_macs, sampling_steps=sampling_steps)
    return 2.0 * forward_macs * sampling_steps * (2 if guidance else 1)


def gpu_seconds(flops: float, peak_flops_per_second: float, utilisation: float) -> float:
    """Seconds on one GPU that sustains ``utilisation`` of its peak (model FLOPs utilisation, MFU)."""
    _positive(flops=flops, peak_flops_per_second=peak_flops_per_second, utilisation=utilisation)
    if utilisation > 1:
        raise ValueError(f"utilisation is a fraction of the peak, at most 1, got {utilisation}")
    return flops / (peak_flops_per_second * utilisation)


def cost_from_gpu_hours(gpu_hours: float, usd_per_gpu_hour: float) -> float:
    """Dollars for ``gpu_hours`` rented at ``usd_per_gpu_hour``."""
    _positive(gpu_hours=gpu_hours, usd_per_gpu_hour=usd_per_gpu_hour)
    return gpu_hours * usd_per_gpu_hour


def zero_bytes_per_gpu(parameters: float, gpus: int, stage: int) -> float:
    """Training-state bytes on each of ``gpus`` for mixed-precision Adam under ZeRO ``stage`` (0-3).

    Stage 0 (plain data parallelism) replicates all 16 bytes a parameter; stage 1 shards the
    optimizer state (12), stage 2 also the gradients (2), stage 3 also the parameters (2).
    Activations and buffers are not counted.
    """
    _positive(parameters=parameters, gpus=gpus)
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO stage must be 0, 1, 2 or 3, got {stage!r}")
    sharded = ["optimizer", "gradients", "parameters"][:stage]
    per_parameter = sum(size / gpus if part in sharded else size for part, size in MIXED_PRECISION_ADAM_BYTES.items())
    return parameters * per_parameter
