"""Working with copies of roots: a tmpfs to hold them, a root's own programs run inside it, and what is
still mounted below one."""

from __future__ import annotations

import contextlib
import hashlib
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


# What the loader or the kernel says when a program of a root cannot start for its glibc.
GLIBC_FAILURE_SIGNS = ("error while loading shared libraries", "version `GLIBC_", "No such file or directory")


def fails_for_glibc(done: subprocess.CompletedProcess) -> bool:
    """The program did not run, and the words say its loader or libraries are why."""
    return done.returncode != 0 and any(sign in done.stderr for sign in GLIBC_FAILURE_SIGNS)


def library_listing(root: Path, libdir: str) -> dict[str, str]:
    """Every name in a library directory of the root: link text or md5, to compare before and after."""
    return {
        p.name: ("-> " + str(p.readlink()))
        if p.is_symlink()
        else hashlib.md5(p.read_bytes()).hexdigest()
        if p.is_file()
        else "dir"
        for p in sorted((root / libdir).iterdir())
    }


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, read straight from the kernel."""
    top = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        points = [line.split()[4] for line in handle]
    return [p for p in points if p == top or p.startswith(top + "/")]
