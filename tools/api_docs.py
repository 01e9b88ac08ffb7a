"""A Sphinx extension: the ``tinysora-api`` directive documents every module of tinysora.

`book/api.md` holds one directive; it walks the package, so a module added to `src/tinysora/`
appears on the page at the next build with no edit. Each module gets a section (so the page's
"On this page" bar lists them) with ``automodule`` (autodoc, docstrings read by napoleon).
Registered in `_config.yml` under ``sphinx.local_extensions``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re


def module_names(package: str = "tinysora") -> list[str]:
    """The package and every module below it, in order, without ``__main__`` entry points."""
    root = importlib.import_module(package)
    found = [info.name for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}.")]
    return [package, *sorted(name for name in found if not name.endswith(".__main__"))]


def automodule_lines(name: str) -> list[str]:
    return [f".. automodule:: {name}", "   :members:", "   :undoc-members:", "   :show-inheritance:", ""]


def keep_attribute_text(app, what: str, name: str, obj, options, lines: list[str]) -> None:
    """Undo napoleon's reading of an attribute's first line as ``type: description``.

    The package's property and constant docstrings are sentences ("int64 (N, 3): indices of ...",
    "How many input values one latent value stands for: ..."); napoleon would cut them at the colon
    and make the first half a type to cross-reference. Runs after napoleon (priority 600).
    """
    if what in ("attribute", "property", "data") and lines and lines[-1].startswith(":type: "):
        kind = lines.pop()[len(":type: "):]
        while lines and not lines[-1].strip():
            lines.pop()
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        if first is None:
            lines.append(kind)
        else:
            lines[first] = f"{kind}: {lines[first].lstrip()}"


def literal_diagrams(app, what: str, name: str, obj, options, lines: list[str]) -> None:
    """Show a module docstring's indented blocks (its ASCII diagrams and maps) as literal text.

    In reST an indented block after a plain paragraph is a block quote, and a diagram in one breaks
    the build ("Unexpected indentation"); ending the paragraph with ``::`` makes it literal. Lists,
    fields and directives, whose indented lines belong to them, are left alone.
    """
    if what != "module":
        return
    for i in range(2, len(lines)):
        previous, blank, line = lines[i - 2], lines[i - 1], lines[i]
        starts_block = line.startswith((" ", "\t")) and line.strip() and not blank.strip()
        if not starts_block or not previous.strip() or previous.startswith((" ", "\t")):
            continue
        paragraph = next(lines[j] for j in range(i - 2, -1, -1) if j == 0 or not lines[j - 1].strip())
        if previous.rstrip().endswith("::") or re.match(r"\s*([-*+]|\d+\.|#\.|:|\.\.|\|)", paragraph):
            continue
        lines[i - 2] = previous.rstrip() + (":" if previous.rstrip().endswith(":") else " ::")


def setup(app):
    # Sphinx is imported here, not at the top: the functions above are unit-tested without it
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective
    from sphinx.util.nodes import nested_parse_with_titles

    class TinysoraAPI(SphinxDirective):
        """``.. tinysora-api::`` -- one section per module, each with its ``automodule``."""

        def run(self) -> list:
            sections = []
            for name in module_names():
                section = nodes.section(ids=[nodes.make_id(f"module-section-{name}")], names=[name])
                section += nodes.title(text=name)
                nested_parse_with_titles(self.state, StringList(automodule_lines(name), source=f"api:{name}"), section)
                sections.append(section)
            return sections

    app.setup_extension("sphinx.ext.autodoc")
    app.setup_extension("sphinx.ext.napoleon")
    app.add_directive("tinysora-api", TinysoraAPI)
    app.connect("autodoc-process-docstring", keep_attribute_text, priority=600)
    app.connect("autodoc-process-docstring", literal_diagrams, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
