"""The caption encoder: world captions (English or Chinese) -> text tokens and a pooled vector.

Sora conditions on long re-captioned descriptions through a large text encoder (T5 in Open-Sora).
The shapes world's captions use a vocabulary of 13 English and 15 Chinese words, so a word-level
tokenizer and a learned embedding per word are enough: each caption becomes a short sequence of
word tokens. The model reads them twice, as in Open-Sora and PixArt:

* every block cross-attends to the tokens;
* their mean (the *pooled* vector) is added to the timestep embedding that drives adaLN.

Because a word's embedding does not depend on its neighbours (an embedding bag, no transformer
mixing the words), a prompt never seen in training -- "a blue circle moves left" when only other
blue things and other circles moved left -- is made of familiar pieces: compositional
generalisation comes from the encoder's structure, not from luck. ``layers > 0`` adds a tiny
transformer over the words, for comparison.

Classifier-free guidance needs an unconditional model too: :meth:`TextEncoder.drop` replaces a
whole caption by the learned null caption (``<null>`` tokens) with probability ``dropout``
(10%, as in Open-Sora), so the null embedding is trained (video-diffusion-pytorch's default of 0
leaves it untrained).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from tinysora.data import COLOUR_ZH, COLOURS, DIRECTION_ZH, DIRECTIONS, SHAPE_ZH, SHAPES

SPECIALS = ("<pad>", "<null>", "<unk>")
ENGLISH_WORDS = ("a", "moves", *COLOURS, *SHAPES, *DIRECTIONS)
CHINESE_WORDS = ("的", "向", "移动", *COLOUR_ZH.values(), *SHAPE_ZH.values(), *DIRECTION_ZH.values())


class CaptionTokenizer:
    """Word-level tokenizer for world captions in English (split on spaces) and Chinese (longest
    match against the known words, since Chinese has no spaces).

    ``encode`` returns int64 (B, max_len) ids padded with ``<pad>``; unknown words map to ``<unk>``.
    """

    def __init__(self, max_len: int = 8):
        self.vocab = list(SPECIALS) + list(ENGLISH_WORDS) + list(CHINESE_WORDS)
        self.ids = {word: i for i, word in enumerate(self.vocab)}
        self.pad_id, self.null_id, self.unk_id = (self.ids[s] for s in SPECIALS)
        self.max_len = max_len
        self._chinese = sorted(CHINESE_WORDS, key=len, reverse=True)      # longest match first

    def __len__(self) -> int:
        return len(self.vocab)

    def split(self, caption: str) -> list[str]:
        """The words of one caption: ``"红色的圆向左移动"`` -> ``红色 的 圆 向 左 移动``."""
        caption = caption.strip()
        if caption.isascii():
            return caption.lower().split()
        words, i = [], 0
        while i < len(caption):
            if caption[i].isspace():
                i += 1
                continue
            match = next((w for w in self._chinese if caption.startswith(w, i)), caption[i])
            words.append(match)
            i += len(match)
        return words

    def encode(self, captions: Sequence[str]) -> torch.Tensor:
        if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
            raise TypeError("encode expects a list of caption strings")
        rows = []
        for caption in captions:
            ids = [self.ids.get(w, self.unk_id) for w in self.split(caption)]
            if len(ids) > self.max_len:
                raise ValueError(f"caption {caption!r} has {len(ids)} words, more than max_len {self.max_len}")
            rows.append(ids + [self.pad_id] * (self.max_len - len(ids)))
        return torch.tensor(rows, dtype=torch.long)

    def null(self, n: int) -> torch.Tensor:
        """n null captions: every position ``<null>`` (the unconditional input for guidance)."""
        return torch.full((n, self.max_len), self.null_id, dtype=torch.long)


class TextEncoder(nn.Module):
    """ids (B, L) -> tokens (B, L, D), mask (B, L) (True = a real word), pooled (B, D).

    Args:
        vocab_size, dim: embedding table size and width.
        max_len: L, for the learned position embedding of each word slot.
        layers: 0 = embedding bag (each word on its own); > 0 adds a tiny transformer encoder.
        dropout: probability of replacing a caption by the null caption in :meth:`drop`.
    """

    def __init__(self, vocab_size: int, dim: int, max_len: int = 8, layers: int = 0,
                 heads: int = 4, dropout: float = 0.1, pad_id: int = 0, null_id: int = 1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.pos = nn.Parameter(torch.zeros(max_len, dim))
        self.encoder = (nn.TransformerEncoder(nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0,
                                                                         batch_first=True, norm_first=True),
                                              layers, enable_nested_tensor=False) if layers > 0 else None)
        self.norm = nn.LayerNorm(dim)
        self.dropout, self.pad_id, self.null_id = dropout, pad_id, null_id

    def drop(self, ids: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training-time condition dropout: each caption becomes all-``<null>`` with prob. ``dropout``."""
        dropped = torch.rand(ids.shape[0], generator=generator).to(ids.device) < self.dropout
        return torch.where(dropped[:, None], torch.full_like(ids, self.null_id), ids)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mask = ids != self.pad_id                                             # (B, L)
        tokens = self.embed(ids) + self.pos[: ids.shape[1]]                   # (B, L, D)
        if self.encoder is not None:
            tokens = self.encoder(tokens, src_key_padding_mask=~mask)
        tokens = self.norm(tokens)
        pooled = (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)   # (B, D)
        return tokens, mask, pooled
