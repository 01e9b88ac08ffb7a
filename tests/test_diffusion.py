import math

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from tinysora.diffusion import DDPM, RectifiedFlow, cfg_combine, cosine_beta_schedule, frame_times, linear_beta_schedule


def gaussian_eps_model(ddpm: DDPM, mean: float, std: float):
    """The exact eps-prediction E[eps | x_t] for 1-D data x0 ~ N(mean, std^2)."""
    def model_fn(x, t):
        abar = ddpm.alpha_bars[t].to(x.dtype)[:, None]
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


def toy_eps_model(x, t):
    """A model output that depends on x and t (for comparing samplers, not for sampling well)."""
    return 0.3 * x + 1e-3 * t.to(x.dtype).reshape(-1, *[1] * (x.ndim - 1))


# --- schedules and the forward process ------------------------------------------------------------

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
    one_go = ddpm.add_noise(x0, torch.full((20000,), t), torch.randn_like(x0))
    for sample in (x, one_go):
        assert sample.mean().item() == pytest.approx(math.sqrt(abar) * 0.7, abs=0.02)
        assert sample.var().item() == pytest.approx(1 - abar, abs=0.02 + 0.05 * (1 - abar))


@pytest.mark.parametrize("objective", [DDPM(linear_beta_schedule(100)), RectifiedFlow()])
def test_per_frame_times_noise_each_frame_at_its_own_time(objective):
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 4, 5, generator=g)
    t = objective.sample_t(6, g).reshape(2, 3)                                    # (B, T)
    x_t = objective.add_noise(x0, t, noise)
    for f in range(3):
        torch.testing.assert_close(x_t[:, f], objective.add_noise(x0[:, f], t[:, f], noise[:, f]))


def test_frame_times_zero_the_kept_frames():
    keep = torch.tensor([[True, False, False], [False, False, True]])
    assert frame_times(torch.tensor([5, 7]), keep).tolist() == [[0, 5, 5], [7, 7, 0]]
    assert frame_times(torch.tensor([0.5, 0.25]), None).tolist() == [0.5, 0.25]


# --- the loss -------------------------------------------------------------------------------------

@pytest.mark.parametrize("objective", [DDPM(linear_beta_schedule(100)), RectifiedFlow()])
def test_loss_with_kept_frames_ignores_them_and_shows_them_clean(objective):
    z = torch.randn(4, 6, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    keep = torch.zeros(4, 6, dtype=torch.bool)
    keep[:, :2] = True
    seen = {}

    def spy(x, t):
        seen["x"], seen["t"] = x, t
        return torch.zeros_like(x)

    def wrong_on_given(x, t):
        return torch.where(keep[:, :, None, None, None], 5.0, 0.0).expand_as(x)

    losses = [objective.loss(m, z, torch.Generator().manual_seed(1), keep=keep) for m in (spy, wrong_on_given)]
    assert losses[0] == losses[1]
    assert torch.equal(seen["x"][:, :2], z[:, :2]) and (seen["t"][:, :2] == 0).all()
    # the loss is the mean over the free frames only: recompute it from the same draws
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(z.shape, generator=g)
    t = frame_times(objective.sample_t(4, g), keep)
    target = objective.target(z, noise)[:, 2:]
    assert torch.equal(seen["t"], t)
    torch.testing.assert_close(losses[0], (target**2).mean())


def test_rectified_flow_loss_is_the_conditional_variance_for_the_exact_model():
    # With the exact E[v | x_t], the loss is E[Var(v | x_t)] > 0; a model off by c adds c^2.
    rf = RectifiedFlow()
    x0 = 1.0 + 0.5 * torch.randn(20000, 1, generator=torch.Generator().manual_seed(0))
    exact = gaussian_velocity_model(1.0, 0.5)
    base = rf.loss(exact, x0, torch.Generator().manual_seed(2)).item()
    shifted = rf.loss(lambda x, t: exact(x, t) + 0.5, x0, torch.Generator().manual_seed(2)).item()
    assert shifted - base == pytest.approx(0.25, abs=0.01)


def test_ddpm_loss_of_the_exact_model_is_below_the_zero_model():
    ddpm = DDPM(linear_beta_schedule(1000))
    x0 = 1.5 + 0.5 * torch.randn(20000, 1, generator=torch.Generator().manual_seed(0))
    exact = ddpm.loss(gaussian_eps_model(ddpm, 1.5, 0.5), x0, torch.Generator().manual_seed(1)).item()
    zero = ddpm.loss(lambda x, t: torch.zeros_like(x), x0, torch.Generator().manual_seed(1)).item()
    assert zero == pytest.approx(1.0, abs=0.03) and exact < 0.5 * zero


# --- samplers against diffusers and direct formulas ----------------------------------------------

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
    noise = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = DDPM(betas).sample(toy_eps_model, noise, steps)
    theirs = direct_ddim(betas.numpy(), lambda x, t: 0.3 * x + 1e-3 * t, noise.numpy(), steps)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-9, atol=1e-9)


def test_ddim_gives_the_model_original_timesteps():
    seen = []
    DDPM(linear_beta_schedule(1000)).sample(lambda x, t: (seen.append(int(t[0])), x * 0)[1],
                                            torch.zeros(1, 1), steps=4)
    assert seen == [750, 500, 250, 0]


# Settings under which diffusers' schedulers compute what ours compute: linear betas 1e-4..0.02
# over 1000 steps, eps prediction, no clipping of x0_hat (clip_sample=False: diffusers' default
# True clips to [-1, 1]), "leading" spacing t_i = i * (1000 // steps) with steps_offset=0, the
# clean end at alpha-bar 1 (DDIM's set_alpha_to_one=True), and for DDPM variance_type="fixed_small"
# (beta-tilde, the posterior variance). Their alpha-bars are float32, ours float64: hence the tolerance.
DIFFUSERS = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                 clip_sample=False, prediction_type="epsilon", timestep_spacing="leading", steps_offset=0)


@pytest.mark.parametrize("steps", [1000, 50])
def test_ddpm_ancestral_equals_diffusers_ddpm_scheduler(steps):
    scheduler = DDPMScheduler(**DIFFUSERS, variance_type="fixed_small")
    scheduler.set_timesteps(steps)
    ddpm = DDPM(linear_beta_schedule(1000))
    assert ddpm.sampling_times(steps)[:-1] == scheduler.timesteps.tolist()
    noise = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x = noise.clone()
    g = torch.Generator().manual_seed(5)
    for t in scheduler.timesteps:
        x = scheduler.step(toy_eps_model(x, t.repeat(4)), t, x, generator=g).prev_sample
    ours = ddpm.sample(toy_eps_model, noise, steps, eta=1.0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("t", [999, 500, 1])
def test_one_ddpm_step_equals_diffusers_and_the_posterior_mean(t):
    scheduler = DDPMScheduler(**DIFFUSERS, variance_type="fixed_small")
    scheduler.set_timesteps(1000)
    ddpm = DDPM(linear_beta_schedule(1000))
    x, eps = torch.randn(2, 16, generator=torch.Generator().manual_seed(t)).double().chunk(2)
    theirs = scheduler.step(eps.float(), t, x.float(), generator=torch.Generator().manual_seed(1)).prev_sample
    ours = ddpm.step(x, eps, t, t - 1, eta=1.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours.float(), theirs, rtol=1e-4, atol=1e-4)   # float32 in diffusers
    # the same step as the posterior q(x_{t-1} | x_t, x0_hat): mean and beta-tilde, from Ho et al. eq. 7
    beta, abar, abar_prev = ddpm.betas[t], ddpm.alpha_bars[t], ddpm.alpha_bars[t - 1]
    x0_hat = ddpm.predict_x0(x, torch.tensor([t]), eps)
    mean = (abar_prev.sqrt() * beta * x0_hat + (1 - beta).sqrt() * (1 - abar_prev) * x) / (1 - abar)
    z = torch.randn(eps.shape, generator=torch.Generator().manual_seed(1)).double()
    torch.testing.assert_close(ours, mean + (beta * (1 - abar_prev) / (1 - abar)).sqrt() * z)


@pytest.mark.parametrize("steps, eta", [(50, 0.0), (10, 0.0), (50, 1.0), (20, 0.5)])
def test_ddim_equals_diffusers_ddim_scheduler(steps, eta):
    scheduler = DDIMScheduler(**DIFFUSERS, set_alpha_to_one=True)
    scheduler.set_timesteps(steps)
    ddpm = DDPM(linear_beta_schedule(1000))
    assert ddpm.sampling_times(steps)[:-1] == scheduler.timesteps.tolist()
    noise = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x = noise.clone()
    g = torch.Generator().manual_seed(7)
    for t in scheduler.timesteps:
        x = scheduler.step(toy_eps_model(x, t.repeat(4)), t, x, eta=eta, generator=g).prev_sample
    ours = ddpm.sample(toy_eps_model, noise, steps, eta=eta, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("steps, eta", [(1000, 1.0), (20, 0.0), (20, 1.0)])
def test_clipped_sampling_equals_diffusers_with_clip_sample(steps, eta):
    # clip_sample=True clips x0_hat to [-1, 1]; ours then recomputes eps from it, which is DDPM's
    # posterior with the clipped x0_hat and DDIM's use_clipped_model_output=True
    settings = {**DIFFUSERS, "clip_sample": True}
    if steps == 1000:
        scheduler, kw = DDPMScheduler(**settings, variance_type="fixed_small"), {}
    else:
        scheduler, kw = DDIMScheduler(**settings, set_alpha_to_one=True), dict(eta=eta, use_clipped_model_output=True)
    scheduler.set_timesteps(steps)
    ddpm = DDPM(linear_beta_schedule(1000), clip_sample=1.0)
    model = lambda x, t: 3.0 * toy_eps_model(x, t)          # far off: x0_hat leaves [-1, 1] and is clipped
    noise = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    x, g = noise.clone(), torch.Generator().manual_seed(3)
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t.repeat(4)), t, x, generator=g, **kw).prev_sample
    ours = ddpm.sample(model, noise, steps, eta=eta, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(ours, x, rtol=1e-4, atol=1e-4)
    assert ours.abs().max() <= 1.0 + 1e-6
    unclipped = DDPM(linear_beta_schedule(1000)).sample(model, noise, steps, eta=eta,
                                                         generator=torch.Generator().manual_seed(3))
    assert unclipped.abs().max() > 1.5


@pytest.mark.parametrize("steps, eta", [(1000, 1.0), (50, 0.0)])
def test_ddpm_samplers_reproduce_a_gaussian_with_the_exact_model(steps, eta):
    mean, std = 1.5, 0.5
    ddpm = DDPM(linear_beta_schedule(1000))
    noise = torch.randn(4000, 1, generator=torch.Generator().manual_seed(0))
    x = ddpm.sample(gaussian_eps_model(ddpm, mean, std), noise, steps, eta=eta,
                    generator=torch.Generator().manual_seed(1))
    assert x.mean().item() == pytest.approx(mean, abs=0.05)
    assert x.std().item() == pytest.approx(std, abs=0.05)


def test_rectified_flow_euler_reproduces_a_gaussian():
    mean, std = -1.0, 0.3
    noise = torch.randn(4000, 1, generator=torch.Generator().manual_seed(0))
    x = RectifiedFlow().sample(gaussian_velocity_model(mean, std), noise, steps=50)
    assert x.mean().item() == pytest.approx(mean, abs=0.05)
    assert x.std().item() == pytest.approx(std, abs=0.05)


def test_logit_normal_times_are_in_the_open_interval_with_median_half():
    t = RectifiedFlow().sample_t(20000, torch.Generator().manual_seed(0))
    assert (t > 0).all() and (t < 1).all()
    assert t.median().item() == pytest.approx(0.5, abs=0.02)


def test_shifted_grid_runs_from_one_to_zero_and_leans_to_noise():
    grid = torch.tensor(RectifiedFlow(shift=3.0).sampling_times(10))
    assert grid[0].item() == 1.0 and grid[-1].item() == 0.0
    assert (grid[1:] < grid[:-1]).all()
    assert (grid[1:-1] > torch.linspace(1, 0, 11)[1:-1]).all()


@pytest.mark.parametrize("objective", [DDPM(linear_beta_schedule(100)), RectifiedFlow()])
def test_sampling_keeps_given_frames_and_shows_them_clean(objective):
    g = torch.Generator().manual_seed(0)
    noise, given = torch.randn(2, 4, 3, 2, 2, generator=g), torch.randn(2, 4, 3, 2, 2, generator=g)
    keep = torch.tensor([[True, False, False, False], [False, False, True, True]])
    calls = []

    def model_fn(x, t):
        calls.append((x.clone(), t.clone()))
        return 0.5 * x.flip(1)                       # mixes frames: free frames see the given ones
    out = objective.sample(model_fn, noise, 5, keep=keep, x_given=given)
    assert torch.equal(out[keep], given[keep])
    for x, t in calls:
        assert torch.equal(x[keep], given[keep]) and (t[keep] == 0).all()
    assert (calls[0][1][~keep] > 0).all()                  # the free frames start noisy
    free = objective.sample(model_fn, noise, 5)
    assert not torch.allclose(out[~keep], free[~keep])      # the given frames steered the others


def test_sdedit_starts_from_the_source_noised_to_start():
    rf, seen = RectifiedFlow(), []
    source, noise = torch.ones(2, 3), torch.zeros(2, 3)
    rf.sample(lambda x, t: (seen.append((x.clone(), t.clone())), torch.zeros_like(x))[1], noise, 4,
              start=0.25, x_start=source)
    torch.testing.assert_close(seen[0][0], torch.full((2, 3), 0.75))
    assert seen[0][1].tolist() == [0.25, 0.25]


# --- guidance -------------------------------------------------------------------------------------

def test_cfg_scale_one_is_conditional_and_every_channel_is_guided():
    cond, uncond = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(cfg_combine(cond, uncond, 1.0), cond)
    torch.testing.assert_close(cfg_combine(cond, uncond, 0.0), uncond)
    guided = cfg_combine(cond, uncond, 3.0)
    torch.testing.assert_close(guided, uncond + 3 * (cond - uncond))
    assert ((guided - cond).abs().amax(dim=(0, 2, 3)) > 0).all()        # all 4 channels moved


# --- bad input ------------------------------------------------------------------------------------

def test_bad_arguments_are_rejected():
    ddpm, rf, x = DDPM(linear_beta_schedule(10)), RectifiedFlow(), torch.zeros(2, 3)
    with pytest.raises(ValueError, match="steps"):
        linear_beta_schedule(0)
    with pytest.raises(ValueError, match=r"steps must be an int in \[1, 10\]"):
        ddpm.sample(lambda x, t: x, x, steps=20)
    with pytest.raises(ValueError, match=r"DDPM timesteps must be in \[0, 9\], got values from 0 to 10"):
        ddpm.add_noise(x, torch.tensor([0, 10]), x)
    with pytest.raises(ValueError, match=r"DDPM timesteps must be in \[0, 9\]"):
        ddpm.predict_x0(x, torch.tensor([-1, 3]), x)
    with pytest.raises(TypeError, match="DDPM timesteps are integers"):
        ddpm.add_noise(x, torch.tensor([0.5, 0.2]), x)
    with pytest.raises(ValueError, match=r"rectified-flow times must be in \[0, 1\]"):
        rf.add_noise(x, torch.tensor([0.5, 1.5]), x)
    with pytest.raises(ValueError, match="do not match the leading axes"):
        rf.add_noise(x, torch.tensor([0.5, 0.5, 0.5]), x)
    with pytest.raises(ValueError, match="eta must be in"):
        ddpm.sample(lambda x, t: x, x, steps=5, eta=2.0)
    with pytest.raises(ValueError, match="Euler sampler of rectified flow is deterministic"):
        rf.sample(lambda x, t: x, x, steps=5, eta=1.0)
    with pytest.raises(ValueError, match="keep and x_given go together"):
        rf.sample(lambda x, t: x, x, steps=5, keep=torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="start must be in"):
        rf.sample(lambda x, t: x, x, steps=5, start=1.5, x_start=x)
    with pytest.raises(ValueError, match="rectified-flow objective only"):
        ddpm.sample(lambda x, t: x, x, steps=5, start=0.5, x_start=x)
    with pytest.raises(ValueError, match="clip_sample must be positive"):
        DDPM(linear_beta_schedule(10), clip_sample=0.0)
    with pytest.raises(ValueError, match="differ in shape"):
        cfg_combine(torch.zeros(2), torch.zeros(3), 2.0)
    with pytest.raises(ValueError, match=r"guidance scale must be >= 0 \(1 = no guidance\), got -0.5"):
        cfg_combine(torch.zeros(2), torch.zeros(2), -0.5)
