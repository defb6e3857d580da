"""What the benchmarks share: the synthetic corpus of data/synthetic.py (not a package: loaded by its path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def synthetic(out: Path, experiences: int, seed: int) -> Path:
    """`experiences` synthetic experiences written under `out` as a package of the standard."""
    spec = importlib.util.spec_from_file_location("synthetic", ROOT / "data" / "synthetic.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.generate(out, experiences, seed)
    return out
