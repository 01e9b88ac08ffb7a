"""The code passes ruff (rules in pyproject.toml's [tool.ruff]): part of the test command."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (it is in the test extra: pip install -e '.[test]')")
def test_ruff_finds_nothing():
    result = subprocess.run([RUFF, "check", "--no-cache", "--output-format", "concise", "src", "tests", "tools",
                             "conftest.py"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"ruff check found problems (fix, or `ruff check --fix`):\n{result.stdout[-4000:]}"
