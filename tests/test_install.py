"""Installing tinysora on Colab must not change any preinstalled package."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("requirement", PROJECT["dependencies"])
def test_runtime_dependencies_have_lower_bounds_only(requirement):
    specifiers = Requirement(requirement).specifier
    assert specifiers, f"{requirement}: give a lower bound"
    assert all(s.operator == ">=" for s in specifiers), f"{requirement}: lower bounds only (no ==, <, ~=)"


def test_runtime_dependencies_are_the_light_ones():
    names = {Requirement(r).name for r in PROJECT["dependencies"]}
    assert names == {"numpy", "torch", "einops", "matplotlib", "tqdm", "scikit-learn"}


def test_pip_would_add_only_tinysora_to_an_environment_with_newer_packages(tmp_path):
    """A dry run of installing the tinysora wheel into this test environment, which already has numpy,
    torch and matplotlib newer than the lower bounds. Offline (--no-index): if any dependency needed
    an upgrade, pip would fail to resolve; if it would replace anything, the report would list it."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("tinysora-*.whl"))
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--report", "-", "-q",
                             str(wheel)], capture_output=True, text=True)
    assert result.returncode == 0, f"pip could not install tinysora without changing packages: {result.stderr[-800:]}"
    to_install = [item["metadata"]["name"] for item in json.loads(result.stdout)["install"]]
    assert to_install == ["tinysora"], f"installing tinysora would also install or replace: {to_install[1:]}"
