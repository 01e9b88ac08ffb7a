#!/usr/bin/env python3
"""Time every chapter notebook at a scale and print a table (a benchmark, not a test).

    python3 tools/dev.py bench --scale smoke            # all chapters
    python3 tools/dev.py bench --scale cpu chapters/01_mlp.ipynb
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def time_notebook(path: Path) -> tuple[float, str]:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    try:
        resources = {"metadata": {"path": str(ROOT / "chapters")}}
        NotebookClient(notebook, timeout=1800, kernel_name="python3", resources=resources).execute()
        status = "ok"
    except Exception as error:  # report and go on: a benchmark lists every chapter
        status = f"FAILED: {type(error).__name__}"
    return time.perf_counter() - started, status


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", required=True)
    parser.add_argument("chapters", nargs="*")
    args = parser.parse_args()
    os.environ["TINYSORA_SCALE"] = args.scale
    paths = [Path(c) for c in args.chapters] or sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    print(f"scale {args.scale}, {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'chapter':28s} {'seconds':>8s}  status")
    failed = 0
    for path in paths:
        seconds, status = time_notebook(path)
        failed += status != "ok"
        print(f"{path.name:28s} {seconds:8.1f}  {status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
