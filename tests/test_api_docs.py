"""tools/api_docs.py, the Sphinx extension behind book/api.md: it finds every module, and it keeps the
package's docstrings readable (and warning-free) under autodoc and napoleon. No book build here."""

import api_docs  # tools/ is on pytest's pythonpath (pyproject.toml)


def test_every_module_is_found_without_entry_points():
    names = api_docs.module_names()
    assert names[0] == "tinysora" and {"tinysora.mlp", "tinysora.grading.core", "tinysora.sora.train"} <= set(names)
    assert not [name for name in names if name.endswith("__main__")]
    assert names[1:] == sorted(names[1:])


def test_automodule_lists_members():
    assert api_docs.automodule_lines("tinysora.mlp")[:2] == [".. automodule:: tinysora.mlp", "   :members:"]


def test_an_attribute_keeps_its_sentence_instead_of_a_type():
    # napoleon turned "int64 (N, 3): indices of ..." into a description and a ":type:" to link
    lines = ["indices of (colour, shape, direction).", "", ":type: int64 (N, 3)"]
    api_docs.keep_attribute_text(None, "property", "Clips.labels", None, {}, lines)
    assert lines == ["int64 (N, 3): indices of (colour, shape, direction)."]
    untouched = ["A function's text.", "", ":type: int"]
    api_docs.keep_attribute_text(None, "function", "f", None, {}, untouched)
    assert untouched == ["A function's text.", "", ":type: int"]


def test_a_diagram_after_a_paragraph_becomes_literal():
    lines = ["The model, in order:", "", "    x -> Linear -> y", "", "Then a paragraph ends.", "",
             "    a -> b", "", "* a list item", "", "  its continuation", "", "Code::", "", "    kept"]
    api_docs.literal_diagrams(None, "module", "m", None, {}, lines)
    assert lines[0] == "The model, in order::"
    assert lines[4] == "Then a paragraph ends. ::"
    assert lines[8] == "* a list item" and lines[12] == "Code::"
    function_doc = ["Text:", "", "    indented"]
    api_docs.literal_diagrams(None, "function", "f", None, {}, function_doc)
    assert function_doc[0] == "Text:", "only module docstrings (maps and diagrams) are changed"
