"""Installing tinysora: its declared dependencies are what it imports, and on Colab it changes no package."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (requires-python = ">=3.10"): the same parser, from PyPI
    import tomli as tomllib

import tinysora

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# the import name of a distribution, where the two differ
IMPORT_NAME = {"scikit-learn": "sklearn", "pillow": "PIL"}
# imported only inside functions that run in a notebook, where the kernel has already imported it
NOTEBOOK_ONLY = {"IPython"}


def third_party_imports() -> dict[str, str]:
    """``{top-level module: a file that imports it}`` for every non-stdlib import in src/tinysora."""
    found = {}
    for path in sorted((ROOT / "src" / "tinysora").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "tinysora":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("requirement", PROJECT["dependencies"])
def test_runtime_dependencies_have_lower_bounds_only(requirement):
    specifiers = Requirement(requirement).specifier
    assert specifiers, f"{requirement}: give a lower bound"
    assert all(s.operator == ">=" for s in specifiers), f"{requirement}: lower bounds only (no ==, <, ~=)"


def test_every_imported_package_is_declared_and_every_declared_one_imported():
    declared = {IMPORT_NAME.get(Requirement(r).name, Requirement(r).name) for r in PROJECT["dependencies"]}
    imported = third_party_imports()
    undeclared = {name: path for name, path in imported.items() if name not in declared | NOTEBOOK_ONLY}
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"
    unused = declared - set(imported)
    assert not unused, f"declared in pyproject but never imported by src/tinysora: {sorted(unused)}"


def test_version_is_written_once():
    assert PROJECT["dynamic"] == ["version"] and "version" not in PROJECT, "the version lives in tinysora.__version__"
    from importlib.metadata import version

    assert version("tinysora") == tinysora.__version__, "reinstall: the installed metadata is stale"


def test_pip_would_add_only_tinysora_to_an_environment_with_newer_packages(tmp_path):
    """A dry run of installing the tinysora wheel into this test environment, which already has numpy,
    torch and matplotlib newer than the lower bounds. Offline (--no-index): if any dependency needed
    an upgrade, pip would fail to resolve; if it would replace anything, the report would list it."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("tinysora-*.whl"))
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--report", "-", "-q",
                             str(wheel)], capture_output=True, text=True)
    assert result.returncode == 0, f"pip could not install tinysora without changing packages: {result.stderr[-800:]}"
    to_install = [item["metadata"]["name"] for item in json.loads(result.stdout)["install"]]
    assert to_install == ["tinysora"], f"installing tinysora would also install or replace: {to_install[1:]}"
