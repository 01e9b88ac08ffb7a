import numpy as np
import pytest
import torch

from tinysora import audio


def test_dft_matches_numpy_fft():
    x = np.random.default_rng(0).normal(size=(3, 37))
    np.testing.assert_allclose(audio.dft(x), np.fft.fft(x), atol=1e-9)


def test_hann_window_matches_torch():
    np.testing.assert_allclose(audio.hann_window(400), torch.hann_window(400, dtype=torch.float64).numpy(), atol=1e-12)


@pytest.mark.parametrize("n_fft, hop, center", [(512, 160, True), (256, 64, True), (400, 100, False)])
def test_stft_matches_torch_stft(n_fft, hop, center):
    x = np.random.default_rng(0).normal(size=(2, 3000))
    theirs = torch.stft(torch.tensor(x), n_fft, hop, window=torch.hann_window(n_fft, dtype=torch.float64),
                        center=center, pad_mode="reflect", return_complex=True).numpy()
    np.testing.assert_allclose(audio.stft(x, n_fft, hop, center), theirs, atol=1e-9)


def test_stft_frame_equals_direct_dft_of_the_windowed_frame():
    n_fft, hop = 128, 32
    x = np.random.default_rng(1).normal(size=1000)
    spectrum = audio.stft(x, n_fft, hop, center=False)
    for t in (0, 5, spectrum.shape[1] - 1):
        frame = x[t * hop:t * hop + n_fft] * audio.hann_window(n_fft)
        np.testing.assert_allclose(spectrum[:, t], audio.dft(frame)[:n_fft // 2 + 1], atol=1e-9)


def test_stft_finds_a_pure_tone():
    rate, f0 = 16000, 1000.0
    t = np.arange(rate // 4) / rate
    spectrum = np.abs(audio.stft(np.sin(2 * np.pi * f0 * t), 512, 160))
    peak_bin = spectrum.mean(axis=1).argmax()
    assert peak_bin * rate / 512 == pytest.approx(f0, abs=rate / 512)


def test_mel_scale_round_trip_and_known_value():
    f = np.array([0.0, 100.0, 1000.0, 7999.0])
    np.testing.assert_allclose(audio.mel_to_hz(audio.hz_to_mel(f)), f, atol=1e-9)
    assert audio.hz_to_mel(1000.0) == pytest.approx(999.99, abs=0.05)   # 1000 Hz is about 1000 mel


def test_mel_filterbank_is_triangles_between_mel_spaced_centres():
    n_mels, n_fft, rate = 20, 512, 16000
    bank = audio.mel_filterbank(n_mels, n_fft, rate)
    assert bank.shape == (n_mels, n_fft // 2 + 1)
    freqs = np.linspace(0, rate / 2, n_fft // 2 + 1)
    centres = audio.mel_to_hz(np.linspace(0, audio.hz_to_mel(rate / 2), n_mels + 2))
    for m in range(n_mels):   # an independent, point-by-point evaluation of the triangle
        lo, mid, hi = centres[m], centres[m + 1], centres[m + 2]
        expected = [max(0.0, min((f - lo) / (mid - lo), (hi - f) / (hi - mid))) for f in freqs]
        np.testing.assert_allclose(bank[m], expected, atol=1e-12)
    widths = (bank > 0).sum(axis=1)
    assert widths[-1] > widths[0]   # high-frequency filters are wider


def test_log_mel_spectrogram_shapes():
    waves = np.random.default_rng(0).normal(size=(3, 8000)).astype(np.float32)
    mel = audio.log_mel_spectrogram(waves, 16000, n_fft=512, hop_length=160, n_mels=32)
    assert mel.shape == (3, 32, 1 + 8000 // 160) and mel.dtype == np.float32
    np.testing.assert_allclose(mel[1], audio.log_mel_spectrogram(waves[1], 16000, n_fft=512, hop_length=160, n_mels=32))


def test_feature_functions_explain_bad_arguments():
    with pytest.raises(ValueError, match="1-D"):
        audio.stft(np.zeros((2, 2, 100)))
    with pytest.raises(ValueError, match="f_min < f_max"):
        audio.mel_filterbank(10, 512, 16000, f_max=9000)
    with pytest.raises(ValueError, match="shorter than one frame"):
        audio.frame_signal(np.zeros(10), 20, 5)


def test_syllabify_splits_consonant_vowel_syllables():
    assert audio.syllabify("gasha") == ["ga", "sha"]
    assert audio.syllabify("fupeko") == ["fu", "pe", "ko"]
    assert audio.syllabify("a bo") == ["a", " ", "bo"]
    with pytest.raises(ValueError, match="cannot split 'bx'"):
        audio.syllabify("bx")


def test_synthesis_is_deterministic_and_seed_dependent():
    speaker = audio.Speaker(pitch=150.0)
    a = audio.synthesize("bado", speaker, seed=3)
    np.testing.assert_array_equal(a, audio.synthesize("bado", speaker, seed=3))
    assert not np.array_equal(a, audio.synthesize("bado", speaker, seed=4))
    assert a.dtype == np.float32 and np.isfinite(a).all()
    assert np.sqrt(np.mean(a.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=0.1)


def test_pitch_of_a_vowel_follows_the_speaker():
    rate = 16000
    for pitch in (100.0, 200.0):
        wave, alignment = audio.synthesize("a", audio.Speaker(pitch=pitch, noise=0.0, breathiness=0.0),
                                           seed=0, return_alignment=True)
        (_, start, end), = [seg for seg in alignment if seg[0] == "a"]
        middle = wave[start + (end - start) // 4:end - (end - start) // 4].astype(np.float64)
        ac = np.correlate(middle, middle, "full")[len(middle) - 1:]
        lo, hi = int(rate / 300), int(rate / 60)
        window = ac[lo:hi]
        period = lo + int(np.argmax(window > 0.7 * window.max()))   # first strong peak: no octave errors
        period = period + int(np.argmax(ac[period:period + lo]))      # climb to the top of that peak
        # the contour falls over the word and starts 8 % above the speaker's pitch
        assert rate / period == pytest.approx(pitch, rel=0.15)


def test_rate_changes_duration():
    slow = audio.synthesize("kisu", audio.Speaker(rate=0.8), seed=0)
    fast = audio.synthesize("kisu", audio.Speaker(rate=1.25), seed=0)
    assert len(fast) < 0.8 * len(slow)


def test_vowel_formants_show_in_the_spectrum():
    rate = 16000
    for vowel, (f1, f2, _) in audio.VOWELS.items():
        wave, alignment = audio.synthesize(vowel, audio.Speaker(pitch=100.0, noise=0.0, breathiness=0.0),
                                           seed=0, return_alignment=True)
        (_, start, end), = [seg for seg in alignment if seg[0] == vowel]
        spectrum = np.abs(np.fft.rfft(wave[start:end] * np.hanning(end - start), 8192))
        freqs = np.fft.rfftfreq(8192, 1 / rate)
        band = (freqs > 150) & (freqs < 1000)
        peak = freqs[band][spectrum[band].argmax()]
        assert abs(peak - f1) < 150, (vowel, peak, f1)   # the strongest low harmonic sits near F1


def test_speaker_validation_and_random_speakers():
    with pytest.raises(ValueError, match="pitch"):
        audio.Speaker(pitch=10.0)
    rng = np.random.default_rng(0)
    voices = [audio.random_speaker(rng) for _ in range(50)]
    pitches = np.array([v.pitch for v in voices])
    assert pitches.min() >= 85 and pitches.max() <= 260 and pitches.std() > 30
    with pytest.raises(TypeError, match="Generator"):
        audio.random_speaker(0)


def test_make_spoken_words_is_balanced_deterministic_and_pads():
    words = audio.make_spoken_words(3, seed=0)
    assert len(words) == 3 * len(audio.WORDS)
    assert np.bincount(words.labels).tolist() == [3] * len(audio.WORDS)
    again = audio.make_spoken_words(3, seed=0, desc="words")          # a progress bar changes nothing
    assert all(np.array_equal(a, b) for a, b in zip(words.waveforms, again.waveforms))
    other = audio.make_spoken_words(3, seed=1)
    assert words.speakers[0] != other.speakers[0]
    padded = words.padded()
    assert padded.shape == (len(words), max(len(w) for w in words.waveforms))
    assert words.padded(100).shape == (len(words), 100)
    assert words.words[0] == audio.WORDS[words.labels[0]]


def test_make_spoken_words_with_a_fixed_set_of_speakers():
    words = audio.make_spoken_words(4, seed=0, vocabulary=("bada", "kisu"), n_speakers=2)
    assert len(set(words.speakers)) <= 2
    with pytest.raises(ValueError, match="cannot split"):
        audio.make_spoken_words(1, vocabulary=("xyz",))


def test_fixed_duration_clips_hold_every_word_at_a_random_time():
    words = audio.make_spoken_words(2, seed=0, duration=audio.CLIP_SECONDS)
    assert {len(w) for w in words.waveforms} == {int(audio.CLIP_SECONDS * words.sample_rate)}
    slowest = audio.Speaker(rate=0.8)
    for word in audio.WORDS:
        wave, alignment = audio.synthesize(word, slowest, seed=1, duration=audio.CLIP_SECONDS, return_alignment=True)
        assert len(wave) == audio.SAMPLE_RATE and alignment[-1][2] <= len(wave)
    starts = {audio.synthesize("bada", slowest, seed=s, duration=1.0, return_alignment=True)[1][0][2] for s in range(5)}
    assert len(starts) > 1   # the word moves around inside the clip
    with pytest.raises(ValueError, match="longer than duration"):
        audio.synthesize("bada", slowest, duration=0.3)
