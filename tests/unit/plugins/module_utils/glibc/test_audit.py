"""The audit of a whole root, on real Debian trees and on copies broken the way the incidents broke them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import audit

from support.trees import debian_tree as tree

LIBDIR = "lib/x86_64-linux-gnu"


@pytest.mark.parametrize("suite", ["bullseye", "bookworm", "trixie"])
def test_a_healthy_debian_root_has_no_findings(suite):
    result = audit.audit_root(str(tree(suite)))
    assert result.summary()["elf_files"] > 500
    assert result.broken == [], [f"{f.path}: {f.problems}" for f in result.broken[:5]]
    assert result.links == []


def problems(root: Path) -> dict[str, list[str]]:
    result = audit.audit_root(str(root))
    return {f.path: f.problems for f in result.broken} | {"links": result.links}


def test_the_small_root_is_healthy(small_root):
    assert problems(small_root) == {"links": []}


def test_libc_renamed_away(small_root):
    """Incident 1: every dynamically linked program loses libc.so.6."""
    libc = small_root / "usr" / LIBDIR / "libc.so.6"
    libc.rename(libc.with_name("libc.so.6.bak"))
    found = problems(small_root)
    assert found["/usr/bin/true"] == ["libc.so.6: not found"]
    assert found["/usr/bin/dash"] == ["libc.so.6: not found"]


def test_libc_pointed_at_another_glibc(small_root):
    """Incident 2: libc.so.6 -> a glibc of another release under /opt; its versions are too old."""
    old = tree("bullseye") / LIBDIR / "libc-2.31.so"
    (small_root / "opt" / "glibc-2.31" / "lib").mkdir(parents=True)
    shutil.copy2(old, small_root / "opt" / "glibc-2.31" / "lib" / "libc.so.6")
    libc = small_root / "usr" / LIBDIR / "libc.so.6"
    libc.unlink()
    os.symlink("/opt/glibc-2.31/lib/libc.so.6", libc)
    found = problems(small_root)
    assert any(
        p == f"/{LIBDIR}/libc.so.6: version `GLIBC_2.34' not found (required by /usr/bin/true)"
        for p in found["/usr/bin/true"]
    ), found


def test_the_loader_link_removed(small_root):
    (small_root / "lib64" / "ld-linux-x86-64.so.2").unlink()
    found = problems(small_root)
    assert found["/usr/bin/true"] == ["interpreter /lib64/ld-linux-x86-64.so.2: missing"]


def test_a_dangling_link_and_a_link_climbing_out(small_root):
    os.symlink("libc.so.6.gone", small_root / "usr" / LIBDIR / "libdangling.so.1")
    os.symlink("../../../../../../../etc/passwd", small_root / "usr" / LIBDIR / "libescape.so.1")
    links = problems(small_root)["links"]
    assert any(p.startswith(f"/usr/{LIBDIR}/libdangling.so.1: dangling link") for p in links)
    assert any(p.startswith(f"/usr/{LIBDIR}/libescape.so.1: climbs out of the root") for p in links)


def test_a_truncated_libc_is_damaged_and_its_users_are_told(small_root):
    libc = small_root / "usr" / LIBDIR / "libc.so.6"
    libc.write_bytes(libc.read_bytes()[: 64 * 1024])
    result = audit.audit_root(str(small_root))
    by_path = {f.path: f for f in result.files}
    assert by_path[f"/usr/{LIBDIR}/libc.so.6"].kind == "damaged"
    assert by_path["/usr/bin/true"].problems[0].startswith("libc.so.6: not found (passed over:")
