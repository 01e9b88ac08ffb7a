"""Chapter 06: the Transformer (Vaswani et al., 2017), as the seed walks through it.

Read top to bottom, this file is the architecture in the order the data meets it:

    src tokens -> TokenEmbedding -> + PositionalEncoding -> EncoderBlock x L ----------.
    tgt tokens -> TokenEmbedding -> + PositionalEncoding -> DecoderBlock x L (cross) <-'
               -> LayerNorm -> Linear -> logits over the target vocabulary

Part 1 is NumPy, written to be read (the seed's code is NumPy): positional encoding, LayerNorm,
softmax, attention, multi-head attention, the feed-forward network and the post-LN encoder and
decoder blocks. Part 2 is the same in torch, written to be used and trained, with the post-LN
blocks the seed writes and the pre-LN variant (``norm_first=True``) that GPT uses.

Masks follow ``torch.nn.functional.scaled_dot_product_attention``: a boolean mask is ``True``
where a query MAY attend to a key. (``torch.nn.MultiheadAttention`` uses the opposite
convention; we never do.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tinysora.mlp import FFN

# =============================================================================== masks


def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """bool (T, T), True on and below the diagonal: position i may look at positions j <= i."""
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise ValueError(f"causal_mask needs a positive int size, got {size!r}")
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()


def padding_mask(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """bool (B, 1, 1, S), True at real tokens: every query may attend to every non-pad key.

    The two singleton axes broadcast over heads and queries of a (B, H, T, S) score matrix.
    """
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2:
        raise ValueError(f"tokens must be a (B, S) tensor of ids, got {getattr(tokens, 'shape', type(tokens))}")
    return rearrange(tokens != pad_id, "b s -> b 1 1 s")


# =============================================================================== Part 1: NumPy


def positional_encoding(n_positions: int, d_model: int) -> np.ndarray:
    """The sinusoidal table of Vaswani et al. (2017), (n_positions, d_model).

    Column pair (2i, 2i+1) holds sin and cos of ``pos / 10000^(2i / d_model)``: wavelengths grow
    geometrically from 2*pi (column 0) to about 10000 * 2*pi (the last pair).
    """
    _check_positive(n_positions=n_positions, d_model=d_model)
    if d_model % 2:
        raise ValueError(f"d_model must be even (sin/cos pairs), got {d_model}")
    pos = rearrange(np.arange(n_positions, dtype=np.float64), "p -> p 1")     # (P, 1)
    two_i = np.arange(0, d_model, 2, dtype=np.float64)                        # 0, 2, 4, ... = 2i
    angle = pos / 10000.0 ** (two_i / d_model)                                # (P, D/2)
    pe = np.zeros((n_positions, d_model))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle)
    return pe


def sinusoidal_embedding(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """The one sinusoidal embedding of the package, for token positions and diffusion times alike.

    positions: (...,) real values -> (..., dim) float32, in the layout of :func:`positional_encoding`:
    channel pair (2i, 2i+1) holds sin and cos of ``position / max_period^(2i / dim)``.
    """
    _check_positive(dim=dim)
    if dim % 2:
        raise ValueError(f"embedding size must be even (sin/cos pairs), got {dim}")
    if not torch.is_tensor(positions):
        raise TypeError(f"positions must be a tensor, got {type(positions).__name__}")
    two_i = torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device)   # 0, 2, 4, ... = 2i
    angle = positions.double()[..., None] / max_period ** (two_i / dim)              # (..., dim/2)
    pairs = torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1)                # (..., dim/2, 2)
    return rearrange(pairs, "... half two -> ... (half two)").float()                # (..., dim)


def seed_positional_encoding(n_positions: int, d_model: int) -> np.ndarray:
    """The seed's loop, literally: ``i`` steps over even columns AND appears as ``2*i`` in the exponent.

    The exponent is then ``2 * (2i) / d_model``: frequencies fall twice as fast as in the paper, and
    the upper half of the columns barely change over any realistic sentence length.
    """
    _check_positive(n_positions=n_positions, d_model=d_model)
    if d_model % 2:
        raise ValueError(f"d_model must be even (sin/cos pairs), got {d_model}")
    pe = np.zeros((n_positions, d_model))
    for pos in range(n_positions):
        for i in range(0, d_model, 2):
            pe[pos, i] = math.sin(pos / (10000 ** (2 * i / d_model)))
            pe[pos, i + 1] = math.cos(pos / (10000 ** (2 * i / d_model)))
    return pe


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Normalise each token's own features: mean 0, variance 1 over the last axis, then scale and shift.

    x: (..., D), gamma and beta: (D,). Each token is normalised alone; no statistic crosses tokens or
    the batch, so padding never leaks in (it would, through the batch statistics, in BatchNorm).
    """
    x = np.asarray(x, dtype=np.float64)
    if np.shape(gamma) != x.shape[-1:] or np.shape(beta) != x.shape[-1:]:
        raise ValueError(f"gamma and beta must have shape ({x.shape[-1]},), got {np.shape(gamma)}, {np.shape(beta)}")
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)          # biased variance, as torch.nn.LayerNorm
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp / sum(exp) along ``axis``, after subtracting the maximum (same result, no overflow).

    A row of all ``-inf`` (a query allowed to see nothing) has no softmax; it comes back as NaN.
    """
    scores = np.asarray(scores, dtype=np.float64)
    top = scores.max(axis=axis, keepdims=True)
    e = np.exp(scores - top)
    return e / e.sum(axis=axis, keepdims=True)


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Scaled dot-product attention, softmax(q k^T / sqrt(d_k)) v.

    q: (..., T, d_k), k: (..., S, d_k), v: (..., S, d_v), mask: bool broadcastable to (..., T, S),
    True where query t may attend to key s. Returns (output (..., T, d_v), weights (..., T, S)).
    Masked scores are *replaced* by -inf (np.where), never multiplied: 0 * -inf is NaN.
    """
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share their last axis d_k, got {q.shape} and {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys S, got {k.shape} and {v.shape}")
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])      # (..., T, S)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores, axis=-1)                                 # each row sums to 1
    return weights @ v, weights                                        # (..., T, d_v)


def multi_head_attention(x: np.ndarray, context: np.ndarray | None, p: dict, n_heads: int,
                         mask=None) -> tuple[np.ndarray, np.ndarray]:
    """Multi-head attention in NumPy (row layout: ``x @ W + b``, W of shape (d_in, d_out)).

    x: (B, T, D) gives the queries; context: (B, S, D) gives keys and values (cross-attention), or
    None for self-attention. ``p`` holds w_q, b_q, w_k, b_k, w_v, b_v, w_o, b_o.
    Returns (output (B, T, D), weights (B, H, T, S)).
    """
    context = x if context is None else context
    d_model = x.shape[-1]
    if d_model % n_heads:
        raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
    q = rearrange(x @ p["w_q"] + p["b_q"], "b t (h d) -> b h t d", h=n_heads)        # (B, H, T, d_k)
    k = rearrange(context @ p["w_k"] + p["b_k"], "b s (h d) -> b h s d", h=n_heads)  # (B, H, S, d_k)
    v = rearrange(context @ p["w_v"] + p["b_v"], "b s (h d) -> b h s d", h=n_heads)  # (B, H, S, d_k)
    out, weights = attention(q, k, v, mask)                                           # (B, H, T, d_k)
    out = rearrange(out, "b h t d -> b t (h d)")                                      # concat heads
    return out @ p["w_o"] + p["b_o"], weights                                         # (B, T, D)


def feed_forward(x: np.ndarray, p: dict) -> np.ndarray:
    """The seed's two matrix products: ReLU(x @ w1 + b1) @ w2 + b2, (..., D) -> (..., d_ff) -> (..., D)."""
    hidden = np.maximum(x @ p["w1"] + p["b1"], 0.0)
    return hidden @ p["w2"] + p["b2"]


def encoder_block(x: np.ndarray, p: dict, n_heads: int, mask=None) -> np.ndarray:
    """The seed's post-LN encoder: y = LN(self_attn(x) + x); out = LN(FF(y) + y).  (B, S, D) -> (B, S, D)"""
    y = layer_norm(multi_head_attention(x, None, p["attn"], n_heads, mask)[0] + x, *p["norm1"])
    return layer_norm(feed_forward(y, p["ffn"]) + y, *p["norm2"])


def decoder_block(x: np.ndarray, memory: np.ndarray, p: dict, n_heads: int, self_mask=None,
                  cross_mask=None) -> np.ndarray:
    """The seed's post-LN decoder, (B, T, D) with memory (B, S, D) -> (B, T, D):

    y_self = LN(self_attn(x, causal mask) + x); y_cross = LN(cross_attn(y_self, memory) + y_self);
    out = LN(FF(y_cross) + y_cross).
    """
    y = layer_norm(multi_head_attention(x, None, p["self_attn"], n_heads, self_mask)[0] + x, *p["norm1"])
    y = layer_norm(multi_head_attention(y, memory, p["cross_attn"], n_heads, cross_mask)[0] + y, *p["norm2"])
    return layer_norm(feed_forward(y, p["ffn"]) + y, *p["norm3"])


# =============================================================================== Part 2: torch


class TokenEmbedding(nn.Module):
    """A learned lookup table, token id -> vector, scaled by sqrt(d_model) as in the paper.

    (B, T) int64 -> (B, T, D). Entries start as N(0, 1/D), so after the sqrt(D) scale a token
    vector has entries of size ~1, like the positional encoding it is added to. (With
    ``nn.Embedding``'s default N(0, 1) the scaled embedding would be sqrt(D) times larger and
    drown the positions: the model could not tell "3 4" from "4 3".)
    """

    def __init__(self, vocab_size: int, d_model: int):
        super().__init__()
        _check_positive(vocab_size=vocab_size, d_model=d_model)
        self.table = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.table.weight, mean=0.0, std=d_model ** -0.5)
        self.scale = math.sqrt(d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table(tokens) * self.scale


class PositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table (not learned) to a (B, T, D) input; T <= max_len."""

    def __init__(self, d_model: int, max_len: int, dropout: float = 0.0):
        super().__init__()
        self.register_buffer("pe", torch.tensor(positional_encoding(max_len, d_model), dtype=torch.float32),
                             persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[0]:
            raise ValueError(f"sequence of length {x.shape[1]} is longer than max_len={self.pe.shape[0]}")
        return self.dropout(x + self.pe[: x.shape[1]])                  # (B, T, D)


def scaled_dot_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                       mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d_k)) v written out in torch, returning the weights too (for the plots).

    q: (B, H, T, d), k, v: (B, H, S, d), mask: bool broadcastable to (B, H, T, S), True = may attend.
    Equals ``F.scaled_dot_product_attention(q, k, v, attn_mask=mask)``.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])         # (B, H, T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights                                        # (B, H, T, d)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate q, k, v and output projections (the seed's w_q ... w_o).

    forward(x (B, T, D), context (B, S, D) or None, mask) -> (B, T, D). With ``context`` it is
    cross-attention: queries from ``x``, keys and values from ``context`` (the encoder's output).
    Parameters: 4 * (D*D + D), i.e. O(D^2), whatever the sequence length.
    Set ``keep_weights = True`` to keep the last attention weights (B, H, T, S) in ``.weights``.

    Three options, all off by default (chapter 06's module, unchanged); chapter 14's DiT uses them:

    * ``qk_norm``: RMS-normalise each head's queries and keys before the dot product, which bounds
      the attention logits (SD3, ViT-22B) -- a learned (d,) gain each, 2 * D / H parameters more;
    * ``fused_qkv``: one (3D, D) projection ``qkv`` (q_proj, k_proj and v_proj stacked) for
      self-attention: one matrix product instead of three. Such a module takes no ``context``;
    * ``sdpa``: torch's ``F.scaled_dot_product_attention`` (fused kernels; the (T, S) weights are
      never stored) instead of :func:`scaled_dot_product`. ``keep_weights`` still takes the
      explicit path, so attention maps can be plotted.
    """

    def __init__(self, d_model: int, n_heads: int, *, qk_norm: bool = False, fused_qkv: bool = False,
                 sdpa: bool = False):
        super().__init__()
        _check_positive(d_model=d_model, n_heads=n_heads)
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads, self.fused_qkv, self.sdpa = n_heads, fused_qkv, sdpa
        if fused_qkv:
            self.qkv = nn.Linear(d_model, 3 * d_model)
        else:
            self.q_proj = nn.Linear(d_model, d_model)
            self.k_proj = nn.Linear(d_model, d_model)
            self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.q_norm = nn.RMSNorm(d_model // n_heads) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(d_model // n_heads) if qk_norm else nn.Identity()
        self.keep_weights = False
        self.weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.fused_qkv:
            if context is not None:
                raise ValueError("this attention has a fused qkv projection (self-attention only); "
                                 "build it with fused_qkv=False for cross-attention")
            q, k, v = rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.n_heads)
        else:
            context = x if context is None else context
            q = rearrange(self.q_proj(x), "b t (h d) -> b h t d", h=self.n_heads)          # (B, H, T, d)
            k = rearrange(self.k_proj(context), "b s (h d) -> b h s d", h=self.n_heads)    # (B, H, S, d)
            v = rearrange(self.v_proj(context), "b s (h d) -> b h s d", h=self.n_heads)    # (B, H, S, d)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.sdpa and not self.keep_weights:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)                   # (B, H, T, d)
        else:
            out, weights = scaled_dot_product(q, k, v, mask)                                # (B, H, T, d)
            if self.keep_weights:
                self.weights = weights.detach()
        return self.out_proj(rearrange(out, "b h t d -> b t (h d)"))                  # (B, T, D)


class EncoderBlock(nn.Module):
    """Self-attention then FFN, each wrapped in a residual connection and a LayerNorm.

    post-LN (the seed, the 2017 paper): x = LN(x + attn(x)); x = LN(x + FFN(x)).
    pre-LN  (``norm_first=True``, GPT):  x = x + attn(LN(x)); x = x + FFN(LN(x)).
    (B, S, D) -> (B, S, D).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False):
        super().__init__()
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.ffn = FFN(d_model, d_ff, activation="relu")
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:
            x = x + self.dropout(self.attn(self.norm1(x), mask=mask))
            return x + self.dropout(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.dropout(self.attn(x, mask=mask)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class DecoderBlock(nn.Module):
    """Masked self-attention, cross-attention to the encoder's output, FFN; residuals and LayerNorms.

    post-LN (the seed): y = LN(x + self_attn(x, causal)); y = LN(y + cross_attn(y, memory));
    out = LN(y + FFN(y)). pre-LN normalises inside each branch instead. (B, T, D) -> (B, T, D).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.ffn = FFN(d_model, d_ff, activation="relu")
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, self_mask: torch.Tensor | None = None,
                cross_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:
            x = x + self.dropout(self.self_attn(self.norm1(x), mask=self_mask))
            x = x + self.dropout(self.cross_attn(self.norm2(x), memory, mask=cross_mask))
            return x + self.dropout(self.ffn(self.norm3(x)))
        x = self.norm1(x + self.dropout(self.self_attn(x, mask=self_mask)))
        x = self.norm2(x + self.dropout(self.cross_attn(x, memory, mask=cross_mask)))
        return self.norm3(x + self.dropout(self.ffn(x)))


@dataclass
class TransformerConfig:
    """Sizes of an encoder-decoder Transformer (the 2017 paper's base model is d_model=512,
    n_heads=8, n_layers=6, d_ff=2048)."""

    src_vocab: int
    tgt_vocab: int
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int | None = None          # None: 4 * d_model
    max_len: int = 64
    dropout: float = 0.1
    norm_first: bool = False         # False: post-LN as the seed writes it; True: pre-LN
    pad_id: int = 0

    def __post_init__(self):
        _check_positive(src_vocab=self.src_vocab, tgt_vocab=self.tgt_vocab, d_model=self.d_model,
                        n_heads=self.n_heads, n_layers=self.n_layers, max_len=self.max_len)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        self.d_ff = 4 * self.d_model if self.d_ff is None else self.d_ff


class Transformer(nn.Module):
    """The encoder-decoder Transformer: ``forward(src (B, S), tgt (B, T)) -> logits (B, T, tgt_vocab)``.

    ``tgt`` is the decoder's input, the target shifted right (``<bos> I like ...``); position t of
    the logits predicts target token t+1. Pad tokens (``pad_id``) in src and tgt are masked out.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        c = self.config = config
        self.src_embed = TokenEmbedding(c.src_vocab, c.d_model)
        self.tgt_embed = TokenEmbedding(c.tgt_vocab, c.d_model)
        self.pos = PositionalEncoding(c.d_model, c.max_len, c.dropout)
        self.encoder = nn.ModuleList(EncoderBlock(c.d_model, c.n_heads, c.d_ff, c.dropout, c.norm_first)
                                     for _ in range(c.n_layers))
        self.decoder = nn.ModuleList(DecoderBlock(c.d_model, c.n_heads, c.d_ff, c.dropout, c.norm_first)
                                     for _ in range(c.n_layers))
        # pre-LN leaves the residual stream un-normalised, so the encoder's output needs a final LN;
        # post-LN blocks already end in one.
        self.encoder_norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.final_norm = nn.LayerNorm(c.d_model)              # the seed's "归一化 + 投影"
        self.head = nn.Linear(c.d_model, c.tgt_vocab)

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """(B, S) source ids -> memory (B, S, D)."""
        _check_tokens(src, self.config.src_vocab, "src")
        mask = padding_mask(src, self.config.pad_id)                   # (B, 1, 1, S)
        x = self.pos(self.src_embed(src))                              # (B, S, D)
        for block in self.encoder:
            x = block(x, mask)
        return self.encoder_norm(x)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """(B, T) decoder input ids and memory (B, S, D) -> logits (B, T, tgt_vocab)."""
        _check_tokens(tgt, self.config.tgt_vocab, "tgt")
        t = tgt.shape[1]
        self_mask = causal_mask(t, tgt.device) & padding_mask(tgt, self.config.pad_id)  # (B, 1, T, T)
        cross_mask = padding_mask(src, self.config.pad_id)                               # (B, 1, 1, S)
        y = self.pos(self.tgt_embed(tgt))                              # (B, T, D)
        for block in self.decoder:
            y = block(y, memory, self_mask, cross_mask)
        return self.head(self.final_norm(y))                           # (B, T, V)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        return self.decode(tgt, self.encode(src), src)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, bos_id: int, eos_id: int, max_len: int | None = None) -> torch.Tensor:
        """Translate by always taking the most likely next token, one token at a time.

        src (B, S) -> generated ids (B, T') without the leading ``<bos>``; a row that has produced
        ``<eos>`` is padded with ``pad_id`` afterwards. Stops when every row is done or after
        ``max_len`` tokens (default: the model's max_len - 1).
        """
        max_len = self.config.max_len - 1 if max_len is None else max_len
        if not 0 < max_len < self.config.max_len:
            raise ValueError(f"max_len must be in 1..{self.config.max_len - 1} (the model's max_len - 1), "
                             f"got {max_len}")
        was_training = self.training
        self.eval()
        memory = self.encode(src)
        ys = torch.full((src.shape[0], 1), bos_id, dtype=torch.long, device=src.device)   # (B, 1)
        done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            next_id = self.decode(ys, memory, src)[:, -1].argmax(-1)   # (B,)
            next_id = next_id.masked_fill(done, self.config.pad_id)
            ys = torch.cat([ys, rearrange(next_id, "b -> b 1")], dim=1)
            done |= next_id == eos_id
            if done.all():
                break
        self.train(was_training)
        return ys[:, 1:]


def attention_maps(model: Transformer, src: torch.Tensor, tgt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every attention matrix of one teacher-forced forward pass, for plots.

    Returns ``{"encoder.0.self": (B, H, S, S), "decoder.0.self": (B, H, T, T),
    "decoder.0.cross": (B, H, T, S), ...}`` (rows are queries, columns keys; rows sum to 1).
    """
    if not isinstance(model, Transformer):
        raise TypeError(f"attention_maps expects a tinysora.transformer.Transformer, got {type(model).__name__}")
    named = {}
    for i, block in enumerate(model.encoder):
        named[f"encoder.{i}.self"] = block.attn
    for i, block in enumerate(model.decoder):
        named[f"decoder.{i}.self"] = block.self_attn
        named[f"decoder.{i}.cross"] = block.cross_attn
    was_training = model.training
    model.eval()
    for module in named.values():
        module.keep_weights = True
    try:
        with torch.no_grad():
            model(src, tgt)
        return {name: module.weights for name, module in named.items()}
    finally:
        for module in named.values():
            module.keep_weights, module.weights = False, None
        model.train(was_training)


# =============================================================================== training and evaluation


def train_translator(model: Transformer, src: torch.Tensor, tgt: torch.Tensor, *, steps: int, batch_size: int = 64,
                     lr: float = 1e-3, warmup: int = 100, seed: int = 0, desc: str = "training") -> list[float]:
    """Teacher forcing: feed ``tgt[:, :-1]`` (``<bos> I like ...``), predict ``tgt[:, 1:]`` (``I like ... <eos>``).

    src (N, S), tgt (N, T) padded id tensors (tgt starts with ``<bos>`` and ends with ``<eos>``).
    AdamW with a linear warm-up over ``warmup`` steps (post-LN Transformers need it) and cosine
    decay. Returns the loss of every step.
    """
    from tinysora.runtime import progress

    if len(src) != len(tgt):
        raise ValueError(f"{len(src)} source sentences but {len(tgt)} targets")
    _check_positive(steps=steps, batch_size=batch_size)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / max(1, warmup))
                                                 * 0.5 * (1 + math.cos(math.pi * s / steps)))
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    bar = progress(range(steps), desc=desc)
    for _ in bar:
        batch = torch.randint(len(src), (batch_size,), generator=generator)
        s, t = src[batch].to(device), tgt[batch].to(device)
        logits = model(s, t[:, :-1])                                   # (B, T-1, V)
        loss = F.cross_entropy(rearrange(logits, "b t v -> (b t) v"), rearrange(t[:, 1:], "b t -> (b t)"),
                               ignore_index=model.config.pad_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    return losses


def numpy_params(block: EncoderBlock | DecoderBlock) -> dict:
    """The weights of a torch block as the dict the NumPy blocks read (row layout W = weight.T)."""
    def linear(layer):
        return layer.weight.detach().double().numpy().T, layer.bias.detach().double().numpy()

    def attn(m: MultiHeadAttention):
        (w_q, b_q), (w_k, b_k), (w_v, b_v), (w_o, b_o) = map(linear, (m.q_proj, m.k_proj, m.v_proj, m.out_proj))
        return dict(w_q=w_q, b_q=b_q, w_k=w_k, b_k=b_k, w_v=w_v, b_v=b_v, w_o=w_o, b_o=b_o)

    def norm(layer):
        return layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()

    (w1, b1), (w2, b2) = linear(block.ffn.up), linear(block.ffn.down)
    p = dict(ffn=dict(w1=w1, b1=b1, w2=w2, b2=b2), norm1=norm(block.norm1), norm2=norm(block.norm2))
    if isinstance(block, EncoderBlock):
        p["attn"] = attn(block.attn)
    elif isinstance(block, DecoderBlock):
        p.update(self_attn=attn(block.self_attn), cross_attn=attn(block.cross_attn), norm3=norm(block.norm3))
    else:
        raise TypeError(f"numpy_params expects an EncoderBlock or DecoderBlock, got {type(block).__name__}")
    return p


def numpy_forward(model: Transformer, src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """The whole post-LN model in NumPy with the torch model's weights: (B, S), (B, T) ids -> (B, T, V) logits.

    Used to check the NumPy blocks against the torch ones, and for the seed's worked example.
    """
    c = model.config
    if c.norm_first:
        raise ValueError("numpy_forward implements the seed's post-LN model; this one has norm_first=True")
    src, tgt = np.asarray(src), np.asarray(tgt)
    table = lambda emb: emb.table.weight.detach().double().numpy()   # noqa: E731
    src_keep = rearrange(src != c.pad_id, "b s -> b 1 1 s")
    tgt_keep = np.tril(np.ones((tgt.shape[1], tgt.shape[1]), bool)) & rearrange(tgt != c.pad_id, "b t -> b 1 1 t")
    x = table(model.src_embed)[src] * math.sqrt(c.d_model) + positional_encoding(src.shape[1], c.d_model)
    for block in model.encoder:
        x = encoder_block(x, numpy_params(block), c.n_heads, src_keep)
    y = table(model.tgt_embed)[tgt] * math.sqrt(c.d_model) + positional_encoding(tgt.shape[1], c.d_model)
    for block in model.decoder:
        y = decoder_block(y, x, numpy_params(block), c.n_heads, tgt_keep, src_keep)
    gamma, beta = (t.detach().double().numpy() for t in (model.final_norm.weight, model.final_norm.bias))
    w, b = model.head.weight.detach().double().numpy().T, model.head.bias.detach().double().numpy()
    return layer_norm(y, gamma, beta) @ w + b


@torch.no_grad()
def translate(model: Transformer, texts: list[str], src_tokenizer, tgt_tokenizer) -> list[str]:
    """Greedy translations of ``texts`` with the tokenizers of ``tinysora.tokenizer``."""
    device = next(model.parameters()).device
    src = src_tokenizer.encode_batch(texts).to(device)
    out = model.greedy_decode(src, tgt_tokenizer.bos_id, tgt_tokenizer.eos_id)
    return tgt_tokenizer.decode_batch(out.cpu())


def exact_match(predictions: list[str], references: list[str]) -> float:
    """Fraction of predictions equal, character for character, to their reference."""
    if len(predictions) != len(references) or not references:
        raise ValueError(f"need equally many predictions and references (>0), "
                         f"got {len(predictions)} and {len(references)}")
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


# =============================================================================== helpers


def _check_positive(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def _check_tokens(tokens: torch.Tensor, vocab: int, name: str) -> None:
    if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.dtype != torch.long:
        raise ValueError(f"{name} must be an int64 (B, T) tensor of token ids, got "
                         f"{getattr(tokens, 'dtype', type(tokens).__name__)} {tuple(getattr(tokens, 'shape', ()))}")
    if tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab):
        raise ValueError(f"{name} holds ids outside the vocabulary 0..{vocab - 1}")
