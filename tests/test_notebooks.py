"""Every chapter notebook follows the book's conventions (CONTRIBUTING.md)."""

import ast
import json
import re
from pathlib import Path

import pytest

import book_ref  # tools/ is on pytest's pythonpath (pyproject.toml)

ROOT = Path(__file__).resolve().parent.parent

CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def cells(path):
    return json.loads(path.read_text())["cells"]


def test_there_are_chapters():
    assert len(CHAPTERS) >= 2


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path):
    dirty = [i for i, c in enumerate(cells(path))
             if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them before committing"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_install_cell_in_sync_with_config(path):
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]) == book_ref.install_cell_source(ROOT), (
        f"{path.name}: the first code cell must be the install cell made from _config.yml; "
        "run python3 tools/dev.py sync")
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
def test_every_code_solution_is_followed_by_a_locked_check_or_an_answer(path):
    """A coding exercise's solution is followed by its autograder check; an experiment exercise's
    solution (a cell that runs the experiment) by the manually graded answer that says what it shows."""
    notebook = cells(path)
    autograded = 0
    for i, cell in enumerate(notebook):
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] == "code" and meta.get("solution"):
            source = "".join(cell["source"])
            assert "### BEGIN SOLUTION" in source and "### END SOLUTION" in source, meta["grade_id"]
            following = notebook[i + 1] if i + 1 < len(notebook) else {"metadata": {}, "source": [], "cell_type": ""}
            after = following["metadata"].get("nbgrader", {})
            if following["cell_type"] == "code":
                assert after.get("grade") and after.get("locked") and after.get("points", 0) > 0, (
                    f"{path.name}: {meta['grade_id']} is followed by a code cell that is not a locked check")
                assert "check_" in "".join(following["source"])
                autograded += 1
            else:
                assert after.get("grade") and after.get("solution"), (
                    f"{path.name}: {meta['grade_id']} is followed by neither an autograder check nor an answer")
    assert autograded >= 2, f"{path.name} has {autograded} autograded coding exercises; at least two are required"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_has_a_solution(path):
    notebook = cells(path)
    text = "\n".join("".join(c["source"]) for c in notebook)
    labels = re.findall(r"```\{exercise\}\n:label: ([\w-]+)", text)
    solved = set(re.findall(r"```\{solution\} ([\w-]+)", text))
    solved |= {c["metadata"]["nbgrader"]["grade_id"].removesuffix("-solution") for c in notebook
               if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("solution")}
    assert not [label for label in labels if label not in solved], f"{path.name}: exercises without a solution"


def top_level(source: str) -> list[ast.stmt]:
    """The top-level statements of a code cell (IPython magics and shell lines skipped)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        return ast.parse(code).body
    except SyntaxError:
        return []


def defined(source: str) -> set[str]:
    return {node.name for node in top_level(source)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def bound(source: str) -> set[str]:
    """Every top-level name a cell binds: def, class, import, assignment."""
    names = defined(source)
    for node in top_level(source):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercise_functions_do_not_shadow_names_of_the_chapter(path):
    """A function or class that an exercise defines must not reuse a name the chapter bound (an import
    or its own function): the student version would then overwrite it and not run top to bottom."""
    notebook = cells(path)
    start = next(i for i, c in enumerate(notebook) if "".join(c["source"]).strip() == "## Exercises")
    chapter = set().union(*(bound("".join(c["source"])) for c in notebook[:start] if c["cell_type"] == "code"))
    shadowed = {name: cell["metadata"].get("nbgrader", {}).get("grade_id", "")
                for cell in notebook[start:] if cell["cell_type"] == "code"
                for name in defined("".join(cell["source"])) & chapter}
    assert not shadowed, f"{path.name}: exercise definitions shadow names of the chapter: {shadowed}"


def test_grade_ids_are_unique_within_each_chapter():
    for path in CHAPTERS:
        ids = [c["metadata"]["nbgrader"]["grade_id"] for c in cells(path) if "nbgrader" in c["metadata"]]
        assert len(ids) == len(set(ids)), path.name
