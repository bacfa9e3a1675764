"""packages/rpm/database.py and storage.py: rpm's database in its three backends, read offline.

Judges: what real rpm printed for every database of the shared corpus (rpm-qa.txt, packages.tsv,
*-files.tsv), and real rpm 4.18 on databases it wrote here itself (rpmbuild, --initdb, -i --justdb).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import installed
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import database as dpkgdb
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import Database, PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import database as rpmdb
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import header

from support import rpm_corpus
from support.runners import output

BACKENDS = {"rpmdb.sqlite": "sqlite", "Packages.db": "ndb", "Packages": "bdb"}
UNREADABLE = "the package database cannot be read"


def planted(entry: str, tmp_path: Path, directory: str = "var/lib/rpm") -> tuple[Path, rpmdb.RpmDatabase]:
    root = tmp_path / "root"
    rpm_corpus.plant(entry, root, directory)
    return root, rpmdb.RpmDatabase(str(root))


def snapshot(directory: Path) -> dict[str, tuple[int, str]]:
    """Every file below ``directory``: name -> (size, sha256)."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# ---- the corpus: every database, as rpm listed it -------------------------------------------------


@pytest.mark.parametrize("entry", rpm_corpus.entries("database"))
def test_each_corpus_database_lists_what_rpm_listed(entry, tmp_path):
    _root, database = planted(entry, tmp_path)
    name, _ = rpm_corpus.database_bytes(entry)
    assert database.describe() == {
        "manager": "rpm",
        "backend": BACKENDS[name],
        "path": f"/var/lib/rpm/{name}",
    }
    packages = database.packages()
    assert sorted(p.details["nvra"] for p in packages) == sorted(rpm_corpus.nvras(entry))
    by_instance = {h.instance: h for h in database.headers()}
    expected = rpm_corpus.rows(entry)
    assert sorted(by_instance) == sorted(int(row[0]) for row in expected)
    for row in expected:
        assert rpm_corpus.row_of(by_instance[int(row[0])]) == row
    assert database.skipped_records == []
    # The model's record carries the same identity.
    for package in packages:
        found = by_instance[package.details["instance"]]
        assert (package.name, package.version, package.release, package.arch, package.epoch) == (
            found.name,
            found.version,
            found.release,
            found.arch,
            found.epoch,
        )
        assert package.manager == "rpm" and package.details["sigmd5"] == found.sigmd5


def _file_tables() -> list[tuple[str, str]]:
    if not rpm_corpus.RPM_CORPUS.is_dir():
        return [("missing-corpus", "glibc")]
    return [
        (entry, name) for entry in rpm_corpus.entries("database") for name in rpm_corpus.file_tables(entry)
    ]


@pytest.mark.parametrize(("entry", "name"), _file_tables())
def test_glibc_s_files_are_rpm_s_path_for_path(entry, name, tmp_path):
    _root, database = planted(entry, tmp_path)
    (package,) = database.find(name)
    found = database.header_of(package)
    listed = database.files(package)
    mine = [rpm_corpus.file_line(f, flags) for f, flags in zip(listed, found.file_flags(), strict=True)]
    assert mine == rpm_corpus.file_tables(entry)[name]
    assert len(listed) > 40
    assert {f.algorithm for f in listed if f.digest} == {"sha256"}
    assert all(f.path.startswith("/") for f in listed)
    if name == "glibc":
        assert any(f.config for f in listed) and any(f.path.endswith("/libc.so.6") for f in listed)


def test_the_ndb_instances_are_its_blobs_pkgidx(tmp_path):
    _root, database = planted("go-rpmdb/sle15-bci", tmp_path)
    lines = (rpm_corpus.corpus() / "go-rpmdb/sle15-bci/ndb-blobs.tsv").read_text().splitlines()
    assert lines[0].split("\t")[1] == "PKGIDX"
    indexes = sorted(int(line.split("\t")[1]) for line in lines[1:])
    assert sorted(h.instance for h in database.headers()) == indexes
    assert len(indexes) == 35 and max(indexes) > 35  # gaps in pkgidx, as the manifest says


def test_owners_lists_every_path_fast_and_as_the_generic_walk_does(tmp_path, deadline):
    _root, database = planted("scancode/rhel8-bdb", tmp_path)
    with deadline(5):
        owners = database.owners()
    assert owners["/lib64/libc.so.6"] == ["glibc"]  # as RHEL 8's rpm lists it, /usr not merged in
    assert owners["/usr/bin/sh"] == ["bash"]
    assert "/etc/ld.so.conf" in owners and len(owners) > 10000
    assert owners == Database.owners(database)  # the model's walk over files(), the slow way


# ---- live: databases real rpm writes here --------------------------------------------------------

SPEC = """\
Name: lifeline-probe
Version: 1.2
Release: 3
Epoch: 4
Summary: probe
License: GPL
BuildArch: noarch
%description
probe
%install
mkdir -p %{buildroot}/etc %{buildroot}/usr/share/probe %{buildroot}/usr/bin
echo conf > %{buildroot}/etc/probe.conf
echo data > %{buildroot}/usr/share/probe/data.txt
ln -s ../share/probe/data.txt %{buildroot}/usr/bin/probe-link
%files
%config(noreplace) /etc/probe.conf
%dir /usr/share/probe
/usr/share/probe/data.txt
/usr/bin/probe-link
%ghost /var/log/probe.log
"""


@pytest.fixture(scope="module")
def probe_rpm(tmp_path_factory) -> Path:
    """A package rpmbuild builds here."""
    top = tmp_path_factory.mktemp("rpmbuild")
    (top / "probe.spec").write_text(SPEC)
    done = subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {top}", str(top / "probe.spec")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (built,) = top.glob("RPMS/noarch/*.rpm")
    return built


def rpm_database(tmp_path: Path, packages: list[Path]) -> Path:
    """A root whose /var/lib/rpm real rpm made: --initdb, then each package -i --justdb."""
    dbpath = tmp_path / "root/var/lib/rpm"
    dbpath.mkdir(parents=True)
    output("rpm", "--dbpath", dbpath, "--initdb")
    for package in packages:
        output("rpm", "--dbpath", dbpath, "-i", "--justdb", "--nodeps", "--ignorearch", package)
    return tmp_path / "root"


def rpm_says(dbpath: Path, *query: str) -> str:
    """Real rpm's answer on a copy of ``dbpath`` (rpm writes -shm/-wal beside what it reads)."""
    copy = dbpath.parent / f"{dbpath.name}-rpm-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(dbpath, copy)
    try:
        return output("rpm", "--dbpath", copy, *query)
    finally:
        shutil.rmtree(copy)


def test_a_database_rpm_wrote_reads_as_rpm_reads_it(probe_rpm, tmp_path):
    root = rpm_database(tmp_path, [probe_rpm])
    dbpath = root / "var/lib/rpm"
    database = rpmdb.RpmDatabase(str(root))
    assert database.backend == "sqlite"
    tags = (
        "DBINSTANCE",
        "NAME",
        "EPOCH",
        "VERSION",
        "RELEASE",
        "ARCH",
        "SIGMD5",
        "SHA1HEADER",
        "INSTALLTIME",
    )
    fmt = "\\t".join(f"%{{{tag}}}" for tag in tags) + "\\n"
    (package,) = database.packages()
    details = package.details
    mine = [
        str(details["instance"]),
        package.name,
        package.epoch,
        package.version,
        package.release,
        package.arch,
    ]
    mine += [details["sigmd5"], details["sha1header"], str(details["installtime"])]
    assert "\t".join(mine) + "\n" == rpm_says(dbpath, "-qa", "--qf", fmt)
    assert package.label == rpm_says(dbpath, "-qa").strip() == "lifeline-probe-1.2-3.noarch"  # rpm's NVRA
    found = database.header_of(package)
    mine_files = [
        rpm_corpus.file_line(f, g) for f, g in zip(database.files(package), found.file_flags(), strict=True)
    ]
    assert mine_files == rpm_says(dbpath, "-qa", "--qf", rpm_corpus.FILE_FORMAT).splitlines()
    kinds = {f.path: (f.kind, f.config, f.ghost) for f in database.files(package)}
    assert kinds == {
        "/etc/probe.conf": ("file", True, False),
        "/usr/bin/probe-link": ("link", False, False),
        "/usr/share/probe": ("dir", False, False),
        "/usr/share/probe/data.txt": ("file", False, False),
        "/var/log/probe.log": ("file", False, True),
    }


WAL_WRITER = """
import os, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
assert connection.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
connection.execute("PRAGMA wal_autocheckpoint=0")
blob = connection.execute("SELECT blob FROM Packages ORDER BY hnum LIMIT 1").fetchone()[0]
connection.execute("INSERT INTO Packages (hnum, blob) VALUES (4242, ?)", (blob,))
os._exit(0)  # as a crash would: no checkpoint, the new row lives in the -wal file alone
"""


def test_a_database_left_in_wal_mode_is_read_whole_and_left_byte_identical(tmp_path, deadline):
    root = tmp_path / "root"
    target = rpm_corpus.plant("openshift-preflight/sqlite-fedora36-tzdata", root)
    subprocess.run([sys.executable, "-c", WAL_WRITER, str(target)], check=True, timeout=60)
    wal = Path(f"{target}-wal")
    assert wal.stat().st_size > 0
    # The main file alone does not hold the new row: a reader ignoring the -wal file would miss it.
    alone = tmp_path / "alone.sqlite"
    shutil.copy(target, alone)
    with sqlite3.connect(alone) as connection:
        assert connection.execute("SELECT count(*) FROM Packages").fetchone() == (1,)
    before = snapshot(root)
    assert set(before) == {
        "var/lib/rpm/rpmdb.sqlite",
        "var/lib/rpm/rpmdb.sqlite-wal",
        "var/lib/rpm/rpmdb.sqlite-shm",
    }
    with deadline(5):
        database = rpmdb.RpmDatabase(str(root))
        instances = sorted(p.details["instance"] for p in database.packages())
    assert instances == [1, 4242]
    assert snapshot(root) == before
    # rpm itself, on a copy of the directory, sees the same.
    shown = rpm_says(target.parent, "-qa", "--qf", "%{DBINSTANCE}\\n")
    assert sorted(int(n) for n in shown.split()) == instances


def test_reading_a_database_rpm_wrote_creates_nothing_beside_it(probe_rpm, tmp_path):
    root = rpm_database(tmp_path, [probe_rpm])
    before = snapshot(root)
    assert rpmdb.RpmDatabase(str(root)).packages()
    assert snapshot(root) == before


# ---- where the database is, and which backend ----------------------------------------------------


def test_the_sysimage_database_is_found_through_the_var_lib_link(tmp_path):
    root = tmp_path / "root"
    rpm_corpus.plant("scancode/fedora38-sqlite", root, "usr/lib/sysimage/rpm")
    (root / "var/lib").mkdir(parents=True)
    os.symlink("../../usr/lib/sysimage/rpm", root / "var/lib/rpm")
    database = installed.database_of(str(root))
    assert isinstance(database, rpmdb.RpmDatabase)
    assert database.path == "/usr/lib/sysimage/rpm/rpmdb.sqlite"
    assert sorted(p.details["nvra"] for p in database.packages()) == rpm_corpus.nvras(
        "scancode/fedora38-sqlite"
    )
    assert database.notes == []


def test_with_several_formats_the_root_s_db_backend_decides_else_the_newest(tmp_path):
    root = tmp_path / "root"
    rpm_corpus.plant("scancode/fedora38-sqlite", root)
    rpm_corpus.plant("go-rpmdb/libuuid-ubi8", root)
    database = rpmdb.RpmDatabase(str(root))
    assert database.backend == "sqlite"
    assert "newest format" in " ".join(database.notes)
    macros = root / "usr/lib/rpm/macros.d/macros.rpmdb"
    macros.parent.mkdir(parents=True)
    macros.write_text("# the backend\n%_db_backend bdb_ro\n")
    database = rpmdb.RpmDatabase(str(root))
    assert database.backend == "bdb"
    assert [p.name for p in database.packages()] == ["libuuid"]
    assert "%_db_backend" in " ".join(database.notes)


def test_with_two_database_directories_the_root_s_dbpath_decides(tmp_path):
    root = tmp_path / "root"
    rpm_corpus.plant("scancode/fedora38-sqlite", root, "usr/lib/sysimage/rpm")
    rpm_corpus.plant("go-rpmdb/libuuid-ubi8", root, "var/lib/rpm")
    assert rpmdb.RpmDatabase(str(root)).path == "/usr/lib/sysimage/rpm/rpmdb.sqlite"
    (root / "usr/lib/rpm").mkdir(parents=True)
    (root / "usr/lib/rpm/macros").write_text("%_var\t/var\n%_dbpath\t\t%{_var}/lib/rpm\n")
    database = rpmdb.RpmDatabase(str(root))
    assert database.path == "/var/lib/rpm/Packages"
    assert "%_dbpath" in " ".join(database.notes)


def test_a_root_holding_both_dpkg_and_rpm_is_read_by_the_one_owning_its_shell(tmp_path):
    root = tmp_path / "root"
    rpm_corpus.plant("scancode/fedora38-sqlite", root)  # coreutils and libgcc: no shell
    info = root / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: dash\nStatus: install ok installed\nVersion: 0.5.12-2\nArchitecture: amd64\n"
    )
    (info / "dash.list").write_text("/.\n/bin\n/bin/sh\n/bin/dash\n")
    assert isinstance(installed.database_of(str(root)), dpkgdb.DpkgDatabase)
    # RHEL 8's database lists /usr/bin/sh (bash) too: both list the shell, the larger database wins.
    shutil.rmtree(root / "var/lib/rpm")
    rpm_corpus.plant("scancode/rhel8-bdb", root)
    chosen = installed.database_of(str(root))
    assert isinstance(chosen, rpmdb.RpmDatabase) and len(chosen.packages()) == 101


def test_a_root_without_an_rpm_database_has_none(tmp_path):
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    assert rpmdb.locate(str(tmp_path)) is None
    assert installed.database_of(str(tmp_path)) is None
    with pytest.raises(PackageError, match="no rpm database"):
        rpmdb.RpmDatabase(str(tmp_path))


# ---- damaged and hostile databases ---------------------------------------------------------------


def _bdb(entry: str = "go-rpmdb/libuuid-ubi8") -> bytearray:
    return bytearray(rpm_corpus.database_bytes(entry)[1])


def _set_next(data: bytearray, page: int, to: int) -> bytearray:
    struct.pack_into("<I", data, page * 4096 + 16, to)
    return data


def _ndb_slot(data: bytearray, field: int, value: int) -> bytearray:
    """Change the first used slot of a Packages.db: field 1 pkgidx, 2 blkoff, 3 blkcnt."""
    for offset in range(32, 4096, 16):
        if struct.unpack_from("<I", data, offset + 8)[0]:
            struct.pack_into("<I", data, offset + 4 * field, value)
            return data
    raise AssertionError("no used slot")


def _hostile_databases() -> list[tuple[str, str, object, str]]:
    """(case, file name, content: bytes, or "dir"/"fifo", words of the PackageError)."""
    if not rpm_corpus.RPM_CORPUS.is_dir():
        return [("missing-corpus", "Packages", b"", "")]
    bdb = _bdb()
    ndb = bytearray(rpm_corpus.database_bytes("go-rpmdb/sle15-bci")[1])
    return [
        ("bdb hash page pointing back to itself", "Packages", _set_next(_bdb(), 1, 1), "loop back to page 1"),
        (
            "bdb overflow page pointing back to itself",
            "Packages",
            _set_next(_bdb(), 10, 10),
            "overflow pages loop",
        ),
        ("bdb overflow chain past the end", "Packages", _set_next(_bdb(), 10, 9999), "past the last page"),
        ("bdb truncated", "Packages", bytes(bdb[: len(bdb) // 2]), "the file holds"),
        ("bdb cut inside the metadata", "Packages", bytes(bdb[:100]), "too short"),
        ("bdb zero bytes", "Packages", b"", "too short"),
        ("bdb garbage", "Packages", bytes(range(256)) * 32, "not a Berkeley DB"),
        (
            "bdb page size nonsense",
            "Packages",
            bytes(bdb[:20]) + struct.pack("<I", 1000) + bytes(bdb[24:]),
            "page size",
        ),
        ("ndb zero bytes", "Packages.db", b"", "too short"),
        ("ndb garbage", "Packages.db", b"\x01" * 8192, "not an ndb"),
        ("ndb slot past the end", "Packages.db", _ndb_slot(bytearray(ndb), 3, 1 << 30), "bad"),
        ("ndb slot page torn", "Packages.db", bytes(ndb[:64]) + b"\0" * 16 + bytes(ndb[80:]), "slot magic"),
        ("ndb truncated", "Packages.db", bytes(ndb[: len(ndb) - 4096]), "bad|past"),
        ("sqlite zero bytes", "rpmdb.sqlite", b"", "no such table"),
        ("sqlite garbage", "rpmdb.sqlite", b"SQLite format 2\0" + b"\xff" * 4096, "not a database"),
        (
            "sqlite truncated",
            "rpmdb.sqlite",
            rpm_corpus.database_bytes("scancode/fedora38-sqlite")[1][:8192],
            "malformed|not a database|no such table",
        ),
        ("a directory named Packages", "Packages", "dir", "not a regular file"),
        ("a FIFO named rpmdb.sqlite", "rpmdb.sqlite", "fifo", "not a regular file"),
        ("a FIFO named Packages.db", "Packages.db", "fifo", "not a regular file"),
    ]


@pytest.mark.parametrize("case", _hostile_databases(), ids=lambda case: case[0])
def test_a_damaged_database_is_a_clear_error_at_once_never_an_empty_list(case, tmp_path, deadline):
    _name, filename, content, words = case
    root = tmp_path / "root"
    where = root / "var/lib/rpm" / filename
    where.parent.mkdir(parents=True)
    if content == "dir":
        where.mkdir()
    elif content == "fifo":
        os.mkfifo(where)
    else:
        where.write_bytes(content)
    before = snapshot(root)
    started = time.process_time()  # CPU time: a busy machine stretches the wall clock, not this
    with deadline(10), pytest.raises(PackageError, match=f"^{UNREADABLE}: .*({words})"):
        installed.database_of(str(root))
    assert time.process_time() - started < 1.0
    assert snapshot(root) == before


def test_a_fifo_beside_a_good_sqlite_database_is_refused_unopened(tmp_path, deadline):
    root = tmp_path / "root"
    target = rpm_corpus.plant("scancode/fedora38-sqlite", root)
    os.mkfifo(f"{target}-wal")
    with deadline(10), pytest.raises(PackageError, match=r"rpmdb\.sqlite-wal .*not a regular file"):
        rpmdb.RpmDatabase(str(root)).packages()


def test_a_damaged_ndb_blob_is_skipped_and_reported_as_rpm_skips_it(tmp_path):
    root = tmp_path / "root"
    target = rpm_corpus.plant("go-rpmdb/sle15-bci", root)
    data = bytearray(target.read_bytes())
    for offset in range(32, 4096, 16):
        index, block = struct.unpack_from("<II", data, offset + 4)
        if block:
            break
    data[block * 16 : block * 16 + 4] = b"XXXX"  # the blob's head magic
    target.write_bytes(bytes(data))
    database = rpmdb.RpmDatabase(str(root))
    assert len(database.packages()) == 34
    assert [instance for instance, _why in database.skipped_records] == [index]
    assert "blob magic" in database.skipped_records[0][1]
    assert database.skipped == [f"#{index}: {database.skipped_records[0][1]}"]


def test_a_header_failing_its_digest_in_a_bdb_database_is_skipped_and_reported(tmp_path):
    root = tmp_path / "root"
    target = rpm_corpus.plant("osv-scalibr/bdb-epoch", root)
    data = bytearray(target.read_bytes())
    name = data.find(b"\0hello\0") + 1
    assert name > 0
    data[name] = ord("j")  # inside the immutable region: the SHA1/SHA256 no longer match
    target.write_bytes(bytes(data))
    database = rpmdb.RpmDatabase(str(root))
    assert database.packages() == []
    ((instance, why),) = database.skipped_records
    assert instance == int(rpm_corpus.rows("osv-scalibr/bdb-epoch")[0][0])
    assert "digest BAD" in why and "jello" in why


def test_a_link_leading_out_of_the_root_is_not_followed(tmp_path, deadline):
    outside = tmp_path / "outside"
    rpm_corpus.plant("scancode/fedora38-sqlite", outside, ".")
    root = tmp_path / "root"
    (root / "var/lib").mkdir(parents=True)
    os.symlink("../../../outside", root / "var/lib/rpm")
    with deadline(10), pytest.raises(PackageError, match=f"^{UNREADABLE}: .*leads out of the root"):
        installed.database_of(str(root))
    # An absolute link is followed inside the root, as chroot would: to the root's own /etc here.
    os.remove(root / "var/lib/rpm")
    os.symlink(str(outside), root / "var/lib/rpm")
    assert installed.database_of(str(root)) is None
    os.remove(root / "var/lib/rpm")
    os.symlink("/etc", root / "var/lib/rpm")
    (root / "etc").mkdir()
    assert installed.database_of(str(root)) is None


def test_a_database_file_that_is_a_link_out_of_the_root_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    rpm_corpus.plant("scancode/fedora38-sqlite", outside, ".")
    root = tmp_path / "root"
    (root / "var/lib/rpm").mkdir(parents=True)
    os.symlink("../../../../outside/rpmdb.sqlite", root / "var/lib/rpm/rpmdb.sqlite")
    with pytest.raises(PackageError, match="leads out of the root"):
        installed.database_of(str(root))


def test_header_digests_are_rpm_s_on_every_corpus_database(tmp_path):
    """Every header of every corpus database passes the check rpm made when it listed them."""
    checked = 0
    for entry in rpm_corpus.entries("database"):
        _root, database = planted(entry, tmp_path / entry.replace("/", "-"))
        for found in database.headers():
            assert found.digest_problem() == ""
            checked += bool(found.sha1header or found.sha256header)
    assert checked > 300
    assert header.parse(rpm_corpus.blob_of("go-rpmdb/header-blob")).digest_problem()


def _big_endian(data: bytes) -> bytes:
    """A little-endian BDB hash file as a big-endian host writes it: every page's numbers swapped
    (Berkeley DB's page layout: header fields, the index of item offsets, off-page references), and
    the 4-byte keys, which rpm stores in the host's order."""
    out = bytearray(data)
    pagesize = struct.unpack_from("<I", data, 20)[0]

    def swap(offset: int, width: int) -> None:
        out[offset : offset + width] = out[offset : offset + width][::-1]

    for offset in range(8, 224, 4):
        if offset != 24:  # bytes, not a number: encryption, type, flags
            swap(offset, 4)
    for page in range(pagesize, len(data), pagesize):
        kind = data[page + 25]
        entries = struct.unpack_from("<H", data, page + 20)[0]
        for offset in (8, 12, 16):
            swap(page + offset, 4)
        swap(page + 20, 2)
        swap(page + 22, 2)
        if kind not in (2, 13):
            continue
        offsets = struct.unpack_from(f"<{entries}H", data, page + 26)
        for index, item in enumerate(offsets):
            swap(page + 26 + 2 * index, 2)
            if data[page + item] == 3:
                swap(page + item + 4, 4)
                swap(page + item + 8, 4)
            elif index % 2 == 0 and data[page + item] == 1:
                swap(page + item + 1, 4)  # the key: the instance number
    return bytes(out)


@pytest.mark.parametrize("entry", ["scancode/rhel8-bdb", "go-rpmdb/libuuid-ubi8"])
def test_a_big_endian_berkeley_db_reads_as_its_little_endian_twin(entry, tmp_path):
    _root, little = planted(entry, tmp_path / "little")
    root = tmp_path / "big"
    (root / "var/lib/rpm").mkdir(parents=True)
    swapped = _big_endian(rpm_corpus.database_bytes(entry)[1])
    assert swapped[12:16] == bytes.fromhex("00061561")  # the hash magic, big-endian
    (root / "var/lib/rpm/Packages").write_bytes(swapped)
    big = rpmdb.RpmDatabase(str(root))
    assert [(h.instance, h.blob) for h in big.headers()] == [(h.instance, h.blob) for h in little.headers()]
    assert "big-endian Berkeley DB" in big.notes


def test_a_python_without_sqlite3_says_so_and_still_reads_berkeley_db(tmp_path, monkeypatch):
    sqlite_root, bdb_root = tmp_path / "sqlite", tmp_path / "bdb"
    rpm_corpus.plant("libguestfs/fedora33-glibc", sqlite_root)
    rpm_corpus.plant("go-rpmdb/libuuid-ubi8", bdb_root)
    monkeypatch.setitem(sys.modules, "sqlite3", None)  # "import sqlite3" raises ImportError
    with pytest.raises(PackageError, match=r"no sqlite3 module to read an sqlite rpm database"):
        installed.database_of(str(sqlite_root))
    found = installed.database_of(str(bdb_root))
    assert [p.label for p in found.packages()] == rpm_corpus.nvras("go-rpmdb/libuuid-ubi8")
