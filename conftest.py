"""Root pytest settings, shared by tests/ and by nbval over chapters/: run at smoke scale by default."""

import os

os.environ.setdefault("TINYSORA_SCALE", "smoke")
os.environ.setdefault("TINYSORA_BATCH", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
