"""The release the book installs (tools/book_ref.py): one ref in _config.yml, a tag or a commit, that
`tools/dev.py sync --ref` writes and every install cell and launch button uses."""

import shutil

import pytest

import book_ref  # tools/ is on pytest's pythonpath (pyproject.toml)
import tinysora
from book_ref import ROOT_CONFIG


@pytest.fixture
def book(tmp_path):
    shutil.copy(ROOT_CONFIG, tmp_path / "_config.yml")
    return tmp_path


def test_the_book_installs_this_versions_release_not_a_moving_branch():
    _, ref = book_ref.repository(ROOT_CONFIG.parent)
    assert book_ref.is_release(ref, tinysora.__version__), (
        f"_config.yml's repository.branch is {ref!r}: the install cells would install whatever that branch holds "
        f"later. Run python3 tools/dev.py sync --ref v{tinysora.__version__} (CONTRIBUTING.md, releasing)")


def test_is_release_accepts_the_versions_tag_or_a_commit():
    assert book_ref.is_release("v0.3.1", "0.3.1")
    assert book_ref.is_release("0123456789abcdef0123456789abcdef01234567", "0.3.1")
    assert not book_ref.is_release("main", "0.3.1")
    assert not book_ref.is_release("v0.3.0", "0.3.1"), "a version bump needs a new release ref"


def test_set_ref_changes_only_the_ref(book):
    before = (book / "_config.yml").read_text().splitlines()
    url, _ = book_ref.repository(book)
    book_ref.set_ref(book, "v9.9.9")
    after = (book / "_config.yml").read_text().splitlines()
    assert book_ref.repository(book) == (url, "v9.9.9")
    assert [i for i, (a, b) in enumerate(zip(before, after)) if a != b] == [
        next(i for i, line in enumerate(before) if line.strip().startswith("branch:"))]
    assert f"git+{url}@v9.9.9" in book_ref.install_cell_source(book)


@pytest.mark.parametrize("ref", ["", "main; rm -rf /", "-v1", "v1 v2"])
def test_set_ref_rejects_what_is_not_a_ref(book, ref):
    with pytest.raises(ValueError, match="not a git tag or commit"):
        book_ref.set_ref(book, ref)


def test_sync_writes_the_ref_into_every_install_cell(book):
    chapters = book / "chapters"
    chapters.mkdir()
    shutil.copy(ROOT_CONFIG.parent / "chapters" / "01_mlp.ipynb", chapters / "01_mlp.ipynb")
    book_ref.set_ref(book, "v9.9.9")
    assert book_ref.sync_install_cells(book) == [chapters / "01_mlp.ipynb"]
    assert "@v9.9.9" in (chapters / "01_mlp.ipynb").read_text()
    assert book_ref.sync_install_cells(book) == [], "a second sync changes nothing"
