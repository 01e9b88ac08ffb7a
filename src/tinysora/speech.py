"""Chapter 09: self-supervised speech, BEST-RQ (Chiu et al., 2022) and HuBERT (Hsu et al., 2021).

Both learn an encoder from unlabelled speech the way BERT learns from text: hide spans of the
input, predict a discrete label for every hidden frame. They differ in where the labels come from.

    log-mel (B, T, n_mels) -- stack k frames --> (B, T/k, k n_mels)
        |                                            |
        | BestRQQuantizer (frozen, random)           | span_mask -> masked frames := noise
        |   or k-means on MFCC / on features         v
        v                                        ConformerEncoder -> (B, T/k, D) --> Linear -> logits
    targets (B, T/k) ---------------- cross-entropy on masked frames only (masked_loss) ----'

Map of the file, in the order the chapter meets it:

* **Data** -- :func:`log_mel_frames` (time-major log-mel of :mod:`tinysora.audio`),
  :func:`stack_frames`, :func:`make_speech` (spoken words with a syllable label for every frame,
  from :func:`tinysora.audio.synthesize`'s alignment).
* **BEST-RQ targets** -- :class:`BestRQQuantizer`: per-frame normalisation, a frozen Xavier
  projection, a frozen standard-normal codebook, the nearest l2-normalised code;
  :func:`codebook_usage`.
* **Masking** -- :func:`span_mask` (every frame starts a span with probability p),
  :func:`expected_mask_fraction` (its closed form), :func:`mask_frames` (masked frames := noise).
* **Encoder** -- :class:`SpeechConfig` (the one config), :class:`ConvModule`,
  :class:`ConformerBlock` (macaron FFN halves of :class:`tinysora.mlp.FFN`, self-attention of
  :class:`tinysora.transformer.MultiHeadAttention`, the depthwise convolution module),
  :class:`ConformerEncoder` (``block="transformer"`` swaps in HuBERT's plain Transformer blocks).
* **Training** -- :class:`MaskedPredictor` (encoder + linear predictor), :func:`masked_loss`,
  :func:`pretrain` (one loop for both methods), :func:`pretrain_bestrq`, :func:`pretrain_hubert`,
  :func:`masked_accuracy`.
* **HuBERT targets** -- :func:`dct_matrix` and :func:`mfcc` (a DCT-II written out),
  :func:`kmeans` (Lloyd's algorithm with k-means++ seeding), :func:`assign_clusters`.
* **Evaluation** -- :func:`features` (what later chapters use), :func:`probe_accuracy` (a linear
  probe on mean-pooled clips or on single frames), :func:`normalized_mutual_information`.

For chapter 10 and anything else that needs speech features::

    train = make_speech(30, seed=0)                                 # 300 clips, (300, 101, 40) log-mel
    encoder = pretrain_bestrq(train.logmel, SpeechConfig(), steps=400).encoder    # ~20 s on one core
    z = features(encoder, log_mel_frames(waves))   # (B, T // 4, 64): full input, eval mode, on the CPU

Shapes: log-mel is ``(B, T, n_mels)`` (time first, unlike :mod:`tinysora.audio`'s (n_mels, T));
everything after stacking lives on the stacked grid ``T' = T // stack`` (40 ms frames by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tinysora import audio
from tinysora.mlp import FFN
from tinysora.runtime import progress
from tinysora.transformer import EncoderBlock, MultiHeadAttention, sinusoidal_embedding

# =============================================================================== data


def log_mel_frames(waves, sample_rate: int = audio.SAMPLE_RATE, n_mels: int = 40) -> torch.Tensor:
    """Log-mel spectrogram, time first: waves (N, L) -> float32 (N, T, n_mels), 10 ms frames."""
    mels = audio.log_mel_spectrogram(waves, sample_rate, n_mels=n_mels)   # (N, n_mels, T)
    if mels.ndim != 3:
        raise ValueError(f"waves must be a batch (N, L), got shape {np.shape(waves)}")
    return torch.from_numpy(rearrange(mels, "n m t -> n t m").copy())


def _check_frames(x, name: str = "x", ndim: int = 3) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim != ndim or not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of shape (B, T, D), got {x.dtype} {tuple(x.shape)}")
    return x


def stack_frames(x: torch.Tensor, stack: int) -> torch.Tensor:
    """Concatenate ``stack`` consecutive frames: (B, T, F) -> (B, T // stack, stack * F).

    BEST-RQ stacks 4 log-mel frames (10 ms each) into one 40 ms frame before the quantiser and
    the encoder; a remainder of fewer than ``stack`` frames at the end is dropped.
    """
    _check_frames(x)
    if not isinstance(stack, int) or stack < 1:
        raise ValueError(f"stack must be a positive int, got {stack!r}")
    if x.shape[1] < stack:
        raise ValueError(f"{x.shape[1]} frames cannot be stacked {stack} at a time")
    usable = x.shape[1] // stack * stack
    return rearrange(x[:, :usable], "b (t k) f -> b t (k f)", k=stack)


@dataclass
class SpeechData:
    """Spoken words with frame labels. ``logmel[i]`` (T, n_mels) says ``vocabulary[words[i]]``.

    ``syllables[i, t]`` is the syllable being said at log-mel frame t (an index into
    ``syllable_names``; 0 is ``"sil"``, silence), from the synthesiser's alignment.
    """

    logmel: torch.Tensor            # (N, T, n_mels) float32
    words: np.ndarray               # (N,) int64
    syllables: np.ndarray           # (N, T) int64
    vocabulary: tuple[str, ...]
    syllable_names: tuple[str, ...]
    speakers: list[audio.Speaker] = field(repr=False)

    def __len__(self) -> int:
        return len(self.words)

    def frame_syllables(self, stack: int) -> np.ndarray:
        """Syllable labels on the stacked grid: the label of each stacked frame's centre, (N, T // stack)."""
        n_out = self.logmel.shape[1] // stack
        return self.syllables[:, stack // 2::stack][:, :n_out]


def _syllable_of_sample(word: str, alignment, n_frames: int, hop: int) -> list[str]:
    """The syllable at each frame centre (sample t * hop), from a synthesize() alignment."""
    spans, syllables, index = [], audio.syllabify(word), 0
    for phone, start, end in alignment:
        if phone == "sil":
            continue
        spans.append((start, end, syllables[index]))
        index += phone in audio.VOWELS          # a syllable ends with its vowel
    out = ["sil"] * n_frames
    for start, end, syllable in spans:
        for t in range(max(0, -(-start // hop)), min(n_frames, -(-end // hop))):
            out[t] = syllable
    return out


def make_speech(n_per_word: int, seed: int = 0, vocabulary=audio.WORDS, hop_length: int = 160,
                desc: str | None = "synthesising speech") -> SpeechData:
    """``n_per_word`` one-second clips of every word, each in a new random voice, with frame labels.

    Deterministic from ``seed``; different seeds draw different speakers (so a test set made with
    another seed holds voices never heard in training). Built on :func:`tinysora.audio.synthesize`
    with ``return_alignment=True``; ``desc`` labels the progress bar (None: no bar).
    """
    if not isinstance(n_per_word, (int, np.integer)) or n_per_word <= 0:
        raise ValueError(f"n_per_word must be a positive int, got {n_per_word!r}")
    vocabulary = tuple(vocabulary)
    if not vocabulary:
        raise ValueError("vocabulary must hold at least one word")
    rng = np.random.default_rng(seed)
    words = rng.permutation(np.repeat(np.arange(len(vocabulary)), n_per_word))
    waves, labels, speakers = [], [], []
    for w in progress(words, desc=desc, disable=desc is None):
        speaker = audio.random_speaker(rng)
        wave, alignment = audio.synthesize(vocabulary[w], speaker, seed=int(rng.integers(2**31)),
                                           duration=audio.CLIP_SECONDS, return_alignment=True)
        waves.append(wave)
        labels.append(alignment)
        speakers.append(speaker)
    logmel = log_mel_frames(np.stack(waves))                                # (N, T, n_mels)
    per_frame = [_syllable_of_sample(vocabulary[w], a, logmel.shape[1], hop_length) for w, a in zip(words, labels)]
    names = ("sil",) + tuple(sorted({s for word in vocabulary for s in audio.syllabify(word)}))
    index = {name: i for i, name in enumerate(names)}
    syllables = np.array([[index[s] for s in row] for row in per_frame], dtype=np.int64)
    return SpeechData(logmel, words.astype(np.int64), syllables, vocabulary, names, speakers)


# =============================================================================== BEST-RQ's quantiser


def normalize_frames(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Mean 0, std 1 over each frame's own features (the last axis): (..., D) -> (..., D).

    A non-affine LayerNorm. Normalising over the *time* axis instead (``dim=1`` of (B, T, D), the
    default of ``F.normalize``) would make a frame's code depend on the other frames of the clip.
    """
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)


class BestRQQuantizer(nn.Module):
    """The random-projection quantiser: frame -> code id, frozen from the start.

    ``code = argmin_i || c_i / |c_i|  -  A x / |A x| ||`` with x the per-frame normalised input,
    A (input_dim, code_dim) Xavier-uniform and the codebook c (codebook_size, code_dim) standard
    normal. Both are buffers, not parameters: nothing here can be trained, and the same ``seed``
    always gives the same quantiser. forward: log-mel (B, T, n_mels) -> codes (B, T // stack) int64.
    """

    def __init__(self, n_mels: int = 40, stack: int = 4, code_dim: int = 16, codebook_size: int = 256, seed: int = 0):
        super().__init__()
        for name, value in (("n_mels", n_mels), ("stack", stack), ("code_dim", code_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(codebook_size, int) or codebook_size < 1:
            raise ValueError(f"the codebook needs at least one code, got codebook_size={codebook_size!r}")
        self.n_mels, self.stack = n_mels, stack
        generator = torch.Generator().manual_seed(seed)
        input_dim = stack * n_mels
        bound = math.sqrt(6.0 / (input_dim + code_dim))                      # Xavier (Glorot) uniform
        projection = (torch.rand(input_dim, code_dim, generator=generator) * 2 - 1) * bound
        codebook = torch.randn(codebook_size, code_dim, generator=generator)
        self.register_buffer("projection", projection)                       # (k n_mels, d)
        self.register_buffer("codebook", F.normalize(codebook, dim=-1))      # (K, d), unit rows

    @property
    def codebook_size(self) -> int:
        return self.codebook.shape[0]

    @torch.no_grad()
    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        _check_frames(logmel, "logmel")
        if logmel.shape[-1] != self.n_mels:
            raise ValueError(f"logmel must have {self.n_mels} mel bands in its last axis, got {tuple(logmel.shape)}")
        x = normalize_frames(stack_frames(logmel.float(), self.stack))       # (B, T', k n_mels)
        z = F.normalize(x @ self.projection, dim=-1)                         # (B, T', d), unit vectors
        distance = (z ** 2).sum(-1, keepdim=True) - 2 * z @ self.codebook.T + 1.0   # |z - c|^2, (B, T', K)
        return distance.argmin(dim=-1)                                       # (B, T')


def codebook_usage(codes, codebook_size: int) -> tuple[float, float]:
    """(share of the codebook that occurs in ``codes``, perplexity exp(entropy) of the code histogram)."""
    codes = torch.as_tensor(codes).flatten()
    if codebook_size < 1:
        raise ValueError(f"codebook_size must be positive, got {codebook_size}")
    if codes.numel() == 0 or codes.min() < 0 or codes.max() >= codebook_size:
        raise ValueError(f"codes must be a non-empty array of ids in [0, {codebook_size})")
    p = torch.bincount(codes, minlength=codebook_size).double() / codes.numel()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return float((p > 0).double().mean()), float(entropy.exp())


# =============================================================================== masking


def _check_span(length: int, mask_prob: float, span: int) -> None:
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive number of frames, got {length!r}")
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob is a probability, got {mask_prob}")
    if not isinstance(span, int) or span < 1:
        raise ValueError(f"span must be a positive int number of frames, got {span!r}")
    if span > length:
        raise ValueError(f"span of {span} frames is longer than the clip ({length} frames)")


def span_mask(batch: int, length: int, mask_prob: float, span: int,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """bool (batch, length): every frame starts a masked span of ``span`` frames with probability p.

    Spans overlap freely and are cut at the end of the clip, so frame t is masked unless none of
    the ``min(t + 1, span)`` frames at or just before it started a span.
    """
    _check_span(length, mask_prob, span)
    starts = torch.rand(batch, length, generator=generator) < mask_prob      # (B, T)
    counts = F.pad(starts.long().cumsum(dim=1), (span, 0))                   # (B, T + span), leading zeros
    return counts[:, span:] - counts[:, :-span] > 0                          # a start in (t - span, t]


def expected_mask_fraction(length: int, mask_prob: float, span: int) -> float:
    """E[masked share] = 1 - (1/T) sum_t (1 - p)^min(t+1, span): far below p * span when spans overlap."""
    _check_span(length, mask_prob, span)
    reach = np.minimum(np.arange(1, length + 1), span)
    return float(1.0 - np.mean((1.0 - mask_prob) ** reach))


def mask_frames(x: torch.Tensor, mask: torch.Tensor, noise_std: float = 0.1,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace masked frames by noise N(0, noise_std^2): x (B, T, D), mask bool (B, T) -> (B, T, D)."""
    if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool of shape {tuple(x.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}")
    noise = torch.randn(x.shape, generator=generator).to(x.device) * noise_std
    return torch.where(mask[..., None].to(x.device), noise, x)


# =============================================================================== the encoder


@dataclass(frozen=True)
class SpeechConfig:
    """Sizes of the encoder (nanoGPT's GPTConfig, for speech)."""

    n_mels: int = 40
    stack: int = 4             # log-mel frames per encoder frame (4 x 10 ms = 40 ms)
    d_model: int = 64         # the defaults are chapter 09's cpu scale
    n_heads: int = 4
    n_layers: int = 2
    conv_kernel: int = 7       # depthwise convolution, in encoder frames
    ffn_mult: int = 4
    dropout: float = 0.1
    block: str = "conformer"   # "conformer" (BEST-RQ) or "transformer" (HuBERT)

    def __post_init__(self):
        for name in ("n_mels", "stack", "d_model", "n_heads", "n_layers", "conv_kernel", "ffn_mult"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SpeechConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads or self.d_model % 2:
            raise ValueError(f"d_model {self.d_model} must be even and divisible by n_heads {self.n_heads}")
        if self.conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel must be odd (same length out), got {self.conv_kernel}")
        if self.block not in ("conformer", "transformer"):
            raise ValueError(f"block must be 'conformer' or 'transformer', got {self.block!r}")

    @property
    def input_dim(self) -> int:
        return self.stack * self.n_mels


class ConvModule(nn.Module):
    """Conformer's convolution module: LN -> pointwise conv -> GLU -> depthwise conv -> BN -> SiLU -> pointwise.

    The depthwise convolution mixes each channel over ``kernel`` neighbouring frames: the local
    detail (formant transitions, bursts) that attention, which sees everything equally, is slow
    to learn. (B, T, D) -> (B, T, D).
    """

    def __init__(self, d_model: int, kernel: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, 1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model)
        self.batch_norm = nn.BatchNorm1d(d_model)
        self.pointwise_out = nn.Conv1d(d_model, d_model, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = rearrange(self.norm(x), "b t d -> b d t")
        h = F.glu(self.pointwise_in(h), dim=1)                     # (B, D, T): half the channels gate the other
        h = F.silu(self.batch_norm(self.depthwise(h)))
        return self.dropout(rearrange(self.pointwise_out(h), "b d t -> b t d"))


class ConformerBlock(nn.Module):
    """Gulati et al. (2020): half an FFN, self-attention, convolution, half an FFN, LayerNorm.

    x = x + FFN(x)/2; x = x + MHSA(x); x = x + Conv(x); x = x + FFN(x)/2; y = LN(x), each branch
    pre-normalised: the "macaron" shape puts the block between two half-step feed-forwards.
    (B, T, D) -> (B, T, D).
    """

    def __init__(self, cfg: SpeechConfig):
        super().__init__()
        d = cfg.d_model
        self.ffn_in, self.ffn_out = (FFN(d, cfg.ffn_mult * d, dropout=cfg.dropout) for _ in range(2))
        self.norm_ffn_in, self.norm_attn, self.norm_ffn_out, self.norm_final = (nn.LayerNorm(d) for _ in range(4))
        self.attn = MultiHeadAttention(d, cfg.n_heads)
        self.conv = ConvModule(d, cfg.conv_kernel, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ffn_in(self.norm_ffn_in(x))
        x = x + self.dropout(self.attn(self.norm_attn(x)))
        x = x + self.conv(x)
        x = x + 0.5 * self.ffn_out(self.norm_ffn_out(x))
        return self.norm_final(x)


class ConformerEncoder(nn.Module):
    """log-mel (B, T, n_mels) -> stack -> normalise -> (mask) -> Linear -> + positions -> blocks -> (B, T', D).

    The input statistics (mean and std of every stacked input feature) are a buffer set once from
    the training data by :meth:`set_input_statistics`, so the encoder carries its own
    normalisation. Masked frames (``mask`` (B, T') True) are replaced by noise *after*
    normalisation, as BEST-RQ does. Positions are the sinusoidal embedding added to the input
    (the Conformer paper uses relative positions; for one-second clips absolute ones suffice).
    With ``cfg.block == "transformer"`` the blocks are :class:`tinysora.transformer.EncoderBlock`
    (pre-LN), HuBERT's encoder.
    """

    def __init__(self, cfg: SpeechConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("input_mean", torch.zeros(cfg.input_dim))
        self.register_buffer("input_std", torch.ones(cfg.input_dim))
        self.input_proj = nn.Linear(cfg.input_dim, cfg.d_model)
        self.input_dropout = nn.Dropout(cfg.dropout)
        if cfg.block == "conformer":
            blocks = [ConformerBlock(cfg) for _ in range(cfg.n_layers)]
        else:
            blocks = [EncoderBlock(cfg.d_model, cfg.n_heads, cfg.ffn_mult * cfg.d_model, cfg.dropout, norm_first=True)
                      for _ in range(cfg.n_layers)]
        self.blocks = nn.ModuleList(blocks)
        self.norm_out = nn.LayerNorm(cfg.d_model) if cfg.block == "transformer" else nn.Identity()

    @torch.no_grad()
    def set_input_statistics(self, logmel: torch.Tensor) -> None:
        """Mean and std of each stacked input feature over all clips and frames of ``logmel``."""
        x = stack_frames(_check_frames(logmel, "logmel"), self.cfg.stack)
        self.input_mean.copy_(x.mean(dim=(0, 1)))
        self.input_std.copy_(x.std(dim=(0, 1)).clamp_min(1e-5))

    def frames(self, logmel: torch.Tensor) -> torch.Tensor:
        """The normalised encoder input: (B, T, n_mels) -> (B, T // stack, stack * n_mels)."""
        _check_frames(logmel, "logmel")
        if logmel.shape[-1] != self.cfg.n_mels:
            raise ValueError(f"logmel must have {self.cfg.n_mels} mel bands in its last axis, "
                             f"got {tuple(logmel.shape)}")
        return (stack_frames(logmel, self.cfg.stack) - self.input_mean) / self.input_std

    def forward(self, logmel: torch.Tensor, mask: torch.Tensor | None = None, noise_std: float = 0.1,
                generator: torch.Generator | None = None, n_layers: int | None = None) -> torch.Tensor:
        """(B, T, n_mels) -> (B, T', D); ``n_layers`` stops after that many blocks (features of a middle layer)."""
        x = self.frames(logmel)                                                   # (B, T', k n_mels)
        if mask is not None:
            x = mask_frames(x, mask, noise_std, generator)
        positions = sinusoidal_embedding(torch.arange(x.shape[1], device=x.device), self.cfg.d_model)
        h = self.input_dropout(self.input_proj(x) + positions)                    # (B, T', D)
        n_layers = len(self.blocks) if n_layers is None else n_layers
        if not 1 <= n_layers <= len(self.blocks):
            raise ValueError(f"n_layers must be in 1..{len(self.blocks)}, got {n_layers}")
        for block in self.blocks[:n_layers]:
            h = block(h)
        return self.norm_out(h) if n_layers == len(self.blocks) else h


# =============================================================================== masked prediction


class MaskedPredictor(nn.Module):
    """Encoder + predictor: a linear layer from every frame's feature to logits over the targets.

    forward(logmel (B, T, n_mels), mask (B, T')) -> logits (B, T', n_targets). It predicts every
    frame (one matrix product for the whole batch); :func:`masked_loss` decides which frames count.
    """

    def __init__(self, encoder: ConformerEncoder, n_targets: int):
        super().__init__()
        if not isinstance(n_targets, int) or n_targets < 2:
            raise ValueError(f"need at least two target classes, got {n_targets!r}")
        self.encoder = encoder
        self.predictor = nn.Linear(encoder.cfg.d_model, n_targets)

    def forward(self, logmel: torch.Tensor, mask: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        return self.predictor(self.encoder(logmel, mask, **kwargs))


def masked_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                unmasked_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy averaged over masked frames, plus ``unmasked_weight`` x the average over the others.

    logits (B, T, K), targets (B, T) int64, mask bool (B, T). BEST-RQ and HuBERT use weight 0:
    an unmasked frame's target is a function of the very input the encoder sees there.
    """
    if logits.ndim != 3 or targets.shape != logits.shape[:2] or mask.shape != targets.shape:
        raise ValueError(f"need logits (B, T, K), targets and mask (B, T); got {tuple(logits.shape)}, "
                         f"{tuple(targets.shape)}, {tuple(mask.shape)}")
    if not mask.any():
        raise ValueError("no frame is masked: the masked-prediction loss is undefined")
    ce = F.cross_entropy(rearrange(logits, "b t k -> b k t"), targets, reduction="none")   # (B, T)
    loss = ce[mask].mean()
    if unmasked_weight and (~mask).any():
        loss = loss + unmasked_weight * ce[~mask].mean()
    return loss


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns: the trained model, its loss curve (and BEST-RQ's quantiser)."""

    model: MaskedPredictor
    losses: list[float]
    quantizer: BestRQQuantizer | None = None

    @property
    def encoder(self) -> ConformerEncoder:
        return self.model.encoder


def _check_targets(logmel: torch.Tensor, targets: torch.Tensor, stack: int) -> torch.Tensor:
    _check_frames(logmel, "logmel")
    targets = torch.as_tensor(targets, dtype=torch.long)
    if targets.shape != (logmel.shape[0], logmel.shape[1] // stack):
        raise ValueError(f"targets must have shape (B, T // stack) = {(logmel.shape[0], logmel.shape[1] // stack)}, "
                         f"got {tuple(targets.shape)}")
    return targets


def pretrain(model: MaskedPredictor, logmel: torch.Tensor, targets, *, steps: int, batch_size: int = 32,
             lr: float = 2e-3, mask_prob: float = 0.1, mask_length: int = 4, noise_std: float = 0.1,
             unmasked_weight: float = 0.0, seed: int = 0, device: torch.device | str = "cpu",
             desc: str = "masked prediction") -> PretrainResult:
    """Masked prediction: sample clips, mask spans, predict the targets of the masked frames.

    logmel (N, T, n_mels), targets (N, T // stack) int64. AdamW with a linear warm-up over the
    first tenth of the steps and a cosine decay; the encoder's input statistics are set from
    ``logmel`` first. Deterministic from ``seed`` (batches, masks and noise share one generator).
    """
    targets = _check_targets(logmel, targets, model.encoder.cfg.stack)
    if not isinstance(steps, int) or steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive ints, got {steps!r}, {batch_size!r}")
    generator = torch.Generator().manual_seed(seed)
    model.encoder.set_input_statistics(logmel)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * s / steps))))
    losses = []
    for _ in progress(range(steps), desc=desc):
        index = torch.randint(len(logmel), (min(batch_size, len(logmel)),), generator=generator)
        mask = span_mask(len(index), targets.shape[1], mask_prob, mask_length, generator)
        if not mask.any():           # a batch without one masked frame teaches nothing: skip it
            continue
        logits = model(logmel[index].to(device), mask.to(device), noise_std=noise_std, generator=generator)
        loss = masked_loss(logits, targets[index].to(device), mask.to(device), unmasked_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return PretrainResult(model.eval(), losses)


def pretrain_bestrq(logmel: torch.Tensor, cfg: SpeechConfig = SpeechConfig(), *, codebook_size: int = 256,
                    code_dim: int = 16, quantizer_seed: int = 0, **kwargs) -> PretrainResult:
    """BEST-RQ: targets from a frozen :class:`BestRQQuantizer`, a Conformer learns to predict them.

    ``kwargs`` go to :func:`pretrain` (steps is required). ``result.quantizer`` holds the quantiser.
    """
    quantizer = BestRQQuantizer(cfg.n_mels, cfg.stack, code_dim, codebook_size, quantizer_seed)
    model = MaskedPredictor(ConformerEncoder(cfg), codebook_size)
    result = pretrain(model, logmel, quantizer(logmel), **{"desc": "BEST-RQ", **kwargs})
    return PretrainResult(result.model, result.losses, quantizer)


def pretrain_hubert(logmel: torch.Tensor, labels, n_clusters: int,
                    cfg: SpeechConfig = SpeechConfig(block="transformer"), **kwargs) -> PretrainResult:
    """One HuBERT iteration: predict k-means ``labels`` (N, T // stack) of masked frames; kwargs to :func:`pretrain`."""
    model = MaskedPredictor(ConformerEncoder(cfg), n_clusters)
    return pretrain(model, logmel, labels, **{"desc": "HuBERT", **kwargs})


@torch.no_grad()
def masked_accuracy(model: MaskedPredictor, logmel: torch.Tensor, targets, *, mask_prob: float = 0.1,
                    mask_length: int = 4, noise_std: float = 0.1, seed: int = 1, batch_size: int = 256) -> float:
    """Share of masked frames whose target is the predictor's arg-max (fresh masks from ``seed``)."""
    targets = _check_targets(logmel, targets, model.encoder.cfg.stack)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    hits = total = 0
    for start in range(0, len(logmel), batch_size):
        x, y = logmel[start:start + batch_size], targets[start:start + batch_size]
        mask = span_mask(len(x), y.shape[1], mask_prob, mask_length, generator)
        predicted = model(x.to(device), mask.to(device), noise_std=noise_std, generator=generator).argmax(-1).cpu()
        hits += int((predicted == y)[mask].sum())
        total += int(mask.sum())
    if total == 0:
        raise ValueError("no frame was masked: raise mask_prob or use more clips")
    return hits / total


# =============================================================================== HuBERT's targets


def dct_matrix(n_in: int, n_out: int | None = None) -> np.ndarray:
    """Orthonormal DCT-II as a matrix (n_out, n_in): C[k, n] = s_k cos(pi k (2n + 1) / (2 n_in)).

    s_0 = sqrt(1 / n_in), s_k = sqrt(2 / n_in): ``x @ C.T`` equals ``scipy.fft.dct(x, norm="ortho")[..., :n_out]``.
    """
    n_out = n_in if n_out is None else n_out
    if n_in < 1 or not 1 <= n_out <= n_in:
        raise ValueError(f"need 1 <= n_out <= n_in, got n_in={n_in}, n_out={n_out}")
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    scale = np.where(k == 0, math.sqrt(1.0 / n_in), math.sqrt(2.0 / n_in))
    return scale * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))


def mfcc(logmel, n_coefficients: int = 13) -> torch.Tensor:
    """Mel-frequency cepstral coefficients: the DCT of each log-mel frame, first ``n_coefficients`` kept.

    (..., T, n_mels) -> (..., T, n_coefficients). The DCT decorrelates neighbouring mel bands;
    the low coefficients describe the spectral envelope (the vocal tract), the high ones, dropped,
    the fine ripple of pitch harmonics.
    """
    logmel = torch.as_tensor(logmel)
    if logmel.ndim < 2:
        raise ValueError(f"logmel must be (..., T, n_mels), got shape {tuple(logmel.shape)}")
    basis = torch.as_tensor(dct_matrix(logmel.shape[-1], n_coefficients), dtype=logmel.dtype)
    return logmel @ basis.T


@dataclass
class KMeansResult:
    centroids: np.ndarray    # (k, D)
    labels: np.ndarray       # (N,)
    inertia: float           # sum of squared distances to the assigned centroid
    n_iter: int


def _squared_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """|x_i - c_j|^2 for all pairs, (N, D), (k, D) -> (N, k), without an (N, k, D) intermediate."""
    return np.maximum((x ** 2).sum(1)[:, None] - 2 * x @ centroids.T + (centroids ** 2).sum(1)[None, :], 0.0)


def assign_clusters(x, centroids) -> np.ndarray:
    """Index of the nearest centroid for every row: (N, D), (k, D) -> (N,) int64."""
    x, centroids = np.asarray(x, dtype=np.float64), np.asarray(centroids, dtype=np.float64)
    if x.ndim != 2 or centroids.ndim != 2 or x.shape[1] != centroids.shape[1]:
        raise ValueError(f"need x (N, D) and centroids (k, D) with the same D, got {x.shape}, {centroids.shape}")
    return _squared_distances(x, centroids).argmin(1)


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Arthur & Vassilvitskii (2007): each new centre drawn with probability proportional to d(x)^2."""
    centroids = [x[rng.integers(len(x))]]
    closest = _squared_distances(x, centroids[0][None])[:, 0]
    for _ in range(k - 1):
        total = closest.sum()
        centroids.append(x[rng.choice(len(x), p=closest / total)] if total > 0 else x[rng.integers(len(x))])
        closest = np.minimum(closest, _squared_distances(x, centroids[-1][None])[:, 0])
    return np.stack(centroids)


def kmeans(x, k: int, *, n_iter: int = 100, init=None, seed: int = 0, tol: float = 1e-6) -> KMeansResult:
    """Lloyd's algorithm: assign every point to its nearest centroid, move each centroid to its points' mean.

    x (N, D); init: (k, D) starting centroids, or None for k-means++ from ``seed``. Stops when
    no centroid moves by more than ``tol`` (squared, summed) or after ``n_iter`` rounds. A cluster
    that loses all its points keeps its old centroid.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"x must be a non-empty (N, D) array, got shape {x.shape}")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= len(x):
        raise ValueError(f"k must be an int in 1..{len(x)} (the number of points), got {k!r}")
    if init is None:
        centroids = kmeans_plus_plus(x, k, np.random.default_rng(seed))
    else:
        centroids = np.array(init, dtype=np.float64)
    if centroids.shape != (k, x.shape[1]):
        raise ValueError(f"init must have shape ({k}, {x.shape[1]}), got {centroids.shape}")
    for iteration in range(1, n_iter + 1):
        labels = _squared_distances(x, centroids).argmin(1)                       # (N,)
        counts = np.bincount(labels, minlength=k)                                 # (k,)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, x)
        moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centroids)
        shift = float(((moved - centroids) ** 2).sum())
        centroids = moved
        if shift <= tol:
            break
    labels = _squared_distances(x, centroids).argmin(1)
    inertia = float(_squared_distances(x, centroids)[np.arange(len(x)), labels].sum())
    return KMeansResult(centroids, labels, inertia, iteration)


# =============================================================================== evaluation


@torch.no_grad()
def features(encoder: ConformerEncoder, logmel: torch.Tensor, mask: torch.Tensor | None = None,
             n_layers: int | None = None, batch_size: int = 256) -> torch.Tensor:
    """The encoder's representation of every frame: (B, T, n_mels) -> (B, T // stack, d_model), on the CPU.

    Eval mode (no dropout, running BatchNorm statistics), the full input unless a ``mask`` is
    given, the last block unless ``n_layers`` says fewer.
    """
    _check_frames(logmel, "logmel")
    if mask is not None and mask.shape != (logmel.shape[0], logmel.shape[1] // encoder.cfg.stack):
        raise ValueError(f"mask must have shape (B, T // stack), got {tuple(mask.shape)}")
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    generator = torch.Generator().manual_seed(0)
    out = [encoder(logmel[i:i + batch_size].to(device), None if mask is None else mask[i:i + batch_size].to(device),
                   generator=generator, n_layers=n_layers).cpu()
           for i in range(0, len(logmel), batch_size)]
    encoder.train(was_training)
    return torch.cat(out)


def probe_accuracy(train_features, train_labels, test_features, test_labels, C: float = 1.0) -> float:
    """A linear probe: mean-pool each clip over time, standardise, logistic regression; test accuracy.

    train_features (N, T, D) or (N, D), labels (N,). The same probe for any representation, so
    that the comparison says what a *linear* read-out can get from it.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def pooled(z):
        z = np.asarray(z.detach().cpu() if isinstance(z, torch.Tensor) else z, dtype=np.float64)
        if z.ndim not in (2, 3):
            raise ValueError(f"features must be (N, T, D) or (N, D), got shape {z.shape}")
        return z.mean(axis=1) if z.ndim == 3 else z

    train_x, test_x = pooled(train_features), pooled(test_features)
    if len(train_x) != len(train_labels) or len(test_x) != len(test_labels):
        raise ValueError("every clip needs one label")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=3000))
    probe.fit(train_x, np.asarray(train_labels))
    return float(probe.score(test_x, np.asarray(test_labels)))


def _entropy(p: np.ndarray) -> float:
    return float(-(p[p > 0] * np.log(p[p > 0])).sum())


def normalized_mutual_information(a, b) -> float:
    """NMI(a, b) = I(a; b) / ((H(a) + H(b)) / 2), for two labellings of the same items (0 .. 1).

    1 when each labelling determines the other (up to renaming), 0 when they are independent;
    the arithmetic-mean normalisation is scikit-learn's default.
    """
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two non-empty labellings of the same items, got sizes {a.size} and {b.size}")
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= a.size
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mutual = float((joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum())
    mean_entropy = (_entropy(pa) + _entropy(pb)) / 2
    return 1.0 if mean_entropy == 0 else max(0.0, mutual / mean_entropy)


__all__ = [
    "BestRQQuantizer",
    "ConformerBlock",
    "ConformerEncoder",
    "ConvModule",
    "KMeansResult",
    "MaskedPredictor",
    "PretrainResult",
    "SpeechConfig",
    "SpeechData",
    "assign_clusters",
    "codebook_usage",
    "dct_matrix",
    "expected_mask_fraction",
    "features",
    "kmeans",
    "kmeans_plus_plus",
    "log_mel_frames",
    "make_speech",
    "mask_frames",
    "masked_accuracy",
    "masked_loss",
    "mfcc",
    "normalize_frames",
    "normalized_mutual_information",
    "pretrain",
    "pretrain_bestrq",
    "pretrain_hubert",
    "probe_accuracy",
    "span_mask",
    "stack_frames",
]
