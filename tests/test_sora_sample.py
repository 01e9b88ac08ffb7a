"""`tinysora sample`: a checkpoint, a prompt and a capability -> a GIF and a PNG strip."""

import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from tinysora.sora.__main__ import main
from tinysora.sora.sample import generate, read_clip, read_frame

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("engine")
    main(["train", "--scale", "smoke", "--out", str(out), "--train-only", "--set", "steps=4", "--set", "ae_steps=4"])
    return out / "checkpoint.pt"


def test_the_console_script_is_the_cli():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["tinysora"] == "tinysora.sora.__main__:main"


def test_text_to_video_writes_a_gif_and_a_strip(checkpoint, tmp_path, capsys):
    main(["sample", "--checkpoint", str(checkpoint), "--prompt", "a red circle moves left", "--size", "16x24",
          "--frames", "6", "--out", str(tmp_path)])
    with Image.open(tmp_path / "sample.gif") as gif:
        assert gif.n_frames == 6 and gif.size == (24 * 8, 16 * 8)         # 8x zoom
    assert (tmp_path / "sample.png").stat().st_size > 0
    assert "6 frames of 16x24" in capsys.readouterr().out


def test_image_to_video_starts_with_the_given_png(checkpoint, tmp_path):
    frame = torch.zeros(3, 16, 16)
    frame[0, 4:9, 4:9] = 1.0                                              # a red square
    Image.fromarray((frame.permute(1, 2, 0).numpy() * 255).astype("uint8")).resize((64, 64), Image.NEAREST).save(
        tmp_path / "first.png")
    first = read_frame(str(tmp_path / "first.png"), 16, 16)
    assert torch.equal(first, frame)                                      # a 4x zoom reads back exactly
    main(["sample", "--checkpoint", str(checkpoint), "--prompt", "a red square moves up", "--capability", "image",
          "--first-frame", str(tmp_path / "first.png"), "--out", str(tmp_path)])
    clip = read_clip(str(tmp_path / "sample.gif"), 16, 16)
    assert torch.equal(clip[0], frame)


def test_extend_continues_an_earlier_sample_exactly(checkpoint, tmp_path):
    main(["sample", "--checkpoint", str(checkpoint), "--prompt", "a blue triangle moves right", "--out",
          str(tmp_path / "a")])
    main(["sample", "--checkpoint", str(checkpoint), "--prompt", "a blue triangle moves right", "--capability",
          "extend", "--clip", str(tmp_path / "a" / "sample.pt"), "--new-frames", "2", "--out", str(tmp_path / "b")])
    before, after = (read_clip(str(tmp_path / d / "sample.pt"), 16, 16) for d in "ab")
    assert after.shape[0] == before.shape[0] + 2 and torch.equal(after[: before.shape[0]], before)


def test_missing_inputs_and_bad_sizes_are_named(checkpoint):
    from tinysora.sora import TinySora
    sora = TinySora.from_checkpoint(str(checkpoint))
    with pytest.raises(ValueError, match="needs a first frame"):
        generate(sora, "image", "a red circle moves left", frames=4, height=16, width=16)
    with pytest.raises(ValueError, match="unknown capability 'zoom'"):
        generate(sora, "zoom", "a red circle moves left", frames=4, height=16, width=16)
    with pytest.raises(SystemExit):
        main(["sample", "--checkpoint", str(checkpoint), "--prompt", "x", "--size", "big"])


def test_still_and_connect(checkpoint, tmp_path):
    main(["sample", "--checkpoint", str(checkpoint), "--prompt", "a red circle moves left", "--capability", "still",
          "--out", str(tmp_path / "still")])
    assert torch.load(tmp_path / "still" / "sample.pt", weights_only=True).shape == (1, 1, 3, 16, 16)
    for name, seed in (("a", "1"), ("b", "2")):
        main(["sample", "--checkpoint", str(checkpoint), "--prompt", "a blue square moves up", "--seed", seed,
              "--out", str(tmp_path / name)])
    main(["sample", "--checkpoint", str(checkpoint), "--prompt", "a blue square moves up", "--capability", "connect",
          "--clip", str(tmp_path / "a" / "sample.pt"), "--clip-b", str(tmp_path / "b" / "sample.pt"),
          "--new-frames", "2", "--out", str(tmp_path / "ab")])
    a, b, ab = (read_clip(str(tmp_path / d / "sample.pt"), 16, 16) for d in ("a", "b", "ab"))
    assert ab.shape[0] == a.shape[0] + 2 + b.shape[0]
    assert torch.equal(ab[: a.shape[0]], a) and torch.equal(ab[-b.shape[0]:], b)
    with pytest.raises(ValueError, match="needs a second clip"):
        generate(_load(checkpoint), "connect", "a red circle moves left", frames=4, height=16, width=16,
                 clip=a)


def _load(checkpoint):
    from tinysora.sora import TinySora
    return TinySora.from_checkpoint(str(checkpoint))
