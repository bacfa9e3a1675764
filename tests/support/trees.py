"""The real Debian roots the lanes read, and the .deb files they came from: built and cached by
`make images` in the machine cache (LIFELINE_CACHE, /var/cache/lifeline by default)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("LIFELINE_CACHE", "/var/cache/lifeline"))
TREES = Path(os.environ.get("LIFELINE_TREES", CACHE / "trees"))
DEBS = Path(os.environ.get("LIFELINE_DEBS", CACHE / "debs"))
# Busy-server roots: each suite's tree with a real server's packages (tools/images/build-servers.sh).
SERVERS = Path(os.environ.get("LIFELINE_SERVERS", CACHE / "servers"))
SUITES = ("bullseye", "bookworm", "trixie")


def debian_tree(suite: str) -> Path:
    """The debootstrapped root of ``suite``; a missing one fails the test (it is never skipped)."""
    root = TREES / suite
    if not (root / "usr" / "lib" / "os-release").is_file():
        pytest.fail(f"{root} is missing: run `make images` (it builds the Debian trees the tests read)")
    return root


def busy_server(suite: str) -> Path:
    """The busy-server root of ``suite``; a missing one fails the test (it is never skipped)."""
    root = SERVERS / suite
    if not (root / "usr" / "lib" / "os-release").is_file() or not (SERVERS / f"{suite}.stamp").is_file():
        pytest.fail(f"{root} is missing: run `make images` (it builds the busy-server roots the tests read)")
    return root


def deb_of(suite: str, name: str) -> Path:
    """The .deb debootstrap downloaded for ``name``; a missing one fails the test (never skipped)."""
    found = sorted((DEBS / suite).glob(f"{name}_*_*.deb"))
    if not found:
        pytest.fail(f"no {name}_*.deb in {DEBS / suite}: run `make images` (it keeps the downloaded debs)")
    return found[-1]


def listing(root: Path, libdir: str = "usr/lib/x86_64-linux-gnu") -> dict[str, object]:
    """Every entry of a root (mode, owner, size, link target) and the md5 of its library directory's
    files: two listings are equal only when nothing in the root changed."""
    found: dict[str, object] = {}
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(top, name)
            st = os.lstat(path)
            link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
            found[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, link)
    for path in (root / libdir).iterdir():
        if path.is_file() and not path.is_symlink():
            found[f"md5 {path.name}"] = hashlib.md5(path.read_bytes()).hexdigest()
    return found
