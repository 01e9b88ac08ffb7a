"""tools/browser_check.py: its judging functions, and the whole check in Chromium on a tiny static book.

The fixture is a few hand-written pages in the shape the book's HTML has (myst-nb output cells,
a sphinx-exercise solution dropdown, the Colab launch link): one good chapter and one with each
problem the check must catch. No book build; the browser part is skipped without Debian's chromium.
"""

import base64

import pytest

import browser_check as bc

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg"
                       "==")  # 1x1 pixel
REPO, REF = "https://github.com/owner/book", "v1.2.3"
TOGGLE = """<style>.toggle-hidden > :not(.admonition-title) { display: none; }</style>
<script>document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".admonition.dropdown").forEach(item => {
    item.classList.add("toggle-hidden");
    item.querySelector(".admonition-title").addEventListener("click", () => item.classList.toggle("toggle-hidden"));
  });
});</script>"""


def chapter(name: str, *, image: str, output: tuple[str, str], colab: str, toggle: bool) -> str:
    classes, text = output
    return f"""<!DOCTYPE html><html><head><title>{name}</title>{TOGGLE if toggle else ""}</head><body>
<a href="{colab}">Colab</a>
<div class="cell_output docutils container"><div class="output stderr"><pre>100%|##########| 40/40</pre></div></div>
<div class="cell_output docutils container"><div class="output {classes}"><pre>{text}</pre></div></div>
<img src="{image}">
<div class="solution dropdown admonition"><p class="admonition-title">Solution to Exercise 1</p>
<section id="solution-content"><p>Because the answer is long enough to be seen.</p></section></div>
</body></html>"""


@pytest.fixture
def book(tmp_path):
    html = tmp_path / "html"
    for folder in ("chapters", "book", "_images", "_static"):
        (html / folder).mkdir(parents=True)
    (html / "_images" / "fig.png").write_bytes(PNG)
    (html / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    (html / "_static" / "theme.html").write_text("<p>not a page</p>")
    (html / "book" / "intro.html").write_text("<html><body><h1>Intro</h1></body></html>")
    (html / "chapters" / "01_good.html").write_text(chapter(
        "good", image="../_images/fig.png", output=("stream", "loss fell from 2.3 to 0.4"),
        colab=f"{bc.COLAB}owner/book/blob/{REF}/chapters/01_good.ipynb", toggle=True))
    (html / "chapters" / "02_bad.html").write_text(chapter(
        "bad", image="../_images/missing.png",
        output=("stderr", "Traceback (most recent call last):\n  ...\nValueError: shapes differ"),
        colab=f"{bc.COLAB}owner/book/blob/main/chapters/01_good.ipynb", toggle=False))
    return html


def test_pages_lists_every_page_but_assets_and_redirects(book):
    assert bc.pages(book) == ["book/intro.html", "chapters/01_good.html", "chapters/02_bad.html"]


def test_chapter_notebook_maps_a_chapter_page_to_its_notebook():
    assert bc.chapter_notebook("chapters/07_gpt.html") == "chapters/07_gpt.ipynb"
    assert bc.chapter_notebook("book/intro.html") is None


def test_error_outputs_flag_tracebacks_and_stderr_errors_not_progress_bars_or_printed_messages():
    outputs = [{"classes": "output stderr", "text": "100%|####| 40/40 [00:01<00:00]"},
               {"classes": "output stream", "text": "ValueError: frame height 30 is not divisible by 4"},
               {"classes": "output stderr", "text": "RuntimeError: CUDA out of memory"},
               {"classes": "output traceback highlight-ipythontb", "text": "---\nKeyError: 'x'"}]
    assert bc.error_outputs(outputs) == ["RuntimeError: CUDA out of memory", "KeyError: 'x'"]


def test_broken_images_are_those_with_no_natural_width():
    assert bc.broken_images([{"src": "a.png", "width": 640}, {"src": "b.png", "width": 0}]) == ["b.png"]


def test_colab_problem_wants_this_chapters_notebook_at_the_books_ref():
    good = f"{bc.COLAB}owner/book/blob/{REF}/chapters/03_cnn.ipynb"
    assert bc.colab_problem("chapters/03_cnn.html", [good], REPO, REF) is None
    assert bc.colab_problem("chapters/03_cnn.html", [good]) is None
    assert "not" in bc.colab_problem("chapters/03_cnn.html", [good.replace(REF, "main")], REPO, REF)
    assert "03_cnn" in bc.colab_problem("chapters/03_cnn.html", [good.replace("03_cnn", "02_training")])
    assert bc.colab_problem("chapters/03_cnn.html", []) == "no Colab launch button"
    assert bc.colab_problem("book/intro.html", []) is None


def test_dropdown_problem_wants_closed_then_open():
    assert bc.dropdown_problem(2, shown_before=False, shown_after=True) is None
    assert bc.dropdown_problem(0, shown_before=False, shown_after=False) is None
    assert "before" in bc.dropdown_problem(1, shown_before=True, shown_after=True)
    assert "stays closed" in bc.dropdown_problem(1, shown_before=False, shown_after=False)


@pytest.mark.skipif(not bc.CHROMIUM.exists(), reason=f"{bc.CHROMIUM} not found: apt-get install -y chromium")
def test_the_browser_passes_the_good_chapter_and_catches_every_problem_of_the_bad_one(book, tmp_path):
    pytest.importorskip("playwright", reason="playwright is in the test extra: pip install -e '.[test]'")
    shots = tmp_path / "shots"
    results = bc.check_book(book, repository=REPO, ref=REF, screenshots=shots)
    assert results["book/intro.html"] == [] and results["chapters/01_good.html"] == []
    problems = "\n".join(results["chapters/02_bad.html"])
    for expected in ("error output: ValueError: shapes differ", "image did not load: ../_images/missing.png",
                     "the Colab button opens", "shown before it is clicked"):
        assert expected in problems
    assert sorted(p.name for p in shots.iterdir()) == ["chapters_02_bad.png"]
