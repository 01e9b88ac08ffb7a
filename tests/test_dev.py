"""tools/dev.py: the commands a person types. How it installs torch and runs the tests, without
installing anything (pip and subprocess are replaced by recorders)."""

import subprocess

import pytest
from packaging.requirements import Requirement

import dev  # tools/ is on pytest's pythonpath (pyproject.toml)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@pytest.fixture
def recorded(monkeypatch):
    """Record pip and subprocess calls instead of running them; ``import torch`` fails (a new .venv)."""
    calls = []
    monkeypatch.setattr(dev, "pip", lambda *args, log: calls.append(("pip", *args)))
    monkeypatch.setattr(subprocess, "call", lambda command, **kwargs: calls.append(tuple(map(str, command))) or 1)
    return calls


def test_torch_requirement_is_pyprojects():
    project = tomllib.loads((dev.ROOT / "pyproject.toml").read_text())["project"]
    declared = next(r for r in project["dependencies"] if Requirement(r).name == "torch")
    assert Requirement(dev.torch_requirement()) == Requirement(declared)


def test_cpu_torch_installs_from_the_cpu_index_before_anything_else(recorded, tmp_path):
    dev.install_torch(tmp_path / "log", cpu=True)
    pip_calls = [call for call in recorded if call[0] == "pip"]
    assert pip_calls == [("pip", "install", dev.torch_requirement(), "--index-url", dev.CPU_TORCH_INDEX)]
    assert dev.CPU_TORCH_INDEX == "https://download.pytorch.org/whl/cpu"


def test_without_cpu_torch_a_local_wheel_is_tried_then_the_default_index(recorded, tmp_path):
    dev.install_torch(tmp_path / "log", cpu=False)
    assert any("--no-index" in call for call in recorded if call[0] != "pip"), "a local wheel is tried first"
    assert recorded[-1] == ("pip", "install", dev.torch_requirement())


@pytest.mark.parametrize("command", ["test", "book", "browser", "student", "bench"])
def test_every_command_that_sets_up_venv_takes_cpu_torch(command, monkeypatch):
    seen = {}
    monkeypatch.setattr("sys.argv", ["dev.py", command, "--cpu-torch"])
    for name in ("cmd_test", "cmd_book", "cmd_browser", "cmd_student", "cmd_bench"):
        monkeypatch.setattr(dev, name, lambda args: seen.update(vars(args)) or 0)
    assert dev.main() == 0 and seen["cpu_torch"] is True and seen["command"] == command


def test_the_test_command_is_plain_pytest_on_workers(monkeypatch):
    ran = []
    monkeypatch.setattr(dev, "ensure_venv", lambda extras, cpu_torch=False: None)
    monkeypatch.setattr(dev, "run", lambda command, **kwargs: ran.append([str(c) for c in command]) or 0)
    monkeypatch.setattr("sys.argv", ["dev.py", "test", "--workers", "2"])
    assert dev.main() == 0
    assert ran == [[str(dev.PYTHON), "-m", "pytest", "-n", "2"]], "pytest's options live in pyproject.toml"
