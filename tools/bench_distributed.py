#!/usr/bin/env python3
"""Throughput of the engine's DiT training per process count (a benchmark, not a test).

    .venv/bin/python tools/bench_distributed.py --scale cpu --processes 1 2 --steps 40
    .venv/bin/python tools/bench_distributed.py --scale gpu --processes 1 2 4 8 --strategy fsdp   # on GPUs

Each process count runs `torchrun --nproc_per_node=N` on this machine with the same global batch (the
config's), so the ratio is strong scaling: how much faster one step of the same work gets. The
autoencoder is left untrained (its latents are as large as a trained one's, which is all the
throughput depends on). Prints clips a second and the ratio against one process.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(scale: str, steps: int, warmup: int, strategy: str, out: str) -> None:
    """One rank: build the pool, train ``warmup`` steps, then time ``steps`` more."""
    import torch

    from tinysora.distributed import init_distributed, shutdown
    from tinysora.sora.train import SORA_CONFIG, build_latent_pool, make_autoencoder, train_dit

    ctx = init_distributed()
    cfg = SORA_CONFIG.pick(scale)
    cfg.steps = warmup + steps
    ae = make_autoencoder(cfg).to(ctx.device)
    pool = build_latent_pool(cfg, ae)
    state = train_dit(cfg, pool, ctx=ctx, strategy=strategy, stop_at=warmup)
    sync = torch.cuda.synchronize if ctx.device.type == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    train_dit(cfg, pool, state, ctx=ctx, strategy=strategy)
    sync()
    seconds = time.perf_counter() - started
    if ctx.is_main:
        Path(out).write_text(json.dumps({"seconds": seconds, "steps": steps, "batch": cfg.batch}))
    shutdown(ctx)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="cpu", choices=["smoke", "cpu", "gpu"])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=40, help="timed steps (after --warmup untimed ones)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--strategy", default="ddp", choices=["ddp", "fsdp"])
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.scale, args.steps, args.warmup, args.strategy, args.worker)
        return 0

    rows = []
    for n in args.processes:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "result.json")
            command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}",
                       "--master_addr=127.0.0.1", f"--master_port={free_port()}", __file__, "--scale", args.scale,
                       "--steps", str(args.steps), "--warmup", str(args.warmup), "--strategy", args.strategy,
                       "--worker", out]
            result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TINYSORA_BATCH": "1"})
            if result.returncode:
                print(result.stderr[-3000:])
                return result.returncode
            measured = json.loads(Path(out).read_text())
        clips_per_second = measured["steps"] * measured["batch"] / measured["seconds"]
        rows.append((n, clips_per_second))
        print(f"{n} process(es): {clips_per_second:8.1f} clips/s", flush=True)
    base = rows[0][1]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{args.strategy}, scale {args.scale}, global batch fixed; load average {load:.2f}")
    print("| processes | clips/s | ratio vs 1 process |\n|---|---|---|")
    for n, rate in rows:
        print(f"| {n} | {rate:.1f} | {rate / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
