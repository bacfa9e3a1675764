"""Real rpm databases and header blobs with what real rpm printed for them (the shared rpm corpus).

Each entry is a directory holding one database (``rpmdb.sqlite``, ``Packages.db``, ``Packages``, or a
.tar.xz holding ``rootfs/var/lib/rpm/Packages``) or one header blob, next to rpm's outputs:
``rpm-qa.txt`` (sorted NVRA), ``packages.tsv`` (DBINSTANCE, NAME, EPOCH, ... FILECOUNT; "(none)" when
a tag is absent) and ``<name>-files.tsv`` (FILENAMES, FILEDIGESTS, FILEMODES:octal, FILESIZES,
FILEFLAGS:fflags, FILELINKTOS).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError, PackageFile
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import header

from support.paths import RPM_CORPUS

DATABASE_FILES = ("rpmdb.sqlite", "Packages.db", "Packages")
BLOB_FILES = ("package.header", "blob.bin")
ARCHIVE_MEMBER = "rootfs/var/lib/rpm/Packages"
# The file-list format the corpus's *-files.tsv were printed with.
FILE_FORMAT = (
    "["
    + "\\t".join(
        (
            "%{FILENAMES}",
            "%{FILEDIGESTS}",
            "%{FILEMODES:octal}",
            "%{FILESIZES}",
            "%{FILEFLAGS:fflags}",
            "%{FILELINKTOS}",
        )
    )
    + "\\n]"
)


def corpus() -> Path:
    if not (RPM_CORPUS / "MANIFEST.md").is_file():
        pytest.fail(f"the rpm corpus is missing: {RPM_CORPUS} (the shared directory beside the repository)")
    return RPM_CORPUS


def entries(kind: str = "database") -> list[str]:
    """The corpus entries ("scancode/rhel8-bdb") holding a database, or a header blob."""
    if not (RPM_CORPUS / "MANIFEST.md").is_file():
        return ["missing-corpus"]  # the test then fails in corpus()
    found = []
    for entry in sorted(p for p in RPM_CORPUS.glob("*/*") if p.is_dir()):
        names = {p.name for p in entry.iterdir()}
        has_database = bool(names & set(DATABASE_FILES)) or any(n.endswith(".tar.xz") for n in names)
        has_blob = bool(names & set(BLOB_FILES))
        if (kind == "database" and has_database) or (kind == "blob" and has_blob):
            found.append(str(entry.relative_to(RPM_CORPUS)))
    return found


def database_bytes(entry: str) -> tuple[str, bytes]:
    """(file name, content) of an entry's database; a BDB file comes out of its archive."""
    where = corpus() / entry
    for name in DATABASE_FILES:
        if (where / name).is_file():
            return name, (where / name).read_bytes()
    (archive,) = where.glob("*.tar.xz")
    with tarfile.open(archive, "r:xz") as tar:
        member = tar.extractfile(ARCHIVE_MEMBER)
        assert member is not None, f"{archive} holds no {ARCHIVE_MEMBER}"
        return "Packages", member.read()


def plant(entry: str, root: Path, directory: str = "var/lib/rpm") -> Path:
    """A root holding the entry's database in ``directory``; the database file's path."""
    name, data = database_bytes(entry)
    target = root / directory / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def blob_of(entry: str) -> bytes:
    where = corpus() / entry
    for name in BLOB_FILES:
        if (where / name).is_file():
            return (where / name).read_bytes()
    raise AssertionError(f"{where} holds no header blob")


def rows(entry: str) -> list[list[str]]:
    """packages.tsv without its heading."""
    lines = (corpus() / entry / "packages.tsv").read_text().splitlines()
    assert lines[0].startswith("#DBINSTANCE"), lines[0]
    return [line.split("\t") for line in lines[1:]]


def nvras(entry: str) -> list[str]:
    return (corpus() / entry / "rpm-qa.txt").read_text().split()


def file_tables(entry: str) -> dict[str, list[str]]:
    """package name -> the lines of its <name>-files.tsv."""
    return {
        p.name[: -len("-files.tsv")]: p.read_text().splitlines()
        for p in sorted((corpus() / entry).glob("*-files.tsv"))
    }


def row_of(found: header.Header) -> list[str]:
    """packages.tsv's columns as the reader sees a header ("(none)" for an absent tag, as rpm)."""

    def shown(tag: int, value: str) -> str:
        return value if found.has(tag) else "(none)"

    try:
        count = str(len(found.paths())) if found.paths() else "(none)"
    except PackageError:
        count = "(none)"  # rpm cannot build the file list either
    return [
        str(found.instance),
        found.name,
        found.epoch or "(none)",
        found.version,
        found.release,
        shown(header.ARCH, found.arch),
        shown(header.VENDOR, found.vendor),
        shown(header.SOURCERPM, found.sourcerpm),
        shown(header.SIGMD5, found.sigmd5),
        shown(header.SHA1HEADER, found.sha1header),
        shown(header.INSTALLTIME, str(found.installtime)),
        count,
    ]


def file_line(entry: PackageFile, flags: int) -> str:
    """One line of a *-files.tsv as the reader sees the file."""
    return "\t".join(
        [entry.path, entry.digest, oct(entry.mode)[2:], str(entry.size), header.fflags(flags), entry.link]
    )
