"""Chapter 10: BASE TTS in miniature (Lajszczak et al., 2024): text -> speech codes -> log-mel -> waveform.

BASE TTS has three parts, and so does this file::

    speech (B, L) --log-mel--> chapter 09 encoder --> features (B, T', D) --k-means--> codes (B, T')
    codes --byte-pair encoding--> speech tokens (shorter)                                 [tokeniser]
    text (characters) <sep> speech tokens <eos>  --- tinysora.gpt.GPT, next-token ---     [the "LM"]
    speech tokens --BPE decode--> codes --CodeDecoder(speaker)--> log-mel --Griffin-Lim--> waveform

Map of the file, in the order the chapter meets it (every name below lives in ``tinysora.tts``):

* **Codes** -- ``code_rate`` (codes per second), ``Codebook`` (k-means centroids of encoder
  features, made by ``learn_codebook``; ``Codebook.encode``), ``code_histogram``.
* **BPE** -- ``count_pairs``, ``merge_pair``, ``learn_bpe`` -> ``BPE`` (``BPE.encode``,
  ``BPE.decode``), ``compression``.
* **Decoder** -- ``CausalConv1d`` (with ``CausalConv1d.step``, a carried state), ``DecoderConfig``,
  ``CodeDecoder`` (``forward`` on a whole sequence, ``CodeDecoder.stream`` chunk by chunk,
  ``CodeDecoder.decode`` aligned, with look-ahead), ``speaker_vector``, ``train_decoder``.
* **Waveform** -- ``istft`` (weighted overlap-add, the inverse of :func:`tinysora.audio.stft`),
  ``mel_to_magnitude``, ``griffin_lim``, ``spectral_convergence``, ``logmel_to_wave``.
* **Text to tokens** -- ``TTSVocab`` (characters of the text, ``<sep>``, the speech tokens in one id
  space, on :class:`tinysora.tokenizer.CharTokenizer`), ``tts_rows``, ``synthesise_tokens``, ``fit_length``.

Shapes: log-mel is time first, ``(B, T, n_mels)``, as in :mod:`tinysora.speech`; one code covers
``stack`` log-mel frames (``stack`` x 10 ms).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from tinysora import audio
from tinysora.runtime import progress
from tinysora.speech import assign_clusters, kmeans
from tinysora.tokenizer import CharTokenizer

# =============================================================================== codes


def code_rate(stack: int = 4, hop_length: int = 160, sample_rate: int = audio.SAMPLE_RATE) -> float:
    """Codes per second: one code per ``stack`` log-mel frames of ``hop_length`` samples."""
    if stack <= 0 or hop_length <= 0 or sample_rate <= 0:
        raise ValueError(f"stack, hop_length and sample_rate must be positive, got {stack}, {hop_length}, "
                         f"{sample_rate}")
    return sample_rate / (stack * hop_length)


@dataclass
class Codebook:
    """k-means centroids (K, D): a frame's code is the index of its nearest centroid."""

    centroids: np.ndarray

    def __post_init__(self):
        self.centroids = np.asarray(self.centroids, dtype=np.float64)
        if self.centroids.ndim != 2 or len(self.centroids) == 0:
            raise ValueError(f"a codebook needs at least one centroid, as a (K, D) array; got shape "
                             f"{self.centroids.shape}")

    @property
    def size(self) -> int:
        return len(self.centroids)

    def encode(self, features) -> torch.Tensor:
        """features (B, T, D) -> codes (B, T) int64, the nearest centroid of every frame."""
        z = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
        if z.ndim != 3 or z.shape[-1] != self.centroids.shape[1]:
            raise ValueError(f"features must be (B, T, {self.centroids.shape[1]}), got shape {z.shape}")
        codes = assign_clusters(rearrange(z, "b t d -> (b t) d"), self.centroids)
        return torch.from_numpy(rearrange(codes, "(b t) -> b t", b=z.shape[0]).astype(np.int64))


def learn_codebook(features, k: int, *, seed: int = 0, n_iter: int = 50) -> Codebook:
    """k-means (:func:`tinysora.speech.kmeans`) on every frame of features (B, T, D).

    Returns a :class:`tinysora.tts.Codebook` of k codes.
    """
    z = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if z.ndim != 3 or z.size == 0:
        raise ValueError(f"features must be a non-empty (B, T, D) array, got shape {z.shape}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (the codebook size) must be a positive int, got {k!r}")
    return Codebook(kmeans(rearrange(z, "b t d -> (b t) d"), k, seed=seed, n_iter=n_iter).centroids)


def code_histogram(codes: torch.Tensor, k: int) -> np.ndarray:
    """Bag of codes: (B, T) -> (B, k), the fraction of each clip's frames that got each code."""
    codes = torch.as_tensor(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be (B, T), got shape {tuple(codes.shape)}")
    if codes.numel() and (codes.min() < 0 or codes.max() >= k):
        raise ValueError(f"codes must lie in 0..{k - 1}")
    return F.one_hot(codes.long(), k).double().mean(1).numpy()


# =============================================================================== byte-pair encoding


def count_pairs(sequences: Sequence[Sequence[int]]) -> Counter:
    """How often each adjacent pair (a, b) occurs, over all sequences."""
    counts: Counter = Counter()
    for seq in sequences:
        counts.update(zip(seq[:-1], seq[1:]))
    return counts


def merge_pair(seq: Sequence[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``seq`` by ``new_id``, left to right, without overlaps."""
    out, i, a, b = [], 0, pair[0], pair[1]
    while i < len(seq):
        if i + 1 < len(seq) and seq[i] == a and seq[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


@dataclass
class BPE:
    """Byte-pair encoding over ``base_size`` codes: merge i makes token ``base_size + i`` of the pair ``merges[i]``."""

    base_size: int
    merges: list[tuple[int, int]]

    @property
    def vocab_size(self) -> int:
        return self.base_size + len(self.merges)

    def encode(self, codes: Sequence[int]) -> list[int]:
        """Apply the merges in the order they were learned: codes -> tokens (never longer)."""
        seq = [int(c) for c in codes]
        if any(not 0 <= c < self.base_size for c in seq):
            raise ValueError(f"codes must lie in 0..{self.base_size - 1}")
        for i, pair in enumerate(self.merges):
            if len(seq) < 2:
                break
            seq = merge_pair(seq, pair, self.base_size + i)
        return seq

    def decode(self, tokens: Sequence[int]) -> list[int]:
        """Expand every token into the codes it stands for (a table built once, merge by merge)."""
        table: list[list[int]] = [[c] for c in range(self.base_size)]
        for a, b in self.merges:
            table.append(table[a] + table[b])
        out = []
        for t in tokens:
            t = int(t)
            if not 0 <= t < self.vocab_size:
                raise ValueError(f"token {t} is outside the vocabulary 0..{self.vocab_size - 1}")
            out.extend(table[t])
        return out


def learn_bpe(sequences: Sequence[Sequence[int]], base_size: int, n_merges: int, min_count: int = 2) -> BPE:
    """Sennrich et al. (2016) on code sequences: merge the most frequent adjacent pair, ``n_merges`` times.

    Ties go to the smallest pair (deterministic). Stops early when no pair occurs ``min_count`` times.
    """
    if not isinstance(base_size, (int, np.integer)) or base_size < 1:
        raise ValueError(f"base_size must be a positive int (the number of codes), got {base_size!r}")
    if not isinstance(n_merges, (int, np.integer)) or n_merges < 0:
        raise ValueError(f"n_merges must be a non-negative int, got {n_merges!r}")
    seqs = [[int(c) for c in s] for s in sequences]
    if not seqs:
        raise ValueError("need at least one sequence to learn merges from")
    if any(not 0 <= c < base_size for s in seqs for c in s):
        raise ValueError(f"codes must lie in 0..{base_size - 1}")
    merges: list[tuple[int, int]] = []
    for i in range(n_merges):
        counts = count_pairs(seqs)
        if not counts:
            break
        pair, n = min(counts.items(), key=lambda item: (-item[1], item[0]))
        if n < min_count:
            break
        merges.append(pair)
        seqs = [merge_pair(s, pair, base_size + i) for s in seqs]
    return BPE(int(base_size), merges)


def compression(bpe: BPE, sequences: Sequence[Sequence[int]]) -> float:
    """1 - (tokens after BPE) / (codes before): 0.4 means sequences 40 % shorter."""
    before = sum(len(s) for s in sequences)
    if before == 0:
        raise ValueError("sequences are empty")
    return 1.0 - sum(len(bpe.encode(s)) for s in sequences) / before


# =============================================================================== the causal decoder


class CausalConv1d(nn.Conv1d):
    """A Conv1d whose output at time t sees inputs at times <= t only (left padding of (k - 1) d).

    ``forward(x (B, C, T)) -> (B, C_out, T)``; :meth:`tinysora.tts.CausalConv1d.step` does the same on a
    chunk, carrying the last ``(k - 1) d`` input frames from chunk to chunk, so that chunks give exactly
    the whole.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int = 1):
        super().__init__(c_in, c_out, kernel_size, dilation=dilation)
        self.context = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.context, 0)))

    def initial_state(self, batch: int) -> torch.Tensor:
        return self.weight.new_zeros(batch, self.in_channels, self.context)

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One chunk x (B, C, t) with the carried state (B, C, (k-1) d) -> (y (B, C_out, t), new state)."""
        full = torch.cat([state, x], dim=-1)
        return super().forward(full), full[..., full.shape[-1] - self.context:]


@dataclass
class DecoderConfig:
    """Sizes of the speech-code decoder."""

    n_codes: int = 64
    n_mels: int = 40
    upsample: int = 4            # log-mel frames per code (the encoder's stack)
    d_model: int = 64
    n_layers: int = 4            # residual blocks, dilations 1, 2, 4, 8, ...
    kernel: int = 3
    speaker_dim: int = 5         # the length of speaker_vector()
    lookahead: int = 0           # codes of look-ahead: the output lags the input by lookahead x upsample frames

    def __post_init__(self):
        for name in ("n_codes", "n_mels", "upsample", "d_model", "n_layers", "kernel", "speaker_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DecoderConfig.{name} must be a positive int, got {value!r}")
        if not isinstance(self.lookahead, int) or self.lookahead < 0:
            raise ValueError(f"DecoderConfig.lookahead must be a non-negative int, got {self.lookahead!r}")


class _ResBlock(nn.Module):
    def __init__(self, cfg: DecoderConfig, dilation: int):
        super().__init__()
        self.conv1 = CausalConv1d(cfg.d_model, cfg.d_model, cfg.kernel, dilation)
        self.conv2 = CausalConv1d(cfg.d_model, cfg.d_model, cfg.kernel, 1)
        self.film = nn.Linear(cfg.speaker_dim, 2 * cfg.d_model)    # speaker -> scale and shift

    def forward(self, x, speaker, states=None):
        scale, shift = rearrange(self.film(speaker), "b (two d) -> two b d 1", two=2)
        if states is None:
            h = self.conv1(x)
            h = F.gelu(h * (1 + scale) + shift)
            return x + self.conv2(h), None
        h, s1 = self.conv1.step(x, states[0])
        h = F.gelu(h * (1 + scale) + shift)
        h, s2 = self.conv2.step(h, states[1])
        return x + h, (s1, s2)


class CodeDecoder(nn.Module):
    """Codes (B, T) and a speaker vector (B, speaker_dim) -> log-mel (B, T x upsample, n_mels), causal.

    Embed each code, repeat it ``upsample`` times (one code per 40 ms, one log-mel frame per 10 ms),
    then residual blocks of causal dilated convolutions modulated by the speaker (FiLM), then a
    linear read-out per frame. Nothing mixes frames except the causal convolutions, so log-mel
    frame t depends on codes up to t // upsample only: the decoder can stream.
    """

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_codes, cfg.d_model)
        self.blocks = nn.ModuleList(_ResBlock(cfg, 2 ** i) for i in range(cfg.n_layers))
        self.out = nn.Linear(cfg.d_model, cfg.n_mels)

    def _check(self, codes, speaker):
        if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or codes.dtype != torch.long:
            raise ValueError(f"codes must be an int64 (B, T) tensor, got {getattr(codes, 'dtype', type(codes))} "
                             f"{tuple(getattr(codes, 'shape', ()))}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.cfg.n_codes):
            raise ValueError(f"codes must lie in 0..{self.cfg.n_codes - 1}")
        if not isinstance(speaker, torch.Tensor) or speaker.shape != (codes.shape[0], self.cfg.speaker_dim):
            raise ValueError(f"speaker must be a ({codes.shape[0]}, {self.cfg.speaker_dim}) tensor, got "
                             f"{tuple(getattr(speaker, 'shape', ()))}")

    def _inputs(self, codes):
        x = repeat(self.embed(codes), "b t d -> b d (t r)", r=self.cfg.upsample)   # (B, D, T x upsample)
        return x

    def forward(self, codes: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        self._check(codes, speaker)
        x = self._inputs(codes)
        for block in self.blocks:
            x, _ = block(x, speaker)
        return self.out(rearrange(x, "b d t -> b t d"))                              # (B, T', n_mels)

    def decode(self, codes: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """Log-mel aligned with the codes, (B, T x upsample, n_mels), using ``lookahead`` codes of the future.

        The causal network's output lags by ``lookahead`` codes, so the last code is repeated
        ``lookahead`` times at the end and the first ``lookahead x upsample`` frames are dropped.
        A stream pays this as latency: frame t is out once code t // upsample + lookahead is in.
        """
        self._check(codes, speaker)
        k = self.cfg.lookahead
        if k:
            codes = torch.cat([codes, codes[:, -1:].expand(-1, k)], dim=1)
        return self(codes, speaker)[:, k * self.cfg.upsample:]

    @torch.no_grad()
    def stream(self, codes: torch.Tensor, speaker: torch.Tensor, chunk: int = 1) -> torch.Tensor:
        """The same output as ``forward``, computed ``chunk`` codes at a time with carried states."""
        self._check(codes, speaker)
        if not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"chunk must be a positive int (codes per step), got {chunk!r}")
        states = [(b.conv1.initial_state(len(codes)), b.conv2.initial_state(len(codes))) for b in self.blocks]
        outputs = []
        for start in range(0, codes.shape[1], chunk):
            x = self._inputs(codes[:, start:start + chunk])
            for i, block in enumerate(self.blocks):
                x, states[i] = block(x, speaker, states[i])
            outputs.append(self.out(rearrange(x, "b d t -> b t d")))
        return torch.cat(outputs, dim=1)


SPEAKER_FIELDS = ("pitch", "rate", "vocal_tract", "breathiness", "noise")


def speaker_vector(speakers: Sequence[audio.Speaker]) -> torch.Tensor:
    """A speaker embedding from the synthesiser's voice parameters, scaled to about [-1, 1]: (B, 5).

    log pitch, rate, vocal-tract length, breathiness, noise (a real system learns this from a clip).
    """
    if isinstance(speakers, audio.Speaker) or not len(speakers):
        raise ValueError("speakers must be a non-empty sequence of tinysora.audio.Speaker")
    rows = [[(np.log(s.pitch) - np.log(150.0)) / 0.6, (s.rate - 1.0) / 0.25, (s.vocal_tract - 1.0) / 0.15,
             (s.breathiness - 0.075) / 0.075, (s.noise - 0.03) / 0.03] for s in speakers]
    return torch.tensor(rows, dtype=torch.float32)


def train_decoder(decoder: CodeDecoder, codes: torch.Tensor, speakers: torch.Tensor, logmel: torch.Tensor, *,
                  steps: int, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
                  desc: str = "training the decoder") -> list[float]:
    """L1 regression of normalised log-mel (N, T x upsample, n_mels) from codes (N, T) and speakers (N, S)."""
    if not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    n_frames = codes.shape[1] * decoder.cfg.upsample
    if logmel.ndim != 3 or logmel.shape[0] != codes.shape[0] or logmel.shape[1] < n_frames:
        raise ValueError(f"logmel must be (N={codes.shape[0]}, >= {n_frames}, n_mels), got {tuple(logmel.shape)}")
    target = logmel[:, :n_frames]
    device = next(decoder.parameters()).device
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    decoder.train()
    bar = progress(range(steps), desc=desc)
    for _ in bar:
        batch = torch.randint(len(codes), (batch_size,), generator=generator)
        pred = decoder.decode(codes[batch].to(device), speakers[batch].to(device))
        loss = F.l1_loss(pred, target[batch].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    decoder.eval()
    return losses


# =============================================================================== waveform


def istft(spectrum: np.ndarray, n_fft: int = 512, hop_length: int = 160, length: int | None = None) -> np.ndarray:
    """Inverse of :func:`tinysora.audio.stft` (centre, Hann): (F, T) complex -> (L,) real.

    Each frame's inverse FFT, windowed again, added at its place (overlap-add) and divided by the
    sum of squared windows there: the least-squares signal whose STFT is closest to ``spectrum``.
    """
    spectrum = np.asarray(spectrum)
    if spectrum.ndim != 2 or spectrum.shape[0] != n_fft // 2 + 1:
        raise ValueError(f"spectrum must be ({n_fft // 2 + 1}, T) for n_fft={n_fft}, got shape {spectrum.shape}")
    n_frames = spectrum.shape[1]
    window = audio.hann_window(n_fft)
    frames = np.fft.irfft(spectrum.T, n=n_fft, axis=-1) * window                  # (T, n_fft)
    total = n_fft + hop_length * (n_frames - 1)
    signal, weight = np.zeros(total), np.zeros(total)
    index = np.arange(n_fft)[None, :] + hop_length * np.arange(n_frames)[:, None]  # (T, n_fft)
    np.add.at(signal, index, frames)
    np.add.at(weight, index, np.broadcast_to(window ** 2, frames.shape))
    signal = signal / np.maximum(weight, 1e-8)
    pad = n_fft // 2
    length = (n_frames - 1) * hop_length if length is None else length
    return signal[pad:pad + length]


def mel_to_magnitude(mel_power: np.ndarray, n_fft: int = 512, sample_rate: int = audio.SAMPLE_RATE) -> np.ndarray:
    """Undo the mel filterbank as well as it can be undone: (n_mels, T) power -> (F, T) magnitude.

    Least squares (the pseudo-inverse of the filterbank), clipped at 0, square root.
    """
    mel_power = np.asarray(mel_power, dtype=np.float64)
    if mel_power.ndim != 2:
        raise ValueError(f"mel_power must be (n_mels, T), got shape {mel_power.shape}")
    filters = audio.mel_filterbank(mel_power.shape[0], n_fft, sample_rate)        # (M, F)
    return np.sqrt(np.maximum(np.linalg.pinv(filters) @ mel_power, 0.0))


def griffin_lim(magnitude: np.ndarray, n_fft: int = 512, hop_length: int = 160, n_iter: int = 32,
                length: int | None = None, seed: int = 0) -> np.ndarray:
    """Griffin & Lim (1984): a waveform whose STFT magnitude is ``magnitude`` (F, T), phase found by iteration.

    Start from random phases; repeat: to a waveform (:func:`tinysora.tts.istft`), back to a spectrum
    (:func:`tinysora.audio.stft`), keep its phase, put the target magnitude back.
    """
    magnitude = np.asarray(magnitude, dtype=np.float64)
    if magnitude.ndim != 2 or magnitude.shape[0] != n_fft // 2 + 1:
        raise ValueError(f"magnitude must be ({n_fft // 2 + 1}, T) for n_fft={n_fft}, got shape {magnitude.shape}")
    if not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive int, got {n_iter!r}")
    length = (magnitude.shape[1] - 1) * hop_length if length is None else length
    phase = np.exp(2j * np.pi * np.random.default_rng(seed).random(magnitude.shape))
    for _ in range(n_iter):
        wave = istft(magnitude * phase, n_fft, hop_length, length)
        rebuilt = audio.stft(wave, n_fft, hop_length)[:, :magnitude.shape[1]]
        phase = np.exp(1j * np.angle(rebuilt))
    return istft(magnitude * phase, n_fft, hop_length, length)


def spectral_convergence(wave: np.ndarray, magnitude: np.ndarray, n_fft: int = 512, hop_length: int = 160) -> float:
    """``||magnitude - |stft(wave)|||`` / ``||magnitude||`` (Frobenius norms): 0 is a perfect match."""
    rebuilt = np.abs(audio.stft(wave, n_fft, hop_length))[:, :magnitude.shape[1]]
    if rebuilt.shape != magnitude.shape:
        raise ValueError(f"the wave's STFT has shape {rebuilt.shape}, the magnitude {magnitude.shape}")
    return float(np.linalg.norm(magnitude - rebuilt) / np.linalg.norm(magnitude))


def logmel_to_wave(logmel, n_iter: int = 32, floor: float = 1e-6, seed: int = 0) -> np.ndarray:
    """Log-mel (T, n_mels), time first, in :func:`tinysora.audio.log_mel_spectrogram` units -> waveform."""
    logmel = np.asarray(logmel.detach().cpu() if isinstance(logmel, torch.Tensor) else logmel, dtype=np.float64)
    if logmel.ndim != 2:
        raise ValueError(f"logmel must be (T, n_mels), got shape {logmel.shape}")
    power = np.maximum(np.exp(logmel.T) - floor, 0.0)                              # (M, T)
    return griffin_lim(mel_to_magnitude(power), n_iter=n_iter, seed=seed).astype(np.float32)


# =============================================================================== text -> speech tokens


class TTSVocab:
    """One id space for the GPT: ``<pad> <bos> <eos>``, the text's characters, ``<sep>``, then the speech tokens.

    A training row is ``<bos> g a s h a <sep> s_1 ... s_n <eos>``; at synthesis the model is given
    everything up to ``<sep>`` and writes the speech tokens.
    """

    def __init__(self, texts: Sequence[str], n_speech: int):
        if not isinstance(n_speech, int) or n_speech < 1:
            raise ValueError(f"n_speech must be a positive int, got {n_speech!r}")
        self.text = CharTokenizer.from_corpus(texts)
        self.sep_id = self.text.vocab_size
        self.offset = self.sep_id + 1
        self.n_speech = n_speech

    @property
    def vocab_size(self) -> int:
        return self.offset + self.n_speech

    def prompt(self, text: str) -> list[int]:
        return self.text.encode(text, bos=True) + [self.sep_id]

    def row(self, text: str, tokens: Sequence[int]) -> list[int]:
        if any(not 0 <= t < self.n_speech for t in tokens):
            raise ValueError(f"speech tokens must lie in 0..{self.n_speech - 1}")
        return self.prompt(text) + [self.offset + int(t) for t in tokens] + [self.text.eos_id]

    def speech_tokens(self, ids: Sequence[int]) -> list[int]:
        """The speech tokens of a generated continuation, up to ``<eos>`` (other ids dropped)."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.text.eos_id:
                break
            if i >= self.offset:
                out.append(i - self.offset)
        return out


def tts_rows(vocab: TTSVocab, texts: Sequence[str], tokens: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """Rows ``<bos> text <sep> speech <eos> <pad>...`` (N, length) for :func:`tinysora.gpt.train_lm`."""
    if len(texts) != len(tokens):
        raise ValueError(f"{len(texts)} texts but {len(tokens)} token sequences")
    rows = [vocab.row(text, seq) for text, seq in zip(texts, tokens)]
    longest = max(len(r) for r in rows)
    if longest > length:
        raise ValueError(f"a row has {longest} ids, longer than length={length}")
    out = torch.full((len(rows), length), vocab.text.pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r)
    return out


@torch.no_grad()
def synthesise_tokens(model, vocab: TTSVocab, text: str, n: int, *, temperature: float = 1.0,
                      top_k: int | None = None, seed: int = 0) -> list[list[int]]:
    """``n`` samples of speech tokens for ``text`` from a trained :class:`tinysora.gpt.GPT`."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    device = next(model.parameters()).device
    prompt = torch.tensor([vocab.prompt(text)] * n, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = model.generate(prompt, model.config.block_size - prompt.shape[1], temperature=temperature, top_k=top_k,
                         eos_id=vocab.text.eos_id, generator=generator)
    return [vocab.speech_tokens(row[prompt.shape[1]:].tolist()) for row in out.cpu()]


def fit_length(codes: Sequence[int], length: int, pad: int) -> list[int]:
    """Crop or pad (with ``pad``, e.g. the silence code) a code sequence to exactly ``length``."""
    codes = list(codes)[:length]
    return codes + [pad] * (length - len(codes))


__all__ = [
    "code_rate", "Codebook", "learn_codebook", "code_histogram",
    "count_pairs", "merge_pair", "BPE", "learn_bpe", "compression",
    "CausalConv1d", "DecoderConfig", "CodeDecoder", "SPEAKER_FIELDS", "speaker_vector", "train_decoder",
    "istft", "mel_to_magnitude", "griffin_lim", "spectral_convergence", "logmel_to_wave",
    "TTSVocab", "tts_rows", "synthesise_tokens", "fit_length",
]
