#!/usr/bin/env python3
"""Student versions of the chapters, and autograding, with nbgrader.

    python tools/student.py [chapters/01_mlp.ipynb ...]      -> _build/student/<chapter>.ipynb

Each chapter is its own nbgrader assignment in a throw-away course directory: nbgrader's
`generate_assignment` replaces every solution (code between ### BEGIN/END SOLUTION, and the
conceptual answers) with a stub and clears outputs. `autograde` (used by the tests, and by an
instructor on collected notebooks) executes a notebook and scores its check cells.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "_build" / "student"


def _nbgrader(course: Path, *args: str) -> None:
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}",
               f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}", "--Execute.timeout=600", "--force"]
    # nbgrader runs the `alembic` script of its own environment: put that environment on PATH
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode:
        raise RuntimeError(f"nbgrader {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def generate(chapter: Path, course: Path) -> Path:
    """The student version of ``chapter`` (solutions stubbed out), inside ``course``."""
    name = chapter.stem
    source = course / "source" / name
    source.mkdir(parents=True, exist_ok=True)
    shutil.copy(chapter, source / chapter.name)
    _nbgrader(course, "generate_assignment", name)
    return course / "release" / name / chapter.name


def autograde(notebook: Path, course: Path, student: str) -> tuple[float, float]:
    """Execute ``notebook`` as ``student``'s submission; return (score, max score) of its autograded cells."""
    from nbgrader.api import Gradebook

    name = notebook.stem
    submitted = course / "submitted" / student / name
    submitted.mkdir(parents=True, exist_ok=True)
    shutil.copy(notebook, submitted / notebook.name)
    _nbgrader(course, "autograde", name, f"--student={student}", "--create")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        result = gradebook.find_submission_notebook(name, name, student)
        return result.code_score, result.max_code_score


def main(chapters: list[str]) -> int:
    paths = [Path(c).resolve() for c in chapters] or sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for chapter in paths:
            course = Path(tmp) / chapter.stem
            shutil.copy(generate(chapter, course), OUT / chapter.name)
            print(f"{chapter.name}: student version -> {(OUT / chapter.name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
