"""Diffusion, chapter 12: one interface, two objectives (DDPM and rectified flow).

Data ``x0`` is ``(B, ...)``: points, images or videos. A model is any function
``model_fn(x_t, t) -> prediction`` of ``x_t``'s shape. Times ``t`` are ``(B,)``, one per example,
or ``(B, T)``, one per frame of a video ``(B, T, ...)``. Both objectives answer the same calls:

==========================================  ====================================================
call                                        what it does
==========================================  ====================================================
``sample_t(n, generator)``                  ``n`` random training times
``add_noise(x0, t, noise)``                 ``x_t``: the sample noised to time ``t`` in one go
``target(x0, noise)``                       what the model learns to predict at ``x_t``
``loss(model_fn, x0, generator, keep=)``    mean squared error to the target at random times;
                                            ``keep`` (B, T) marks frames given clean (time 0,
                                            left out of the loss): Open-Sora's frame masks
``sample(model_fn, noise, steps, keep=)``   the one sampling loop; ``keep`` and ``x_given``
                                            hold given frames clean at every step
==========================================  ====================================================

:class:`DDPM` (Ho et al. 2020). Betas ``beta_0 .. beta_{N-1}`` noise the data step by step; in
closed form ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``, ``abar_t = prod_{s<=t} (1 - beta_s)``.
The model predicts ``eps``. Timesteps are ``0 .. N-1`` and ``alpha_bars[t]`` already includes step
``t`` (``t = 0`` is one step of noise); after the last reverse step ``abar = 1``. One update, DDIM's
(Song et al. 2021, eq. 12), samples both ways: ``eta = 0`` on a strided subset of the steps is
DDIM, ``eta = 1`` on all N steps is DDPM's ancestral sampler (its sigma_t^2 is then the posterior
variance beta-tilde_t).

:class:`RectifiedFlow` (Liu et al. 2022; Lipman et al. 2023; SD3, Esser et al. 2024): a straight
line ``x_t = (1 - t) x0 + t eps``, ``t`` in [0, 1]; the model predicts the velocity ``eps - x0``,
training times are logit-normal, and sampling takes Euler steps from ``t = 1`` to 0.

:func:`cfg_combine`: classifier-free guidance (Ho & Salimans 2022) on every channel
(facebookresearch/DiT guided only 3 of 4 by accident: DiT#41).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Values (B,) or (B, T) reshaped to broadcast against x (B, T, ...)."""
    if values.shape != x.shape[: values.ndim]:
        raise ValueError(f"times of shape {tuple(values.shape)} do not match the leading axes of "
                         f"x {tuple(x.shape)}: expected (B,) or (B, T)")
    return values.reshape(*values.shape, *([1] * (x.ndim - values.ndim)))


def frame_times(t: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """One time per example (B,) -> one per frame (B, T), with the frames in ``keep`` at 0 (clean)."""
    if keep is None:
        return t
    if keep.ndim != 2 or keep.shape[0] != t.shape[0]:
        raise ValueError(f"keep must be a bool (B, T) = ({t.shape[0]}, T) mask, got {tuple(keep.shape)}")
    t = t[:, None].expand(keep.shape)
    return torch.where(keep, torch.zeros_like(t), t)                            # (B, T)


def _check_steps(steps: int, high: int | None = None) -> None:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1 or (high and steps > high):
        raise ValueError(f"steps must be an int in [1, {high or 'inf'}], got {steps!r}")


# --- noise schedules ----------------------------------------------------------------------------

def linear_beta_schedule(steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM's schedule: betas linear from ``beta_start`` to ``beta_end`` (DDPM: 1000 steps)."""
    _check_steps(steps)
    return torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)


def cosine_beta_schedule(steps: int, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule: abar(t) = cos^2((t/N + s)/(1 + s) * pi/2), betas <= 0.999."""
    _check_steps(steps)
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    abar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    betas = 1 - abar[1:] / abar[:-1]
    return betas.clamp(max=0.999)


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: ``uncond + scale * (cond - uncond)`` on every channel.

    Scale 1 is the conditional prediction, 0 the unconditional one, > 1 pushes away from it
    (Ho & Salimans' w is ``scale - 1``).
    """
    if cond.shape != uncond.shape:
        raise ValueError(f"cond and uncond differ in shape: {tuple(cond.shape)} vs {tuple(uncond.shape)}")
    if not scale >= 0:
        raise ValueError(f"guidance scale must be >= 0 (1 = no guidance), got {scale}")
    return uncond + scale * (cond - uncond)


# --- the interface ------------------------------------------------------------------------------

class Objective:
    """What DDPM and rectified flow share: the masked loss and the sampling loop.

    A subclass says how to draw training times (:meth:`sample_t`), noise (:meth:`add_noise`), what
    to predict (:meth:`target`), which times a sampler visits (:meth:`sampling_times`) and how one
    step moves between two of them (:meth:`step`).
    """

    def sample_t(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def target(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sampling_times(self, steps: int, start: float | None = None) -> list:
        raise NotImplementedError

    def step(self, x: torch.Tensor, pred: torch.Tensor, t_now, t_next, eta: float,
             generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, model_fn: ModelFn, x0: torch.Tensor, generator: torch.Generator | None = None, *,
             keep: torch.Tensor | None = None) -> torch.Tensor:
        """Mean squared error between the model's prediction and the target at random times.

        ``keep``: optional bool (B, T): frames given clean (time 0, ``x_t = x0``) and left out of the
        loss. The noise is drawn first, then the times, both on the CPU: the same on every device.
        """
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        keep = None if keep is None else keep.to(x0.device)
        t = frame_times(self.sample_t(x0.shape[0], generator).to(x0.device), keep)   # (B,) or (B, T)
        x_t = self.add_noise(x0, t, noise)
        if keep is None:
            return ((model_fn(x_t, t) - self.target(x0, noise)) ** 2).mean()
        kept = _per_sample(keep, x0)                                                 # (B, T, 1, ...)
        x_t = torch.where(kept, x0, x_t)
        err = (model_fn(x_t, t) - self.target(x0, noise)) ** 2
        weight = (~kept).float().expand_as(err)
        return (err * weight).sum() / weight.sum().clamp(min=1)

    @torch.no_grad()
    def sample(self, model_fn: ModelFn, noise: torch.Tensor, steps: int, *,
               keep: torch.Tensor | None = None, x_given: torch.Tensor | None = None,
               eta: float = 0.0, start: float | None = None, x_start: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """The one sampling loop: from ``noise`` (B, ...) to data in ``steps`` model calls.

        Args:
            keep, x_given: optional bool (B, T) and (B, T, ...): frames held at ``x_given``, given
                time 0, at every step and in the result (image-to-video, extension, loops).
            eta: DDIM's noise level (DDPM only): 0 deterministic, 1 ancestral.
            start, x_start: begin at time ``start`` from ``x_start`` noised to it with ``noise``
                instead of from pure noise (SDEdit).
        """
        if (keep is None) != (x_given is None):
            raise ValueError("keep and x_given go together: pass both or neither")
        if (start is None) != (x_start is None):
            raise ValueError("start and x_start go together: pass both or neither")
        times = self.sampling_times(steps, start)
        b = noise.shape[0]
        kept = None if keep is None else _per_sample(keep.to(noise.device), noise)
        x = noise
        if x_start is not None:
            x = self.add_noise(x_start, torch.full((b,), times[0], device=noise.device), noise)
        for t_now, t_next in zip(times[:-1], times[1:]):
            t = torch.full((b,), t_now, device=x.device, dtype=self._time_dtype(x))
            if kept is not None:
                x = torch.where(kept, x_given, x)
                t = frame_times(t, keep.to(x.device))
            x = self.step(x, model_fn(x, t), t_now, t_next, eta, generator)
        return x if kept is None else torch.where(kept, x_given, x)

    def _time_dtype(self, x: torch.Tensor) -> torch.dtype:
        return x.dtype


# --- DDPM ---------------------------------------------------------------------------------------

class DDPM(Objective):
    """The DDPM forward process, its eps-prediction loss and the DDIM / ancestral update.

    Args:
        betas: (N,) noise schedule, e.g. :func:`linear_beta_schedule`.
        clip_sample: clip the sampler's estimate x0_hat to [-clip_sample, clip_sample] (data known
            to lie there, e.g. images in [-1, 1], as in DDPM's code and ``diffusers``' default);
            None: no clipping (latents, points).
    """

    def __init__(self, betas: torch.Tensor, clip_sample: float | None = None):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or not ((betas > 0) & (betas < 1)).all():
            raise ValueError("betas must be a 1-D tensor with values in (0, 1)")
        if clip_sample is not None and not clip_sample > 0:
            raise ValueError(f"clip_sample must be positive or None, got {clip_sample}")
        self.betas, self.clip_sample = betas, clip_sample
        self.alphas = 1 - betas
        self.alpha_bars = torch.cumprod(self.alphas, dim=0)                      # (N,)
        self.alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])
        self.num_steps = len(betas)

    def _check_t(self, t: torch.Tensor) -> None:
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise TypeError(f"DDPM timesteps are integers in [0, {self.num_steps - 1}], got dtype {t.dtype}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_steps):
            raise ValueError(f"DDPM timesteps must be in [0, {self.num_steps - 1}], "
                             f"got values from {int(t.min())} to {int(t.max())}")

    def abar(self, step: int) -> float:
        """alpha-bar at timestep ``step``; 1 (clean) for ``step = -1``, after the last reverse step."""
        return 1.0 if step < 0 else float(self.alpha_bars[step])

    def sample_t(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n uniform timesteps in 0 .. N-1 (int64)."""
        return torch.randint(self.num_steps, (n,), generator=generator)

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The closed form: sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t (B,) or (B, T) ints."""
        self._check_t(t)
        abar = _per_sample(self.alpha_bars.to(x0.device)[t], x0).to(x0.dtype)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert the closed form: x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        self._check_t(t)
        abar = _per_sample(self.alpha_bars.to(x_t.device)[t], x_t).to(x_t.dtype)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    def sampling_times(self, steps: int, start: float | None = None) -> list[int]:
        """The ``steps`` timesteps visited, noisiest first, then -1 (clean): "leading" spacing.

        ``t_i = i * (N // steps)`` as in DDIM and diffusers, so the model is always asked at a
        timestep it was trained on and the last one is 0. All N steps: N-1, ..., 0, -1.
        """
        _check_steps(steps, self.num_steps)
        if start is not None:
            raise ValueError("start (SDEdit) is implemented for the rectified-flow objective only")
        stride = self.num_steps // steps
        return [i * stride for i in range(steps)][::-1] + [-1]

    def _time_dtype(self, x: torch.Tensor) -> torch.dtype:
        return torch.long

    def step(self, x: torch.Tensor, eps: torch.Tensor, t: int, s: int, eta: float = 0.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM's update (Song et al. 2021, eq. 12) from timestep t to an earlier s (-1 = clean)::

            x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
            sigma  = eta * sqrt((1 - abar_s) / (1 - abar_t)) * sqrt(1 - abar_t / abar_s)
            x_s    = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps + sigma z

        With s = t - 1 and eta = 1, sigma^2 is the posterior variance beta-tilde_t and x_s is DDPM's
        ancestral step (Ho et al., Algorithm 2). With ``clip_sample``, x0_hat is clipped and eps
        recomputed from it, so the step stays the posterior q(x_s | x_t, x0_hat).
        """
        if not 0 <= eta <= 1:
            raise ValueError(f"eta must be in [0, 1] (0 = DDIM, 1 = DDPM), got {eta}")
        abar_t, abar_s = self.abar(t), self.abar(s)
        x0_hat = (x - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t)
        if self.clip_sample is not None:
            x0_hat = x0_hat.clamp(-self.clip_sample, self.clip_sample)
            eps = (x - math.sqrt(abar_t) * x0_hat) / math.sqrt(1 - abar_t)         # the noise x0_hat implies
        sigma = eta * math.sqrt((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s))
        x = math.sqrt(abar_s) * x0_hat + math.sqrt(max(1 - abar_s - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator).to(x)
        return x


# --- rectified flow -----------------------------------------------------------------------------

class RectifiedFlow(Objective):
    """Rectified flow / flow matching: x_t = (1 - t) x0 + t eps, the model predicts v = eps - x0.

    Args:
        logit_mean, logit_std: training t = sigmoid(n), n ~ Normal(logit_mean, logit_std)
            (SD3's logit-normal(0, 1): most steps in the middle, where the prediction is hardest).
        shift: sampling-time shift of the timestep grid towards noise, t -> s t / (1 + (s - 1) t)
            (SD3 / Open-Sora 2.0 use s > 1 for many tokens; 1 = no shift).
    """

    def __init__(self, logit_mean: float = 0.0, logit_std: float = 1.0, shift: float = 1.0):
        if logit_std <= 0 or shift <= 0:
            raise ValueError("logit_std and shift must be positive")
        self.logit_mean, self.logit_std, self.shift = float(logit_mean), float(logit_std), float(shift)

    def sample_t(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n training times in (0, 1), logit-normal."""
        return torch.sigmoid(self.logit_mean + self.logit_std * torch.randn(n, generator=generator))

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The point at time t on the straight line from x0 (t = 0) to noise (t = 1)."""
        if t.numel() and (float(t.min()) < 0 or float(t.max()) > 1):
            raise ValueError(f"rectified-flow times must be in [0, 1], got values from "
                             f"{float(t.min()):.4g} to {float(t.max()):.4g}")
        t = _per_sample(t, x0).to(x0.dtype)
        return (1 - t) * x0 + t * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return noise - x0

    def sampling_times(self, steps: int, start: float | None = None) -> list[float]:
        """steps + 1 times from ``start`` (default 1) down to 0, uniform then shifted towards noise."""
        _check_steps(steps)
        start = 1.0 if start is None else start
        if not 0 < start <= 1:
            raise ValueError(f"start must be in (0, 1], got {start}")
        t = torch.linspace(start, 0.0, steps + 1)
        return (self.shift * t / (1 + (self.shift - 1) * t)).tolist()

    def step(self, x: torch.Tensor, v: torch.Tensor, t: float, s: float, eta: float = 0.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """One Euler step of dx/dt = v from time t to s < t."""
        if eta != 0:
            raise ValueError("the Euler sampler of rectified flow is deterministic: eta must be 0")
        return x + (s - t) * v
