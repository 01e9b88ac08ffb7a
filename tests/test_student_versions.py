"""Student versions hold no solutions, and nbgrader scores chapters right (CONTRIBUTING.md, exercises).

Autograding executes the notebook. To keep the suite fast, the notebook graded here is the chapter's
opening (title, install cell, learning goals and the set-up cells after them: imports, config) followed
by its whole exercise section; nbval executes every full chapter separately. `tools/student.py`
autogrades full notebooks for instructors.
"""

import json
import re
from pathlib import Path

import pytest

import student  # tools/ is on pytest's pythonpath (pyproject.toml)

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
pytest.importorskip("nbgrader")


def opening_end(cells: list[dict]) -> int:
    """Index of the chapter's first section: the first heading after "Learning goals" that is not a
    set-up heading. Everything before it is the opening (title, install, goals, imports, config)."""
    sources = ["".join(c["source"]) for c in cells]
    goals = next(i for i, s in enumerate(sources) if "Learning goals" in s)
    for i in range(goals + 1, len(cells)):
        heading = re.match(r"#+\s+(.*)", sources[i].lstrip()) if cells[i]["cell_type"] == "markdown" else None
        if heading and not re.search(r"set[- ]?up|setup|imports", heading.group(1), flags=re.I):
            return i
    raise ValueError("no section heading after the learning goals")


def exercise_notebook(chapter: Path, into: Path) -> Path:
    notebook = json.loads(chapter.read_text())
    sources = ["".join(c["source"]) for c in notebook["cells"]]
    exercises = next(i for i, s in enumerate(sources) if s.strip() == "## Exercises")
    notebook["cells"] = notebook["cells"][:opening_end(notebook["cells"])] + notebook["cells"][exercises:]
    into.mkdir(parents=True, exist_ok=True)
    path = into / chapter.name
    path.write_text(json.dumps(notebook))
    return path


def check_student_version(chapter: Path, tmp_path: Path) -> None:
    """The student version of ``chapter`` holds no solution; autograding it gives 0, the instructor's full marks."""
    instructor = exercise_notebook(chapter, tmp_path / "instructor")
    course = tmp_path / "course"
    released = student.generate(instructor, course)

    text = released.read_text()
    solution_lines = [line for c in json.loads(instructor.read_text())["cells"]
                      if c["metadata"].get("nbgrader", {}).get("solution")
                      for line in "".join(c["source"]).splitlines()[1:-1] if line.strip() and "SOLUTION" not in line]
    leaked = [line for line in solution_lines if json.dumps(line)[1:-1] in text and len(line.strip()) > 12]
    assert not leaked, f"solution lines leaked into the student version: {leaked[:3]}"
    assert "BEGIN SOLUTION" not in text and "NotImplementedError" in text

    untouched_score, max_score = student.autograde(released, course, "untouched")
    assert max_score >= 2 and untouched_score == 0
    full_score, _ = student.autograde(instructor, course, "instructor")
    assert full_score == max_score


# Every other chapter here, the rest in tests/test_student_versions_b.py: pytest-xdist's --dist loadfile runs
# a file on one worker, so two files grade the chapters on two workers at once.
@pytest.mark.parametrize("chapter", CHAPTERS[0::2], ids=lambda p: p.stem)
def test_student_version_has_no_solutions_and_grades_zero_to_full(chapter, tmp_path):
    check_student_version(chapter, tmp_path)
