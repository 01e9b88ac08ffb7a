#!/usr/bin/env python3
"""Test the rendered book in a real browser: every page of `_build/html`, in headless Chromium.

    python3 tools/dev.py browser                  # builds at smoke scale first if there is no _build/html
    .venv/bin/python tools/browser_check.py _build/html [--ref v0.1.0]

The HTML is served on 127.0.0.1 (a random free port) and opened in Debian's ``chromium`` through
Playwright's Python package, with ``executable_path`` pointing at it: Playwright never downloads a
browser here. Requests to any other host are refused, so a page can reach no network. On each page:

* no output cell shows an error (a traceback, or ``stderr`` that names an ``...Error``);
* every image has loaded (``naturalWidth > 0``);
* on a chapter, the Colab launch button opens that chapter's notebook (at the book's ref);
* on a chapter with exercises, a solution dropdown is closed and opens when its title is clicked.

A page that fails gets a full-page screenshot in ``_build/browser/``. The judging of what a page
reported is plain functions (``error_outputs``, ``broken_images``, ``colab_problem``,
``dropdown_problem``), unit-tested in ``tests/test_browser_check.py`` on a small static fixture.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REDIRECT = re.compile(r"<meta[^>]+http-equiv=[\"']?refresh", re.I)
COLAB = "https://colab.research.google.com/github/"
TRACEBACK = re.compile(r"Traceback \(most recent call last\)")
ERROR_TEXT = re.compile(rf"{TRACEBACK.pattern}|\b\w*Error\b")

# What a page reports, gathered in the browser: output cells, images and launch links.
REPORT_JS = """async () => {
  const images = Array.from(document.images);
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null : img.decode().catch(() => null)));
  return {
    outputs: Array.from(document.querySelectorAll(".cell_output .output")).map(el => ({
      classes: el.className, text: el.innerText.slice(0, 2000)})),
    images: images.map(img => ({src: img.getAttribute("src") || "", width: img.naturalWidth})),
    colab: Array.from(document.querySelectorAll("a[href]")).map(a => a.href).filter(h => h.includes("colab.")),
  };
}"""


def pages(html: Path) -> list[str]:
    """Every page of a built book, as paths relative to ``html``: no theme assets, build reports or
    redirect stubs (the root ``index.html`` only forwards to the first page)."""
    found = []
    for path in sorted(html.rglob("*.html")):
        relative = path.relative_to(html)
        if any(part.startswith("_") or part == "reports" for part in relative.parts[:-1]):
            continue
        if not REDIRECT.search(path.read_text(errors="replace")[:2000]):
            found.append(relative.as_posix())
    return found


def chapter_notebook(page: str) -> str | None:
    """The notebook a page was built from: ``chapters/01_mlp.html`` -> ``chapters/01_mlp.ipynb``."""
    match = re.fullmatch(r"(chapters/\d\d_\w+)\.html", page)
    return f"{match.group(1)}.ipynb" if match else None


def error_outputs(outputs: list[dict]) -> list[str]:
    """The output cells that show an error: a traceback, or ``stderr`` naming an error.

    Printed text (stdout) counts only if it holds a traceback: a chapter may print an error
    message on purpose (the clear ``ValueError`` that bad input gets).
    """
    bad = []
    for output in outputs:
        classes, text = output["classes"].split(), output["text"]
        if "traceback" in classes or "error" in classes or ERROR_TEXT.search(text) and "stderr" in classes \
                or TRACEBACK.search(text):
            bad.append(text.strip().splitlines()[-1][:200] if text.strip() else " ".join(classes))
    return bad


def broken_images(images: list[dict]) -> list[str]:
    """The ``src`` of every image that did not load."""
    return [image["src"][:120] for image in images if not image["width"]]


def colab_problem(page: str, links: list[str], repository: str | None = None, ref: str | None = None) -> str | None:
    """Why a chapter's Colab button does not open that chapter's notebook, or None if it does."""
    notebook = chapter_notebook(page)
    if notebook is None:
        return None
    if not links:
        return "no Colab launch button"
    if repository is not None and ref is not None:
        expected = f"{COLAB}{urlparse(repository).path.strip('/')}/blob/{ref}/{notebook}"
        if expected not in links:
            return f"the Colab button opens {links[0]}, not {expected}"
    elif not all(link.startswith(COLAB) and link.endswith(f"/{notebook}") for link in links):
        return f"the Colab button opens {links[0]}, not this chapter's {notebook}"
    return None


def dropdown_problem(solutions: int, shown_before: bool, shown_after: bool) -> str | None:
    """Why a solution dropdown does not work (closed, then open after a click), or None if it does."""
    if solutions == 0:
        return None
    if shown_before:
        return "the first solution is shown before it is clicked (it should be a closed dropdown)"
    if not shown_after:
        return "the first solution stays closed when its title is clicked"
    return None


@contextmanager
def serve(html: Path):
    """Serve ``html`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(Quiet, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def local_only(route) -> None:
    """Let requests to the local server through; refuse every other host (no network)."""
    if urlparse(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


def check_page(browser_page, url: str, page: str, repository: str | None, ref: str | None) -> list[str]:
    """Open one page and return its problems (empty when it passes)."""
    browser_page.goto(url + page, wait_until="load")
    report = browser_page.evaluate(REPORT_JS)
    problems = [f"error output: {text}" for text in error_outputs(report["outputs"])]
    problems += [f"image did not load: {src}" for src in broken_images(report["images"])]
    if (problem := colab_problem(page, report["colab"], repository, ref)) is not None:
        problems.append(problem)
    solutions = browser_page.locator(".solution.dropdown")
    count = solutions.count()
    shown_before = shown_after = False
    if count:
        first = solutions.first
        body = first.locator(":scope > :not(.admonition-title)").first
        shown_before = body.is_visible()
        first.locator(".admonition-title").first.click()
        browser_page.wait_for_timeout(300)
        shown_after = body.is_visible()
    if (problem := dropdown_problem(count, shown_before, shown_after)) is not None:
        problems.append(problem)
    return problems


def screenshot_name(page: str) -> str:
    return re.sub(r"[^\w.-]+", "_", page.removesuffix(".html")) + ".png"


def check_book(html: Path, *, repository: str | None = None, ref: str | None = None,
               screenshots: Path = ROOT / "_build" / "browser", chromium: Path = CHROMIUM) -> dict[str, list[str]]:
    """``{page: problems}`` for every page of the book in ``html``; screenshots of failing pages."""
    from playwright.sync_api import sync_playwright

    results = {}
    with serve(html) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", local_only)
        browser_page = context.new_page()
        for page in pages(html):
            try:
                problems = check_page(browser_page, url, page, repository, ref)
            except Exception as error:  # a page that hangs or crashes the check is a failed page
                problems = [f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"]
            if problems:
                screenshots.mkdir(parents=True, exist_ok=True)
                browser_page.screenshot(path=str(screenshots / screenshot_name(page)), full_page=True)
            results[page] = problems
        browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", default=str(ROOT / "_build" / "html"), type=Path)
    parser.add_argument("--ref", help="the ref the Colab buttons must use (default: _config.yml's)")
    parser.add_argument("--chromium", default=str(CHROMIUM), type=Path)
    args = parser.parse_args(argv)
    if not args.chromium.exists():
        print(f"{args.chromium} not found: install Debian's chromium (apt-get install -y chromium)")
        return 2
    if not (args.html / "index.html").exists():
        print(f"no book in {args.html}: build it first (python3 tools/dev.py book --scale smoke)")
        return 2
    sys.path.insert(0, str(ROOT / "tools"))
    import book_ref

    repository, config_ref = book_ref.repository(ROOT)
    results = check_book(args.html, repository=repository, ref=args.ref or config_ref, chromium=args.chromium)
    for page, problems in results.items():
        print(f"{'FAIL' if problems else 'ok  '} {page}")
        for problem in problems:
            print(f"       {problem}")
    failed = [page for page, problems in results.items() if problems]
    print(f"browser check: {len(results) - len(failed)} of {len(results)} pages passed"
          + (f"; screenshots of the {len(failed)} failing pages in _build/browser/" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
