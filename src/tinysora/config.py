"""Scales: one environment variable decides how big every chapter runs.

``TINYSORA_SCALE`` is one of

* ``smoke`` -- CI: each notebook in seconds; asserts still run, on tiny sizes;
* ``cpu``   -- a laptop: a chapter in minutes, with results that still teach;
* ``gpu``   -- Colab or any CUDA machine: the best results.

Unset, it means ``gpu`` when CUDA is available and ``cpu`` otherwise.

A chapter keeps its sizes in one :class:`Scaled` config at the top of the notebook, so a reader
sees at a glance what ``smoke`` shrinks::

    CONFIG = Scaled(
        smoke=dict(hidden=16, epochs=2),
        cpu=dict(hidden=128, epochs=20),
        gpu=dict(hidden=256, epochs=40),
    )
    cfg = CONFIG.pick()        # cfg.hidden, cfg.epochs for the current scale
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any, Mapping

SCALES = ("smoke", "cpu", "gpu")
ENV_VAR = "TINYSORA_SCALE"


def current_scale() -> str:
    """Return the active scale: ``$TINYSORA_SCALE``, else ``gpu`` with CUDA, else ``cpu``."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value:
        return check_scale(value)
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def check_scale(scale: str) -> str:
    """Return ``scale`` if it is a known scale, else raise a ``ValueError`` that lists them."""
    if scale not in SCALES:
        raise ValueError(
            f"unknown scale {scale!r}: {ENV_VAR} must be one of {', '.join(SCALES)} (or unset)"
        )
    return scale


class Scaled:
    """A chapter's sizes at every scale; :meth:`pick` returns the ones for the active scale.

    All three scales must name the same keys, so a notebook cannot work at one scale and
    fail with a missing attribute at another.
    """

    def __init__(self, *, smoke: Mapping[str, Any], cpu: Mapping[str, Any], gpu: Mapping[str, Any]):
        self.by_scale = {"smoke": dict(smoke), "cpu": dict(cpu), "gpu": dict(gpu)}
        keys = {scale: set(values) for scale, values in self.by_scale.items()}
        if not keys["smoke"] == keys["cpu"] == keys["gpu"]:
            all_keys = set.union(*keys.values())
            missing = {s: sorted(all_keys - k) for s, k in keys.items() if all_keys - k}
            raise ValueError(f"every scale must set the same keys; missing: {missing}")

    def pick(self, scale: str | None = None) -> SimpleNamespace:
        """The sizes for ``scale`` (default: :func:`current_scale`), as attributes."""
        scale = current_scale() if scale is None else check_scale(scale)
        return SimpleNamespace(scale=scale, **self.by_scale[scale])

    def table(self) -> str:
        """A plain-text table of every key at every scale, for printing in a notebook."""
        keys = list(self.by_scale["cpu"])
        width = max([len(k) for k in keys] + [5])
        rows = [f"{'':{width}}  " + "".join(f"{s:>12}" for s in SCALES)]
        for key in keys:
            rows.append(f"{key:{width}}  " + "".join(f"{self.by_scale[s][key]!s:>12}" for s in SCALES))
        return "\n".join(rows)
