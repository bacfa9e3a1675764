#!/usr/bin/env python3
"""Benchmark: lifeline's audit of a whole root against `lddtree -R` over the same ELF files.

    .venv/bin/python tools/bench/audit.py [ROOT]      (default: the cached bookworm tree)

Prints both times and their ratio, measured in one run on the same files, and checks that every
file's direct libraries resolve to the same paths in both (lddtree needs pyelftools: run it with
the project's venv). Exits non-zero when the resolutions differ.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import audit  # noqa: E402

LDDTREE = "/usr/bin/lddtree"


def lddtree_direct(root: str, files: list[str]) -> tuple[float, dict[str, dict[str, str | None]]]:
    """(seconds, {file: {NEEDED: path or None}}) from one lddtree run over all files."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, LDDTREE, "-R", root, *files], capture_output=True, text=True, check=False
    ).stdout
    took = time.perf_counter() - start
    result: dict[str, dict[str, str | None]] = {}
    current = None
    for line in out.splitlines():
        if not line.startswith(" "):
            current = line.split(" (interpreter")[0][len(root) :]
            result[current] = {}
        elif current and re.match(r"^ {4}\S", line):
            name, _, path = line.strip().partition(" => ")
            result[current][name] = None if path in ("not found", "None") else path[len(root) :]
    return took, result


def real_loader(root: str, inside: str) -> dict[str, str | None]:
    """{NEEDED: path} as the target's own ld.so lists it (ld.so --list in a chroot; same architecture)."""
    out = subprocess.run(
        ["chroot", root, "/lib64/ld-linux-x86-64.so.2", "--list", inside],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    listed = {}
    for line in out.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if arrow:
            listed[name] = None if rest.startswith("not found") else rest.split(" (")[0]
    return listed


def main() -> int:
    root = sys.argv[1] if len(sys.argv) > 1 else "/var/cache/lifeline/trees/bookworm"
    start = time.perf_counter()
    report = audit.audit_root(root)
    ours_took = time.perf_counter() - start
    dynamic = [f for f in report.files if f.libraries]
    took, theirs = lddtree_direct(root, [f.path for f in dynamic])
    differ, lddtree_wrong = [], []
    for f in dynamic:
        mine = dict(f.libraries)
        other = theirs.get(f.path, {})
        if all(mine.get(name) == path for name, path in other.items()):
            continue
        # Where lddtree disagrees, the target's own loader decides.
        loader_says = real_loader(root, f.path)
        if all(mine.get(name) == path for name, path in loader_says.items() if name in mine):
            lddtree_wrong.append(f.path)
        else:
            differ.append((f.path, mine, other))
    print(f"root: {root}")
    print(f"ELF files audited: {len(report.files)} ({len(dynamic)} dynamically linked)")
    print(f"lifeline audit:  {ours_took:.3f} s (whole root: walk, parse, resolve, versions, links)")
    print(f"lddtree -R:      {took:.3f} s (the {len(dynamic)} dynamically linked files)")
    print(f"ratio:           {took / ours_took:.1f}x")
    print(f"resolution:      {'identical' if not differ else f'{len(differ)} files differ'}", end="")
    print(
        f" ({len(lddtree_wrong)} files where lddtree differs and the target's own ld.so agrees with lifeline)"
    )
    print(f"summary:         {report.summary()}")
    for path, mine, other in differ[:10]:
        print(f"  {path}: lifeline {mine} / lddtree {other}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
