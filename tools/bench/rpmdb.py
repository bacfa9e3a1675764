#!/usr/bin/env python3
"""Benchmark: lifeline's rpm database reader against real rpm on the same databases.

    .venv/bin/python tools/bench/rpmdb.py [CORPUS]      (default: ../shared/rpm-corpus beside the checkout)

For the RHEL 8 and Fedora 26 Berkeley DB databases and the CBL-Mariner 2.0 and Fedora 33 sqlite ones:
lists every package and glibc's files with lifeline (a fresh reader each run: find, read, check every
header) and with `rpm --dbpath COPY -qa` and `rpm --dbpath COPY -qa glibc -l` (BDB through
`--define '_db_backend bdb_ro'`; rpm runs on a copy, as it writes beside what it reads). Prints the
best of 3 runs of each, their ratio, and whether both list the same; exits non-zero when they differ.
The SLE 15 ndb database is timed too, without rpm: the rpm installed here has no ndb backend.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import database as rpmdb  # noqa: E402

RUNS = 3
DATABASES = (
    ("scancode/rhel8-bdb", "var-lib-rpm.tar.xz"),
    ("scancode/fedora26-modular-bdb", "bdb-fedora-rootfs.tar.xz"),
    ("go-rpmdb/cbl-mariner-2.0", "rpmdb.sqlite"),
    ("libguestfs/fedora33-glibc", "rpmdb.sqlite"),
    ("go-rpmdb/sle15-bci", "Packages.db"),
)


def plant(corpus: Path, entry: str, source: str, root: Path) -> Path:
    """The entry's database in ``root``/var/lib/rpm; its directory."""
    directory = root / "var/lib/rpm"
    directory.mkdir(parents=True)
    if source.endswith(".tar.xz"):
        with tarfile.open(corpus / entry / source, "r:xz") as tar:
            member = tar.extractfile("rootfs/var/lib/rpm/Packages")
            assert member is not None
            (directory / "Packages").write_bytes(member.read())
    else:
        shutil.copy(corpus / entry / source, directory / source)
    return directory


def best(action) -> tuple[float, object]:
    took, result = [], None
    for _ in range(RUNS):
        start = time.perf_counter()
        result = action()
        took.append(time.perf_counter() - start)
    return min(took), result


def ours(root: Path) -> tuple[list[str], list[str]]:
    database = rpmdb.RpmDatabase(str(root))
    names = sorted(p.details["nvra"] for p in database.packages())
    files = [f.path for p in database.find("glibc") for f in database.files(p)]
    return names, files


def theirs(directory: Path, backend: str) -> tuple[list[str], list[str]]:
    scratch = Path(tempfile.mkdtemp(prefix="bench-rpm-"))
    try:
        copy = scratch / "rpm"
        shutil.copytree(directory, copy)
        define = ["--define", "_db_backend bdb_ro"] if backend == "bdb" else []

        def rpm(*query: str) -> str:
            argv = ["rpm", "--dbpath", str(copy), *define, *query]
            return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300).stdout

        return sorted(rpm("-qa").split()), rpm("-qa", "glibc", "-l").split()
    finally:
        shutil.rmtree(scratch)


def main() -> int:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "rpm-corpus"
    if not (corpus / "MANIFEST.md").is_file():
        print(f"no rpm corpus at {corpus}")
        return 2
    differ = 0
    for entry, source in DATABASES:
        with tempfile.TemporaryDirectory(prefix="bench-rpmdb-") as scratch:
            root = Path(scratch) / "root"
            directory = plant(corpus, entry, source, root)
            backend = rpmdb.RpmDatabase(str(root)).backend
            took, (names, files) = best(lambda root=root: ours(root))
            print(f"{entry} ({backend}): {len(names)} packages, glibc {len(files)} files")
            print(f"  lifeline:  {took * 1000:8.1f} ms")
            if backend == "ndb":
                print("  rpm:       (no ndb backend in this rpm)")
                continue
            rpm_took, (rpm_names, rpm_files) = best(lambda d=directory, b=backend: theirs(d, b))
            same = names == rpm_names and files == rpm_files
            differ += not same
            print(f"  rpm -qa and -qa glibc -l: {rpm_took * 1000:8.1f} ms (two runs of rpm, copy included)")
            print(f"  ratio:     {rpm_took / took:.1f}x  listing: {'identical' if same else 'DIFFERS'}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
