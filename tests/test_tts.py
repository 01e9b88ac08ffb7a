"""Tests for tinysora.tts (chapter 10): codes, BPE, the causal decoder, Griffin-Lim, the text-token layout."""

import numpy as np
import pytest
import torch

from tinysora import audio, gpt, tts


def test_code_rate_is_25_per_second_for_40_ms_frames():
    assert tts.code_rate(4, 160, 16_000) == 25.0
    with pytest.raises(ValueError, match="positive"):
        tts.code_rate(0)


def test_codebook_assigns_nearest_centroid_and_rejects_bad_input():
    book = tts.Codebook(np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]))
    codes = book.encode(np.array([[[1.0, 1.0], [9.0, 1.0], [1.0, 8.0]]]))
    assert codes.tolist() == [[0, 1, 2]] and codes.dtype == torch.int64
    with pytest.raises(ValueError, match="at least one centroid"):
        tts.Codebook(np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"\(B, T, 2\)"):
        book.encode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        tts.learn_codebook(np.zeros((0, 5, 2)), 3)
    with pytest.raises(ValueError, match="positive int"):
        tts.learn_codebook(np.zeros((1, 5, 2)), 0)


def test_learn_codebook_finds_well_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    x = centres[rng.integers(3, size=(4, 30))] + 0.1 * rng.normal(size=(4, 30, 2))
    book = tts.learn_codebook(x, 3)
    found = sorted(map(tuple, np.round(book.centroids)))
    assert found == sorted(map(tuple, centres))


def test_code_histogram_rows_sum_to_one_and_count():
    h = tts.code_histogram(torch.tensor([[0, 0, 2, 1]]), 3)
    np.testing.assert_allclose(h, [[0.5, 0.25, 0.25]])
    with pytest.raises(ValueError, match="0..2"):
        tts.code_histogram(torch.tensor([[3]]), 3)


def _naive_bpe(seqs, base, n):
    """An independent BPE: string replacement on space-separated tokens, counts by brute force."""
    seqs = [list(s) for s in seqs]
    merges = []
    for i in range(n):
        counts = {}
        for s in seqs:
            for a, b in zip(s, s[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts or max(counts.values()) < 2:
            break
        best = max(counts.values())
        pair = min(p for p, c in counts.items() if c == best)
        merges.append(pair)
        new = []
        for s in seqs:
            out, j = [], 0
            while j < len(s):
                if j + 1 < len(s) and (s[j], s[j + 1]) == pair:
                    out.append(base + i)
                    j += 2
                else:
                    out.append(s[j])
                    j += 1
            new.append(out)
        seqs = new
    return merges, seqs


def test_bpe_matches_an_independent_implementation_and_round_trips():
    rng = np.random.default_rng(1)
    seqs = [list(np.repeat(rng.integers(0, 6, size=8), rng.integers(1, 4, size=8))) for _ in range(30)]
    bpe = tts.learn_bpe(seqs, 6, 20)
    merges, merged = _naive_bpe(seqs, 6, 20)
    assert bpe.merges == merges
    assert [bpe.encode(s) for s in seqs] == merged
    assert all(bpe.decode(bpe.encode(s)) == [int(c) for c in s] for s in seqs)
    ratio = tts.compression(bpe, seqs)
    assert ratio == pytest.approx(1 - sum(map(len, merged)) / sum(map(len, seqs)))
    assert ratio > 0.3


def test_bpe_example_by_hand_and_errors():
    bpe = tts.learn_bpe([[0, 0, 0, 1], [0, 0, 1]], 2, 5)
    assert bpe.merges[0] == (0, 0)                   # (0, 0) occurs 3 times, (0, 1) twice
    assert bpe.encode([0, 0, 0, 0]) == [2, 2]
    assert bpe.decode([2, 1]) == [0, 0, 1]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        bpe.decode([bpe.vocab_size])
    with pytest.raises(ValueError, match="0..1"):
        bpe.encode([2])
    with pytest.raises(ValueError, match="at least one sequence"):
        tts.learn_bpe([], 2, 3)
    with pytest.raises(ValueError, match="base_size"):
        tts.learn_bpe([[0]], 0, 3)


def test_causal_conv_does_not_look_ahead_and_steps_equal_whole():
    torch.manual_seed(0)
    conv = tts.CausalConv1d(3, 4, kernel_size=3, dilation=2)
    x = torch.randn(2, 3, 17)
    y = conv(x)
    x2 = x.clone()
    x2[..., 10:] += 1.0
    torch.testing.assert_close(conv(x2)[..., :10], y[..., :10])        # the future does not leak back
    assert not torch.allclose(conv(x2)[..., 10:], y[..., 10:])
    state, parts = conv.initial_state(2), []
    for chunk in torch.split(x, [5, 1, 7, 4], dim=-1):
        out, state = conv.step(chunk, state)
        parts.append(out)
    torch.testing.assert_close(torch.cat(parts, -1), y)


def _decoder():
    torch.manual_seed(0)
    return tts.CodeDecoder(tts.DecoderConfig(n_codes=8, n_mels=6, d_model=16, n_layers=3)).eval()


@pytest.mark.parametrize("chunk", [1, 3, 50])
def test_decoder_streaming_equals_whole(chunk):
    dec = _decoder()
    codes = torch.randint(8, (2, 11))
    speaker = torch.randn(2, 5)
    with torch.no_grad():
        whole = dec(codes, speaker)
    assert whole.shape == (2, 44, 6)
    torch.testing.assert_close(dec.stream(codes, speaker, chunk=chunk), whole)


def test_decoder_is_causal_and_uses_the_speaker():
    dec = _decoder()
    codes = torch.randint(8, (1, 10))
    speaker = torch.randn(1, 5)
    later = codes.clone()
    later[0, 6:] = (later[0, 6:] + 1) % 8
    with torch.no_grad():
        a, b = dec(codes, speaker), dec(later, speaker)
        c = dec(codes, speaker + 1.0)
    torch.testing.assert_close(a[:, :24], b[:, :24])
    assert not torch.allclose(a, c)


def test_decoder_rejects_bad_input():
    dec = _decoder()
    with pytest.raises(ValueError, match="int64"):
        dec(torch.zeros(2, 5), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="0..7"):
        dec(torch.full((1, 4), 8), torch.zeros(1, 5))
    with pytest.raises(ValueError, match=r"\(1, 5\)"):
        dec(torch.zeros(1, 4, dtype=torch.long), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="chunk"):
        dec.stream(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 5), chunk=0)
    with pytest.raises(ValueError, match="n_codes"):
        tts.DecoderConfig(n_codes=0)


def test_train_decoder_lowers_the_loss():
    torch.manual_seed(0)
    dec = tts.CodeDecoder(tts.DecoderConfig(n_codes=4, n_mels=3, d_model=8, n_layers=1))
    codes = torch.randint(4, (16, 6))
    target = torch.repeat_interleave(torch.nn.functional.one_hot(codes, 4)[..., :3].float(), 4, dim=1)
    losses = tts.train_decoder(dec, codes, torch.zeros(16, 5), target, steps=150, batch_size=8, lr=1e-2)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    with pytest.raises(ValueError, match="logmel"):
        tts.train_decoder(dec, codes, torch.zeros(16, 5), target[:, :10], steps=1)


def test_speaker_vector_shape_and_errors():
    v = tts.speaker_vector([audio.Speaker(), audio.Speaker(pitch=240.0)])
    assert v.shape == (2, 5) and v[1, 0] > v[0, 0]
    with pytest.raises(ValueError, match="non-empty"):
        tts.speaker_vector([])


def test_istft_inverts_stft_and_matches_torch():
    wave = audio.synthesize("gasha", audio.Speaker())
    spec = audio.stft(wave, 512, 160)
    back = tts.istft(spec, 512, 160, len(wave))
    np.testing.assert_allclose(back, wave, atol=1e-5)
    ref = torch.istft(torch.from_numpy(spec), 512, 160, window=torch.hann_window(512, dtype=torch.float64),
                      length=len(wave))
    np.testing.assert_allclose(back, ref.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="257"):
        tts.istft(spec[:100])


def test_griffin_lim_recovers_the_magnitude():
    wave = audio.synthesize("kima", audio.Speaker())
    mag = np.abs(audio.stft(wave, 512, 160))
    few = tts.spectral_convergence(tts.griffin_lim(mag, n_iter=2, length=len(wave)), mag)
    many = tts.spectral_convergence(tts.griffin_lim(mag, n_iter=40, length=len(wave)), mag)
    assert many < 0.25 and many < few
    with pytest.raises(ValueError, match="n_iter"):
        tts.griffin_lim(mag, n_iter=0)


def test_mel_to_magnitude_and_logmel_to_wave():
    wave = audio.synthesize("tonu", audio.Speaker())
    mel = audio.mel_spectrogram(wave)                               # (40, T)
    mag = tts.mel_to_magnitude(mel)
    assert mag.shape == (257, mel.shape[1]) and (mag >= 0).all()
    filters = audio.mel_filterbank(40, 512, audio.SAMPLE_RATE)
    assert np.linalg.norm(filters @ mag ** 2 - mel) < 0.2 * np.linalg.norm(mel)
    out = tts.logmel_to_wave(audio.log_mel_spectrogram(wave).T, n_iter=8)
    assert out.dtype == np.float32 and abs(len(out) - len(wave)) < 160
    with pytest.raises(ValueError, match="T, n_mels"):
        tts.logmel_to_wave(np.zeros(5))


def test_tts_vocab_rows_and_generation():
    vocab = tts.TTSVocab(["bada", "kima"], n_speech=7)
    row = vocab.row("bada", [0, 6])
    assert row[0] == vocab.text.bos_id and row[5] == vocab.sep_id and row[-1] == vocab.text.eos_id
    assert vocab.speech_tokens(row[6:]) == [0, 6]
    rows = tts.tts_rows(vocab, ["bada", "kima"], [[1, 2], [3]], 12)
    assert rows.shape == (2, 12) and rows[1, 8] == vocab.text.pad_id
    with pytest.raises(ValueError, match="0..6"):
        vocab.row("bada", [7])
    with pytest.raises(ValueError, match="longer than"):
        tts.tts_rows(vocab, ["bada"], [[1] * 20], 12)
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab.vocab_size, block_size=12, n_layer=1, d_model=16))
    out = tts.synthesise_tokens(model, vocab, "kima", 3, seed=0)
    assert len(out) == 3 and all(0 <= t < 7 for seq in out for t in seq)
    assert tts.fit_length([1, 2], 4, 0) == [1, 2, 0, 0] and tts.fit_length([1, 2, 3], 2, 0) == [1, 2]


def test_decoder_lookahead_aligns_and_streams():
    torch.manual_seed(0)
    dec = tts.CodeDecoder(tts.DecoderConfig(n_codes=8, n_mels=6, d_model=16, n_layers=2, lookahead=1)).eval()
    codes, speaker = torch.randint(8, (2, 9)), torch.randn(2, 5)
    with torch.no_grad():
        aligned = dec.decode(codes, speaker)
        padded = torch.cat([codes, codes[:, -1:]], 1)
        raw = dec(padded, speaker)
    assert aligned.shape == (2, 36, 6)
    torch.testing.assert_close(aligned, raw[:, 4:])
    torch.testing.assert_close(dec.stream(padded, speaker, chunk=2)[:, 4:], aligned)
    later = codes.clone()
    later[:, 5] = (later[:, 5] + 1) % 8
    with torch.no_grad():
        changed = dec.decode(later, speaker)
    torch.testing.assert_close(changed[:, :16], aligned[:, :16])     # frames of codes 0..3 do not see code 5
    assert not torch.allclose(changed[:, 16:20], aligned[:, 16:20])  # code 4's frames look one code ahead
    with pytest.raises(ValueError, match="lookahead"):
        tts.DecoderConfig(lookahead=-1)
