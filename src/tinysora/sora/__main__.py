"""``python -m tinysora.sora train --scale cpu --out DIR``: train from nothing, then report."""

from __future__ import annotations

import argparse

from tinysora.config import SCALES, current_scale


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tinysora.sora", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the autoencoder and the video DiT, then write a report")
    train.add_argument("--scale", choices=SCALES, default=None, help="default: $TINYSORA_SCALE")
    train.add_argument("--out", required=True, help="folder for the checkpoint, report and samples")
    train.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads (1 is steadier than 2 on a busy 2-core machine)")
    train.add_argument("--no-capabilities", action="store_true", help="skip the capability table")
    args = parser.parse_args(argv)

    from tinysora.sora.report import run

    run(args.scale or current_scale(), args.out, threads=args.threads, capabilities=not args.no_capabilities)


if __name__ == "__main__":
    main()
