"""Sound for the book: spectrograms, and a small synthetic language to compute them of.

Two halves.

**Features** (chapter 03, and the speech chapters 09 and 10): a direct DFT to check against,
the short-time Fourier transform :func:`stft` (frames, window, one FFT per frame), the mel scale
and its triangular :func:`mel_filterbank`, and :func:`log_mel_spectrogram`, the 2-D
(mel band x frame) picture of a sound that a CNN reads like an image.

**Synthetic speech**: a formant synthesiser in the tradition of Klatt (1980). A voice is a
source (glottal pulses at the speaker's pitch, or noise) sent through resonators at the formant
frequencies of the vowel being said. Words are strings of consonant-vowel syllables over a tiny
inventory ("bado", "kisu", "gasha"); :class:`Speaker` sets pitch, speaking rate, vocal-tract
length, breathiness and background noise. Everything is deterministic from a seed::

    words = make_spoken_words(n_per_word=20, seed=0)       # train set
    test = make_spoken_words(n_per_word=10, seed=1)        # new speakers
    mels = log_mel_spectrogram(words.padded(), words.sample_rate)   # (N, n_mels, frames)

Shapes: a waveform is ``(L,)`` float32 in about [-1, 1]; a batch is ``(N, L)``; a spectrogram is
``(n_freq, n_frames)`` (torch's layout), ``(N, n_freq, n_frames)`` for a batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from einops import rearrange
from scipy.signal import lfilter

from tinysora.runtime import progress

SAMPLE_RATE = 16_000

# ----------------------------------------------------------------------------- Fourier transforms


def _check_signal(signal, name: str = "signal") -> np.ndarray:
    try:
        import torch
        if isinstance(signal, torch.Tensor):
            signal = signal.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    signal = np.asarray(signal)
    if signal.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (L,) or a batch (N, L), got shape {signal.shape}")
    if not np.issubdtype(signal.dtype, np.number) or np.iscomplexobj(signal):
        raise TypeError(f"{name} must hold real numbers, got dtype {signal.dtype}")
    return signal.astype(np.float64, copy=False)


def dft(x: np.ndarray) -> np.ndarray:
    """The discrete Fourier transform by its definition, O(N^2): for checking, not for use.

    ``X[..., k] = sum_n x[..., n] exp(-2 pi i k n / N)`` for k = 0 .. N-1; x: (..., N) -> (..., N).
    """
    x = np.asarray(x)
    n = x.shape[-1]
    if n == 0:
        raise ValueError("dft needs at least one sample")
    k = np.arange(n)
    matrix = np.exp(-2j * np.pi * np.outer(k, k) / n)  # (N, N), symmetric
    return x @ matrix


def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window (torch's default): 0.5 - 0.5 cos(2 pi n / length), n = 0 .. length-1."""
    if not isinstance(length, (int, np.integer)) or length <= 0:
        raise ValueError(f"window length must be a positive int, got {length!r}")
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)


def frame_signal(signal: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Overlapping frames: (..., L) -> (..., n_frames, frame_length), n_frames = 1 + (L - frame_length) // hop."""
    signal = np.asarray(signal)
    if frame_length <= 0 or hop_length <= 0:
        raise ValueError(f"frame_length and hop_length must be positive, got {frame_length}, {hop_length}")
    if signal.shape[-1] < frame_length:
        raise ValueError(f"signal of length {signal.shape[-1]} is shorter than one frame ({frame_length})")
    windows = np.lib.stride_tricks.sliding_window_view(signal, frame_length, axis=-1)
    return windows[..., ::hop_length, :]


def stft(signal: np.ndarray, n_fft: int = 512, hop_length: int | None = None, center: bool = True) -> np.ndarray:
    """Short-time Fourier transform: cut into frames, window each, one FFT per frame.

    signal: (L,) or (N, L) -> complex (n_fft // 2 + 1, n_frames) or (N, n_fft // 2 + 1, n_frames).
    Same conventions as ``torch.stft(..., window=torch.hann_window(n_fft), center=center,
    pad_mode="reflect", return_complex=True)``: with ``center`` the signal is reflect-padded by
    ``n_fft // 2`` on both sides so that frame t is centred on sample ``t * hop_length``.
    Only the non-negative frequencies are kept (a real signal's spectrum is conjugate-symmetric).
    """
    return np.swapaxes(_stft_frames(signal, n_fft, hop_length, center), -1, -2)  # (..., F, T)


def _stft_frames(signal, n_fft: int, hop_length: int | None, center: bool) -> np.ndarray:
    """:func:`stft` with frames first: (..., n_frames, n_fft // 2 + 1)."""
    signal = _check_signal(signal)
    if not isinstance(n_fft, (int, np.integer)) or n_fft < 2:
        raise ValueError(f"n_fft must be an int >= 2, got {n_fft!r}")
    hop_length = n_fft // 4 if hop_length is None else hop_length
    if center:
        pad = n_fft // 2
        if signal.shape[-1] <= pad:
            raise ValueError(f"signal of length {signal.shape[-1]} is too short to reflect-pad by {pad}")
        widths = [(0, 0)] * (signal.ndim - 1) + [(pad, pad)]
        signal = np.pad(signal, widths, mode="reflect")
    frames = frame_signal(signal, n_fft, hop_length) * hann_window(n_fft)  # (..., T, n_fft)
    return np.fft.rfft(frames, axis=-1)                                    # (..., T, F)


def hz_to_mel(frequency):
    """The mel scale (HTK formula): 2595 log10(1 + f / 700). Equal steps in mel sound equally far apart."""
    frequency = np.asarray(frequency, dtype=np.float64)
    if (frequency < 0).any():
        raise ValueError("frequencies must be non-negative (Hz)")
    return 2595.0 * np.log10(1.0 + frequency / 700.0)


def mel_to_hz(mel):
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    if (mel < 0).any():
        raise ValueError("mel values must be non-negative")
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> np.ndarray:
    """Triangular filters equally spaced on the mel scale: (n_mels, n_fft // 2 + 1).

    Filter m rises linearly from 0 at centre m-1 to 1 at centre m and falls to 0 at centre m+1,
    where the n_mels + 2 centres are equally spaced in mel between ``f_min`` and ``f_max``
    (default: the Nyquist frequency). Low frequencies get narrow filters, high ones wide filters,
    as the ear resolves them. (The HTK shape with peak 1, like torchaudio's ``norm=None``.)
    """
    if n_mels <= 0 or n_fft < 2 or sample_rate <= 0:
        raise ValueError(f"n_mels, n_fft and sample_rate must be positive, got {n_mels}, {n_fft}, {sample_rate}")
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0.0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= sample_rate / 2 = {sample_rate / 2}, got {f_min}, {f_max}")
    bins = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)                           # (F,) in Hz
    centres = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))  # (n_mels + 2,)
    left, centre, right = centres[:-2, None], centres[1:-1, None], centres[2:, None]   # (n_mels, 1) each
    rising = (bins[None, :] - left) / (centre - left)
    falling = (right - bins[None, :]) / (right - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def mel_spectrogram(signal: np.ndarray, sample_rate: int = SAMPLE_RATE, n_fft: int = 512, hop_length: int = 160,
                    n_mels: int = 40, f_min: float = 0.0, f_max: float | None = None) -> np.ndarray:
    """Power spectrogram through the mel filterbank: (L,) -> (n_mels, n_frames), (N, L) -> (N, n_mels, n_frames)."""
    spectrum = _stft_frames(signal, n_fft, hop_length, center=True)     # (..., T, F)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    filters = mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max)   # (M, F)
    return np.swapaxes(power @ filters.T, -1, -2)                        # (..., M, T)


def log_mel_spectrogram(signal: np.ndarray, sample_rate: int = SAMPLE_RATE, n_fft: int = 512, hop_length: int = 160,
                        n_mels: int = 40, f_min: float = 0.0, f_max: float | None = None,
                        floor: float = 1e-6) -> np.ndarray:
    """``log(mel_spectrogram + floor)``: loudness is heard (and best modelled) on a log scale.

    With the defaults at 16 kHz: 32 ms frames every 10 ms, 40 mel bands, float32.
    """
    if floor <= 0:
        raise ValueError(f"floor must be positive (it keeps log away from -inf), got {floor}")
    mel = mel_spectrogram(signal, sample_rate, n_fft, hop_length, n_mels, f_min, f_max)
    return np.log(mel + floor).astype(np.float32)


# ----------------------------------------------------------------------------- the phone inventory

# Formant frequencies (F1, F2, F3) in Hz of an adult male voice, after Peterson & Barney (1952).
VOWELS: dict[str, tuple[float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0),
    "e": (530.0, 1840.0, 2480.0),
    "i": (270.0, 2290.0, 3010.0),
    "o": (570.0, 840.0, 2410.0),
    "u": (300.0, 870.0, 2240.0),
}


@dataclass(frozen=True)
class Consonant:
    """How a consonant is made: its manner, voicing, where its noise or murmur sits in frequency."""

    manner: str                 # "stop", "fricative", "nasal" or "liquid"
    voiced: bool
    locus: tuple[float, float, float]   # formants the vowel's formants glide from
    noise_centre: float = 0.0   # centre of the burst / frication noise (Hz)
    noise_bandwidth: float = 0.0


CONSONANTS: dict[str, Consonant] = {
    "p": Consonant("stop", False, (300.0, 800.0, 2200.0), 900.0, 1500.0),
    "b": Consonant("stop", True, (300.0, 800.0, 2200.0), 900.0, 1500.0),
    "t": Consonant("stop", False, (300.0, 1800.0, 2700.0), 4500.0, 2500.0),
    "d": Consonant("stop", True, (300.0, 1800.0, 2700.0), 4500.0, 2500.0),
    "k": Consonant("stop", False, (300.0, 2200.0, 2500.0), 2200.0, 800.0),
    "g": Consonant("stop", True, (300.0, 2200.0, 2500.0), 2200.0, 800.0),
    "s": Consonant("fricative", False, (300.0, 1700.0, 2700.0), 5500.0, 2000.0),
    "sh": Consonant("fricative", False, (300.0, 1900.0, 2500.0), 2800.0, 1200.0),
    "f": Consonant("fricative", False, (300.0, 900.0, 2300.0), 6000.0, 4000.0),
    "m": Consonant("nasal", True, (250.0, 1000.0, 2300.0)),
    "n": Consonant("nasal", True, (250.0, 1600.0, 2600.0)),
    "l": Consonant("liquid", True, (360.0, 1300.0, 2700.0)),
}

# The vocabulary of spoken words: two CV syllables each, some of them close pairs ("bada" / "bado",
# "kima" / "kisu") so that recognising them takes more than the first sound.
WORDS: tuple[str, ...] = ("bada", "bado", "kima", "kisu", "tonu", "sepi", "lumo", "gasha", "nadi", "fupe")
CLIP_SECONDS = 1.0   # every word of WORDS fits: at most 0.16 s of silence + 0.532 s x 1.12 / 0.8 (slowest) + rounding

_SYLLABLE = re.compile(r"(sh|[pbtdkgsfmnl])?([aeiou])")


def syllabify(word: str) -> list[str]:
    """Split a word into its (consonant-)vowel syllables: ``"gasha" -> ["ga", "sha"]``.

    Any string of syllables over :data:`CONSONANTS` and :data:`VOWELS` can be spoken, not only
    the :data:`WORDS`; a space marks a short pause.
    """
    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__}")
    syllables, position = [], 0
    for part in word.lower().split(" "):
        if not part:
            continue
        if syllables:
            syllables.append(" ")
        position = 0
        while position < len(part):
            match = _SYLLABLE.match(part, position)
            if match is None:
                raise ValueError(
                    f"cannot split {word!r} into syllables at {part[position:]!r}: a syllable is an optional "
                    f"consonant ({', '.join(CONSONANTS)}) followed by a vowel ({', '.join(VOWELS)})")
            syllables.append(match.group(0))
            position = match.end()
    if not syllables:
        raise ValueError("cannot speak an empty word")
    return syllables


# ----------------------------------------------------------------------------- speakers


@dataclass(frozen=True)
class Speaker:
    """A voice.

    pitch: fundamental frequency in Hz (about 100 for a low voice, 220 for a high one);
    rate: speaking rate (1.5 = 50 % faster, shorter sounds); vocal_tract: formant scale (a shorter
    vocal tract, 1.15, raises every formant by 15 %); breathiness: aspiration noise mixed into
    the voice (0 .. 0.5); noise: background noise level relative to the speech (0 .. 0.3).
    """

    pitch: float = 120.0
    rate: float = 1.0
    vocal_tract: float = 1.0
    breathiness: float = 0.05
    noise: float = 0.02

    def __post_init__(self):
        checks = (("pitch", 50.0, 400.0), ("rate", 0.5, 2.0), ("vocal_tract", 0.7, 1.4),
                  ("breathiness", 0.0, 1.0), ("noise", 0.0, 1.0))
        for name, low, high in checks:
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating)) or not low <= value <= high:
                raise ValueError(f"Speaker.{name} must be a number in [{low}, {high}], got {value!r}")


def random_speaker(rng: np.random.Generator) -> Speaker:
    """A random voice: pitch log-uniform in 85..260 Hz, a vocal tract that shortens a little as
    the pitch rises (as from men to women to children), rate 0.8..1.25, some breath and noise."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    pitch = float(np.exp(rng.uniform(np.log(85.0), np.log(260.0))))
    tract = float(np.clip(0.92 + 0.2 * (np.log(pitch / 85.0) / np.log(260.0 / 85.0)) + rng.normal(0, 0.03), 0.8, 1.25))
    return Speaker(pitch=pitch, rate=float(rng.uniform(0.8, 1.25)), vocal_tract=tract,
                   breathiness=float(rng.uniform(0.0, 0.15)), noise=float(rng.uniform(0.005, 0.05)))


# ----------------------------------------------------------------------------- the synthesiser

_BLOCK_SECONDS = 0.005        # parameters are updated every 5 ms
_BANDWIDTHS = (80.0, 100.0, 140.0)


@dataclass
class _Track:
    """Synthesis parameters, one value per block."""

    voice: list[float] = field(default_factory=list)       # amplitude of the glottal source
    aspiration: list[float] = field(default_factory=list)  # noise through the vocal tract
    frication: list[float] = field(default_factory=list)   # noise through its own resonator
    formants: list[tuple[float, float, float]] = field(default_factory=list)
    noise_centre: list[float] = field(default_factory=list)
    noise_bandwidth: list[float] = field(default_factory=list)
    labels: list[tuple[str, int, int]] = field(default_factory=list)  # (phone, first block, end block)

    def add(self, label: str, seconds: float, *, voice=0.0, aspiration=0.0, frication=0.0,
            formants=(500.0, 1500.0, 2500.0), noise_centre=3000.0, noise_bandwidth=1000.0) -> None:
        blocks = max(1, int(round(seconds / _BLOCK_SECONDS)))
        start = len(self.voice)
        self.voice += [voice] * blocks
        self.aspiration += [aspiration] * blocks
        self.frication += [frication] * blocks
        self.formants += [tuple(formants)] * blocks
        self.noise_centre += [noise_centre] * blocks
        self.noise_bandwidth += [noise_bandwidth] * blocks
        self.labels.append((label, start, start + blocks))


def _plan(syllables: Sequence[str], speaker: Speaker, rng: np.random.Generator) -> _Track:
    """Turn syllables into a block-by-block parameter track (durations in seconds at rate 1)."""
    track = _Track()
    scale = 1.0 / speaker.rate

    def dur(seconds: float) -> float:  # speaker rate, plus a little natural variation
        return seconds * scale * float(rng.uniform(0.88, 1.12))

    track.add("sil", float(rng.uniform(0.03, 0.08)))
    for index, syllable in enumerate(syllables):
        if syllable == " ":
            track.add("sil", dur(0.08))
            continue
        match = _SYLLABLE.fullmatch(syllable)
        consonant_name, vowel_name = match.group(1), match.group(2)
        vowel = tuple(f * float(rng.uniform(0.96, 1.04)) for f in VOWELS[vowel_name])
        if consonant_name:
            c = CONSONANTS[consonant_name]
            if c.manner == "stop":
                track.add("clo", dur(0.055), voice=0.08 if c.voiced else 0.0, formants=c.locus)
                track.add(consonant_name, dur(0.012), frication=1.0, formants=c.locus,
                          noise_centre=c.noise_centre, noise_bandwidth=c.noise_bandwidth)
                if not c.voiced:  # aspiration: breath through the vowel's tract before voicing starts
                    track.add("asp", dur(0.045), aspiration=0.35, formants=c.locus)
            elif c.manner == "fricative":
                track.add(consonant_name, dur(0.11), frication=0.55, formants=c.locus,
                          noise_centre=c.noise_centre, noise_bandwidth=c.noise_bandwidth)
            elif c.manner == "nasal":
                track.add(consonant_name, dur(0.075), voice=0.35, formants=c.locus)
            else:  # liquid
                track.add(consonant_name, dur(0.06), voice=0.6, formants=c.locus)
        stressed = index == 0
        track.add(vowel_name, dur(0.17 if stressed else 0.14), voice=1.0 if stressed else 0.85,
                  aspiration=speaker.breathiness, formants=vowel)
    track.add("sil", float(rng.uniform(0.03, 0.08)))
    return track


def _smooth(values: np.ndarray, blocks: int) -> np.ndarray:
    """Moving average over ``blocks`` blocks along axis 0: turns steps into glides."""
    if blocks <= 1:
        return values
    kernel = np.ones(blocks) / blocks
    pad = [(blocks // 2, blocks - 1 - blocks // 2)] + [(0, 0)] * (values.ndim - 1)
    padded = np.pad(values, pad, mode="edge")
    return np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), 0, padded)


def _resonance(frequency: np.ndarray, bandwidth: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    """Frequency response of Klatt resonators (unit gain at 0 Hz) on the rfft grid.

    ``H(z) = A / (1 - B z^-1 - C z^-2)`` with ``C = -exp(-2 pi bw T)``,
    ``B = 2 exp(-pi bw T) cos(2 pi f T)``, ``A = 1 - B - C``: a peak at ``f`` about ``bw`` Hz wide.
    frequency, bandwidth: (...,) -> (..., n_fft // 2 + 1) complex.
    """
    t = 1.0 / sample_rate
    c = -np.exp(-2 * np.pi * bandwidth * t)[..., None]
    b = (2 * np.exp(-np.pi * bandwidth * t) * np.cos(2 * np.pi * frequency * t))[..., None]
    z1 = np.exp(-1j * np.linspace(0.0, np.pi, n_fft // 2 + 1))  # z^-1 on the unit circle
    return (1.0 - b - c) / (1.0 - b * z1 - c * z1 ** 2)


def _filter_frames(source: np.ndarray, responses: np.ndarray, hop: int) -> np.ndarray:
    """Time-varying filtering by overlap-add: frame t of ``source`` goes through ``responses[t]``.

    source: (n_frames * hop,); responses: (n_frames, n_fft // 2 + 1) with n_fft = 8 * hop.
    Frames are 2 * hop long under a periodic Hann window (which sums to one at hop 50 %), zero
    padded to 8 * hop so that each resonator's ringing fits (no circular wrap-around), filtered by
    multiplying spectra, and added back in place. For a constant response this is exactly
    ordinary filtering.
    """
    n_frames, n_fft = responses.shape[0], 8 * hop
    padded = np.concatenate([np.zeros(hop), source, np.zeros(2 * hop)])
    frames = frame_signal(padded, 2 * hop, hop)[:n_frames + 1] * hann_window(2 * hop)   # (T+1, 2 hop)
    responses = np.concatenate([responses, responses[-1:]])                                # (T+1, F)
    pieces = np.fft.irfft(np.fft.rfft(frames, n=n_fft) * responses, n=n_fft)              # (T+1, 8 hop)
    out = np.zeros((n_frames + 9, hop))
    chunks = rearrange(pieces, "t (k n) -> t k n", k=8)                                    # (T+1, 8, hop)
    for k in range(8):                                 # piece t, chunk k lands at hop position t + k
        out[k:k + n_frames + 1] += chunks[:, k]
    return rearrange(out, "t n -> (t n)")[hop:hop + len(source)]


def synthesize(text: str | Sequence[str], speaker: Speaker | None = None, sample_rate: int = SAMPLE_RATE,
               seed: int = 0, duration: float | None = None, return_alignment: bool = False):
    """Speak ``text`` (a word such as ``"gasha"`` or a list of syllables) with ``speaker``'s voice.

    Returns a float32 waveform (L,) with RMS about 0.1 (and, with ``return_alignment``, a list of
    ``(phone, start_sample, end_sample)``). The same arguments always give the same waveform.
    With ``duration`` (seconds) the word sits at a random time inside a clip of exactly that length,
    with background noise throughout (a ``ValueError`` if the word does not fit).
    How: per 5 ms block, a plan of source amplitudes and formant targets (consonant loci gliding
    into vowels); a glottal pulse train at the speaker's pitch (falling over the word, with a
    little jitter) and noise sources; a cascade of three time-varying formant resonators; then
    background noise at the speaker's level.
    """
    speaker = Speaker() if speaker is None else speaker
    if not isinstance(speaker, Speaker):
        raise TypeError(f"speaker must be a Speaker, got {type(speaker).__name__}")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate < 8000:
        raise ValueError(f"sample_rate must be an int >= 8000 Hz, got {sample_rate!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if duration is not None and not (isinstance(duration, (int, float)) and duration > 0):
        raise ValueError(f"duration must be a positive number of seconds or None, got {duration!r}")
    syllables = syllabify(text) if isinstance(text, str) else [s for part in text for s in syllabify(part)]
    rng = np.random.default_rng(seed)
    track = _plan(syllables, speaker, rng)

    block = int(round(_BLOCK_SECONDS * sample_rate))
    n_blocks = len(track.voice)
    length = n_blocks * block
    # block parameters, smoothed: formants glide over ~30 ms, amplitudes ramp over ~10 ms
    formants = _smooth(np.array(track.formants) * speaker.vocal_tract, 6)          # (n_blocks, 3)
    formants = np.minimum(formants, 0.45 * sample_rate)
    amplitudes = _smooth(np.stack([track.voice, track.aspiration, track.frication], 1), 2)  # (n_blocks, 3)
    noise_centre = np.minimum(np.array(track.noise_centre), 0.45 * sample_rate)
    noise_bandwidth = np.array(track.noise_bandwidth)
    per_sample = lambda values: np.repeat(values, block, axis=0)  # noqa: E731

    # glottal source: one pulse per pitch period; pitch falls ~15 % over the word (declination)
    t = np.arange(length) / sample_rate
    contour = speaker.pitch * (1.08 - 0.15 * t / t[-1]) * (1 + 0.01 * rng.standard_normal(n_blocks).repeat(block))
    phase = np.cumsum(contour / sample_rate)
    pulses = np.diff(np.floor(phase), prepend=0.0)                                   # 1 at each new period
    glottal = lfilter([1.0], [1.0, -1.8, 0.81], pulses)                              # soft pulse shape
    glottal = np.diff(glottal, prepend=0.0)                                          # lip radiation
    glottal /= np.sqrt(np.mean(glottal ** 2)) + 1e-12
    noise = rng.standard_normal(length)

    tract = _resonance(formants, np.broadcast_to(_BANDWIDTHS, formants.shape), sample_rate, 8 * block).prod(1)
    source = per_sample(amplitudes[:, 0]) * glottal + per_sample(amplitudes[:, 1]) * noise * 0.5
    voiced = _filter_frames(source, tract, block)                                    # (L,)

    fric_filter = _resonance(noise_centre, noise_bandwidth, sample_rate, 8 * block) ** 2   # two in cascade
    fric_noise = np.diff(rng.standard_normal(length), prepend=0.0)                   # tilt towards highs
    frication = _filter_frames(per_sample(amplitudes[:, 2]) * fric_noise, fric_filter, block)

    wave = voiced + frication
    wave *= 0.1 / (np.sqrt(np.mean(wave ** 2)) + 1e-12)
    offset = 0
    if duration is not None:   # place the word at a random time in a clip of fixed length
        total = int(round(duration * sample_rate))
        if length > total:
            raise ValueError(f"{text!r} lasts {length / sample_rate:.2f} s in this voice (rate {speaker.rate:.2f}), "
                             f"longer than duration={duration} s")
        offset = int(rng.integers(0, total - length + 1))
        wave = np.concatenate([np.zeros(offset), wave, np.zeros(total - length - offset)])
    wave += speaker.noise * 0.1 * rng.standard_normal(len(wave))   # background noise, everywhere
    wave = wave.astype(np.float32)
    if not return_alignment:
        return wave
    alignment = [(label, offset + start * block, offset + end * block) for label, start, end in track.labels]
    return wave, alignment


# ----------------------------------------------------------------------------- data sets


@dataclass
class SpokenWords:
    """Utterances of a vocabulary. ``waveforms[i]`` (L_i,) says ``vocabulary[labels[i]]`` in the
    voice ``speakers[i]``; lengths differ with the word and the speaker's rate."""

    waveforms: list[np.ndarray]
    labels: np.ndarray
    vocabulary: tuple[str, ...]
    speakers: list[Speaker]
    sample_rate: int

    def __len__(self) -> int:
        return len(self.waveforms)

    @property
    def words(self) -> list[str]:
        """The word of every utterance, as text."""
        return [self.vocabulary[label] for label in self.labels]

    def padded(self, length: int | None = None) -> np.ndarray:
        """All waveforms in one (N, length) float32 array: zero-padded at the end, or cut."""
        length = max(len(w) for w in self.waveforms) if length is None else length
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        out = np.zeros((len(self.waveforms), length), dtype=np.float32)
        for i, wave in enumerate(self.waveforms):
            out[i, :min(length, len(wave))] = wave[:length]
        return out


def make_spoken_words(n_per_word: int, seed: int = 0, vocabulary: Sequence[str] = WORDS,
                      sample_rate: int = SAMPLE_RATE, n_speakers: int | None = None,
                      duration: float | None = None, desc: str | None = None) -> SpokenWords:
    """``n_per_word`` utterances of every word in ``vocabulary``, shuffled, deterministic from ``seed``.

    Each utterance has its own random voice (:func:`random_speaker`), or one of ``n_speakers``
    voices drawn first. Different seeds give different speakers: use one seed to train and another
    to test, and the test measures recognition of voices never heard. With ``duration`` every
    utterance is a clip of that many seconds, the word at a random time in it (see :func:`synthesize`);
    :data:`CLIP_SECONDS` fits every word of :data:`WORDS` at the slowest rate. With ``desc`` a
    progress bar of that name counts the utterances.
    """
    if not isinstance(n_per_word, (int, np.integer)) or n_per_word <= 0:
        raise ValueError(f"n_per_word must be a positive int, got {n_per_word!r}")
    if isinstance(vocabulary, str) or not vocabulary:
        raise ValueError("vocabulary must be a non-empty sequence of words")
    vocabulary = tuple(vocabulary)
    for word in vocabulary:
        syllabify(word)  # raises a ValueError naming the word that cannot be spoken
    if n_speakers is not None and n_speakers <= 0:
        raise ValueError(f"n_speakers must be positive, got {n_speakers}")
    rng = np.random.default_rng(seed)
    voices = [random_speaker(rng) for _ in range(n_speakers)] if n_speakers else None
    labels = rng.permutation(np.repeat(np.arange(len(vocabulary)), n_per_word))
    waveforms, speakers = [], []
    for label in progress(labels, desc=desc, disable=desc is None):
        speaker = voices[rng.integers(len(voices))] if voices else random_speaker(rng)
        waveforms.append(synthesize(vocabulary[label], speaker, sample_rate, seed=int(rng.integers(2**31)),
                                    duration=duration))
        speakers.append(speaker)
    return SpokenWords(waveforms, labels.astype(np.int64), vocabulary, speakers, sample_rate)


__all__ = [
    "SAMPLE_RATE", "dft", "hann_window", "frame_signal", "stft", "hz_to_mel", "mel_to_hz", "mel_filterbank",
    "mel_spectrogram", "log_mel_spectrogram",
    "VOWELS", "CONSONANTS", "Consonant", "WORDS", "CLIP_SECONDS", "syllabify", "Speaker", "random_speaker",
    "synthesize",
    "SpokenWords", "make_spoken_words",
]
