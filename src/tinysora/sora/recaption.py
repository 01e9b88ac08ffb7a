"""Re-captioning and prompt expansion in the shapes world (chapter 17).

Sora trains on captions written by a captioner, not on the web's (DALL-E 3's re-captioning), and
lets a language model expand a user's short prompt into the kind of full caption it was trained on.
The shapes world has both problems in miniature. Map of the module (all in
``tinysora.sora.recaption``):

* captions that are wrong or short: ``corrupt_combos`` (each attribute replaced by another one with
  a given probability: the web's noisy alt-text), ``short_prompt`` ("a red circle": the direction
  left out), ``parse_prompt`` (which attributes a prompt names);
* the captioner: :class:`tinysora.sora.recaption.Captioner` (video -> colour, shape and direction:
  chapter 03's :class:`tinysora.cnn.CNNClassifier` over the frames stacked on the channels),
  ``train_captioner``, ``caption_accuracy``;
* prompt expansion: ``expansion_corpus`` (``"a red circle>a red circle moves up"`` lines),
  ``train_expander`` (chapter 07's :class:`tinysora.gpt.GPT`, reused),
  :class:`tinysora.sora.recaption.PromptExpander`, ``expansion_fidelity``;
* what a prompt does to the clips: ``prompt_fidelity`` (the exact detectors of
  :mod:`tinysora.video.metrics`, scoring only the attributes a prompt names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tinysora.cnn import CNNClassifier
from tinysora.data import ALL_COMBOS, COLOURS, DIRECTIONS, SHAPES, caption_en, parse_caption
from tinysora.gpt import GPT, GPTConfig, train_lm
from tinysora.runtime import progress
from tinysora.tokenizer import CharTokenizer
from tinysora.video.metrics import analyse_clips

ATTRIBUTES = ("colour", "shape", "direction")
VALUES = {"colour": COLOURS, "shape": SHAPES, "direction": DIRECTIONS}
# The short prompts a user types, by the attributes they name (the shape is always the noun).
SHORT_FORMS = (("colour", "shape"), ("shape", "direction"), ("shape",))
SEPARATOR = ">"          # between the short prompt and its expansion in the expander's corpus


def _check_combos(combos, name: str = "combos") -> list[tuple[str, str, str]]:
    if isinstance(combos, str) or not isinstance(combos, Sequence) or not combos or isinstance(combos[0], str):
        raise ValueError(f"{name} must be a non-empty list of (colour, shape, direction) tuples")
    out = []
    for i, combo in enumerate(combos):
        if (not isinstance(combo, (tuple, list)) or len(combo) != 3
                or any(value not in VALUES[a] for a, value in zip(ATTRIBUTES, combo))):
            raise ValueError(f"{name}[{i}] must be a (colour, shape, direction) tuple of known words, got {combo!r}")
        out.append(tuple(combo))
    return out


def _check_probability(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


# --- noisy and short captions -------------------------------------------------------------------

def corrupt_combos(combos: Sequence, noise: float, seed: int = 0) -> list[tuple[str, str, str]]:
    """Noisy captions: each attribute of each combo replaced, with probability ``noise``, by one of
    the *other* values of that attribute (uniformly), independently.

    ``noise = 0.3`` leaves ``0.7 ** 3 = 34%`` of the captions fully right, as alt-text often is.
    """
    combos = _check_combos(combos)
    _check_probability(noise, "noise")
    generator = torch.Generator().manual_seed(seed)
    flip = torch.rand(len(combos), 3, generator=generator) < noise
    shift = torch.rand(len(combos), 3, generator=generator)
    out = []
    for combo, flips, shifts in zip(combos, flip.tolist(), shift.tolist()):
        new = []
        for attribute, value, flipped, u in zip(ATTRIBUTES, combo, flips, shifts):
            values = VALUES[attribute]
            if flipped:                                  # one of the len - 1 other values
                offset = 1 + min(int(u * (len(values) - 1)), len(values) - 2)
                value = values[(values.index(value) + offset) % len(values)]
            new.append(value)
        out.append(tuple(new))
    return out


def short_prompt(combo: Sequence[str], named: Sequence[str] = ("colour", "shape")) -> str:
    """The prompt a user might type, naming only ``named`` attributes (one of ``SHORT_FORMS``, or
    all three for the full caption): ``("red", "circle", "left")`` -> ``"a red circle"``."""
    (combo,) = _check_combos([combo], "combo")
    named = tuple(a for a in ATTRIBUTES if a in set(named))
    if named not in SHORT_FORMS and named != ATTRIBUTES:
        raise ValueError(f"named must be one of {SHORT_FORMS} or all of {ATTRIBUTES}, got {tuple(named)}")
    colour, shape, direction = combo
    words = ["a"] + ([colour] if "colour" in named else []) + [shape]
    words += ["moves", direction] if "direction" in named else []
    return " ".join(words)


def parse_prompt(text: str) -> dict[str, str | None]:
    """The attributes a prompt names: ``"a red circle"`` -> ``{"colour": "red", "shape": "circle",
    "direction": None}``.

    English prompts follow ``a [colour] shape [moves direction]``; a full Chinese caption is read by
    :func:`tinysora.data.parse_caption`. Anything else is a ValueError that says which word is wrong.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_prompt expects a str, got {type(text).__name__}")
    combo = parse_caption(text)
    if combo is not None:
        return dict(zip(ATTRIBUTES, combo))
    words = text.strip().lower().split()
    if not words or words[0] != "a":
        raise ValueError(f"a prompt starts with 'a', got {text!r}")
    found: dict[str, str | None] = dict.fromkeys(ATTRIBUTES)
    rest = words[1:]
    if rest and rest[0] in COLOURS:
        found["colour"], rest = rest[0], rest[1:]
    if not rest or rest[0] not in SHAPES:
        got = repr(rest[0]) if rest else "nothing"
        raise ValueError(f"expected a shape ({', '.join(SHAPES)}) in {text!r}, got {got}")
    found["shape"], rest = rest[0], rest[1:]
    if rest:
        if len(rest) != 2 or rest[0] != "moves" or rest[1] not in DIRECTIONS:
            raise ValueError(f"after the shape a prompt may only say 'moves <{'|'.join(DIRECTIONS)}>', "
                             f"got {' '.join(rest)!r} in {text!r}")
        found["direction"] = rest[1]
    return found


# --- the captioner ------------------------------------------------------------------------------

class Captioner(nn.Module):
    """Video -> caption: clips (N, T, 3, H, W) with T >= ``frames`` -> logits per attribute.

    The first ``frames`` frames are stacked on the channels, ``(N, 3 * frames, H, W)``, and read by
    chapter 03's CNN with one output per colour, shape and direction (13 logits, split in three).
    Motion is then a pattern across channels, which a 3x3 convolution sees when the object moves
    a pixel or two a frame. The CNN's adaptive pooling accepts any H and W (wide and tall clips).
    """

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64), hidden: int = 128, pooled: int = 2):
        super().__init__()
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 2:
            raise ValueError(f"frames must be an int >= 2 (motion needs two frames), got {frames!r}")
        self.frames = frames
        sizes = [len(VALUES[a]) for a in ATTRIBUTES]
        self.sizes = sizes
        self.net = CNNClassifier(3 * frames, sum(sizes), channels, hidden, dropout=0.0, pooled=pooled)

    def _check(self, video: torch.Tensor) -> None:
        if not isinstance(video, torch.Tensor) or video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"video must be (N, T, 3, H, W), got {tuple(getattr(video, 'shape', ()))}")
        if video.shape[1] < self.frames:
            raise ValueError(f"the captioner reads {self.frames} frames, the clips have {video.shape[1]}")

    def forward(self, video: torch.Tensor) -> list[torch.Tensor]:
        """(N, T, 3, H, W) -> [colour (N, 6), shape (N, 3), direction (N, 4)] logits."""
        self._check(video)
        x = rearrange(video[:, : self.frames], "n t c h w -> n (t c) h w")
        return list(self.net(x).split(self.sizes, dim=1))

    @torch.no_grad()
    def predict(self, video: torch.Tensor, batch: int = 256) -> list[tuple[str, str, str]]:
        """The (colour, shape, direction) the captioner reads in each clip (eval mode, batched)."""
        self._check(video)
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        ids = []
        for chunk in video.split(batch):
            ids.append(torch.stack([logits.argmax(1) for logits in self(chunk.to(device))], dim=1).cpu())
        self.train(was_training)
        return [tuple(VALUES[a][i] for a, i in zip(ATTRIBUTES, row)) for row in torch.cat(ids).tolist()]

    def caption(self, video: torch.Tensor) -> list[str]:
        """English captions of the clips: ``caption_en`` of :meth:`tinysora.sora.recaption.Captioner.predict`."""
        return [caption_en(*combo) for combo in self.predict(video)]


def _labels(combos: list[tuple[str, str, str]]) -> torch.Tensor:
    return torch.tensor([[VALUES[a].index(v) for a, v in zip(ATTRIBUTES, combo)] for combo in combos])


def train_captioner(captioner: Captioner, video, combos, *, steps: int, batch_size: int = 64, lr: float = 2e-3,
                    seed: int = 0, desc: str = "captioner") -> list[float]:
    """Cross-entropy on each attribute's head (summed), Adam, batches drawn with replacement.

    Args:
        video: (N, T, 3, H, W) labelled clips, or a list of such tensors of different sizes (wide,
            tall, longer clips); each step then draws its batch from one of them, chosen with
            probability proportional to its number of clips.
        combos: the clips' true (colour, shape, direction), a list (or a list of lists, one per tensor).
    Returns:
        the loss of every step.
    """
    groups = [video] if isinstance(video, torch.Tensor) else list(video)
    labels = [combos] if isinstance(video, torch.Tensor) else list(combos)
    if not groups or len(groups) != len(labels):
        raise ValueError(f"got {len(groups)} groups of clips but {len(labels)} lists of captions")
    for g, (clips, truth) in enumerate(zip(groups, labels)):
        captioner._check(clips)
        if len(_check_combos(truth)) != len(clips):
            raise ValueError(f"group {g}: {len(clips)} clips but {len(truth)} captions")
    for value, name in ((steps, "steps"), (batch_size, "batch_size")):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    labels = [_labels(_check_combos(truth)) for truth in labels]
    sizes = torch.tensor([float(len(clips)) for clips in groups])
    device = next(captioner.parameters()).device
    optimizer = torch.optim.Adam(captioner.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    captioner.train()
    losses = []
    for _ in progress(range(steps), desc=desc):
        g = int(torch.multinomial(sizes, 1, generator=generator))
        idx = torch.randint(len(groups[g]), (batch_size,), generator=generator)
        logits = captioner(groups[g][idx].to(device))
        y = labels[g][idx].to(device)
        loss = sum(F.cross_entropy(head, y[:, k]) for k, head in enumerate(logits))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    captioner.eval()
    return losses


def caption_accuracy(predicted: Sequence, truth: Sequence) -> dict[str, float]:
    """Share of captions with the right colour, shape, direction, and all three (``all``)."""
    predicted, truth = _check_combos(predicted, "predicted"), _check_combos(truth, "truth")
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predicted captions for {len(truth)} true ones")
    right = torch.tensor([[p == t for p, t in zip(pc, tc)] for pc, tc in zip(predicted, truth)])
    scores = {a: right[:, k].float().mean().item() for k, a in enumerate(ATTRIBUTES)}
    scores["all"] = right.all(dim=1).float().mean().item()
    return scores


# --- prompt expansion ---------------------------------------------------------------------------

def expansion_corpus(combos: Sequence, forms: Sequence[Sequence[str]] = SHORT_FORMS) -> list[str]:
    """One line ``short>full`` per combo and short form: what the expander learns to continue."""
    combos = _check_combos(combos)
    return [f"{short_prompt(combo, form)}{SEPARATOR}{caption_en(*combo)}" for combo in combos for form in forms]


@dataclass
class PromptExpander:
    """Chapter 07's GPT trained on :func:`tinysora.sora.recaption.expansion_corpus`: short prompt -> full caption."""

    model: GPT
    tokenizer: CharTokenizer

    @torch.no_grad()
    def expand(self, prompts: Sequence[str], *, temperature: float = 1.0, seed: int = 0) -> list[str]:
        """Continue ``<bos> prompt >`` until ``<eos>``: one sampled full caption per prompt.

        Prompts of the same length are sampled as one batch (the GPT has learned positions, so rows
        are not left-padded). The text after the separator is returned, stripped.
        """
        if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts) or not prompts:
            raise ValueError("expand takes a non-empty list of prompt strings")
        device = next(self.model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        rows = [self.tokenizer.encode(p.strip() + SEPARATOR, bos=True) for p in prompts]
        out: list[str | None] = [None] * len(prompts)
        for length in sorted({len(r) for r in rows}):
            which = [i for i, r in enumerate(rows) if len(r) == length]
            if length >= self.model.config.block_size:
                raise ValueError(f"prompt {prompts[which[0]]!r} does not leave room in the expander's context "
                                 f"of {self.model.config.block_size} characters")
            idx = torch.tensor([rows[i] for i in which], device=device)
            new = self.model.generate(idx, self.model.config.block_size - length, temperature=temperature,
                                      eos_id=self.tokenizer.eos_id, generator=generator)
            for i, ids in zip(which, new[:, length:].cpu()):
                out[i] = self.tokenizer.decode(ids).strip()
        return out


def train_expander(combos: Sequence, *, steps: int, d_model: int = 64, n_layer: int = 2, n_head: int = 4,
                   batch_size: int = 64, lr: float = 3e-3, seed: int = 0, device: str | torch.device = "cpu",
                   desc: str = "prompt expander") -> tuple[PromptExpander, list[float]]:
    """Train a character-level GPT (:func:`tinysora.gpt.train_lm`) on ``expansion_corpus(combos)``.

    The alphabet comes from every caption of the world (a tokenizer knows the letters, not which
    sentences were trained on). Returns the expander and the loss of every step.
    """
    corpus = expansion_corpus(combos)
    alphabet = [caption_en(*c) for c in ALL_COMBOS] + [SEPARATOR]
    tokenizer = CharTokenizer.from_corpus(alphabet)
    rows = tokenizer.encode_batch(corpus, bos=True, eos=True)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(len(tokenizer), block_size=rows.shape[1], n_layer=n_layer, n_head=n_head,
                          d_model=d_model)).to(device)
    losses = train_lm(model, rows, tokenizer.pad_id, steps=steps, batch_size=batch_size, lr=lr, seed=seed, desc=desc)
    model.eval()
    return PromptExpander(model, tokenizer), losses


def expansion_fidelity(prompts: Sequence[str], expanded: Sequence[str]) -> dict[str, float]:
    """How good the expansions are, as shares of prompts.

    ``valid``: the expansion is a full world caption (:func:`tinysora.data.parse_caption`);
    ``faithful``: valid, and it keeps every attribute the prompt names.
    """
    if isinstance(prompts, str) or isinstance(expanded, str) or len(prompts) != len(expanded) or not prompts:
        raise ValueError("prompts and expanded must be lists of strings of the same, non-zero length")
    valid = faithful = 0
    for prompt, text in zip(prompts, expanded):
        named = parse_prompt(prompt)
        combo = parse_caption(text) if isinstance(text, str) else None
        if combo is None:
            continue
        valid += 1
        faithful += all(value is None or value == got for value, got in zip(named.values(), combo))
    return {"valid": valid / len(prompts), "faithful": faithful / len(prompts)}


# --- what a prompt does to the clips ------------------------------------------------------------

def prompt_fidelity(video: torch.Tensor, prompts: Sequence[str]) -> dict[str, float]:
    """Score clips against prompts that may name only some attributes.

    Returns shares of clips: ``colour_acc``, ``shape_acc``, ``direction_acc`` (over the prompts that
    name that attribute; NaN when none does), ``named_acc`` (every named attribute shown),
    ``persistence`` and ``smoothness`` (:func:`tinysora.video.metrics.analyse_clips`), and
    ``faithful`` (named_acc, persistent and smooth on the same clip).
    """
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise ValueError("prompts must be a list of strings")
    if not isinstance(video, torch.Tensor) or video.ndim != 5 or len(prompts) != video.shape[0]:
        raise ValueError(f"got {len(prompts)} prompts for clips of shape {tuple(getattr(video, 'shape', ()))}")
    named = [parse_prompt(p) for p in prompts]
    report = analyse_clips(video)
    shown = {"colour": report.colour, "shape": report.shape, "direction": report.direction}
    scores: dict[str, float] = {}
    every = torch.ones(len(prompts), dtype=torch.bool)
    for attribute in ATTRIBUTES:
        asked = [i for i, n in enumerate(named) if n[attribute] is not None]
        ok = torch.tensor([named[i][attribute] == shown[attribute][i] for i in asked], dtype=torch.bool)
        scores[f"{attribute}_acc"] = ok.float().mean().item() if asked else float("nan")
        if asked:
            every[asked] &= ok
    persistent, smooth = report.persistent.cpu(), report.smooth.cpu()
    scores["named_acc"] = every.float().mean().item()
    scores["persistence"] = persistent.float().mean().item()
    scores["smoothness"] = smooth.float().mean().item()
    scores["faithful"] = (every & persistent & smooth).float().mean().item()
    return scores
