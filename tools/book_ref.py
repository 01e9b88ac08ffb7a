"""The repository URL and the release the book was built from, and the install cell made from them.

`_config.yml` is the one place that names them (`repository.url`, and `repository.branch`, which
holds the release: a tag such as ``v0.1.0`` or a commit, never a branch that moves); the launch
buttons read it there, and every chapter's first code cell is generated from it here. A release
sets it with ``python3 tools/dev.py sync --ref v0.2.0`` (CONTRIBUTING.md, "Releasing the book").

    python3 tools/book_ref.py        prints the release ref (the Pages workflow compares it with the tag)
"""

from __future__ import annotations

import json
import re
from pathlib import Path

INSTALL_MARKER = "# tinysora install cell"
ROOT_CONFIG = Path(__file__).resolve().parent.parent / "_config.yml"
REF = re.compile(r"[0-9A-Za-z][0-9A-Za-z._/-]*")


def repository(root: Path) -> tuple[str, str]:
    """``(url, ref)`` from the ``repository:`` block of ``_config.yml``."""
    text = (root / "_config.yml").read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n)+)", text, flags=re.M)
    if block is None:
        raise ValueError("_config.yml has no repository: block")
    fields = dict(re.findall(r"^\s+(\w+):\s*\"?([^\"\n#]*?)\"?\s*(?:#.*)?$", block.group(1), flags=re.M))
    if not fields.get("url") or not fields.get("branch"):
        raise ValueError("_config.yml's repository: block needs both url and branch")
    return fields["url"].rstrip("/"), fields["branch"]


def is_release(ref: str, version: str) -> bool:
    """A ref the book may install from: the tag ``v<version>`` of this version, or a full commit hash."""
    return ref == f"v{version}" or re.fullmatch(r"[0-9a-f]{40}", ref) is not None


def set_ref(root: Path, ref: str) -> None:
    """Write ``ref`` as ``repository.branch`` into ``_config.yml``, leaving every other line as it is."""
    if not REF.fullmatch(ref):
        raise ValueError(f"{ref!r} is not a git tag or commit")
    path = root / "_config.yml"
    text = path.read_text()
    block = re.search(r"^repository:\n((?:[ \t]+.*\n)+)", text, flags=re.M)
    if block is None:
        raise ValueError("_config.yml has no repository: block")
    new_block, count = re.subn(r"^(\s+branch:\s*)\S+(.*)$", lambda m: f"{m.group(1)}{ref}{m.group(2)}",
                               block.group(1), count=1, flags=re.M)
    if count != 1:
        raise ValueError("_config.yml's repository: block has no branch: line")
    path.write_text(text[:block.start(1)] + new_block + text[block.end(1):])


def install_cell_source(root: Path) -> str:
    url, ref = repository(root)
    return (
        f"{INSTALL_MARKER}: a no-op when tinysora is installed; on Colab it installs the version\n"
        "# this book was built from (lower-bound dependencies only, so no preinstalled package changes).\n"
        "try:\n"
        "    import tinysora\n"
        "except ImportError:\n"
        f"    %pip install --quiet \"tinysora @ git+{url}@{ref}\"\n"
        "    import tinysora"
    )


def install_cell_index(cells: list[dict]) -> int | None:
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code" and "".join(cell["source"]).startswith(INSTALL_MARKER):
            return index
    return None


def sync_install_cells(root: Path) -> list[Path]:
    """Rewrite each chapter's install cell to match ``_config.yml``; return the notebooks changed."""
    source = install_cell_source(root)
    changed = []
    for path in sorted((root / "chapters").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        index = install_cell_index(notebook["cells"])
        if index is None:
            raise ValueError(f"{path.name} has no install cell (a code cell starting with {INSTALL_MARKER!r})")
        if "".join(notebook["cells"][index]["source"]) != source:
            notebook["cells"][index]["source"] = source.splitlines(keepends=True)
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
            changed.append(path)
    return changed


if __name__ == "__main__":
    print(repository(ROOT_CONFIG.parent)[1])
