"""The real Debian roots the unit lane reads: built and cached by `make images`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TREES = Path(os.environ.get("LIFELINE_TREES", "/var/cache/lifeline/trees"))
SUITES = ("bullseye", "bookworm", "trixie")


def debian_tree(suite: str) -> Path:
    """The debootstrapped root of ``suite``; a missing one fails the test (it is never skipped)."""
    root = TREES / suite
    if not (root / "usr" / "lib" / "os-release").is_file():
        pytest.fail(f"{root} is missing: run `make images` (it builds the Debian trees the unit lane reads)")
    return root
