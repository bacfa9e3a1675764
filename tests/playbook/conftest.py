"""The playbook lane: the project's playbooks on real Debian trees on this machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TREES = Path(os.environ.get("LIFELINE_TREES", "/var/cache/lifeline/trees"))
SUITES = ("bullseye", "bookworm", "trixie")


@pytest.fixture(params=SUITES)
def debian_tree(request) -> Path:
    """A real debootstrapped Debian root, built and cached by `make images`."""
    tree = TREES / request.param
    if not (tree / "etc" / "os-release").exists():
        pytest.fail(f"{tree} is missing: run `make images` (the playbook lane needs the real Debian trees)")
    return tree


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, read straight from the kernel."""
    top = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        points = [line.split()[4] for line in handle]
    return [p for p in points if p == top or p.startswith(top + "/")]
