"""tinysora.tokenizer: every caption round-trips; special tokens and errors."""

import pytest
import torch

from tinysora.data import ALL_COMBOS, caption_en, caption_zh
from tinysora.tokenizer import CharTokenizer


@pytest.mark.parametrize("language, writer", [("en", caption_en), ("zh", caption_zh)])
def test_every_caption_round_trips(language, writer):
    tok = CharTokenizer.for_captions(language)
    captions = [writer(*combo) for combo in ALL_COMBOS]
    for caption in captions:
        assert tok.decode(tok.encode(caption)) == caption
        assert tok.decode(tok.encode(caption, bos=True, eos=True)) == caption
    batch = tok.encode_batch(captions, bos=True, eos=True)
    assert batch.dtype == torch.int64 and batch.shape[0] == len(captions)
    assert tok.decode_batch(batch) == captions


def test_vocabulary_is_the_sorted_characters_after_the_specials():
    tok = CharTokenizer.from_corpus(["cab", "ba"])
    assert tok.itos == ["<pad>", "<bos>", "<eos>", "a", "b", "c"]
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    assert tok.encode("abc", bos=True, eos=True) == [1, 3, 4, 5, 2]
    assert len(tok) == tok.vocab_size == 6


def test_caption_vocabularies_cover_exactly_the_characters_used():
    en = CharTokenizer.for_captions("en")
    chars = set("".join(caption_en(*c) for c in ALL_COMBOS))
    assert set(en.itos[3:]) == chars
    zh = CharTokenizer.for_captions("zh")
    assert "圆" in zh.stoi and "移" in zh.stoi


def test_decode_stops_at_eos_and_skips_pad_and_bos():
    tok = CharTokenizer.from_corpus(["ab"])
    ids = [tok.bos_id, 3, 4, tok.eos_id, 3, 3]
    assert tok.decode(ids) == "ab"
    assert tok.decode(torch.tensor([3, tok.pad_id, 4])) == "ab"


def test_encode_batch_pads_to_the_longest_or_a_given_length():
    tok = CharTokenizer.from_corpus(["abc"])
    batch = tok.encode_batch(["a", "abc"], eos=True)
    assert batch.tolist() == [[3, 2, 0, 0], [3, 4, 5, 2]]
    assert tok.encode_batch(["a"], length=3).tolist() == [[3, 0, 0]]


def test_errors_say_what_is_wrong():
    tok = CharTokenizer.for_captions("en")
    with pytest.raises(ValueError, match="not in this tokenizer's vocabulary"):
        tok.encode("a red circle moves left!")
    with pytest.raises(TypeError, match="expects a str"):
        tok.encode(3)
    with pytest.raises(ValueError, match="shorter than the longest"):
        tok.encode_batch(["a red circle moves left"], length=3)
    with pytest.raises(TypeError, match="one string"):
        tok.encode_batch("a red circle")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([999])
    with pytest.raises(ValueError, match="unknown language"):
        CharTokenizer.for_captions("fr")
    with pytest.raises(ValueError, match="single characters"):
        CharTokenizer(["ab"])


def test_pinyin_labels_cover_every_chinese_caption_character():
    from tinysora.tokenizer import PINYIN, pinyin

    chars = set("".join(caption_zh(*c) for c in ALL_COMBOS))
    assert chars <= set(PINYIN)
    assert pinyin("红色的圆") == ["hong", "se", "de", "yuan"]
    assert pinyin("a b") == ["a", " ", "b"]
