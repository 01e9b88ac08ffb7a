"""The other half of tests/test_student_versions.py's chapters (a second file, so a second xdist worker)."""

import pytest
from test_student_versions import CHAPTERS, check_student_version


@pytest.mark.parametrize("chapter", CHAPTERS[1::2], ids=lambda p: p.stem)
def test_student_version_has_no_solutions_and_grades_zero_to_full(chapter, tmp_path):
    check_student_version(chapter, tmp_path)
