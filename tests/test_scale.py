"""tinysora.scale reproduces the seeds' figures from their stated assumptions, and ZeRO's table."""

import pytest

from tinysora import scale


def test_one_minute_of_video_is_the_seeds_token_counts():
    # seed 001: 30 fps, 256 tokens a frame; seed 003: 1920x1280 frames in 60x80 patches (512 a frame)
    assert scale.video_tokens(60, 30, 256) == 460_800
    assert scale.patches_per_frame(1280, 1920, 80, 60) == 512
    assert scale.video_tokens(60, 30, scale.patches_per_frame(1280, 1920, 80, 60)) == 921_600
    # a tubelet of 4 frames divides the count; a partial last tubelet still costs its tokens
    assert scale.video_tokens(60, 30, 256, frames_per_token=4) == 450 * 256
    assert scale.video_tokens(1, 5, 10, frames_per_token=2) == 30


def test_the_seeds_prices():
    minute = scale.priced_like_llm_output(921_600, 15.0)
    assert minute == pytest.approx(13.824)                                   # "14 dollars a minute"
    # Douyin: 800M daily users x 2 hours, every minute generated: 1.3 trillion dollars a day
    assert scale.daily_cost_if_every_view_is_generated(800e6, 2, 14) == pytest.approx(1.344e12)


def test_serving_gpus_bring_minutes_and_seconds_to_one_unit():
    # 300M words a minute at 20k words a second per H100 is 250 GPUs, not the seed's 2,500
    assert scale.gpus_to_serve(300e6, 20_000) == pytest.approx(250)


def test_flops_and_gpu_time():
    assert scale.dit_sampling_flops(118.6e9, 250) == pytest.approx(2 * 118.6e9 * 250 * 2)
    assert scale.dit_sampling_flops(1e9, 10, guidance=False) == pytest.approx(2e10)
    assert scale.gpu_seconds(1e15, 1e15, 0.5) == pytest.approx(2.0)
    assert scale.cost_from_gpu_hours(0.2, 2.5) == pytest.approx(0.5)


def test_zero_stages_reproduce_the_papers_7_5b_on_64_gpus():
    gb = [scale.zero_bytes_per_gpu(7.5e9, 64, stage) / 1e9 for stage in range(4)]
    assert gb == pytest.approx([120.0, 31.4, 16.6, 1.875], abs=0.05)
    assert scale.zero_bytes_per_gpu(10, 1, 3) == scale.zero_bytes_per_gpu(10, 1, 0) == 160


@pytest.mark.parametrize("call, message", [
    (lambda: scale.video_tokens(60, 0, 256), "fps must be a positive number"),
    (lambda: scale.video_tokens(0.5, 3, 1), "not a whole number of frames"),
    (lambda: scale.patches_per_frame(100, 100, 16, 16), "does not split"),
    (lambda: scale.gpu_seconds(1, 1, 1.5), "at most 1"),
    (lambda: scale.zero_bytes_per_gpu(1e9, 8, 4), "stage must be 0, 1, 2 or 3"),
    (lambda: scale.gpus_to_serve(float("nan"), 1), "positive number"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
