#!/usr/bin/env python3
"""Benchmark the ELF reader (plugins/module_utils/glibc/elf.py) over every ELF file of a root.

    tools/bench/elf.py [PATH...]      default: the bookworm tree of the machine cache

Each PATH (a root or any directory) is walked without following symlinks or leaving its
filesystem; the ELF files found (by their magic) are parsed with elf.read_elf three times and the
best run is reported: files, total time, files per second. Files the reader refuses are counted and
the first few named. Standard library only, like the reader: it runs with any python3.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LIFELINE_CACHE", "/var/cache/lifeline"))
DEFAULT_ROOT = Path(os.environ.get("LIFELINE_TREES", CACHE / "trees")) / "bookworm"
RUNS = 3


def load_elf_module():
    """elf.py through the checkout's collection link: standard library only, no Ansible needed."""
    sys.path.insert(0, str(REPO / ".collections"))
    from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import elf

    return elf


def elf_files(top: Path) -> list[str]:
    """Regular files under ``top`` that start with the ELF magic; symlinks and other filesystems skipped."""
    device = top.lstat().st_dev
    found = []
    for directory, subdirectories, names in os.walk(top):
        subdirectories[:] = sorted(
            d for d in subdirectories if os.lstat(os.path.join(directory, d)).st_dev == device
        )
        for name in sorted(names):
            path = os.path.join(directory, name)
            try:
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                with open(path, "rb") as stream:
                    if stream.read(4) == b"\x7fELF":
                        found.append(path)
            except OSError:
                continue
    return found


def run(elf, files: list[str]) -> tuple[float, list[str]]:
    refused = []
    start = time.perf_counter()
    for path in files:
        try:
            elf.read_elf(path)
        except elf.ElfError as exc:
            refused.append(str(exc))
    return time.perf_counter() - start, refused


def main(argv: list[str]) -> int:
    tops = [Path(arg) for arg in argv] or [DEFAULT_ROOT]
    for top in tops:
        if not top.is_dir():
            print(
                f"bench/elf.py: {top} is not a directory (the default needs `make images`)", file=sys.stderr
            )
            return 2
    elf = load_elf_module()
    files = [path for top in tops for path in elf_files(top)]
    if not files:
        print(f"bench/elf.py: no ELF files under {', '.join(map(str, tops))}", file=sys.stderr)
        return 1
    timings = []
    for number in range(1, RUNS + 1):
        seconds, refused = run(elf, files)
        timings.append(seconds)
        print(f"run {number}: {len(files)} files in {seconds:.3f} s, {len(files) / seconds:,.0f} files/s")
    size = sum(os.path.getsize(path) for path in files)
    best = min(timings)
    print(f"{', '.join(map(str, tops))}: {len(files)} ELF files ({size / 1e6:,.0f} MB)")
    rate, each = len(files) / best, best / len(files) * 1e6
    print(f"best of {RUNS}: {best:.3f} s total, {rate:,.0f} files/s, {each:.0f} us per file")
    if refused:
        print(f"{len(refused)} refused by the reader, e.g.:")
        for message in refused[:5]:
            print(f"  {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
