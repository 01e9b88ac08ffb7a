"""Build chapter notebooks with the right cell metadata (nbgrader, book tags) without hand-editing JSON.

    from nbcells import Notebook
    nb = Notebook(ROOT)
    nb.md("# 01. Neurons, layers and MLPs")
    nb.install()                      # the generated install cell (see book_ref.py)
    nb.md("## Learning goals\n\n- ...")
    nb.code("x = 1\nassert x == 1")
    nb.exercise("ex-01-relu", "Why ...?")
    nb.solution("ex-01-relu", "Because ...")               # manually graded answer
    nb.coding_solution("ex-01-backward",
                       "def dense_backward(x, W, b, grad_out):\n    ### BEGIN SOLUTION\n    ...\n    ### END SOLUTION")
    nb.check("ex-01-backward", "grade.check_dense_backward(dense_backward)")  # autograder test, 1 point
    nb.write(ROOT / "chapters/01_mlp.ipynb")
"""

from __future__ import annotations

import json
from pathlib import Path

from book_ref import install_cell_source

KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def _nbgrader(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    return meta


class Notebook:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.cells: list[dict] = []

    def _add(self, cell_type: str, source: str, metadata: dict | None = None) -> None:
        cell = {"cell_type": cell_type, "id": f"c{len(self.cells):03d}", "metadata": metadata or {},
                "source": source.strip("\n").splitlines(keepends=True)}
        if cell_type == "code":
            cell.update(execution_count=None, outputs=[])
        self.cells.append(cell)

    def md(self, source: str) -> None:
        self._add("markdown", source)

    def code(self, source: str, tags: tuple[str, ...] = ()) -> None:
        self._add("code", source, {"tags": list(tags)} if tags else None)

    def install(self) -> None:
        self.code(install_cell_source(self.root), tags=("remove-cell",))

    def exercise(self, label: str, text: str) -> None:
        self.md(f"```{{exercise}}\n:label: {label}\n\n{text.strip()}\n```")

    def solution(self, label: str, text: str, points: int = 1) -> None:
        """A conceptual answer: a dropdown in the book, a manually graded answer for nbgrader."""
        self._add("markdown", f"```{{solution}} {label}\n:class: dropdown\n\n{text.strip()}\n```",
                  {"nbgrader": _nbgrader(f"{label}-answer", grade=True, solution=True, locked=False, points=points)})

    def coding_solution(self, label: str, source: str) -> None:
        """A coding answer; its body must sit between ### BEGIN SOLUTION and ### END SOLUTION."""
        if "### BEGIN SOLUTION" not in source or "### END SOLUTION" not in source:
            raise ValueError(f"{label}: a coding solution needs ### BEGIN SOLUTION / ### END SOLUTION markers")
        meta = _nbgrader(f"{label}-solution", grade=False, solution=True, locked=False)
        self._add("code", source, {"tags": ["hide-input"], "nbgrader": meta})

    def check(self, label: str, source: str, points: int = 1) -> None:
        """The autograder test cell that follows a coding solution."""
        self._add("code", source, {"nbgrader": _nbgrader(f"{label}-check", grade=True, solution=False,
                                                         locked=True, points=points)})

    def write(self, path: Path) -> None:
        notebook = {"cells": self.cells, "metadata": {"kernelspec": KERNEL, "language_info": {"name": "python"}},
                    "nbformat": 4, "nbformat_minor": 5}
        Path(path).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
