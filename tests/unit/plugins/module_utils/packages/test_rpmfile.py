""".rpm files read without rpm: packages rpmbuild makes in every payload compression and both file
digests, judged by rpm2cpio with GNU cpio, rpm2archive and rpm -qp; hostile packages made from them."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import struct
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import archives, compression
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg.debfile import DebArchive
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import header as rpmheader
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import rpmfile
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm.rpmfile import RpmArchive

from support import rpm_headers, rpmbuild
from support.package_readers import assert_only_regular_files_open, read_refusals
from support.processes import children
from support.runners import output
from support.trees import SUITES, deb_of

# A package with every kind of entry a payload holds: regular files (one executable, one larger
# than a compression block, one empty, one with a non-ASCII UTF-8 name), a symbolic link, a
# hard-link pair, directories, a %config file and a %ghost file (listed, never shipped).
# rpmbuild refuses names that are not UTF-8 ("invalid utf-8 encoding in Basenames").
DEMO_SPEC = r"""
Name: demo
Version: 1.2
Release: 3.el8
Epoch: 2
Summary: demo
License: MIT
Vendor: lifeline tests
BuildArch: noarch
%description
demo
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/demo %{buildroot}/etc %{buildroot}/usr/lib/demo
printf '#!/bin/sh\necho demo\n' > %{buildroot}/usr/bin/demo
chmod 4755 %{buildroot}/usr/bin/demo
head -c 70000 /dev/urandom > %{buildroot}/usr/lib/demo/libdemo.so.1
ln -s libdemo.so.1 %{buildroot}/usr/lib/demo/libdemo.so
printf 'shared content\n' > %{buildroot}/usr/share/demo/a
ln %{buildroot}/usr/share/demo/a %{buildroot}/usr/share/demo/b
: > %{buildroot}/usr/share/demo/empty
printf 'accents\n' > %{buildroot}/usr/share/demo/café
printf 'key=value\n' > %{buildroot}/etc/demo.conf
%files
%dir /usr/share/demo
/usr/bin/demo
/usr/lib/demo
/usr/share/demo/*
%config(noreplace) /etc/demo.conf
%ghost /var/log/demo.log
"""

BUILDS = [(payload, digest) for payload in rpmbuild.PAYLOADS for digest in rpmbuild.DIGESTS]
_BUILT: dict[tuple[str, str], Path] = {}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The demo package in a given payload compression and file digest, built once per module."""

    def get(payload: str = "gzip", digest: str = "sha256") -> Path:
        key = (payload, digest)
        if key not in _BUILT:
            _BUILT[key] = rpmbuild.build_spec(
                DEMO_SPEC, tmp_path_factory.mktemp(f"rpm-{payload}-{digest}"), payload=payload, digest=digest
            )
        return _BUILT[key]

    return get


def query(package: Path, fmt: str) -> str:
    return rpmbuild.run("rpm", "-qp", "--nosignature", "--qf", fmt, package).decode(
        "utf-8", "surrogateescape"
    )


def extracted(package: Path, into: Path) -> dict[str, os.stat_result]:
    """The payload unpacked by rpm2cpio and GNU cpio: absolute path -> lstat."""
    payload = rpmbuild.run(rpmbuild.tool("rpm2cpio"), package)
    into.mkdir()
    rpmbuild.run(
        rpmbuild.tool("cpio"),
        "-i",
        "-d",
        "-m",
        "--quiet",
        "--no-absolute-filenames",
        "-D",
        into,
        stdin=payload,
    )
    found = {}
    for directory, dirs, files in os.walk(into):
        for name in dirs + files:
            path = Path(directory, name)
            found["/" + str(path.relative_to(into))] = path.lstat()
    # cpio makes the parents of what the payload holds; the payload's own listing says which it holds.
    listed = {
        "/" + n.lstrip("./")
        for n in rpmbuild.run(rpmbuild.tool("cpio"), "-t", "--quiet", stdin=payload)
        .decode("utf-8", "surrogateescape")
        .splitlines()
    }
    return {path: st for path, st in found.items() if path in listed}


@pytest.mark.parametrize(("payload", "digest"), BUILDS, ids=[f"{p}-{d}" for p, d in BUILDS])
def test_members_and_contents_match_rpm2cpio_and_cpio(payload, digest, built, tmp_path):
    package = built(payload, digest)
    out = tmp_path / "out"
    on_disk = extracted(package, out)
    archive = RpmArchive(str(package))
    members = archive.members()
    assert archive.compression == payload
    assert sorted(members) == sorted(on_disk)
    assert len(members) == 10
    for path, st in on_disk.items():
        member = members[path]
        assert (member.mode, member.path) == (st.st_mode, path)
        if stat.S_ISLNK(st.st_mode):
            assert member.link == os.readlink(out / path[1:])
        if stat.S_ISREG(st.st_mode):
            assert member.size == st.st_size
            assert member.algorithm == digest
    regular = [p for p, st in on_disk.items() if stat.S_ISREG(st.st_mode)]
    contents = archive.read_many(regular)
    assert contents == {p: (out / p[1:]).read_bytes() for p in regular}
    assert members["/usr/share/demo/a"].links == ("/usr/share/demo/b",)
    assert on_disk["/usr/share/demo/a"].st_ino == on_disk["/usr/share/demo/b"].st_ino
    assert members["/usr/bin/demo"].mode & 0o7777 == 0o4755


@pytest.mark.parametrize(("payload", "digest"), [("gzip", "md5"), ("zstd", "sha256")])
def test_header_view_matches_rpm_qp(payload, digest, built):
    package = built(payload, digest)
    fields = "%{FILENAMES}\t%{FILEMODES}\t%{FILESIZES}\t%{FILELINKTOS}\t%{FILEUSERNAME}\t%{FILEGROUPNAME}"
    listing = query(package, f"[{fields}\t%{{FILEFLAGS:fflags}}\t%{{FILEDIGESTS}}\n]")
    expected = {}
    for line in listing.splitlines():
        path, mode, size, link, user, group, flags, filedigest = line.split("\t")
        expected[path] = (int(mode), int(size), link, user, group, "c" in flags, "g" in flags, filedigest)
    archive = RpmArchive(str(package))
    found = {
        f.path: (f.mode, f.size, f.link, f.user, f.group, f.config, f.ghost, f.digest) for f in archive.files
    }
    assert found == expected
    assert found["/var/log/demo.log"][6] and found["/etc/demo.conf"][5]
    assert "/var/log/demo.log" not in archive.members()
    with pytest.raises(PackageError, match=r"/var/log/demo.log is a %ghost file"):
        archive.read("/var/log/demo.log")


def test_identity_matches_rpm_qp(built):
    package = built()
    name, epoch, version, release, arch, vendor, source, sha256 = query(
        package,
        "%{NAME}\n%{EPOCH}\n%{VERSION}\n%{RELEASE}\n%{ARCH}\n%{VENDOR}\n%{SOURCERPM}\n%{SHA256HEADER}",
    ).split("\n")
    found = RpmArchive(str(package)).package
    assert (
        found.manager,
        found.name,
        found.epoch,
        found.version,
        found.release,
        found.arch,
        found.vendor,
    ) == (
        "rpm",
        name,
        epoch,
        version,
        release,
        arch,
        vendor,
    )
    assert found.label == f"{name}-{version}-{release}.{arch}"  # as rpm -q prints it: no epoch
    assert (found.details["sourcerpm"], found.details["sha256header"], found.details["format"]) == (
        source,
        sha256,
        4,
    )


def test_a_v6_lead_is_read(built, tmp_path):
    """v6 packages keep the lead for rpm 4 but write 4 as its major (format_v6.md, lib/rpmlead.cc).
    The lead is covered by no digest, so a v4 package with the v6 lead alone must still read; the
    whole v6 package (signature, header and payload as rpm 6 writes them) is tested further down."""
    data = built().read_bytes()
    assert data[4] == 3
    path = tmp_path / "v6-lead.rpm"
    path.write_bytes(data[:4] + b"\x04" + data[5:])
    archive = RpmArchive(str(path))
    assert archive.format == 6
    assert sorted(archive.members()) == sorted(RpmArchive(str(built())).members())
    assert RpmArchive(str(built())).format == 4


@pytest.mark.parametrize(
    ("path", "limit", "problem"),
    [
        *read_refusals(
            directory="/usr/share/demo",
            link="/usr/lib/demo/libdemo.so",
            regular="/usr/lib/demo/libdemo.so.1",
            size=70000,
        ),
        ("/usr/bin/../../etc/passwd", 1 << 20, "climbs out of the root"),
    ],
)
def test_read_refuses(path, limit, problem, built):
    with pytest.raises(PackageError, match=problem):
        RpmArchive(str(built())).read(path, limit=limit)


def test_read_stops_early_and_ends_zstd(built, deadline):
    archive = RpmArchive(str(built("zstd")))
    with deadline(20):
        for _ in range(5):
            assert archive.read("/etc/demo.conf") == b"key=value\n"
    assert children() == []


def test_zstd_is_stopped_at_its_time_limit(built, monkeypatch, tmp_path, deadline):
    """A zstd that never ends is killed at the time limit and the reader says so."""
    package = built("zstd")  # before shutil.which is replaced: rpmbuild's own tools are found with it
    slow = tmp_path / "zstd"
    slow.write_text("#!/bin/sh\nexec sleep 60\n")
    slow.chmod(0o755)
    monkeypatch.setattr(compression.shutil, "which", lambda name: str(slow))
    archive = RpmArchive(str(package))
    archive.zstd_time_limit = 0.5
    with deadline(10), pytest.raises(PackageError, match=r"ran longer than 0.5 seconds and was stopped"):
        archive.members()
    assert children() == []


# ---- packages of files of 4 GiB and more: rpm's stripped cpio (07070X), the payload of v6 ---------

BIG_SPEC = r"""
Name: big
Version: 1
Release: 1
Summary: big
License: MIT
BuildArch: noarch
%description
big
%install
mkdir -p %{buildroot}/usr/share/big
truncate -s 4294967297 %{buildroot}/usr/share/big/huge
printf 'small\n' > %{buildroot}/usr/share/big/small
ln -s small %{buildroot}/usr/share/big/link
%files
/usr/share/big
"""


def rpm2archive_listing(package: Path) -> dict[str, tuple[int, int, str, bytes]]:
    """rpm2archive's tar of the payload, streamed: path -> (mode, size, link target, small contents)."""
    with package.open("rb") as source:
        process = subprocess.Popen([rpmbuild.tool("rpm2archive"), "-n"], stdin=source, stdout=subprocess.PIPE)
        listing = {}
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
                for info in tar:
                    data = tar.extractfile(info).read() if info.isreg() and info.size < 4096 else b""
                    kind = stat.S_IFLNK if info.issym() else stat.S_IFDIR if info.isdir() else stat.S_IFREG
                    path = "/" + info.name.lstrip("./").rstrip("/")
                    listing[path] = (kind | info.mode, info.size, info.linkname, data)
        finally:
            process.stdout.close()
            assert process.wait(timeout=300) == 0
    return listing


def test_stripped_cpio_of_a_package_with_a_file_past_4_gib(tmp_path, deadline):
    """rpm >= 4.12 writes a package holding a file of 4 GiB or more in the stripped cpio form (07070X:
    the index of the file in the header, then its content) that every v6 package uses; rpm 4.18 writes
    no v6 package, so this is the v6 payload as real rpm writes it. rpm2cpio refuses such a package,
    rpm2archive reads it and judges here."""
    package = rpmbuild.build_spec(BIG_SPEC, tmp_path / "big", payload="zstd", digest="md5", timeout=600)
    archive = RpmArchive(str(package))
    assert archive.header.has(rpmheader.LONGFILESIZES)
    with deadline(120):
        members = archive.members()
    expected = rpm2archive_listing(package)
    # rpm2archive gives a symbolic link's size as 0 (tar's way); rpm's header gives the target's length.
    found = {
        path: (
            m.mode,
            0 if m.kind == "link" else m.size,
            m.link,
            archive.read(path) if path.endswith("small") else b"",
        )
        for path, m in members.items()
    }
    assert found == expected
    assert found["/usr/share/big/huge"][1] == 4294967297
    with deadline(30):
        assert archive.read("/usr/share/big/small") == b"small\n"


# ---- hostile packages, made from a real one -----------------------------------------------------
# The test takes packages apart with its own reading of the format (format_v4.md), not the module's.


def header_span(data: bytes, offset: int) -> tuple[int, int, int]:
    """(il, dl, bytes) of the header at ``offset``."""
    il, dl = struct.unpack(">II", data[offset + 8 : offset + 16])
    return il, dl, 16 + 16 * il + dl


def layout(data: bytes) -> tuple[int, int, int]:
    """Offsets of the signature, the main header and the payload."""
    _il, _dl, size = header_span(data, 96)
    header = 96 + size + (-size % 8)
    return 96, header, header + header_span(data, header)[2]


def set_signature_int(data: bytes, tag: int, value: int) -> bytes:
    """The package with the signature's INT32 ``tag`` set to ``value`` (nothing signs the signature)."""
    il, _dl, _size = header_span(data, 96)
    store = 96 + 16 + 16 * il
    for i in range(il):
        entry_tag, kind, offset, _count = struct.unpack(">IIiI", data[112 + 16 * i : 128 + 16 * i])
        if entry_tag == tag:
            assert kind == 4
            at = store + offset
            return data[:at] + struct.pack(">I", value) + data[at + 4 :]
    return data


def with_payload(data: bytes, payload: bytes, unpacked: int) -> bytes:
    """The package with another (already compressed) payload, its signature's sizes made to fit."""
    _sig, header, start = layout(data)
    data = data[:start] + payload
    data = set_signature_int(data, rpmfile.SIG_SIZE, len(data) - header)
    return set_signature_int(data, rpmfile.SIG_PAYLOADSIZE, unpacked)


def newc_entries(archive: bytes) -> list[tuple[str, list[int], bytes]]:
    """A newc archive as (name, the 13 header fields, data), trailer excluded."""
    entries, at = [], 0
    while True:
        fields = [int(archive[at + 6 + 8 * i : at + 14 + 8 * i], 16) for i in range(13)]
        namesize, size = fields[11], fields[6]
        name = archive[at + 110 : at + 110 + namesize - 1].decode("utf-8", "surrogateescape")
        at += 110 + namesize
        at += -at % 4
        if name == "TRAILER!!!":
            return entries
        entries.append((name, fields, archive[at : at + size]))
        at += size
        at += -at % 4


def newc(entries: list[tuple[str, list[int], bytes]], trailer: bool = True) -> bytes:
    out = bytearray()
    for name, fields, data in [*entries, *([("TRAILER!!!", [0] * 13, b"")] if trailer else [])]:
        encoded = name.encode("utf-8", "surrogateescape") + b"\0"
        fields = [*fields[:6], len(data), *fields[7:11], len(encoded), 0]
        out += b"070701" + "".join(f"{v:08x}" for v in fields).encode() + encoded
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def real_cpio(package: Path) -> list[tuple[str, list[int], bytes]]:
    return newc_entries(rpmbuild.run(rpmbuild.tool("rpm2cpio"), package))


def recompressed(data: bytes, entries, **changes) -> bytes:
    archive = newc(entries, **changes)
    return with_payload(data, gzip.compress(archive), len(archive))


def renamed(entries, old: str, new: str):
    return [(new if name == old else name, fields, content) for name, fields, content in entries]


def relinked(entries, name: str, target: bytes):
    return [(n, fields, target if n == name else content) for n, fields, content in entries]


def retyped(entries, name: str, mode: int):
    return [
        (n, [fields[0], mode, *fields[2:]] if n == name else fields, content)
        for n, fields, content in entries
    ]


def hostile_cases(data: bytes, entries) -> dict[str, tuple[bytes, str]]:
    """id -> (package bytes, what the error says)."""
    _sig, header, payload = layout(data)
    demo = next(i for i, e in enumerate(entries) if e[0] == "./usr/bin/demo")
    changed = list(entries)
    changed[demo] = (entries[demo][0], entries[demo][1], entries[demo][2].replace(b"demo", b"DEMO"))
    return {
        "lead-magic": (b"\xed\xab\xee\xdc" + data[4:], r"is not an rpm package \(no rpm lead magic\)"),
        "lead-major": (data[:4] + b"\x02" + data[5:], r"is not an rpm package \(lead format 2\.0"),
        "signature-entries": (
            data[:104] + struct.pack(">I", 1000) + data[108:],
            r"its signature claims 1000 entries",
        ),
        "header-index-past-the-end": (
            data[: header + 8] + struct.pack(">I", 60000) + data[header + 12 :],
            r"its header claims 96\d+ bytes at offset \d+, the file ends after",
        ),
        "header-claims-gigabytes": (
            data[: header + 12] + struct.pack(">I", 0x0FFFFFF0) + data[header + 16 :],
            r"its header claims \d+ bytes at offset \d+, the file ends after",
        ),
        "header-data-past-rpm-cap": (
            data[: header + 12] + struct.pack(">I", 0xFFFFFFF0) + data[header + 16 :],
            r"its header claims \d+ entries and 4294967280 bytes of data \(rpm allows",
        ),
        "header-altered": (
            data[: payload - 40] + bytes([data[payload - 40] ^ 1]) + data[payload - 39 :],
            r"its header does not have the sha256 digest its signature records",
        ),
        "no-header-magic": (data[:header] + b"\0" * 8 + data[header + 8 :], r"no header header magic"),
        "cpio-name-climbs": (
            recompressed(data, renamed(entries, "./usr/bin/demo", "../../etc/passwd")),
            r"cpio entry '../../etc/passwd' climbs out of the root; package refused",
        ),
        "cpio-name-absolute-climbs": (
            recompressed(data, renamed(entries, "./usr/bin/demo", "/usr/../../etc/passwd")),
            r"climbs out of the root",
        ),
        "cpio-entry-past-the-end": (
            recompressed(
                data,
                [e for e in entries if e[0] != "./usr/bin/demo"] + [(*entries[demo][:2], b"#!")],
                trailer=False,
            ),
            r"holds 2 bytes, the header says 20",
        ),
        "cpio-unlisted-file": (
            recompressed(data, renamed(entries, "./usr/bin/demo", "./usr/bin/planted")),
            r"the payload holds /usr/bin/planted, which the header does not list",
        ),
        "cpio-lacks-a-file": (
            recompressed(data, [e for e in entries if e[0] != "./usr/bin/demo"]),
            r"the payload lacks 1 file\(s\) the header lists: /usr/bin/demo",
        ),
        "cpio-link-elsewhere": (
            recompressed(data, relinked(entries, "./usr/lib/demo/libdemo.so", b"../../../etc")),
            r"the payload's /usr/lib/demo/libdemo.so links to '../../../etc', the header to 'libdemo.so.1'",
        ),
        "cpio-type-changed": (
            recompressed(data, retyped(entries, "./etc/demo.conf", 0o120777)),
            r"the payload's /etc/demo.conf has mode 120777, the header 100644",
        ),
        "cpio-no-trailer": (
            recompressed(data, entries, trailer=False),
            r"without the cpio trailer \(cut short\)",
        ),
        "payload-digest": (
            recompressed(data, changed),
            r"the payload's sha256 digest is [0-9a-f]+, the header records",
        ),
        "payload-garbage": (
            with_payload(data, os.urandom(len(data) - payload), 70000),
            r"payload: damaged",
        ),
        "payload-bomb": (
            with_payload(data, gzip.compress(newc(entries[:2], trailer=False) + b"\0" * (32 << 20)), 80000),
            r"payload unpacks to more than 80000 bytes; not read further",
        ),
        "payload-not-cpio": (
            with_payload(data, gzip.compress(b"PK\3\4" + b"\0" * 200), 204),
            r"no cpio header at payload offset 0 \(found b'PK",
        ),
    }


CASES = [
    "lead-magic",
    "lead-major",
    "signature-entries",
    "header-index-past-the-end",
    "header-claims-gigabytes",
    "header-data-past-rpm-cap",
    "header-altered",
    "no-header-magic",
    "cpio-name-climbs",
    "cpio-name-absolute-climbs",
    "cpio-entry-past-the-end",
    "cpio-unlisted-file",
    "cpio-lacks-a-file",
    "cpio-link-elsewhere",
    "cpio-type-changed",
    "cpio-no-trailer",
    "payload-digest",
    "payload-garbage",
    "payload-bomb",
    "payload-not-cpio",
]


@pytest.fixture(scope="module")
def hostile(built):
    package = built("gzip", "sha256")
    return hostile_cases(package.read_bytes(), real_cpio(package))


@pytest.mark.parametrize("case", CASES)
def test_hostile_package(case, hostile, tmp_path, deadline):
    content, problem = hostile[case]
    path = tmp_path / "hostile.rpm"
    path.write_bytes(content)
    started = time.process_time()  # CPU time: a busy machine stretches the wall clock, not this
    with deadline(5), pytest.raises(PackageError, match=problem) as raised:
        RpmArchive(str(path)).members()
    assert str(path) in str(raised.value)
    assert time.process_time() - started < 1.0
    # rpm's own check refuses the same package: the hostile input is damage, not a reader's whim.
    done = subprocess.run(["rpm", "-K", "--nosignature", str(path)], capture_output=True, timeout=60)
    assert done.returncode != 0, done.stdout


def test_content_not_matching_the_header_digest(hostile, tmp_path, deadline):
    content, _problem = hostile["payload-digest"]
    path = tmp_path / "altered.rpm"
    path.write_bytes(content)
    archive = RpmArchive(str(path))
    with (
        deadline(5),
        pytest.raises(
            PackageError, match=r"/usr/bin/demo has sha256 [0-9a-f]{64} in the payload, the header records"
        ),
    ):
        archive.read("/usr/bin/demo")
    assert archive.read("/etc/demo.conf") == b"key=value\n"


@pytest.mark.parametrize("eighth", range(1, 8))
def test_truncated_package(eighth, built, tmp_path, deadline):
    data = built("xz", "sha256").read_bytes()
    path = tmp_path / "cut.rpm"
    path.write_bytes(data[: len(data) * eighth // 8])
    started = time.process_time()
    with deadline(5), pytest.raises(PackageError, match=r"cut short") as raised:
        RpmArchive(str(path)).members()
    assert str(path) in str(raised.value)
    assert time.process_time() - started < 1.0


def test_bomb_stops_at_the_limit_when_the_package_records_a_huge_size(hostile, tmp_path, deadline):
    content, _problem = hostile["payload-bomb"]
    path = tmp_path / "bomb.rpm"
    path.write_bytes(set_signature_int(content, rpmfile.SIG_PAYLOADSIZE, 0xFFFFFFF0))
    archive = RpmArchive(str(path))
    archive.unpacked_limit = 100_000
    with deadline(5), pytest.raises(PackageError, match=r"unpacks to more than 100000 bytes"):
        archive.members()


def test_fifo_or_directory_or_missing_file(tmp_path, deadline):
    with deadline(5):
        fifo = assert_only_regular_files_open(
            RpmArchive, tmp_path, ".rpm", r"is not an rpm package \(not a regular file\)"
        )
        with pytest.raises(
            PackageError, match=r"is neither a Debian package nor an rpm package \(not a regular"
        ):
            archives.open_package(str(fifo))


# ---- a package file told by its magic -------------------------------------------------------------


def test_open_package_tells_deb_from_rpm_by_magic_not_name(built, tmp_path):
    rpm_named_deb = tmp_path / "glibc.deb"
    rpm_named_deb.write_bytes(built().read_bytes())
    deb_named_rpm = tmp_path / "libc6.rpm"
    deb_named_rpm.write_bytes(deb_of(SUITES[-1], "libc6").read_bytes())
    assert isinstance(archives.open_package(str(rpm_named_deb)), RpmArchive)
    assert isinstance(archives.open_package(str(deb_named_rpm)), DebArchive)
    assert rpmfile.is_rpm(str(rpm_named_deb)) and not rpmfile.is_rpm(str(deb_named_rpm))
    text = tmp_path / "notes.rpm"
    text.write_text("not a package\n")
    with pytest.raises(PackageError, match=r"notes.rpm is neither a Debian package nor an rpm package"):
        archives.open_package(str(text))
    empty = tmp_path / "empty.rpm"
    empty.write_bytes(b"")
    with pytest.raises(PackageError, match=r"is neither a Debian package nor an rpm package"):
        archives.open_package(str(empty))


# ---- rpm v6 packages --------------------------------------------------------------------------------
# Debian 12 has rpm 4.18 only, which writes no v6 package; so the test makes one from a real v4 package
# the way rpm 6.0 writes it (format_v6.md; build/pack.cc, lib/signature.cc, lib/rpmlead.cc, lib/cpio.cc
# of rpm 6.0): the lead's major 4 and no arch or os; a signature of SHA256HEADER, SHA3_256HEADER and
# the RESERVED space only (no sizes, no MD5 or SHA1); in the main header RPMFORMAT 6, 64-bit sizes only
# (LONGFILESIZES, LONGSIZE), PAYLOADSIZE/PAYLOADSIZEALT, the payload's sha256, sha512 and sha3-256 over
# the compressed and the uncompressed payload, no PAYLOADSHA256ALGO; the payload the stripped cpio
# (07070X and the file's index, what LONGFILESIZES makes rpm write) in zstd level 19, rpm 6's default
# (rpmio.cc writes zstd frames without their content checksum).
# rpm 6 also drops some rpmlib() requirements and adds MIME types; the reader uses neither.

SHA3_256HEADER, SIG_RESERVED = 279, 999
V6_RESERVED_SPACE = 32 + 4096  # lib/signature.cc's 32 bytes and %__gpg_reserved_space
SIZE, LONGSIZE, FILESIZES, LONGFILESIZES, PAYLOADFLAGS = 1009, 5009, 1028, 5008, 1126
PAYLOADSHA256ALGO, PAYLOADSHA256ALT, SOURCENEVR, ENCODING = 5093, 5097, 5120, 5062
PAYLOADSHA512, PAYLOADSHA512ALT, PAYLOADSHA3_256, PAYLOADSHA3_256ALT = 5121, 5122, 5123, 5124


def stripped_cpio(package: Path) -> bytes:
    """The v4 package's payload (as rpm2cpio gives it) in the stripped form: each entry is 07070X and
    the file's index in the header (8 hex digits), then its data; 4-byte aligned; a newc trailer."""
    index = {f".{path}": i for i, path in enumerate(query(package, "[%{FILENAMES}\n]").splitlines())}
    out = bytearray()
    for name, _fields, content in real_cpio(package):
        out += b"07070X" + f"{index[name]:08x}".encode()
        out += b"\0" * (-len(out) % 4) + content
        out += b"\0" * (-len(out) % 4)
    return bytes(out) + newc([])


def v6_of(package: Path) -> bytes:
    """The v4 ``package`` (zstd, sha256 file digests) rewritten as rpm 6 writes a v6 package."""
    data = package.read_bytes()
    _sig, header_at, payload_at = layout(data)
    archive = stripped_cpio(package)
    compressed = rpmbuild.run(rpmbuild.tool("zstd"), "-19", "--no-check", "-q", "-c", stdin=archive)
    digest = {
        name: (hashlib.new(name, compressed).hexdigest(), hashlib.new(name, archive).hexdigest())
        for name in ("sha256", "sha512", "sha3_256")
    }
    gone = {SIZE, FILESIZES, PAYLOADFLAGS, PAYLOADSHA256ALGO, rpmfile.PAYLOADDIGEST, PAYLOADSHA256ALT}
    old = {
        tag: (kind, value, count)
        for tag, kind, value, count in rpm_headers.entries(data[header_at:payload_at])
    }
    assert old[rpmfile.PAYLOADCOMPRESSOR][1] == b"zstd\0"
    sizes = struct.unpack(f">{old[FILESIZES][2]}I", old[FILESIZES][1])
    name, version, release = (
        old[tag][1][:-1].decode() for tag in (rpmheader.NAME, rpmheader.VERSION, rpmheader.RELEASE)
    )
    epoch = struct.unpack(">I", old[rpmheader.EPOCH][1])[0]
    main = [(tag, *fields) for tag, fields in old.items() if tag not in gone] + [
        rpm_headers.numbers(LONGSIZE, [struct.unpack(">I", old[SIZE][1])[0]], rpm_headers.INT64),
        rpm_headers.numbers(LONGFILESIZES, list(sizes), rpm_headers.INT64),
        rpm_headers.text(PAYLOADFLAGS, "19"),
        rpm_headers.texts(rpmfile.PAYLOADDIGEST, [digest["sha256"][0]]),
        rpm_headers.texts(PAYLOADSHA256ALT, [digest["sha256"][1]]),
        rpm_headers.numbers(rpmfile.PAYLOADSIZE, [len(compressed)], rpm_headers.INT64),
        rpm_headers.numbers(rpmfile.PAYLOADSIZEALT, [len(archive)], rpm_headers.INT64),
        rpm_headers.numbers(rpmfile.RPMFORMAT, [6]),
        rpm_headers.text(SOURCENEVR, f"{name}-{epoch}:{version}-{release}"),
        rpm_headers.text(PAYLOADSHA512, digest["sha512"][0]),
        rpm_headers.text(PAYLOADSHA512ALT, digest["sha512"][1]),
        rpm_headers.text(PAYLOADSHA3_256, digest["sha3_256"][0]),
        rpm_headers.text(PAYLOADSHA3_256ALT, digest["sha3_256"][1]),
    ]
    header = rpm_headers.MAGIC + rpm_headers.build(sorted(main))  # format_v6.md: tags strictly sorted
    signature = rpm_headers.MAGIC + rpm_headers.build(
        [
            rpm_headers.text(rpmheader.SHA256HEADER, hashlib.sha256(header).hexdigest()),
            rpm_headers.text(SHA3_256HEADER, hashlib.sha3_256(header).hexdigest()),
            (SIG_RESERVED, rpm_headers.BIN, bytes(V6_RESERVED_SPACE), V6_RESERVED_SPACE),
        ],
        region_tag=rpm_headers.HEADERSIGNATURES,
    )
    signature += bytes(-len(signature) % 8)
    lead = bytearray(data[:96])
    lead[4:6] = b"\x04\x00"  # format 4.0: a v6 package
    lead[8:10] = lead[76:78] = b"\0\0"  # archnum, osnum
    return bytes(lead) + signature + header + compressed


@pytest.fixture(scope="module")
def v6(built, tmp_path_factory) -> tuple[Path, Path]:
    """(the v4 package, the v6 package made from it)."""
    v4 = built("zstd", "sha256")
    path = tmp_path_factory.mktemp("v6") / "demo-v6.rpm"
    path.write_bytes(v6_of(v4))
    return v4, path


def test_a_v6_package_reads_as_the_v4_package_it_was_made_from(v6, tmp_path):
    v4, package = v6
    old, new = RpmArchive(str(v4)), RpmArchive(str(package))
    assert (old.format, new.format) == (4, 6)
    assert package.read_bytes()[4] == 4 and not new.signature.has(rpmfile.SIG_SIZE)
    assert new.header.has(LONGFILESIZES) and not new.header.has(FILESIZES)
    assert new.unpacked_size == len(stripped_cpio(v4))
    # What format_v6.md requires of every v6 header, which rpm 4.18 already wrote in the v4 one.
    assert new.header.string(ENCODING) == "utf-8" and new.header.integer(rpmheader.FILEDIGESTALGO) == 8
    identity = ("name", "epoch", "version", "release", "arch", "vendor")
    assert [getattr(new.package, f) for f in identity] == [getattr(old.package, f) for f in identity]
    assert new.package.details == {
        **old.package.details,
        "format": 6,
        "sha256header": new.signature.string(rpmheader.SHA256HEADER),
        "sha1header": "",  # a v6 signature has no SHA1
    }
    assert new.files == old.files
    assert new.members() == old.members()
    assert len(new.members()) == 10
    on_disk = extracted(v4, tmp_path / "out")  # rpm2cpio and cpio judged the v4 package
    assert {path: (m.mode, m.size if m.kind == "file" else 0) for path, m in new.members().items()} == {
        path: (st.st_mode, st.st_size if stat.S_ISREG(st.st_mode) else 0) for path, st in on_disk.items()
    }
    regular = [path for path, st in on_disk.items() if stat.S_ISREG(st.st_mode)]
    assert new.read_many(regular) == {p: (tmp_path / "out" / p[1:]).read_bytes() for p in regular}


def test_rpm_4_18_reads_the_v6_package_as_the_reader_does(v6):
    """rpm 4.6 and later read v6 packages (rpm's pull request 3876): rpm 4.18 judges the made package.
    rpm2cpio refuses its stripped cpio as it does a v4 package with a file past 4 GiB; rpm2archive
    reads it."""
    _v4, package = v6
    archive = RpmArchive(str(package))
    identity = query(package, "%{NAME}\n%{EPOCH}\n%{VERSION}\n%{RELEASE}\n%{ARCH}\n%{SHA256HEADER}")
    found = archive.package
    assert identity.split("\n") == [
        found.name,
        found.epoch,
        found.version,
        found.release,
        found.arch,
        found.details["sha256header"],
    ]
    checked = rpmbuild.run("rpmkeys", "-Kv", package).decode()
    assert "Header SHA256 digest: OK" in checked and "Payload SHA256 digest: OK" in checked
    # In rpm2archive's tar a symbolic link has size 0, a hard link after the first of its set is a link
    # to that first path, with no data; contents are compared for files under 4 KiB.
    found = {}
    for path, m in archive.members().items():
        first = min((path, *m.links))
        if first != path:
            found[path] = (m.mode, 0, f".{first}", b"")
        else:
            small = m.kind == "file" and m.size < 4096
            size = 0 if m.kind == "link" else m.size
            found[path] = (m.mode, size, m.link, archive.read(path) if small else b"")
    assert found == rpm2archive_listing(package)


def v6_damaged(v4: Path, package: Path) -> dict[str, tuple[bytes, str, bool]]:
    """id -> (package bytes, what the reader says, whether rpm 4.18 refuses it too)."""
    data = package.read_bytes()
    _sig, header_at, payload_at = layout(data)
    archive = RpmArchive(str(package))
    vendor = data.index(b"lifeline tests", header_at)
    sha3 = archive.signature.string(SHA3_256HEADER).encode()
    other_sha3 = sha3[:-1] + (b"0" if sha3[-1:] != b"0" else b"1")
    recompressed = rpmbuild.run(rpmbuild.tool("zstd"), "-19", "--check", "-q", "-c", stdin=stripped_cpio(v4))
    assert len(recompressed) > len(data) - payload_at
    middle = payload_at + (len(data) - payload_at) // 2
    return {
        "header-byte": (
            data[:vendor] + b"L" + data[vendor + 1 :],
            r"its header does not have the sha256 digest its signature records",
            True,
        ),
        # rpm 4.18 knows no SHA3_256HEADER: only the reader checks it.
        "header-sha3": (
            data.replace(sha3, other_sha3),
            r"its header does not have the sha3_256 digest its signature records",
            False,
        ),
        # The same cpio, its zstd frame with a checksum: every file is right, only the payload digest is not.
        "payload-recompressed": (
            data[:payload_at] + recompressed,
            r"the payload's sha256 digest is [0-9a-f]{64}, the header records",
            True,
        ),
        "payload-byte": (
            data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :],
            r"the payload's sha256 digest is [0-9a-f]{64}, the header records",
            True,
        ),
        "payload-cut-short": (
            data[: len(data) - 100],
            r"is cut short: its header says the payload is \d+ bytes, the file holds \d+",
            True,
        ),
    }


V6_DAMAGE = ["header-byte", "header-sha3", "payload-recompressed", "payload-byte", "payload-cut-short"]


@pytest.mark.parametrize("case", V6_DAMAGE)
def test_a_damaged_v6_package_is_refused(case, v6, tmp_path, deadline):
    content, problem, rpm_refuses = v6_damaged(*v6)[case]
    path = tmp_path / "damaged.rpm"
    path.write_bytes(content)
    with deadline(10), pytest.raises(PackageError, match=problem) as raised:
        RpmArchive(str(path)).members()
    assert str(path) in str(raised.value)
    done = subprocess.run(["rpmkeys", "-K", str(path)], capture_output=True, timeout=60)
    assert (done.returncode != 0) == rpm_refuses, done.stdout


def test_both_archives_answer_restore_glibc_alike(built):
    """identity, recorded_digest and linkname, as DebArchive gives them, judged by rpm -qp."""
    path = built("gzip", "sha256")
    archive = RpmArchive(str(path))
    assert archive.identity.label == output("rpm", "-qp", str(path)).strip()
    shown = output("rpm", "-qp", "--qf", "[%{FILENAMES}\t%{FILEDIGESTS}\t%{FILELINKTOS}\n]", str(path))
    for line in shown.splitlines():
        name, digest, link = line.split("\t")
        assert archive.recorded_digest(name) == ((digest, "sha256") if digest else ("", ""))
        if link:
            assert archive.members()[name].linkname == link
    assert archive.recorded_digest("/no/such/file") == ("", "")
