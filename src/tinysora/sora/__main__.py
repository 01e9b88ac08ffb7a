"""``python -m tinysora.sora train --scale cpu --out DIR``: train from nothing, then report.

On several processes: ``torchrun --standalone --nproc_per_node=N -m tinysora.sora train ... --strategy ddp``.
"""

from __future__ import annotations

import argparse
import ast

from tinysora.config import SCALES, current_scale
from tinysora.distributed import STRATEGIES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tinysora.sora", description=__doc__)
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
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    main()
