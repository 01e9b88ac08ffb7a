#!/usr/bin/env python3
"""Every project command in one place. Needs only Python 3.10+; each command sets up `.venv` itself.

    python3 tools/dev.py test      run every test (plain `pytest` in .venv): unit tests, lint, every notebook
    python3 tools/dev.py book      build the book (executes every chapter, at cpu scale by default)
    python3 tools/dev.py browser   open every page of the built book in headless chromium and check it
    python3 tools/dev.py student   write student versions of every chapter (nbgrader) to _build/student/
    python3 tools/dev.py bench     time every notebook at a scale and print the table
    python3 tools/dev.py sync      rewrite the chapters' install cells from _config.yml (--ref: set the release first)

`--cpu-torch` (on every command that sets up .venv) installs torch from PyTorch's CPU wheel index
before anything else: on a CPU-only machine it avoids pip's default CUDA build.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import book_ref  # tools/book_ref.py: a script's own folder is on sys.path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
CHROMIUM = Path("/usr/bin/chromium")


def run(command: list[str], **kwargs) -> int:
    print("$", " ".join(str(part) for part in command), flush=True)
    return subprocess.call([str(part) for part in command], cwd=ROOT, **kwargs)


def pip(*args: str, log: Path) -> None:
    """Run pip in .venv, keeping its chatter in a log file that is shown only if pip fails."""
    with open(log, "a") as handle:
        code = subprocess.call([str(PYTHON), "-m", "pip", *args], cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    if code:
        sys.exit(f"pip {' '.join(args)} failed; see {log}:\n" + log.read_text()[-4000:])


def torch_requirement() -> str:
    """The torch requirement of pyproject.toml (read with a regex: this runs before any package is installed)."""
    match = re.search(r'"(torch\s*>=[^";]+)"', (ROOT / "pyproject.toml").read_text())
    if match is None:
        sys.exit("pyproject.toml declares no torch>=... dependency")
    return match.group(1)


def install_torch(log: Path, cpu: bool) -> None:
    """Install torch before the package, choosing a wheel that suits the machine.

    ``cpu`` (``--cpu-torch``): the CPU build from PyTorch's CPU wheel index. Otherwise a torch wheel
    in pip's local find-links (an offline or CPU-only machine, like our CI) wins, and failing that
    pip's default index decides (on Colab or a normal machine, the usual torch).
    """
    probe = subprocess.call([str(PYTHON), "-c", "import torch"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if probe == 0:
        return
    if cpu:
        print(f"  torch from the CPU wheel index ({CPU_TORCH_INDEX})", flush=True)
        pip("install", torch_requirement(), "--index-url", CPU_TORCH_INDEX, log=log)
        return
    local = subprocess.call([str(PYTHON), "-m", "pip", "install", "--no-index", "--no-deps", "torch"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if local == 0:
        version = subprocess.check_output(
            [str(PYTHON), "-c", "import importlib.metadata as m; print(m.version('torch'))"], text=True).strip()
        print(f"  torch {version} from a local wheel")
        pip("install", f"torch=={version}", log=log)  # now pull its dependencies
    else:
        pip("install", torch_requirement(), log=log)


def ensure_venv(extras: list[str], cpu_torch: bool = False) -> None:
    """Create .venv if needed and install the package with ``extras``; skipped when nothing changed.

    The stamp covers pyproject.toml and the version in ``tinysora/__init__.py`` (its metadata)."""
    if not PYTHON.exists():
        print(f"creating {VENV.relative_to(ROOT)} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    metadata = (ROOT / "pyproject.toml").read_bytes() + (ROOT / "src" / "tinysora" / "__init__.py").read_bytes()
    digest = hashlib.sha256(metadata).hexdigest()[:12]
    stamp = VENV / f".installed-{'-'.join(sorted(extras))}-{digest}"
    if stamp.exists():
        return
    log = VENV / "install.log"
    started = time.time()
    print(f"installing tinysora[{','.join(extras)}] into .venv (log: {log.relative_to(ROOT)}) ...", flush=True)
    pip("install", "--upgrade", "pip", log=log)
    install_torch(log, cpu_torch)
    pip("install", "-e", f".[{','.join(extras)}]", log=log)
    stamp.touch()
    print(f"  installed in {time.time() - started:.0f} s", flush=True)


def batch_env(scale: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TINYSORA_SCALE", scale)
    env["TINYSORA_BATCH"] = "1"          # progress bars update rarely in stored outputs
    return env


def cmd_test(args: argparse.Namespace) -> int:
    """Plain pytest in .venv (its options are in pyproject.toml), on ``--workers`` processes."""
    ensure_venv(["test", "grading"], args.cpu_torch)
    command = [PYTHON, "-m", "pytest", "-n", str(args.workers), *args.pytest_args]
    started = time.time()
    code = run(command, env=batch_env("smoke"))
    print(f"tests finished in {time.time() - started:.0f} s (exit code {code})")
    return code


def cmd_book(args: argparse.Namespace) -> int:
    """Build the HTML book; fail on any warning or any chapter that did not execute."""
    ensure_venv(["book"], args.cpu_torch)
    env = batch_env(args.scale)
    print(f"executing chapters at scale {env['TINYSORA_SCALE']} (cached: only changed chapters re-run)")
    started = time.time()
    log = ROOT / "_build" / "book.log"
    log.parent.mkdir(exist_ok=True)
    command = [BIN / "jupyter-book", "build", ".", "--warningiserror", "--nitpick", "--keep-going"]
    with open(log, "w") as handle:
        process = subprocess.Popen([str(p) for p in command], cwd=ROOT, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in process.stdout:
            sys.stdout.write(line)
            handle.write(line)
        code = process.wait()
    # jupyter-book 1.0.x exits 0 with -W --keep-going even after warnings, and a failed notebook
    # is only a warning: so read the log and the execution reports ourselves.
    text = log.read_text()
    problems = [line for line in text.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL):", line)]
    reports = sorted((ROOT / "_build" / "html" / "reports").glob("**/*.err.log"))
    if code or problems or reports:
        for line in problems[:30]:
            print("  ", line)
        for report in reports:
            print(f"  execution failed: {report.relative_to(ROOT)}")
        print(f"BOOK BUILD FAILED ({len(problems)} warnings/errors, {len(reports)} failed notebooks; log: {log})")
        return code or 1
    print(f"book built in {time.time() - started:.0f} s: open {ROOT / '_build' / 'html' / 'index.html'}")
    return 0


def ensure_chromium() -> None:
    """Debian's chromium for the browser check: installed with apt-get when we are root, else explained."""
    if CHROMIUM.exists():
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing Debian's chromium (apt-get install -y chromium) ...", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if run(["apt-get", "update", "-qq"], env=env) == 0 and run(["apt-get", "install", "-y", "-qq", "chromium"],
                                                                    env=env) == 0 and CHROMIUM.exists():
            return
    sys.exit(f"{CHROMIUM} is missing: install Debian's chromium (sudo apt-get install -y chromium), then run again")


def cmd_browser(args: argparse.Namespace) -> int:
    """Check the built book in headless chromium; build it at smoke scale first if there is none."""
    ensure_venv(["book"], args.cpu_torch)
    ensure_chromium()
    html = Path(args.html).resolve()
    if not (html / "index.html").exists():
        if html != ROOT / "_build" / "html":
            sys.exit(f"no built book in {html}")
        print("no book in _build/html yet: building it at smoke scale first")
        code = cmd_book(argparse.Namespace(scale="smoke", cpu_torch=args.cpu_torch))
        if code:
            return code
    return run([PYTHON, ROOT / "tools" / "browser_check.py", html])


def cmd_student(args: argparse.Namespace) -> int:
    ensure_venv(["test", "grading"], args.cpu_torch)
    return run([PYTHON, ROOT / "tools" / "student.py", *args.chapters])


def cmd_bench(args: argparse.Namespace) -> int:
    ensure_venv(["test", "grading"], args.cpu_torch)
    return run([PYTHON, ROOT / "tools" / "bench.py", "--scale", args.scale, *args.chapters],
               env=batch_env(args.scale))


def cmd_sync(args: argparse.Namespace) -> int:
    if args.ref:
        book_ref.set_ref(ROOT, args.ref)
        print(f"_config.yml: the book is the release {args.ref} (launch buttons and install cells)")
    changed = book_ref.sync_install_cells(ROOT)
    print(f"install cells rewritten in {len(changed)} notebook(s)" if changed else "install cells already in sync")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    venv_options = argparse.ArgumentParser(add_help=False)
    venv_options.add_argument("--cpu-torch", action="store_true",
                              help=f"when .venv has no torch yet, install the CPU build from {CPU_TORCH_INDEX}")
    test = sub.add_parser("test", parents=[venv_options], help="run every test (plain pytest in .venv)")
    test.add_argument("--workers", default="auto", help="pytest-xdist workers (default: one per core)")
    test.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    book = sub.add_parser("book", parents=[venv_options], help="build the book into _build/html")
    book.add_argument("--scale", default="cpu", choices=["smoke", "cpu", "gpu"],
                      help="scale the chapters execute at, unless TINYSORA_SCALE is set (default: cpu)")
    browser = sub.add_parser("browser", parents=[venv_options], help="check every page of the book in chromium")
    browser.add_argument("--html", default=str(ROOT / "_build" / "html"),
                         help="the built book (default: _build/html, built at smoke scale if missing)")
    student = sub.add_parser("student", parents=[venv_options], help="generate student versions with nbgrader")
    student.add_argument("chapters", nargs="*", help="chapter notebooks (default: all)")
    bench = sub.add_parser("bench", parents=[venv_options], help="time every notebook at a scale")
    bench.add_argument("--scale", default="smoke", choices=["smoke", "cpu", "gpu"])
    bench.add_argument("chapters", nargs="*", help="chapter notebooks (default: all)")
    sync = sub.add_parser("sync", help="rewrite install cells from _config.yml")
    sync.add_argument("--ref", help="first set the release the book installs and launches (a tag such as "
                                    "v0.2.0, or a commit) in _config.yml")
    args = parser.parse_args()
    commands = {"test": cmd_test, "book": cmd_book, "browser": cmd_browser, "student": cmd_student,
                "bench": cmd_bench, "sync": cmd_sync}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
