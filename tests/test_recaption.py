"""tinysora.sora.recaption: noisy and short captions, the captioner, prompt expansion, prompt fidelity."""

import pytest
import torch

from tinysora.data import ALL_COMBOS, COLOURS, TEST_COMBOS, TRAIN_COMBOS, caption_en, caption_zh, make_clips
from tinysora.sora import recaption as rc


def test_corrupt_combos_flips_at_the_stated_rate_and_always_to_another_value():
    combos = [ALL_COMBOS[i % len(ALL_COMBOS)] for i in range(3000)]
    noisy = rc.corrupt_combos(combos, 0.3, seed=1)
    changed = torch.tensor([[a != b for a, b in zip(c, n)] for c, n in zip(combos, noisy)]).float()
    assert abs(changed.mean().item() - 0.3) < 0.02                    # each attribute flips w.p. 0.3
    fully_right = (changed.sum(1) == 0).float().mean().item()
    assert abs(fully_right - 0.7 ** 3) < 0.03
    assert rc.corrupt_combos(combos[:50], 0.0) == combos[:50]
    always = rc.corrupt_combos(combos[:200], 1.0, seed=2)               # a flip never keeps the value
    assert all(a != b for c, n in zip(combos[:200], always) for a, b in zip(c, n))
    reds = [n[0] for c, n in zip(combos, rc.corrupt_combos(combos, 1.0)) if c[0] == "red"]
    assert set(reds) == set(COLOURS) - {"red"}                          # every other colour is reached


def test_corrupt_combos_is_seeded():
    combos = list(TRAIN_COMBOS)
    assert rc.corrupt_combos(combos, 0.5, seed=3) == rc.corrupt_combos(combos, 0.5, seed=3)
    assert rc.corrupt_combos(combos, 0.5, seed=3) != rc.corrupt_combos(combos, 0.5, seed=4)


@pytest.mark.parametrize("bad, message", [
    ("red", "list of"), ([("red", "circle")], "combos\\[0\\]"), ([("pink", "circle", "up")], "known words"),
])
def test_corrupt_combos_rejects_bad_combos(bad, message):
    with pytest.raises(ValueError, match=message):
        rc.corrupt_combos(bad, 0.1)


@pytest.mark.parametrize("noise", [-0.1, 1.5, True, "0.2"])
def test_corrupt_combos_rejects_bad_noise(noise):
    with pytest.raises(ValueError, match="probability"):
        rc.corrupt_combos(list(TRAIN_COMBOS), noise)


def test_short_prompts_parse_back_to_what_they_name():
    for combo in ALL_COMBOS:
        for form in (*rc.SHORT_FORMS, rc.ATTRIBUTES):
            text = rc.short_prompt(combo, form)
            named = rc.parse_prompt(text)
            assert {a for a, v in named.items() if v is not None} == set(form)
            assert all(named[a] == v for a, v in zip(rc.ATTRIBUTES, combo) if a in form)
        assert rc.short_prompt(combo, rc.ATTRIBUTES) == caption_en(*combo)
        assert rc.parse_prompt(caption_zh(*combo)) == dict(zip(rc.ATTRIBUTES, combo))
    assert rc.short_prompt(("red", "circle", "left")) == "a red circle"


@pytest.mark.parametrize("text, message", [
    ("red circle", "starts with 'a'"), ("a red", "expected a shape"), ("a red blob", "expected a shape"),
    ("a circle moves", "moves <"), ("a circle moves sideways", "moves <"), ("a circle jumps left", "moves <"),
])
def test_parse_prompt_says_which_word_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        rc.parse_prompt(text)


def test_parse_prompt_and_short_prompt_reject_bad_types_and_forms():
    with pytest.raises(TypeError, match="str"):
        rc.parse_prompt(3)
    with pytest.raises(ValueError, match="named must be"):
        rc.short_prompt(("red", "circle", "left"), ("colour",))      # a prompt always names its shape


def test_captioner_shapes_and_bad_input():
    torch.manual_seed(0)
    captioner = rc.Captioner(frames=4, channels=(8, 16), hidden=16)
    clips = make_clips(3, frames=6, height=16, width=24)
    logits = captioner(clips.video)
    assert [tuple(x.shape) for x in logits] == [(3, 6), (3, 3), (3, 4)]
    assert len(captioner.predict(clips.video)) == 3 and captioner.caption(clips.video)[0].startswith("a ")
    with pytest.raises(ValueError, match="reads 4 frames"):
        captioner(make_clips(2, frames=3).video)
    with pytest.raises(ValueError, match=r"\(N, T, 3, H, W\)"):
        captioner(torch.zeros(2, 4, 16, 16))
    with pytest.raises(ValueError, match="frames must be"):
        rc.Captioner(frames=1)


def test_captioner_learns_the_world_and_generalises_to_held_out_combinations():
    torch.manual_seed(0)
    labelled = make_clips(512, frames=4, split="train", seed=1)
    captioner = rc.Captioner(frames=4, channels=(16, 32), hidden=64)
    losses = rc.train_captioner(captioner, labelled.video, labelled.combos, steps=120, batch_size=64)
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
    held_out = make_clips(128, frames=4, split="test", seed=2)
    accuracy = rc.caption_accuracy(captioner.predict(held_out.video), held_out.combos)
    assert accuracy["colour"] > 0.9 and accuracy["direction"] > 0.7      # chance: 0.17 and 0.25


def test_train_captioner_takes_groups_of_sizes_and_checks_them():
    captioner = rc.Captioner(frames=4, channels=(8, 16), hidden=16)
    square, wide = make_clips(8, frames=4), make_clips(8, frames=4, width=32)
    losses = rc.train_captioner(captioner, [square.video, wide.video], [square.combos, wide.combos], steps=3)
    assert len(losses) == 3
    with pytest.raises(ValueError, match="8 clips but 7 captions"):
        rc.train_captioner(captioner, square.video, square.combos[:7], steps=1)
    with pytest.raises(ValueError, match="2 groups of clips but 1"):
        rc.train_captioner(captioner, [square.video, wide.video], [square.combos], steps=1)
    with pytest.raises(ValueError, match="steps must be"):
        rc.train_captioner(captioner, square.video, square.combos, steps=0)


def test_caption_accuracy_counts_each_attribute_and_all_three():
    truth = [("red", "circle", "left"), ("blue", "square", "up")]
    got = [("red", "square", "left"), ("blue", "square", "up")]
    assert rc.caption_accuracy(got, truth) == {"colour": 1.0, "shape": 0.5, "direction": 1.0, "all": 0.5}
    with pytest.raises(ValueError, match="1 predicted captions for 2"):
        rc.caption_accuracy(got[:1], truth)


def test_expansion_corpus_pairs_every_short_form_with_the_full_caption():
    lines = rc.expansion_corpus([("red", "circle", "left")])
    assert lines == ["a red circle>a red circle moves left", "a circle moves left>a red circle moves left",
                     "a circle>a red circle moves left"]


def test_expander_learns_to_fill_in_valid_faithful_captions():
    expander, losses = rc.train_expander(TRAIN_COMBOS, steps=250, d_model=48, n_layer=1, lr=5e-3)
    assert losses[-1] < 0.5 * losses[0]
    prompts = [rc.short_prompt(c, f) for c in TEST_COMBOS for f in rc.SHORT_FORMS]
    out = expander.expand(prompts, temperature=0.7, seed=0)
    assert len(out) == len(prompts) and all(isinstance(text, str) for text in out)
    assert rc.expansion_fidelity(prompts, out)["faithful"] > 0.5          # chance: about 0
    with pytest.raises(ValueError, match="list of prompt strings"):
        expander.expand("a red circle")


def test_expansion_fidelity_separates_valid_from_faithful():
    prompts = ["a red circle", "a circle moves up", "a square"]
    expanded = ["a red circle moves up", "a blue circle moves left", "a square moves"]
    assert rc.expansion_fidelity(prompts, expanded) == {"valid": 2 / 3, "faithful": 1 / 3}
    with pytest.raises(ValueError, match="same, non-zero length"):
        rc.expansion_fidelity(prompts, expanded[:2])


def test_prompt_fidelity_is_one_on_ground_truth_and_lower_on_wrong_prompts():
    clips = make_clips(48, frames=8, split="all", seed=5)
    short = [rc.short_prompt(c, rc.SHORT_FORMS[i % 3]) for i, c in enumerate(clips.combos)]
    right = rc.prompt_fidelity(clips.video, short)
    assert right["named_acc"] == 1.0 and right["persistence"] == 1.0 and right["faithful"] >= 0.95
    wrong = rc.prompt_fidelity(clips.video, short[1:] + short[:1])
    assert wrong["named_acc"] < 0.6
    only_colour_shape = rc.prompt_fidelity(clips.video[:2], ["a red circle", "a blue square"])
    assert only_colour_shape["direction_acc"] != only_colour_shape["direction_acc"]       # NaN: never asked
    with pytest.raises(ValueError, match="2 prompts"):
        rc.prompt_fidelity(clips.video[:3], short[:2])
    with pytest.raises(ValueError, match="expected a shape"):
        rc.prompt_fidelity(clips.video[:1], ["a red"])
