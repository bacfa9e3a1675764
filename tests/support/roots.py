"""Working with copies of roots: a tmpfs to hold them, a root's own programs run inside it, and what is
still mounted below one."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs on ``where`` for copies of the trees (on this machine's disk a copy takes seconds when
    two workers copy at once, in memory half a second); unmounted at the end."""
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"mode=0755,size={size}", "lifeline-test", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def chroot(root: Path, *argv: str) -> subprocess.CompletedProcess:
    """A program of ``root`` run inside it (its own loader and libraries), as its text."""
    return subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True, check=False)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, read straight from the kernel."""
    top = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        points = [line.split()[4] for line in handle]
    return [p for p in points if p == top or p.startswith(top + "/")]
