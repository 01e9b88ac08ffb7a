"""The tiny Sora at smoke scale: a few training steps can only show that the pipeline is sound
(shapes, determinism, finite values, falling loss, exact resume, exact conditioning frames), not
that the samples are good; the cpu-scale report measures that."""

from types import SimpleNamespace

import pytest
import torch

from tinysora.data import TEST_COMBOS, make_clips
from tinysora.diffusion import RectifiedFlow
from tinysora.sora.capabilities import (
    TinySora,
    connect,
    extend,
    generate_image,
    image_to_video,
    long_video,
    seamless_loop,
    text_to_video,
    video_to_video,
)
from tinysora.sora.config import SORA_CONFIGS, SoraConfig, sora_config
from tinysora.sora.evaluate import BARS, CAPABILITY_ROWS, bar_met, capability_rows, evaluate_capabilities
from tinysora.sora.model import VideoDiT, VideoDiTConfig
from tinysora.sora.report import run, seam_is_smooth
from tinysora.sora.text import CaptionTokenizer
from tinysora.sora.train import (
    SORA_CONFIG,
    build_latent_pool,
    frame_mask,
    read_checkpoint,
    train_dit,
    train_video_autoencoder,
)
from tinysora.video.metrics import score_clips


@pytest.fixture(scope="module")
def smoke():
    torch.set_num_threads(1)
    cfg = SORA_CONFIG.pick("smoke")
    ae, ae_losses = train_video_autoencoder(cfg)
    pool = build_latent_pool(cfg, ae)
    state = train_dit(cfg, pool)
    return SimpleNamespace(cfg=cfg, ae=ae, ae_losses=ae_losses, pool=pool, state=state,
                           sora=TinySora(ae, state.ema, cfg))


def small_dit(**overrides) -> VideoDiT:
    torch.manual_seed(0)
    return VideoDiT(VideoDiTConfig(**{**dict(dim=32, depth=2, heads=2, patch=(1, 2, 2)), **overrides}))


@pytest.mark.parametrize("factorised", [False, True])
def test_video_dit_output_is_exactly_zero_at_init(factorised):
    model = small_dit(factorised=factorised)
    ids = model.tokenizer.encode(["a red circle moves left", "绿色的正方形向上移动"])
    out = model(torch.randn(2, 4, 4, 4, 6), torch.rand(2), ids)
    assert out.shape == (2, 4, 4, 4, 6) and torch.equal(out, torch.zeros_like(out))


def test_video_dit_cfg_scale_one_equals_conditional():
    model = small_dit()
    for p in model.parameters():                                      # leave the zero init
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(3, 4, 4, 4, 4), torch.rand(3)
    ids = model.tokenizer.encode(["a red circle moves left"] * 3)
    cond = model(x, t, ids)
    torch.testing.assert_close(model.forward_with_cfg(x, t, ids, 1.0), cond)
    uncond = model(x, t, model.tokenizer.null(3))
    torch.testing.assert_close(model.forward_with_cfg(x, t, ids, 3.0), uncond + 3 * (cond - uncond),
                               rtol=1e-4, atol=1e-5)


def test_per_frame_time_equals_per_sample_time_when_all_frames_agree():
    model = small_dit()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(2, 4, 4, 4, 4), torch.rand(2)
    ids = model.tokenizer.encode(["a red circle moves left"] * 2)
    torch.testing.assert_close(model(x, t, ids), model(x, t[:, None].expand(2, 4), ids))


def test_tokenizer_reads_english_and_chinese():
    tok = CaptionTokenizer()
    assert tok.split("a red circle moves left") == ["a", "red", "circle", "moves", "left"]
    assert tok.split("红色的圆向左移动") == ["红色", "的", "圆", "向", "左", "移动"]
    assert tok.split("紫色的三角形向下移动") == ["紫色", "的", "三角形", "向", "下", "移动"]
    ids = tok.encode(["a red circle moves left", "a pink circle moves left"])
    assert ids.shape == (2, tok.max_len) and ids[1, 1] == tok.unk_id and ids[0, 5] == tok.pad_id
    assert (tok.null(2) == tok.null_id).all()


def test_condition_dropout_rate_and_null_caption():
    model = small_dit(text_dropout=0.1)
    ids = model.tokenizer.encode(["a red circle moves left"] * 4000)
    dropped = model.text.drop(ids, torch.Generator().manual_seed(0))
    null_rows = (dropped == model.tokenizer.null_id).all(dim=1)
    assert 0.08 < null_rows.float().mean() < 0.12
    assert torch.equal(dropped[~null_rows], ids[~null_rows])


def test_frame_masks():
    g = torch.Generator().manual_seed(0)
    assert not frame_mask(50, 8, 0.0, g).any()
    keep = frame_mask(400, 8, 1.0, g)
    assert keep.any(dim=1).all() and not keep.all(dim=1).any()
    assert 0.2 < frame_mask(2000, 8, 0.25, g).any(dim=1).float().mean() < 0.3


def test_masked_loss_ignores_given_frames():
    z, ids = torch.randn(4, 6, 4, 2, 2), torch.zeros(4, 8, dtype=torch.long)
    keep = torch.zeros(4, 6, dtype=torch.bool)
    keep[:, :2] = True
    plain = lambda x, t, ids: torch.zeros_like(x)
    wrong_on_given = lambda x, t, ids: torch.where(keep[:, :, None, None, None], 5.0, 0.0).expand_as(x)
    seen = {}

    def spy(x, t, ids):
        seen["x"], seen["t"] = x, t
        return torch.zeros_like(x)

    losses = [RectifiedFlow().loss(lambda x, t, m=m: m(x, t, ids), z, torch.Generator().manual_seed(0), keep=keep)
              for m in (plain, wrong_on_given, spy)]
    assert losses[0] == losses[1] == losses[2]
    assert torch.equal(seen["x"][:, :2], z[:, :2]) and (seen["t"][:, :2] == 0).all()
    assert (seen["t"][:, 2:] > 0).all()


def test_smoke_training_losses_fall(smoke):
    ae = smoke.ae_losses
    assert sum(ae[-5:]) / 5 < sum(ae[:5]) / 5
    # the DiT's loss on one fixed batch at a fixed grid of times (Open-Sora's eval loss)
    bucket = smoke.pool[0]
    z = bucket.latents[:16]
    ids = smoke.state.model.tokenizer.encode([f"a {c} {s} moves {d}" for c, s, d in bucket.combos[:16]])
    keep = torch.zeros(16, bucket.frames, dtype=torch.bool)

    def eval_loss(model):
        with torch.no_grad():
            losses = [_FixedT(time).loss(lambda x, t: model(x, t, ids), z, torch.Generator().manual_seed(1), keep=keep)
                      for time in (0.2, 0.4, 0.6, 0.8)]
            return sum(loss.item() for loss in losses) / len(losses)

    fresh = VideoDiT(smoke.state.model.config)                          # zero output at init
    assert eval_loss(smoke.state.model) < eval_loss(fresh)
    assert all(torch.isfinite(torch.tensor(smoke.state.losses)))


class _FixedT(RectifiedFlow):
    """A rectified flow whose training time is always t (for an evaluation loss)."""

    def __init__(self, t: float):
        super().__init__()
        self.t = t

    def sample_t(self, n, generator=None):
        return torch.full((n,), self.t)


def test_checkpoint_resume_equals_uninterrupted(smoke, tmp_path):
    cfg = smoke.cfg.replace(steps=6, checkpoint_every=2)
    straight = train_dit(cfg, smoke.pool)
    path = str(tmp_path / "ckpt.pt")
    train_dit(cfg, smoke.pool, checkpoint=path, stop_at=3, ae=smoke.ae)            # "interrupted" after 3 steps
    resumed = train_dit(cfg, smoke.pool, checkpoint=path, ae=smoke.ae)             # a fresh process resumes
    assert resumed.step == straight.step == 6 and resumed.losses == straight.losses
    for a, b in ((straight.model, resumed.model), (straight.ema, resumed.ema)):
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(p, q), name
    stored = read_checkpoint(path)["config"]                                       # plain values, not an object
    assert stored == cfg.to_dict() and all(isinstance(v, (int, float, str, bool, tuple)) for v in stored.values())
    loaded = TinySora.from_checkpoint(path)
    assert loaded.config == cfg
    assert all(torch.equal(p, q) for p, q in zip(loaded.dit.parameters(), straight.ema.parameters()))


def test_sampling_is_deterministic_finite_and_scored(smoke):
    prompts = list(TEST_COMBOS[:4])
    a = text_to_video(smoke.sora, prompts, seed=3)
    b = text_to_video(smoke.sora, prompts, seed=3)
    assert a.shape == (4, smoke.cfg.frames, 3, 16, 16) and torch.equal(a, b)
    assert torch.isfinite(a).all() and a.min() >= 0 and a.max() <= 1
    scores = score_clips(a, prompts)
    assert set(scores) >= {"colour_acc", "shape_acc", "direction_acc", "persistence", "smoothness"}
    assert all(0 <= v <= 1 for v in scores.values())


@pytest.mark.parametrize("frames, height, width", [(4, 16, 16), (4, 16, 24), (4, 24, 16), (6, 16, 16), (3, 8, 32)])
def test_one_model_any_size_and_length(smoke, frames, height, width):
    video = text_to_video(smoke.sora, ["a red circle moves left", "蓝色的三角形向上移动"],
                          frames=frames, height=height, width=width)
    assert video.shape == (2, frames, 3, height, width)


def test_capabilities_keep_their_given_frames_exactly(smoke):
    clips = make_clips(2, frames=4, split="test", seed=5)
    captions = clips.captions_en
    video = image_to_video(smoke.sora, clips.video[:, 0], captions)
    assert video.shape == clips.video.shape and torch.equal(video[:, 0], clips.video[:, 0])
    forward = extend(smoke.sora, clips.video, captions, new_frames=3, step=2)    # 2 frames, then 1
    assert forward.shape[1] == 7 and torch.equal(forward[:, :4], clips.video)
    backward = extend(smoke.sora, clips.video, captions, new_frames=3, backward=True)
    assert backward.shape[1] == 7 and torch.equal(backward[:, 3:], clips.video)
    loop = seamless_loop(smoke.sora, clips.video[:, 0], captions, frames=4)
    assert loop.shape[1] == 4 and torch.equal(loop[:, 0], clips.video[:, 0])
    edited = video_to_video(smoke.sora, clips.video, clips.captions_zh, strength=0.5)
    assert edited.shape == clips.video.shape and torch.isfinite(edited).all()


def test_extend_rejects_steps_the_window_cannot_hold(smoke):
    clips = make_clips(1, frames=4, split="test", seed=5)
    with pytest.raises(ValueError, match=r"step must be in \[1, 3\] \(the model's clips are 4 frames\)"):
        extend(smoke.sora, clips.video, clips.captions_en, step=4)
    with pytest.raises(ValueError, match="new_frames must be a positive int"):
        extend(smoke.sora, clips.video, clips.captions_en, new_frames=0)


def test_bad_sizes_are_rejected(smoke):
    with pytest.raises(ValueError, match="frame height 18 must be a multiple of 8"):
        text_to_video(smoke.sora, ["a red circle moves left"], height=18)
    with pytest.raises(ValueError, match="frame width 20 must be a multiple of 8"):   # 20 = 4 * 5 latents
        text_to_video(smoke.sora, ["a red circle moves left"], width=20)
    with pytest.raises(ValueError, match="strength"):
        video_to_video(smoke.sora, torch.zeros(1, 4, 3, 16, 16), ["a red circle moves left"], strength=1.5)


@pytest.mark.parametrize("scale", ["smoke", "cpu", "gpu"])
def test_every_bucket_fits_the_patch_grid(scale):
    cfg = SORA_CONFIG.pick(scale)
    p_t, p_h, p_w = cfg.patch
    for frames, height, width, _ in cfg.buckets:
        assert frames % p_t == 0
        assert height % (cfg.ae_down * p_h) == 0 and width % (cfg.ae_down * p_w) == 0
    assert abs(sum(share for *_, share in cfg.buckets) - 1) < 1e-9


def test_seam_of_a_loop():
    clips = make_clips(32, frames=8, height=16, width=16, seed=3)
    ping_pong = torch.cat([clips.video, clips.video.flip(1)[:, 1:-1]], dim=1)   # 0..7..1, back to 0
    assert seam_is_smooth(ping_pong).all()
    positions = clips.positions                                                  # (N, T, 2) px
    seam = (positions[:, 0] - positions[:, -1]).norm(dim=-1)
    longest = (positions[:, 1:] - positions[:, :-1]).norm(dim=-1).amax(dim=1)
    jumps = seam > longest + 2                                                   # clearly not a loop
    assert jumps.sum() >= 8
    assert not seam_is_smooth(clips.video[jumps]).any()


def test_report_at_smoke_scale_writes_everything(tmp_path):
    result = run("smoke", str(tmp_path), threads=1)
    for name in ("report.md", "metrics.json", "samples.png", "samples.gif", "checkpoint.pt"):
        assert (tmp_path / name).stat().st_size > 0
    assert result["metrics"]["ground truth"]["all_acc"] == 1.0
    assert set(result["metrics"]["generated, decoded without refine"]) == set(result["metrics"]["ground truth"])
    assert result["facts"]["dit_steps"] == SORA_CONFIG.pick("smoke").steps
    assert {"image-to-video", "seamless loop"} <= set(result["capabilities"])


def test_one_config_per_scale():
    cfg = sora_config("smoke", steps=5)
    assert isinstance(cfg, SoraConfig) and cfg.steps == 5 and cfg.scale == "smoke"
    assert SORA_CONFIGS["smoke"].steps == 30, "overrides change a copy, not the scale's config"
    assert SORA_CONFIG.pick("cpu") == sora_config("cpu") == SoraConfig()
    assert SoraConfig.from_dict(cfg.to_dict()) == cfg and cfg.size_step == 8
    with pytest.raises(ValueError, match="unknown config key 'stpes'; the smoke config has"):
        sora_config("smoke", stpes=5)
    with pytest.raises(ValueError, match="SoraConfig.steps must be a positive int, got 0"):
        cfg.replace(steps=0)
    with pytest.raises(ValueError, match="unknown objective 'gan'"):
        cfg.replace(objective="gan")
    with pytest.raises(ValueError, match="shares must sum to 1"):
        cfg.replace(buckets=((4, 16, 16, 0.5),))
    assert "capability_clips" in SORA_CONFIG.table() and "12x16x16: 0.1" in SORA_CONFIG.table()


def test_every_config_field_is_used():
    from dataclasses import fields
    from pathlib import Path

    import tinysora.sora as sora_package

    folder = Path(sora_package.__file__).parent
    source = "\n".join(p.read_text() for p in folder.glob("*.py") if p.name != "config.py")
    unused = [f.name for f in fields(SoraConfig) if f"cfg.{f.name}" not in source and f"config.{f.name}" not in source]
    assert not unused, f"SoraConfig fields no engine code reads: {unused}"


def test_connect_keeps_both_clips_exactly(smoke):
    clips = make_clips(2, frames=8, split="test", seed=7)
    a, b = clips.video[:, :3], clips.video[:, 5:]
    joined = connect(smoke.sora, a, b, clips.captions_en, between=2)
    assert joined.shape == (2, 8, 3, 16, 16)
    assert torch.equal(joined[:, :3], a) and torch.equal(joined[:, 5:], b)
    assert torch.isfinite(joined).all() and 0 <= joined.min() and joined.max() <= 1
    with pytest.raises(ValueError, match=r"between must be in \[1, 2\] \(the model's clips are 4 frames"):
        connect(smoke.sora, a, b, clips.captions_en, between=3)
    with pytest.raises(ValueError, match="must hold as many clips"):
        connect(smoke.sora, a, b[:1], clips.captions_en)


def test_long_video_is_text_to_video_extended(smoke):
    prompts = list(TEST_COMBOS[:2])
    long = long_video(smoke.sora, prompts, frames=7, step=3, seed=4)
    assert long.shape == (2, 7, 3, 16, 16)
    assert torch.equal(long[:, :4], text_to_video(smoke.sora, prompts, seed=4))
    with pytest.raises(ValueError, match="frames must be an int of at least the model's clip length 4"):
        long_video(smoke.sora, prompts, frames=3)


def test_generate_image_is_one_frame(smoke):
    images = generate_image(smoke.sora, ["a red circle moves left", "蓝色的三角形向上移动"], width=24, seed=1)
    assert images.shape == (2, 3, 16, 24) and torch.isfinite(images).all()
    assert torch.equal(images, text_to_video(smoke.sora, ["a red circle moves left", "蓝色的三角形向上移动"],
                                             frames=1, width=24, seed=1)[:, 0])


def test_capability_rows_score_generated_autoencoder_and_truth(smoke):
    assert set(capability_rows(smoke.sora)) == set(CAPABILITY_ROWS) and set(CAPABILITY_ROWS) < set(BARS)
    names = ("connect two clips", "image (one frame)", "long video (4x frames)", "seamless loop")
    rows = evaluate_capabilities(smoke.sora, n=2, names=names)
    assert list(rows) == list(names)
    for name, row in rows.items():
        assert set(row) == {"generated", "autoencoder", "ground truth"}
        assert row["ground truth"]["colour_acc"] == row["ground truth"]["shape_acc"] == 1.0
        assert set(bar_met(name, row)) == set(BARS[name])
    assert rows["connect two clips"]["generated"]["kept_exact"] == 1.0
    assert "direction_acc" not in rows["image (one frame)"]["generated"]
    assert 0 <= rows["seamless loop"]["generated"]["seamless"] <= 1
    with pytest.raises(ValueError, match="unknown capability row 'zoom'"):
        evaluate_capabilities(smoke.sora, n=2, names=("zoom",))


def test_a_bucket_can_carry_its_own_captions(smoke):
    from dataclasses import replace

    bucket = replace(smoke.pool[0], share=1.0)
    short = [f"a {colour} {shape}" for colour, shape, _ in bucket.combos]             # partial captions
    state = train_dit(smoke.cfg, [replace(bucket, captions=short)], stop_at=2)
    plain = train_dit(smoke.cfg, [bucket], stop_at=2)
    assert all(torch.isfinite(torch.tensor(state.losses))) and state.losses != plain.losses
