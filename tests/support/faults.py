"""Damage done to a root for a test: the drill role's glibc fault planter (the faults the drills and
molecule plant), and damage no planter does."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.paths import PLANTERS

GLIBC_PLANTER = PLANTERS / "glibc.sh"


def plant_glibc(root: Path, fault: str, *args: str | Path) -> None:
    """``glibc.sh ROOT FAULT [ARG...]``; the test fails when the planter does."""
    done = subprocess.run(
        ["sh", str(GLIBC_PLANTER), str(root), fault, *map(str, args)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def elf32(data: bytes) -> bytes:
    """The same file claiming to be a 32-bit i386 one (EI_CLASS 1, e_machine EM_386)."""
    patched = bytearray(data)
    patched[4] = 1
    patched[18:20] = (3).to_bytes(2, "little")
    return bytes(patched)
