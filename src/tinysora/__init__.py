"""tinysora: the package that *From Neurons to Sora* builds, one chapter at a time.

Each chapter of the book owns one module (``tinysora.mlp`` is chapter 01's,
``tinysora.optim`` chapter 02's, ...); later chapters import earlier ones, so the package
grows into a tiny text-to-video diffusion transformer.

Shared helpers live here once:

* :mod:`tinysora.config`  -- the ``TINYSORA_SCALE`` setting (smoke / cpu / gpu) and per-chapter configs;
* :mod:`tinysora.runtime` -- seeding, device choice, progress bars, the chapter banner;
* :mod:`tinysora.plotting` -- loss curves and clip animations;
* :mod:`tinysora.grading` -- autograder checks for the exercises.
"""

__version__ = "0.1.0"

from tinysora.config import Scaled, current_scale  # noqa: E402
from tinysora.runtime import describe_runtime, pick_device, progress, seed_everything  # noqa: E402

__all__ = [
    "__version__",
    "Scaled",
    "current_scale",
    "describe_runtime",
    "pick_device",
    "progress",
    "seed_everything",
]
