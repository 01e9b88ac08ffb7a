"""``tinysora train --scale cpu --out DIR`` trains from nothing and reports; ``tinysora sample`` generates.

``tinysora`` is ``python -m tinysora.sora``. On several processes:
``torchrun --standalone --nproc_per_node=N -m tinysora.sora train ... --strategy ddp``. Sampling::

    tinysora sample --checkpoint runs/cpu/checkpoint.pt --prompt "a red circle moves left" --size 16x32
    tinysora sample --checkpoint ... --capability image --first-frame frame.png --prompt "..."
    tinysora sample --checkpoint ... --capability connect --clip a.pt --clip-b b.pt --new-frames 2 --prompt "..."
"""

from __future__ import annotations

import argparse
import ast

from tinysora.config import SCALES, current_scale
from tinysora.distributed import STRATEGIES
from tinysora.sora.sample import CAPABILITIES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tinysora", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the autoencoder and the video DiT, then write a report")
    train.add_argument("--scale", choices=SCALES, default=None, help="default: $TINYSORA_SCALE")
    train.add_argument("--out", required=True, help="folder for the checkpoint, report and samples")
    train.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (1 is steadier than 2 on a busy 2-core machine)")
    train.add_argument("--no-capabilities", action="store_true", help="skip the capability table")
    train.add_argument("--strategy", choices=[s for s in STRATEGIES if s != "none"], default="ddp",
                       help="under torchrun: ddp (replicate, average gradients) or fsdp (shard per block); "
                            "ignored in one process")
    train.add_argument("--data-shards", type=int, default=None,
                       help="draw each batch as this many shards (default: one per process); one process with "
                            "--data-shards 2 repeats a two-process run")
    train.add_argument("--bf16", action="store_true", help="bfloat16 autocast for the DiT (CPU or CUDA)")
    train.add_argument("--train-only", action="store_true", help="stop after training: no evaluation or report")
    train.add_argument("--stop-at", type=int, default=None,
                       help="stop the DiT after this step and skip the report (the same command resumes later)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="replace a config value, e.g. --set steps=500 (repeatable; values as Python literals)")
    sample = sub.add_parser("sample", help="generate a clip from a checkpoint: a GIF and a PNG strip")
    sample.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `tinysora train`")
    sample.add_argument("--prompt", required=True, help='a caption, e.g. "a red circle moves left" or Chinese')
    sample.add_argument("--capability", choices=CAPABILITIES, default="text",
                        help="text-to-video, image-to-video (--first-frame), extend or edit a --clip, loop, "
                             "still (one frame), connect (--clip, then --clip-b)")
    sample.add_argument("--size", default=None, help="HxW in pixels, e.g. 16x32 (default: the training size)")
    sample.add_argument("--frames", type=int, default=None, help="clip length (default: the training length)")
    sample.add_argument("--first-frame", default=None, help="PNG: the first frame (image, loop)")
    sample.add_argument("--clip", default=None,
                        help="the clip to extend or edit: a sample.pt from an earlier sample, or a GIF")
    sample.add_argument("--clip-b", default=None, help="the clip to connect --clip to (connect)")
    sample.add_argument("--new-frames", type=int, default=4, help="frames to add (extend) or put between (connect)")
    sample.add_argument("--backward", action="store_true", help="extend into the past instead of the future")
    sample.add_argument("--strength", type=float, default=0.7, help="how much of the clip to repaint (edit)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", default=".", help="folder for sample.gif and sample.png")
    args = parser.parse_args(argv)
    if args.command == "sample":
        run_sample(parser, args)
        return
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set expects KEY=VALUE, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parser.error(f"--set {key}: {value!r} is not a Python literal (a number, string, tuple, ...)")
    if args.data_shards is not None and args.data_shards < 1:
        parser.error(f"--data-shards must be at least 1, got {args.data_shards}")

    from tinysora.sora.report import run

    run(args.scale or current_scale(), args.out, threads=args.threads, capabilities=not args.no_capabilities,
        strategy=args.strategy, data_shards=args.data_shards, bf16=args.bf16,
        train_only=args.train_only or args.stop_at is not None, stop_at=args.stop_at, overrides=overrides)


def run_sample(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from tinysora.sora.capabilities import TinySora
    from tinysora.sora.sample import generate, read_clip, read_frame, write

    sora = TinySora.from_checkpoint(args.checkpoint)
    height, width = sora.config.height, sora.config.width
    if args.size is not None:
        try:
            height, width = (int(side) for side in args.size.lower().split("x"))
        except ValueError:
            parser.error(f"--size expects HxW in pixels, e.g. 16x32, got {args.size!r}")
    first = read_frame(args.first_frame, height, width) if args.first_frame else None
    clip = read_clip(args.clip, height, width) if args.clip else None
    clip_b = read_clip(args.clip_b, height, width) if args.clip_b else None
    video = generate(sora, args.capability, args.prompt, frames=args.frames or sora.config.frames, height=height,
                     width=width, first_frame=first, clip=clip, new_frames=args.new_frames, backward=args.backward,
                     strength=args.strength, seed=args.seed, clip_b=clip_b)
    gif, png = write(video, args.prompt, args.out)
    print(f"wrote {gif} and {png} ({video.shape[1]} frames of {video.shape[3]}x{video.shape[4]})")


if __name__ == "__main__":
    main()
