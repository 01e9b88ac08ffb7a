"""A character tokenizer for the shapes world's captions (chapters 06-08, and the text side of 17).

Text becomes integers before any language model can read it. Our captions are short and use a
few dozen distinct characters ("a red circle moves left", "红色的圆向左移动"), so one token per
character is enough: every caption round-trips exactly, and there is never an unknown word.

Three special tokens come first, at fixed ids, in every vocabulary::

    0 <pad>   fills a batch of captions of different lengths up to the same length
    1 <bos>   "begin of sequence": the first input of a decoder
    2 <eos>   "end of sequence": the decoder says it is done

    tok = CharTokenizer.for_captions("en")
    ids = tok.encode("a red circle moves left", eos=True)     # [..., 2]
    tok.decode(ids) == "a red circle moves left"
    batch = tok.encode_batch(["a red circle moves left", "a blue square moves up"], bos=True)  # (2, T)
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIALS = (PAD, BOS, EOS)

# Pinyin of every character of the Chinese captions, for plot labels: matplotlib's default fonts
# (on Colab and in CI) have no Chinese glyphs and would draw empty boxes.
PINYIN = {
    "红": "hong", "绿": "lü", "蓝": "lan", "黄": "huang", "青": "qing", "紫": "zi", "色": "se", "的": "de",
    "圆": "yuan", "正": "zheng", "方": "fang", "形": "xing", "三": "san", "角": "jiao",
    "向": "xiang", "左": "zuo", "右": "you", "上": "shang", "下": "xia", "移": "yi", "动": "dong",
}


def pinyin(text: str) -> list[str]:
    """Plot labels for ``text``: the pinyin of each Chinese character (other characters unchanged)."""
    if not isinstance(text, str):
        raise TypeError(f"pinyin expects a str, got {type(text).__name__}")
    return [PINYIN.get(char, char) for char in text]


class CharTokenizer:
    """One token per character, after the three special tokens ``<pad>=0, <bos>=1, <eos>=2``.

    Build it from a corpus (:meth:`from_corpus`) or for the world's captions (:meth:`for_captions`);
    the vocabulary is the sorted set of characters, so it does not depend on the corpus order.
    """

    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, characters: Iterable[str]):
        chars = sorted(set(characters))
        for char in chars:
            if not isinstance(char, str) or len(char) != 1:
                raise ValueError(f"a CharTokenizer vocabulary holds single characters, got {char!r}")
        if not chars:
            raise ValueError("a CharTokenizer needs at least one character")
        self.itos: list[str] = [*SPECIALS, *chars]
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_corpus(cls, texts: Iterable[str]) -> "CharTokenizer":
        """The tokenizer whose vocabulary is every character that occurs in ``texts``."""
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"the corpus must hold strings, got {type(text).__name__}")
        return cls("".join(texts))

    @classmethod
    def for_captions(cls, language: str = "en") -> "CharTokenizer":
        """The tokenizer for every caption of the shapes world (all 72 combinations) in ``language``.

        Built from all combinations, held-out ones included: a tokenizer knows the alphabet, not
        which sentences a model was trained on.
        """
        from tinysora.data import ALL_COMBOS, caption_en, caption_zh

        writers = {"en": caption_en, "zh": caption_zh}
        if language not in writers:
            raise ValueError(f"unknown language {language!r}: expected 'en' or 'zh'")
        return cls.from_corpus(writers[language](*combo) for combo in ALL_COMBOS)

    # ------------------------------------------------------------------ size

    @property
    def vocab_size(self) -> int:
        """Number of token ids, special tokens included."""
        return len(self.itos)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        shown = "".join(self.itos[len(SPECIALS):])
        return f"CharTokenizer(vocab_size={self.vocab_size}, characters={shown!r})"

    # ------------------------------------------------------------------ text <-> ids

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """The ids of ``text``'s characters, optionally wrapped in ``<bos>`` ... ``<eos>``."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        unknown = sorted({c for c in text if c not in self.stoi or c in SPECIALS})
        if unknown:
            raise ValueError(f"characters {unknown} are not in this tokenizer's vocabulary "
                             f"({''.join(self.itos[len(SPECIALS):])!r})")
        ids = [self.stoi[c] for c in text]
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The text of ``ids``: stops at the first ``<eos>``, skips ``<pad>`` and ``<bos>``."""
        if isinstance(ids, torch.Tensor):
            if ids.ndim != 1:
                raise ValueError(f"decode takes one sequence (1-D), got shape {tuple(ids.shape)}; "
                                 "use decode_batch for a batch")
            ids = ids.tolist()
        chars = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})")
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                chars.append(self.itos[i])
        return "".join(chars)

    def encode_batch(self, texts: Sequence[str], *, bos: bool = False, eos: bool = False,
                     length: int | None = None) -> torch.Tensor:
        """int64 (B, T): the texts encoded and right-padded with ``<pad>`` to one length.

        ``length`` fixes T (it must fit the longest text); by default T is the longest text.
        """
        if isinstance(texts, str):
            raise TypeError("encode_batch expects a list of strings, got one string; use encode")
        rows = [self.encode(text, bos=bos, eos=eos) for text in texts]
        if not rows:
            raise ValueError("encode_batch needs at least one text")
        longest = max(len(row) for row in rows)
        length = longest if length is None else length
        if length < longest:
            raise ValueError(f"length={length} is shorter than the longest encoded text ({longest} tokens)")
        batch = torch.full((len(rows), length), self.pad_id, dtype=torch.int64)
        for i, row in enumerate(rows):
            batch[i, :len(row)] = torch.tensor(row, dtype=torch.int64)
        return batch

    def decode_batch(self, batch: torch.Tensor) -> list[str]:
        """The texts of a (B, T) batch of ids (each stops at its first ``<eos>``)."""
        if not isinstance(batch, torch.Tensor) or batch.ndim != 2:
            raise ValueError(f"decode_batch expects a (B, T) tensor, got {getattr(batch, 'shape', type(batch))}")
        return [self.decode(row) for row in batch]
