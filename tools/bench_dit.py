#!/usr/bin/env python3
"""Time a DiT training step: tinysora.dit against facebookresearch/DiT's design (a benchmark, not a test).

    OMP_NUM_THREADS=1 python3 tools/bench_dit.py                 # DiT-S width, 4 blocks, 256 tokens, batch 4
    python3 tools/bench_dit.py --depth 12 --batch 32 --threads 2

Three models with the same configuration, tokens and batch, stepped in turn (forward, MSE, backward,
AdamW) so that load on the machine hits all three alike:

* ``ours``: :class:`tinysora.dit.DiT`;
* ``reference``: DiT's ``models.py`` written out below from the paper and the repository's design
  (timm's ``Attention`` with one qkv projection and ``F.scaled_dot_product_attention``, timm's
  ``Mlp`` with GELU-tanh, a strided-conv patch embedding, ``modulate`` with ``unsqueeze(1)``,
  ``unpatchify`` by einsum);
* ``diffusers``: ``diffusers.DiTTransformer2DModel`` (adaLN-Zero, same sizes), when installed.

Prints the median step time of each and the ratios ours / reference and ours / diffusers.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from tinysora.dit import DiT, DiTConfig
from tinysora.transformer import sinusoidal_embedding

# ----------------------------------------------------------------------------- the reference design


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class RefAttention(nn.Module):                       # timm.models.vision_transformer.Attention
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class RefMlp(nn.Module):                             # timm.layers.Mlp with GELU(approximate="tanh")
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class RefBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = RefAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = RefMlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class RefDiT(nn.Module):
    def __init__(self, c: DiTConfig):
        super().__init__()
        self.c = c
        self.x_embedder = nn.Conv2d(c.channels, c.dim, kernel_size=c.patch, stride=c.patch)
        self.register_buffer("pos_embed", torch.zeros(1, c.tokens, c.dim))
        self.t_mlp = nn.Sequential(nn.Linear(256, c.dim), nn.SiLU(), nn.Linear(c.dim, c.dim))
        self.y_table = nn.Embedding(c.num_classes + 1, c.dim)
        self.blocks = nn.ModuleList(RefBlock(c.dim, c.heads, c.mlp_ratio) for _ in range(c.depth))
        self.final_norm = nn.LayerNorm(c.dim, elementwise_affine=False, eps=1e-6)
        self.final_linear = nn.Linear(c.dim, c.patch * c.patch * c.out_channels)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(c.dim, 2 * c.dim))

    def unpatchify(self, x):
        p, ch, h = self.c.patch, self.c.out_channels, self.c.image_size // self.c.patch
        x = x.reshape(x.shape[0], h, h, p, p, ch)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(x.shape[0], ch, h * p, h * p)

    def forward(self, x, t, y):
        x = self.x_embedder(x).flatten(2).transpose(1, 2) + self.pos_embed
        c = self.t_mlp(sinusoidal_embedding(t, 256)) + self.y_table(y)
        for block in self.blocks:
            x = block(x, c)
        shift, scale = self.final_ada(c).chunk(2, dim=1)
        return self.unpatchify(self.final_linear(modulate(self.final_norm(x), shift, scale)))


# ----------------------------------------------------------------------------- timing


def diffusers_dit(c: DiTConfig):
    try:
        from diffusers import DiTTransformer2DModel
    except ImportError:
        return None
    model = DiTTransformer2DModel(num_attention_heads=c.heads, attention_head_dim=c.dim // c.heads,
                                  in_channels=c.channels, out_channels=c.out_channels, num_layers=c.depth,
                                  sample_size=c.image_size, patch_size=c.patch, num_embeds_ada_norm=c.num_classes)
    return lambda x, t, y: model(x, timestep=t, class_labels=y).sample, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--image", type=int, default=32)
    parser.add_argument("--patch", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = DiTConfig(image_size=args.image, channels=4, patch=args.patch, dim=args.dim, depth=args.depth,
                    heads=args.heads, num_classes=1000, class_dropout=0.0)
    ours = DiT(cfg)
    reference = RefDiT(cfg)
    contenders = {"ours": (ours, ours), "reference": (reference, reference)}
    made = diffusers_dit(cfg)
    if made is not None:
        contenders["diffusers"] = made
    x = torch.randn(args.batch, cfg.channels, cfg.image_size, cfg.image_size)
    t = torch.randint(0, 1000, (args.batch,))
    y = torch.randint(0, 1000, (args.batch,))
    optimizers = {name: torch.optim.AdamW(module.parameters(), lr=1e-4) for name, (_, module) in contenders.items()}
    times = {name: [] for name in contenders}
    for step in range(args.steps + 3):                           # 3 warm-up steps each
        for name, (fn, _) in contenders.items():
            started = time.perf_counter()
            loss = F.mse_loss(fn(x, t, y), x)
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
            if step >= 3:
                times[name].append(time.perf_counter() - started)
    median = {name: statistics.median(ts) for name, ts in times.items()}
    params = {name: sum(p.numel() for p in module.parameters()) for name, (_, module) in contenders.items()}
    print(f"DiT training step: width {cfg.dim}, {cfg.heads} heads, depth {cfg.depth}, {cfg.tokens} tokens, "
          f"batch {args.batch}, {torch.get_num_threads()} thread(s), median of {args.steps}")
    for name in contenders:
        print(f"  {name:10s} {median[name] * 1e3:8.1f} ms   {params[name]:,} parameters")
    for name in contenders:
        if name != "ours":
            print(f"ratio ours / {name}: {median['ours'] / median[name]:.3f}")
    with open("/proc/loadavg") as f:
        print("load average:", f.read().split()[:3])


if __name__ == "__main__":
    main()
