import math

import numpy as np
import pytest
import torch

from tinysora.diffusion import (DDPM, RectifiedFlow, cfg_combine, cosine_beta_schedule,
                                linear_beta_schedule)


def gaussian_eps_model(ddpm: DDPM, mean: float, std: float):
    """The exact eps-prediction E[eps | x_t] for 1-D data x0 ~ N(mean, std^2)."""
    def model_fn(x, t):
        abar = ddpm.alpha_bars[t].float()[:, None]
        a, b = abar.sqrt(), (1 - abar).sqrt()
        return b * (x - a * mean) / (a**2 * std**2 + b**2)
    return model_fn


def gaussian_velocity_model(mean: float, std: float):
    """The exact velocity E[eps - x0 | x_t] for x_t = (1 - t) x0 + t eps, x0 ~ N(mean, std^2)."""
    def model_fn(x, t):
        t = t[:, None]
        var = (1 - t) ** 2 * std**2 + t**2
        centred = x - (1 - t) * mean
        return t / var * centred - (mean + (1 - t) * std**2 / var * centred)
    return model_fn


def test_linear_schedule_endpoints():
    betas = linear_beta_schedule(1000)
    assert betas[0].item() == pytest.approx(1e-4) and betas[-1].item() == pytest.approx(0.02)


def test_cosine_schedule_matches_its_alpha_bar():
    n, s = 100, 0.008
    abar = np.cumprod(1 - cosine_beta_schedule(n).numpy())
    f = lambda t: math.cos((t / n + s) / (1 + s) * math.pi / 2) ** 2
    expected = np.array([f(t) / f(0) for t in range(1, n + 1)])
    np.testing.assert_allclose(abar[:-1], expected[:-1], rtol=1e-6)   # the last beta is clipped


@pytest.mark.parametrize("t", [0, 10, 250, 999])
def test_forward_process_statistics_match_closed_form(t):
    torch.manual_seed(0)
    ddpm = DDPM(linear_beta_schedule(1000))
    x0 = torch.full((20000, 1), 0.7)
    # noise step by step with x_s = sqrt(1 - beta_s) x_{s-1} + sqrt(beta_s) eps ...
    x = x0.clone().double()
    for s in range(t + 1):
        beta = ddpm.betas[s]
        x = (1 - beta).sqrt() * x + beta.sqrt() * torch.randn_like(x)
    # ... and in one go, and compare both with the closed form
    abar = float(np.prod(1 - linear_beta_schedule(1000).numpy()[: t + 1]))
    one_go = ddpm.q_sample(x0, torch.full((20000,), t), torch.randn_like(x0))
    for sample in (x, one_go):
        assert sample.mean().item() == pytest.approx(math.sqrt(abar) * 0.7, abs=0.02)
        assert sample.var().item() == pytest.approx(1 - abar, abs=0.02 + 0.05 * (1 - abar))


def direct_ddim(betas: np.ndarray, model_fn, noise: np.ndarray, steps: int) -> np.ndarray:
    """DDIM eta = 0 written out from the paper's eq. 12, in NumPy float64."""
    alphas_cumprod = np.cumprod(1.0 - betas)
    ts = np.arange(0, len(betas), len(betas) // steps)[::-1]
    x = noise
    for i, t in enumerate(ts):
        a_t = alphas_cumprod[t]
        a_prev = alphas_cumprod[ts[i + 1]] if i + 1 < len(ts) else 1.0
        eps = model_fn(x, t)
        pred_x0 = (x - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
        x = np.sqrt(a_prev) * pred_x0 + np.sqrt(1 - a_prev) * eps
    return x


@pytest.mark.parametrize("steps", [1, 10, 50])
def test_ddim_matches_a_direct_implementation(steps):
    betas = linear_beta_schedule(1000)
    ddpm = DDPM(betas)
    noise = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = ddpm.ddim_sample(lambda x, t: 0.3 * x + 1e-3 * t.double()[:, None, None, None], noise, steps)
    theirs = direct_ddim(betas.numpy(), lambda x, t: 0.3 * x + 1e-3 * t, noise.numpy(), steps)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-9, atol=1e-9)


def test_ddim_gives_the_model_original_timesteps():
    seen = []
    DDPM(linear_beta_schedule(1000)).ddim_sample(lambda x, t: (seen.append(int(t[0])), x * 0)[1],
                                                 torch.zeros(1, 1), steps=4)
    assert seen == [750, 500, 250, 0]


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_reproduce_a_gaussian_with_the_exact_model(sampler):
    mean, std = 1.5, 0.5
    ddpm = DDPM(linear_beta_schedule(1000))
    noise = torch.randn(4000, 1, generator=torch.Generator().manual_seed(0))
    model = gaussian_eps_model(ddpm, mean, std)
    if sampler == "ddpm":
        x = ddpm.sample(model, noise, generator=torch.Generator().manual_seed(1))
    else:
        x = ddpm.ddim_sample(model, noise, steps=50)
    assert x.mean().item() == pytest.approx(mean, abs=0.05)
    assert x.std().item() == pytest.approx(std, abs=0.05)


def test_rectified_flow_euler_reproduces_a_gaussian():
    mean, std = -1.0, 0.3
    noise = torch.randn(4000, 1, generator=torch.Generator().manual_seed(0))
    x = RectifiedFlow().sample(gaussian_velocity_model(mean, std), noise, steps=50)
    assert x.mean().item() == pytest.approx(mean, abs=0.05)
    assert x.std().item() == pytest.approx(std, abs=0.05)


def test_rectified_flow_loss_is_the_conditional_variance_for_the_exact_model():
    # With the exact E[v | x_t], the loss is E[Var(v | x_t)] > 0; a model off by c adds c^2.
    rf = RectifiedFlow()
    x0 = 1.0 + 0.5 * torch.randn(20000, 1, generator=torch.Generator().manual_seed(0))
    exact = gaussian_velocity_model(1.0, 0.5)
    base = rf.loss(exact, x0, torch.Generator().manual_seed(2)).item()
    shifted = rf.loss(lambda x, t: exact(x, t) + 0.5, x0, torch.Generator().manual_seed(2)).item()
    assert shifted - base == pytest.approx(0.25, abs=0.01)


def test_logit_normal_times_are_in_the_open_interval_with_median_half():
    t = RectifiedFlow().sample_t(20000, torch.Generator().manual_seed(0))
    assert (t > 0).all() and (t < 1).all()
    assert t.median().item() == pytest.approx(0.5, abs=0.02)


def test_shifted_grid_runs_from_one_to_zero_and_leans_to_noise():
    grid = RectifiedFlow(shift=3.0).timesteps(10)
    assert grid[0].item() == 1.0 and grid[-1].item() == 0.0
    assert (grid[1:] < grid[:-1]).all()
    assert (grid[1:-1] > torch.linspace(1, 0, 11)[1:-1]).all()


def test_cfg_scale_one_is_conditional_and_every_channel_is_guided():
    cond, uncond = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(cfg_combine(cond, uncond, 1.0), cond)
    torch.testing.assert_close(cfg_combine(cond, uncond, 0.0), uncond)
    guided = cfg_combine(cond, uncond, 3.0)
    torch.testing.assert_close(guided, uncond + 3 * (cond - uncond))
    assert ((guided - cond).abs().amax(dim=(0, 2, 3)) > 0).all()        # all 4 channels moved


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="steps"):
        linear_beta_schedule(0)
    with pytest.raises(ValueError, match="steps must be an int"):
        DDPM(linear_beta_schedule(10, 1e-4, 0.02)).ddim_sample(lambda x, t: x, torch.zeros(1, 1), steps=20)
    with pytest.raises(ValueError, match="differ in shape"):
        cfg_combine(torch.zeros(2), torch.zeros(3), 2.0)
