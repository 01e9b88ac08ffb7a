import numpy as np
import pytest

from tinysora.grading import CheckFailed, check_function, compare_arrays


def test_shape_mismatch_names_both_shapes_and_hints_a_transpose():
    with pytest.raises(CheckFailed, match=r"shape \(3, 2\), expected \(2, 3\).*transpose"):
        compare_arrays(np.zeros((3, 2)), np.zeros((2, 3)), "f")


def test_nan_is_reported_as_nan():
    with pytest.raises(CheckFailed, match="NaN"):
        compare_arrays(np.array([1.0, np.nan]), np.array([1.0, 2.0]), "f")


def test_scaled_and_sign_flipped_answers_are_recognised():
    expected = np.array([1.0, 2.0, 3.0])
    with pytest.raises(CheckFailed, match="times 2"):
        compare_arrays(2 * expected, expected, "f")
    with pytest.raises(CheckFailed, match="sign flipped"):
        compare_arrays(-expected, expected, "f")


def test_square_transpose_is_recognised():
    m = np.arange(9.0).reshape(3, 3)
    with pytest.raises(CheckFailed, match="transpose"):
        compare_arrays(m.T, m, "f")


def test_exceptions_and_stubs_become_one_sentence():
    def stub(x):
        raise NotImplementedError()

    def broken(x):
        return x @ np.ones((7, 7))

    inputs = lambda rng: (rng.normal(size=(2, 3)),)
    with pytest.raises(CheckFailed, match="not written yet"):
        check_function(stub, lambda x: x, inputs, name="f")
    with pytest.raises(CheckFailed, match="f raised ValueError"):
        check_function(broken, lambda x: x, inputs, name="f")
    with pytest.raises(CheckFailed, match="should be a function"):
        check_function(42, lambda x: x, inputs, name="f")
    with pytest.raises(CheckFailed, match="should be an array"):
        check_function(lambda x: "text", lambda x: x, inputs, name="f")


def test_check_failed_renders_without_a_traceback():
    assert CheckFailed("wrong shape")._render_traceback_() == ["\u2717 wrong shape"]


def test_right_answers_pass(capsys):
    check_function(lambda x: x * 2, lambda x: x + x, lambda rng: (rng.normal(size=4),), name="double")
    assert "\u2713 double" in capsys.readouterr().out
