"""Library resolution inside a root, against lddtree (pax-utils) on real Debian trees."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import elf, loader

from support.trees import SUITES
from support.trees import debian_tree as tree

LDDTREE = "/usr/bin/lddtree"


def executables(root: Path) -> list[str]:
    """Every dynamically linked program of /usr/bin and /usr/sbin, as paths inside the root."""
    found = []
    for directory in ("usr/bin", "usr/sbin"):
        for entry in sorted(os.scandir(root / directory), key=lambda e: e.name):
            if entry.is_symlink() or not entry.is_file():
                continue
            try:
                info = elf.read_elf(entry.path)
            except elf.ElfError:
                continue
            if info.needed:
                found.append(f"/{directory}/{entry.name}")
    return found


def lddtree_list(root: Path, inside: str) -> list[str]:
    """lddtree -l: the program, its interpreter, then every library's path as searched."""
    out = subprocess.run(
        [sys.executable, LDDTREE, "-R", str(root), "-l", inside], capture_output=True, text=True, check=True
    ).stdout
    return [line[len(str(root)) :] for line in out.splitlines()]


# lddtree takes about 0.1 s a program: every third program of each tree keeps the lane quick.
SAMPLE_EVERY = 3


@pytest.mark.parametrize("suite", SUITES)
def test_programs_resolve_like_lddtree(suite):
    root = tree(suite)
    rl = loader.RootLoader(str(root))
    programs = executables(root)[::SAMPLE_EVERY]
    assert len(programs) > 50, "too few programs found: the oracle would prove little"
    with ThreadPoolExecutor(max_workers=4) as pool:
        expected_lists = list(pool.map(lambda inside: lddtree_list(root, inside), programs))
    mismatches = []
    for inside, expected in zip(programs, expected_lists, strict=True):
        objects = rl.load_tree(inside)
        ours = [objects[0].path]
        if objects[0].info.interpreter:
            ours.append(objects[0].info.interpreter)
        ours += [o.path for o in objects[1:] if o.path not in ours]
        missing = [f.name for o in objects for f in o.found if f.path is None]
        if sorted(ours) != sorted(expected) or missing:
            mismatches.append((inside, sorted(set(ours) ^ set(expected)), missing))
    assert mismatches == []


def _root_with(tmp_path: Path, files: dict[str, str]) -> Path:
    """A root made of copies of the bookworm tree's files (name in root -> file in the tree)."""
    source = tree("bookworm")
    root = tmp_path / "root"
    for name, original in files.items():
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((source / original.lstrip("/")).read_bytes())
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "ld.so.conf").write_text("/lib/x86_64-linux-gnu\n")
    return root


def test_a_missing_libc_is_reported_missing(tmp_path):
    root = _root_with(tmp_path, {"/usr/bin/true": "/usr/bin/true"})
    [program] = loader.RootLoader(str(root)).load_tree("/usr/bin/true")
    assert [(f.name, f.path) for f in program.found] == [("libc.so.6", None)]


def test_a_renamed_away_libc_is_missing_and_the_copy_beside_it_is_not_taken(tmp_path):
    root = _root_with(
        tmp_path,
        {
            "/usr/bin/true": "/usr/bin/true",
            "/lib/x86_64-linux-gnu/libc.so.6.bak": "/lib/x86_64-linux-gnu/libc.so.6",
        },
    )
    [program] = loader.RootLoader(str(root)).load_tree("/usr/bin/true")
    assert program.found[0].path is None


def test_a_library_of_the_wrong_class_is_passed_over(tmp_path):
    """A 32-bit or foreign file named libc.so.6 in an earlier directory is skipped, as glibc does."""
    root = _root_with(
        tmp_path,
        {
            "/usr/bin/true": "/usr/bin/true",
            "/opt/lib/libc.so.6": "/usr/bin/true",  # an ELF file, but not a library: still 64-bit x86_64
            "/lib/x86_64-linux-gnu/libc.so.6": "/lib/x86_64-linux-gnu/libc.so.6",
        },
    )
    (root / "opt" / "lib" / "libc.so.6").write_bytes(b"#!/bin/sh\n")
    (root / "etc" / "ld.so.conf").write_text("/opt/lib\n/lib/x86_64-linux-gnu\n")
    [program, libc] = loader.RootLoader(str(root)).load_tree("/usr/bin/true")
    assert program.found[0].path == "/lib/x86_64-linux-gnu/libc.so.6"
    assert program.found[0].how == "conf"
    assert program.found[0].passed_over and "/opt/lib/libc.so.6" in program.found[0].passed_over[0]
    assert libc.path == "/lib/x86_64-linux-gnu/libc.so.6"


def test_an_absolute_link_to_a_foreign_glibc_resolves_inside_the_root(tmp_path):
    """Incident 2: libc.so.6 -> /opt/glibc-2.14/lib/libc.so.6 is followed inside the target only."""
    root = _root_with(tmp_path, {"/usr/bin/true": "/usr/bin/true"})
    (root / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    os.symlink("/opt/glibc-2.14/lib/libc.so.6", root / "lib" / "x86_64-linux-gnu" / "libc.so.6")
    [program] = loader.RootLoader(str(root)).load_tree("/usr/bin/true")
    assert program.found[0].path is None, "a dangling link inside the root is not a library"


@pytest.mark.parametrize(
    ("search", "origin_of", "expected"),
    [
        ("/opt/a:/opt/b", "/usr/bin/x", ["/opt/a", "/opt/b"]),
        ("$ORIGIN/../lib", "/opt/app/bin/x", ["/opt/app/lib"]),
        ("${ORIGIN}", "/opt/app/bin/x", ["/opt/app/bin"]),
        ("$ORIGIN/../../../../..", "/opt/x", ["/"]),
    ],
    ids=["plain", "$ORIGIN", "${ORIGIN}", "$ORIGIN climbing out stays at /"],
)
def test_expand(search, origin_of, expected):
    assert loader.expand(search, origin_of) == expected


@pytest.mark.parametrize(
    "needed",
    ["$ORIGIN/../lib/libc.so.6", "${ORIGIN}/../lib/libc.so.6", "../lib/libc.so.6"],
    ids=["$ORIGIN", "${ORIGIN}", "relative"],
)
def test_a_needed_path_with_origin_resolves_beside_the_object(tmp_path, needed):
    """A bundled interpreter's NEEDED "$ORIGIN/../lib/libpython..." names a file, not a search."""
    source = tree("bookworm") / "usr/lib/x86_64-linux-gnu/libc.so.6"
    (tmp_path / "opt/app/lib").mkdir(parents=True)
    (tmp_path / "opt/app/lib/libc.so.6").write_bytes(source.read_bytes())
    rl = loader.RootLoader(str(tmp_path))
    me = loader.Loaded(path="/opt/app/bin/tool", info=rl.read("/opt/app/lib/libc.so.6"))

    found = rl.find(me, needed, [])

    assert (found.path, found.how) == ("/opt/app/lib/libc.so.6", "path")
