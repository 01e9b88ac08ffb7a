"""Chapter 07: GPT, a decoder-only Transformer, and the arithmetic of scaling laws.

Read top to bottom (nanoGPT's order): the causal self-attention with one fused q/k/v projection,
the pre-LN block, the model (token + learned position embeddings, blocks, final LayerNorm, a head
tied to the token embedding), sampling, then the numbers: parameter count, training FLOPs
(6 N D, plus attention's 12 L T D per token), Hoffmann et al.'s L(N, D), and fitting a power law to our own sweep.

The feed-forward network of every block is ``tinysora.mlp.FFN`` (chapter 01) unless
``GPT(config, make_ffn=...)`` supplies another module: that is how chapter 08 drops a mixture of
experts into the same model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tinysora.mlp import FFN

IGNORE = -1   # target id that the loss skips (padding after <eos>)


@dataclass
class GPTConfig:
    """Sizes of a GPT. GPT-3 175B is ``GPTConfig(50257, block_size=2048, n_layer=96, n_head=96, d_model=12288)``."""

    vocab_size: int
    block_size: int = 32        # the context length: the longest sequence the model can read
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    dropout: float = 0.0
    tie_weights: bool = True    # the output head reuses the token embedding matrix

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions <= t. (B, T, D) -> (B, T, D).

    One fused projection makes q, k and v for every head at once (D -> 3D, split afterwards), and
    ``F.scaled_dot_product_attention(is_causal=True)`` applies the lower-triangular mask.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.n_head)  # (B, H, T, d)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)       # (B, H, T, d)
        y = rearrange(y, "b h t d -> b t (h d)")                                                   # (B, T, D)
        return self.resid_dropout(self.proj(y))


class Block(nn.Module):
    """The pre-LN decoder block: x + attn(LN(x)), then x + FFN(LN(x)). (B, T, D) -> (B, T, D).

    No cross-attention: there is no encoder. ``ffn`` defaults to chapter 01's FFN (D -> 4D -> D, GELU).
    """

    def __init__(self, config: GPTConfig, ffn: nn.Module | None = None):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.ffn = ffn if ffn is not None else FFN(config.d_model, 4 * config.d_model, "gelu", config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class GPT(nn.Module):
    """A decoder-only language model: ``forward(idx (B, T), targets (B, T) | None) -> (logits (B, T, V), loss)``.

    ``make_ffn(layer_index) -> nn.Module`` replaces the FFN of each block (chapter 08's MoE).
    Targets equal to ``IGNORE`` (-1) do not count in the loss.
    """

    def __init__(self, config: GPTConfig, make_ffn: Callable[[int], nn.Module] | None = None):
        super().__init__()
        self.config = c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.block_size, c.d_model)     # learned positions: one row per position
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c, make_ffn(i) if make_ffn else None) for i in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_weights:
            self.head.weight = self.tok_emb.weight                # one (V, D) matrix, read in and written out
        self.apply(self._init_weights)
        for name, p in self.named_parameters():                   # GPT-2: residual outputs scaled by depth
            if name.endswith(("attn.proj.weight", "down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, D) final hidden states (after ``ln_f``), what the head reads.

        Position t sees tokens <= t only; a text-conditioned model can use these as text features.
        """
        if not isinstance(idx, torch.Tensor) or idx.ndim != 2 or idx.dtype != torch.long:
            raise ValueError(f"idx must be an int64 (B, T) tensor of token ids, got "
                             f"{getattr(idx, 'dtype', type(idx).__name__)} {tuple(getattr(idx, 'shape', ()))}")
        t = idx.shape[1]
        if t > self.config.block_size:
            raise ValueError(f"sequence length {t} exceeds the context length block_size={self.config.block_size} "
                             "(there is no position embedding beyond it); crop the input")
        pos = torch.arange(t, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))     # (B, T, D)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)                                      # (B, T, D)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.head(self.features(idx))                   # (B, T, V)
        loss = None
        if targets is not None:
            if targets.shape != idx.shape:
                raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got {tuple(targets.shape)}")
            loss = F.cross_entropy(rearrange(logits, "b t v -> (b t) v"), rearrange(targets, "b t -> (b t)"),
                                   ignore_index=IGNORE)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 eos_id: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample ``max_new_tokens`` tokens after ``idx`` (B, T) -> (B, T + new).

        Each step feeds at most the last ``block_size`` tokens (the context-length guard), divides
        the last position's logits by ``temperature`` (< 1 sharper, > 1 flatter), keeps the
        ``top_k`` largest, and samples. With ``eos_id`` it stops once every row has produced it.
        """
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a non-negative int, got {max_new_tokens!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 (use top_k=1 for greedy decoding), got {temperature}")
        if top_k is not None and not 1 <= top_k <= self.config.vocab_size:
            raise ValueError(f"top_k must be in 1..vocab_size={self.config.vocab_size}, got {top_k}")
        was_training = self.training
        self.eval()
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=idx.device)
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]                       # the guard: crop to the context
            logits = self(context)[0][:, -1] / temperature                    # (B, V)
            if top_k is not None:
                kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]        # (B, 1)
                logits = logits.masked_fill(logits < kth, float("-inf"))
            next_id = torch.multinomial(logits.softmax(-1), 1, generator=generator)   # (B, 1)
            idx = torch.cat([idx, next_id], dim=1)
            if eos_id is not None:
                done |= next_id[:, 0] == eos_id
                if done.all():
                    break
        self.train(was_training)
        return idx


# =============================================================================== data and training


def lm_examples(tokens: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets from padded rows ``<bos> text <eos> <pad>...`` (N, T+1).

    inputs = tokens[:, :-1], targets = tokens[:, 1:] with padding replaced by ``IGNORE``.
    """
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.shape[1] < 2:
        got = getattr(tokens, "shape", type(tokens))
        raise ValueError(f"tokens must be a (N, T+1) tensor with T+1 >= 2, got {got}")
    inputs, targets = tokens[:, :-1], tokens[:, 1:].clone()
    targets[targets == pad_id] = IGNORE
    return inputs, targets


def train_lm(model: GPT, tokens: torch.Tensor, pad_id: int, *, steps: int, batch_size: int = 32, lr: float = 3e-3,
             warmup: int = 20, seed: int = 0, aux_loss: Callable[[nn.Module], torch.Tensor] | None = None,
             desc: str = "training") -> list[float]:
    """Next-token training on rows ``<bos> text <eos> <pad>...`` (N, T+1), sampled with replacement.

    AdamW, linear warm-up then cosine decay. ``aux_loss(model)`` is added to every step's loss
    (chapter 08's load balancing). Returns the language-model loss of every step.
    """
    from tinysora.runtime import progress

    if not isinstance(steps, int) or steps <= 0 or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"steps and batch_size must be positive ints, got {steps!r}, {batch_size!r}")
    inputs, targets = lm_examples(tokens, pad_id)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, warmup))
                                                 * 0.5 * (1 + math.cos(math.pi * s / steps)))
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    bar = progress(range(steps), desc=desc)
    for _ in bar:
        batch = torch.randint(len(inputs), (batch_size,), generator=generator)
        _, loss = model(inputs[batch].to(device), targets[batch].to(device))
        total = loss if aux_loss is None else loss + aux_loss(model)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    return losses


@torch.no_grad()
def evaluate_lm(model: GPT, tokens: torch.Tensor, pad_id: int) -> float:
    """Mean next-token cross-entropy (nats per token) over every row of ``tokens`` (N, T+1)."""
    inputs, targets = lm_examples(tokens, pad_id)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits, _ = model(inputs.to(device))
    loss = F.cross_entropy(rearrange(logits, "b t v -> (b t) v"), rearrange(targets.to(device), "b t -> (b t)"),
                           ignore_index=IGNORE, reduction="sum")
    model.train(was_training)
    return loss.item() / (targets != IGNORE).sum().item()


def sample_texts(model: GPT, tokenizer, n: int, *, temperature: float = 1.0, top_k: int | None = None,
                 seed: int = 0) -> list[str]:
    """``n`` texts sampled from ``<bos>`` until ``<eos>`` (or the context is full), decoded."""
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive int, got {n!r}")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    start = torch.full((n, 1), tokenizer.bos_id, dtype=torch.long, device=device)
    out = model.generate(start, model.config.block_size - 1, temperature=temperature, top_k=top_k,
                         eos_id=tokenizer.eos_id, generator=generator)
    return tokenizer.decode_batch(out[:, 1:].cpu())


# =============================================================================== counting


def gpt_parameter_count(vocab_size: int, n_layer: int, d_model: int, block_size: int, tied: bool = True) -> int:
    """Exact parameter count of :class:`GPT` (FFN width 4D, biases everywhere but the head).

    per block: 2 LayerNorms 4D + qkv 3D^2+3D + proj D^2+D + FFN 8D^2+5D = 12 D^2 + 13 D;
    plus token embedding V D, learned positions block_size D (0 for rotary or sinusoidal
    positions), final LayerNorm 2D, and the head V D unless it is tied to the embedding.
    """
    for name, value in (("vocab_size", vocab_size), ("n_layer", n_layer), ("d_model", d_model)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(block_size, int) or block_size < 0:
        raise ValueError(f"block_size must be a non-negative int, got {block_size!r}")
    d = d_model
    per_block = 12 * d * d + 13 * d
    embeddings = vocab_size * d + block_size * d
    head = 0 if tied else vocab_size * d
    return n_layer * per_block + embeddings + 2 * d + head


def non_embedding_parameters(config: GPTConfig) -> int:
    """Kaplan et al.'s N: the blocks and the final LayerNorm, without embeddings and head."""
    return config.n_layer * (12 * config.d_model ** 2 + 13 * config.d_model) + 2 * config.d_model


def training_flops(n_params: float, n_tokens: float) -> float:
    """C = 6 N D: 2 N FLOPs per token forward (a multiply and an add per weight), 4 N backward."""
    if n_params <= 0 or n_tokens <= 0:
        raise ValueError(f"n_params and n_tokens must be positive, got {n_params}, {n_tokens}")
    return 6.0 * n_params * n_tokens


def measure_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matrix multiplications that ``fn()`` runs, counted by torch's FlopCounterMode.

    ``fn`` runs with PyTorch's math attention kernel, so ``scaled_dot_product_attention`` is two
    plain batched products (q k^T and weights v, computed in full, masked or not) and is counted the
    same on every device. (A fused kernel is counted per device: not at all on a CPU, as FlashAttention
    on CUDA.) One training step of :class:`GPT` on B*T tokens counts
    6 (12 L D^2 + V D) B T for the weights plus 12 L T D B T for attention.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def attention_training_flops(n_layer: int, d_model: int, seq_len: int, n_tokens: float) -> float:
    """FLOPs of the two T x T products of attention in a training step: 12 L T D per token.

    Forward, per layer and token: q k^T is 2 T D, weights @ v another 2 T D; the backward doubles it.
    Small next to 6 N while T << 6 D (N ~ 12 L D^2); it dominates for long sequences (chapter 06).
    """
    for name, value in (("n_layer", n_layer), ("d_model", d_model), ("seq_len", seq_len)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if n_tokens <= 0:
        raise ValueError(f"n_tokens must be positive, got {n_tokens}")
    return 12.0 * n_layer * seq_len * d_model * n_tokens


# =============================================================================== scaling laws


def hoffmann_loss(n_params, n_tokens, E: float = 1.69, A: float = 406.4, B: float = 410.7,
                  alpha: float = 0.34, beta: float = 0.28):
    """Hoffmann et al. (2022), eq. 4: L(N, D) = E + A / N^alpha + B / D^beta (nats per token, their data)."""
    n, d = np.asarray(n_params, dtype=np.float64), np.asarray(n_tokens, dtype=np.float64)
    if (n <= 0).any() or (d <= 0).any():
        raise ValueError("n_params and n_tokens must be positive")
    return E + A / n ** alpha + B / d ** beta


def compute_optimal(flops, A: float = 406.4, B: float = 410.7, alpha: float = 0.34, beta: float = 0.28):
    """(N_opt, D_opt) minimising :func:`hoffmann_loss` under C = 6 N D.

    Setting dL/dN = 0 along D = C / (6N) gives N_opt = G (C/6)^(beta/(alpha+beta)) with
    G = (alpha A / (beta B))^(1/(alpha+beta)), and D_opt = C / (6 N_opt).
    """
    c = np.asarray(flops, dtype=np.float64)
    if (c <= 0).any():
        raise ValueError("flops must be positive")
    g = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
    n_opt = g * (c / 6.0) ** (beta / (alpha + beta))
    return n_opt, c / (6.0 * n_opt)


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares fit of y = a * x^(-alpha) on log-log axes; returns (a, alpha).

    A power law is a straight line in log-log: log y = log a - alpha log x.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"x and y must be 1-D of the same length >= 2, got {x.shape} and {y.shape}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("a power law is fitted on log-log axes: every x and y must be > 0")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(intercept)), float(-slope)


def fit_offset_power_law(x: Sequence[float], y: Sequence[float], grid: int = 400) -> tuple[float, float, float]:
    """Fit y = c + a * x^(-alpha) with 0 <= c < min(y); returns (c, a, alpha).

    This is Hoffmann et al.'s law at a fixed data size, L(N) - E = B / D^beta + A / N^alpha: the
    power law in N sits on a floor c that more parameters cannot remove. For each c on a grid from
    0 to just below min(y), (a, alpha) come from :func:`fit_power_law` on y - c; the c whose curve is
    closest to y on log axes (least squares in log y) wins.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError(f"x and y must be 1-D of the same length >= 3 (three parameters), got {x.shape} and {y.shape}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("every x and y must be > 0")
    best = None
    for c in y.min() * (1.0 - np.geomspace(1.0, 1e-6, grid)):      # 0 ... just below min(y)
        a, alpha = fit_power_law(x, y - c)
        error = float(((np.log(y) - np.log(c + a * x ** -alpha)) ** 2).sum())
        if best is None or error < best[0]:
            best = (error, float(c), a, alpha)
    return best[1], best[2], best[3]
