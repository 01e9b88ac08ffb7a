"""Every chapter notebook follows the book's conventions (CONTRIBUTING.md)."""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import book_ref  # noqa: E402

CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def cells(path):
    return json.loads(path.read_text())["cells"]


def test_there_are_chapters():
    assert len(CHAPTERS) >= 2


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    dirty = [i for i, c in enumerate(cells(path)) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_install_cell_in_sync_with_config(path):
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]) == book_ref.install_cell_source(ROOT), (
        f"{path.name}: the first code cell must be the install cell made from _config.yml; run python3 tools/dev.py sync")
    assert "remove-cell" in code[0]["metadata"].get("tags", [])


def test_install_cell_pins_the_repository_and_ref_from_config():
    url, ref = book_ref.repository(ROOT)
    assert f"git+{url}@{ref}" in book_ref.install_cell_source(ROOT)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_in_the_table_of_contents(path):
    assert f"chapters/{path.stem}" in (ROOT / "_toc.yml").read_text()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_goals_source_notes_and_four_to_six_exercises(path):
    text = "\n".join("".join(c["source"]) for c in cells(path) if c["cell_type"] == "markdown")
    assert "Learning goals" in text and "In the source notes" in text
    exercises = re.findall(r"```\{exercise\}", text)
    assert 4 <= len(exercises) <= 6, f"{path.name} has {len(exercises)} exercises"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_coding_solution_is_followed_by_a_locked_check(path):
    notebook = cells(path)
    solutions = 0
    for i, cell in enumerate(notebook):
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] == "code" and meta.get("solution"):
            solutions += 1
            source = "".join(cell["source"])
            assert "### BEGIN SOLUTION" in source and "### END SOLUTION" in source, meta["grade_id"]
            check = notebook[i + 1]["metadata"].get("nbgrader", {})
            assert check.get("grade") and check.get("locked") and check.get("points", 0) > 0, (
                f"{path.name}: {meta['grade_id']} is not followed by a locked autograder check cell")
            assert "check_" in "".join(notebook[i + 1]["source"])
    assert solutions >= 2, f"{path.name} has {solutions} coding exercises; at least two are required"


def test_grade_ids_are_unique_within_each_chapter():
    for path in CHAPTERS:
        ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells(path) if "nbgrader" in c["metadata"]]
        assert len(ids) == len(set(ids)), path.name
