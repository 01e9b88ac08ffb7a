"""Autograder checks for the exercises, one module per chapter module.

``from tinysora.grading import mlp as grade`` then ``grade.check_dense_backward(dense_backward)``
checks a chapter-01 exercise. Every check prints one line when the answer is right and raises
:class:`CheckFailed` with one sentence that explains what is wrong when it is not; it never
crashes on a wrong answer.
"""

from tinysora.grading.core import CheckFailed, check_function, compare_arrays, passed

__all__ = ["CheckFailed", "check_function", "compare_arrays", "passed"]
