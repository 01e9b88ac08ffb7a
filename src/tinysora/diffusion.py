"""Diffusion in two formulations: DDPM (noise prediction) and rectified flow (velocity prediction).

Everything here is generic over tensor shapes: ``x`` is ``(B, ...)`` (points, images or videos)
and a model is any function ``model_fn(x_t, t) -> prediction`` of the same shape as ``x_t``, with
``t`` a ``(B,)`` tensor.

DDPM (Ho et al. 2020), chapter 12. A fixed schedule ``beta_1 .. beta_N`` noises data step by step;
in closed form ::

    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,     abar_t = prod_{s<=t} (1 - beta_s)

and a network learns ``eps`` from ``(x_t, t)``. Sampling runs the reverse chain (ancestral DDPM,
``N`` steps, ``sigma_t z`` added each step) or DDIM (Song et al. 2021), which jumps along a
strided subset of the timesteps and is deterministic for ``eta = 0``.

Rectified flow (Liu et al. 2022; SD3, Esser et al. 2024), chapter 17. A straight line from data
to noise ::

    x_t = (1 - t) x_0 + t eps,      t in [0, 1],   velocity  v = dx_t/dt = eps - x_0

A network learns ``v`` and sampling integrates the ODE from ``t = 1`` (noise) to ``t = 0`` with
a few Euler steps. Training draws ``t`` from a logit-normal distribution (``sigmoid`` of a
Gaussian), which spends the steps in the middle, where the prediction is hardest. SD3's Table 1
ranks this first of 61 formulations, most clearly at few sampling steps, and on our 2-core
machine it also won (see ``tinysora.sora`` for the measurements).

Classifier-free guidance (Ho & Salimans 2022) combines a conditional and an unconditional
prediction; :func:`cfg_combine` guides every channel (facebookresearch/DiT guided only 3 of 4 by
accident: DiT#41).

Indexing convention for DDPM: timesteps are ``0 .. N-1`` and ``alpha_bars[t]`` already includes
step ``t`` (so ``t = 0`` is one step of noise, not clean data). The "previous" alpha-bar of the
first step is 1.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _expand(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sample values (B,) reshaped to broadcast against x (B, ...)."""
    return values.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)


# --- noise schedules ----------------------------------------------------------------------------

def linear_beta_schedule(steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM's schedule: betas linear from ``beta_start`` to ``beta_end`` (DDPM: 1000 steps)."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    return torch.linspace(beta_start, beta_end, steps, dtype=torch.float64)


def cosine_beta_schedule(steps: int, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule: abar(t) = cos^2((t/N + s)/(1 + s) * pi/2), betas <= 0.999."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    abar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    betas = 1 - abar[1:] / abar[:-1]
    return betas.clamp(max=0.999)


def cfg_combine(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: ``uncond + scale * (cond - uncond)`` on every channel.

    Scale 1 is the conditional prediction, 0 the unconditional one, > 1 pushes away from it.
    """
    if cond.shape != uncond.shape:
        raise ValueError(f"cond and uncond differ in shape: {tuple(cond.shape)} vs {tuple(uncond.shape)}")
    return uncond + scale * (cond - uncond)


# --- DDPM ---------------------------------------------------------------------------------------

class DDPM:
    """The DDPM forward process, its eps-prediction loss and two samplers (ancestral, DDIM).

    Args:
        betas: (N,) noise schedule, e.g. :func:`linear_beta_schedule`.
    """

    def __init__(self, betas: torch.Tensor):
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.ndim != 1 or not ((betas > 0) & (betas < 1)).all():
            raise ValueError("betas must be a 1-D tensor with values in (0, 1)")
        self.betas = betas
        self.alphas = 1 - betas
        self.alpha_bars = torch.cumprod(self.alphas, dim=0)                      # (N,)
        self.alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])
        self.num_steps = len(betas)

    def _at(self, values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _expand(values.to(x.device)[t], x)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Noise clean data to step t in one go: sqrt(abar_t) x0 + sqrt(1 - abar_t) eps."""
        abar = self._at(self.alpha_bars, t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def loss(self, model_fn: ModelFn, x0: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean squared error between the true noise and the model's guess at a random step."""
        t = torch.randint(self.num_steps, (x0.shape[0],), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        return ((model_fn(self.q_sample(x0, t, noise), t) - noise) ** 2).mean()

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert the closed form: x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        abar = self._at(self.alpha_bars, t, x_t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    @torch.no_grad()
    def sample(self, model_fn: ModelFn, noise: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Ancestral sampling over all N steps (Ho et al., Algorithm 2).

        x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sigma_t z, with
        sigma_t^2 the posterior variance beta_t (1 - abar_{t-1}) / (1 - abar_t); no z at t = 0.
        """
        x = noise
        for step in reversed(range(self.num_steps)):
            t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
            eps = model_fn(x, t)
            beta, alpha, abar = (float(v[step]) for v in (self.betas, self.alphas, self.alpha_bars))
            mean = (x - beta / math.sqrt(1 - abar) * eps) / math.sqrt(alpha)
            if step > 0:
                variance = beta * (1 - float(self.alpha_bars_prev[step])) / (1 - abar)
                z = torch.randn(x.shape, generator=generator).to(x)
                x = mean + math.sqrt(variance) * z
            else:
                x = mean
        return x

    def ddim_timesteps(self, steps: int) -> list[int]:
        """The ``steps`` timesteps DDIM visits, from noisiest to cleanest: 0, k, 2k, ... (stride k).

        "Leading" spacing as in DDIM and diffusers: ``t_i = i * (N // steps)``, so the model is
        always asked at a timestep it was trained on, and the last one is 0.
        """
        if not isinstance(steps, int) or not 1 <= steps <= self.num_steps:
            raise ValueError(f"steps must be an int in [1, {self.num_steps}], got {steps!r}")
        stride = self.num_steps // steps
        return [i * stride for i in range(steps)][::-1]

    @torch.no_grad()
    def ddim_sample(self, model_fn: ModelFn, noise: torch.Tensor, steps: int = 50, eta: float = 0.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """DDIM (Song et al. 2021, eq. 12), deterministic for eta = 0.

        From timestep t to the previous visited one, s (abar_s = 1 after the last step)::

            x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
            sigma  = eta * sqrt((1 - abar_s) / (1 - abar_t)) * sqrt(1 - abar_t / abar_s)
            x_s    = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps + sigma z

        The model is given the original timestep t, not the index of the step.
        """
        timesteps = self.ddim_timesteps(steps)
        x = noise
        for i, step in enumerate(timesteps):
            prev = timesteps[i + 1] if i + 1 < len(timesteps) else None
            abar_t = float(self.alpha_bars[step])
            abar_s = float(self.alpha_bars[prev]) if prev is not None else 1.0
            t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
            eps = model_fn(x, t)
            x0_hat = (x - math.sqrt(1 - abar_t) * eps) / math.sqrt(abar_t)
            sigma = eta * math.sqrt((1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s))
            x = math.sqrt(abar_s) * x0_hat + math.sqrt(max(1 - abar_s - sigma**2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * torch.randn(x.shape, generator=generator).to(x)
        return x


# --- rectified flow -----------------------------------------------------------------------------

class RectifiedFlow:
    """Rectified flow / flow matching: x_t = (1 - t) x0 + t eps, the model predicts v = eps - x0.

    Args:
        logit_mean, logit_std: training t = sigmoid(n), n ~ Normal(logit_mean, logit_std)
            (SD3's logit-normal(0, 1)).
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

    @staticmethod
    def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The point at time t on the straight line from x0 (t = 0) to noise (t = 1).

        ``t`` broadcasts against x0: (B,) per sample, or any shape that broadcasts (per frame).
        """
        if t.ndim == 1:
            t = _expand(t, x0)
        return (1 - t) * x0 + t * noise

    def loss(self, model_fn: ModelFn, x0: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean squared error between the model's velocity and eps - x0 at a logit-normal t."""
        t = self.sample_t(x0.shape[0], generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        return ((model_fn(self.interpolate(x0, noise, t), t) - (noise - x0)) ** 2).mean()

    def timesteps(self, steps: int, start: float = 1.0) -> torch.Tensor:
        """steps + 1 times from ``start`` down to 0, uniform then shifted towards noise."""
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        t = torch.linspace(start, 0.0, steps + 1)
        return self.shift * t / (1 + (self.shift - 1) * t)

    @torch.no_grad()
    def sample(self, model_fn: ModelFn, noise: torch.Tensor, steps: int = 20,
               start: float = 1.0) -> torch.Tensor:
        """Euler integration of dx/dt = v(x, t) from t = start (noise) to t = 0.

        ``start < 1`` with ``noise`` replaced by a partly noised clip is SDEdit (editing).
        """
        grid = self.timesteps(steps, start)
        x = noise
        for t_now, t_next in zip(grid[:-1].tolist(), grid[1:].tolist()):
            t = torch.full((x.shape[0],), t_now, device=x.device, dtype=x.dtype)
            x = x + (t_next - t_now) * model_fn(x, t)
        return x
