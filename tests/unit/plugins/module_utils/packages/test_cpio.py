"""The cpio reader of rpm payloads: archives GNU cpio writes (newc, crc) against the files they came
from, rpm's stripped form, and hostile archives."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import cpio

from support import rpmbuild


def tree(root: Path) -> None:
    """Every kind of entry, names that need cleaning or are not UTF-8, sizes that need padding."""
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/tool").write_bytes(b"#!/bin/sh\n")
    (root / "usr/bin/tool").chmod(0o4755)
    (root / "usr/bin/odd").write_bytes(b"x" * 4097)
    (root / "usr/bin/empty").write_bytes(b"")
    os.symlink("tool", root / "usr/bin/link")
    os.link(root / "usr/bin/tool", root / "usr/bin/hard")
    (root / os.fsdecode(b"caf\xe9")).write_bytes(b"latin-1 name\n")
    (root / "big").write_bytes(os.urandom(300_000))


def gnu_cpio(root: Path, fmt: str) -> bytes:
    names = sorted(
        "./" + os.fsencode(Path(d, n).relative_to(root)).decode("utf-8", "surrogateescape")
        for d, dirs, files in os.walk(root)
        for n in dirs + files
    )
    listing = b"".join(n.encode("utf-8", "surrogateescape") + b"\n" for n in names)
    return rpmbuild.run("sh", "-c", f"cd '{root}' && cpio -o --quiet -H {fmt}", stdin=listing)


@pytest.mark.parametrize("fmt", ["newc", "crc"])
def test_gnu_cpio_archives_read_as_the_files_they_came_from(fmt, tmp_path):
    root = tmp_path / "root"
    tree(root)
    archive = gnu_cpio(root, fmt)
    assert archive[:6] == (b"070701" if fmt == "newc" else b"070702")
    reader = cpio.CpioReader(io.BufferedReader(io.BytesIO(archive)), "test.cpio")
    seen = {}
    for entry in reader:
        seen[entry.path] = entry, reader.read()
    assert reader.ended
    expected = {
        "/" + os.fsencode(Path(d, n).relative_to(root)).decode("utf-8", "surrogateescape"): Path(d, n)
        for d, dirs, files in os.walk(root)
        for n in dirs + files
    }
    assert sorted(seen) == sorted(expected)
    for path, (entry, data) in seen.items():
        st = expected[path].lstat()
        assert (entry.mode, entry.nlink, entry.ino) == (st.st_mode, st.st_nlink, st.st_ino)
        if stat.S_ISLNK(st.st_mode):
            assert data == os.fsencode(os.readlink(expected[path]))
        elif stat.S_ISREG(st.st_mode) and entry.size:  # a hard-link set's content comes once, with its last
            assert data == expected[path].read_bytes()
    assert seen["/caf\udce9"][1] == b"latin-1 name\n"
    assert {seen["/usr/bin/tool"][0].size, seen["/usr/bin/hard"][0].size} == {0, 10}


def header(
    name: bytes, size: int, mode: int = 0o100644, namesize: int | None = None, magic=b"070701"
) -> bytes:
    fields = [1, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name) + 1 if namesize is None else namesize, 0]
    out = magic + "".join(f"{v:08x}" for v in fields).encode() + name + b"\0"
    return out + b"\0" * (-len(out) % 4)


def entry(name: bytes, data: bytes, **kw) -> bytes:
    return header(name, len(data), **kw) + data + b"\0" * (-len(data) % 4)


TRAILER = header(b"TRAILER!!!", 0)


def read_all(archive: bytes, stripped_size=None) -> list[tuple[str, int, bytes]]:
    reader = cpio.CpioReader(io.BufferedReader(io.BytesIO(archive)), "test.cpio", stripped_size)
    return [(e.path or str(e.index), e.size, reader.read()) for e in reader]


def test_names_are_made_absolute_and_clean():
    archive = (
        b"".join(entry(name, b"") for name in (b".", b"./usr", b"usr//lib/./x", b"/etc/y", b"./dir/"))
        + TRAILER
    )
    assert [p for p, _s, _d in read_all(archive)] == ["/", "/usr", "/usr/lib/x", "/etc/y", "/dir"]


def test_stripped_entries_take_their_size_from_the_header():
    """rpm's stripped form (lib/cpio.cc): 07070X, the file index in 8 hex digits, padding, content."""
    sizes = {0: 5, 1: 0, 2: 3}
    archive = b"07070X00000002" + b"\0\0" + b"abc\0" + b"07070X00000000" + b"\0\0" + b"hello\0\0\0"
    archive += b"07070X00000001" + b"\0\0" + TRAILER
    assert read_all(archive, sizes.__getitem__) == [("2", 3, b"abc"), ("0", 5, b"hello"), ("1", 0, b"")]
    # rpm's reader also ends at a stripped index of -1
    assert read_all(b"07070X00000002\0\0abc\0" + b"07070Xffffffff\0\0", sizes.__getitem__) == [
        ("2", 3, b"abc")
    ]


HOSTILE = [
    (
        "climbs",
        entry(b"../../etc/passwd", b"root::0:0::/:/bin/sh\n") + TRAILER,
        r"'../../etc/passwd' climbs out",
    ),
    ("climbs-inside", entry(b"./usr/../../x", b"") + TRAILER, r"climbs out of the root"),
    (
        "size-past-the-end",
        header(b"./x", 1 << 30) + b"only this",
        r"ends inside the data of /x \(1073741824 bytes\)",
    ),
    (
        "no-trailer",
        entry(b"./x", b"abc"),
        r"ends at offset 16 without the cpio trailer|without the cpio trailer",
    ),
    ("cut-in-header", entry(b"./x", b"abc") + TRAILER[:50], r"ends inside a cpio header"),
    ("cut-in-name", header(b"./long-name", 0)[:115], r"ends inside a cpio name"),
    ("bad-magic", b"070707" + b"0" * 200, r"no cpio header at payload offset 0 \(found b'070707'\)"),
    ("garbage", os.urandom(64).replace(b"0707", b"xxxx"), r"no cpio header at payload offset 0"),
    (
        "hex-sign",
        header(b"./x", 0).replace(b"00000001", b"+0000001", 1),
        r"field ino is b'\+0000001', not 8 hex digits",
    ),
    ("hex-space", header(b"./x", 0).replace(b"00000001", b" 0000001", 1), r"not 8 hex digits"),
    (
        "hex-letter",
        header(b"./x", 0)[:54] + b"0000000g" + header(b"./x", 0)[62:],
        r"field size is b'0000000g'",
    ),
    ("namesize-zero", header(b"./x", 0, namesize=0), r"name size 0 \(rpm allows 2 to 4096\)"),
    ("namesize-huge", header(b"./x", 0, namesize=0xFFFFFFFF), r"name size 4294967295"),
    (
        "name-without-nul",
        header(b"./x", 0, namesize=3)[:113] + b"y" + b"\0" * 8,
        r"not one NUL-terminated string",
    ),
    ("name-with-nul", header(b"./x\0y", 0) + TRAILER, r"not one NUL-terminated string"),
    (
        "stripped-where-none-may-be",
        b"07070X00000000\0\0" + TRAILER,
        r"stripped cpio entry at payload offset 0",
    ),
    ("stripped-bad-index", b"07070X0000000z\0\0", r"field index is b'0000000z'"),
]


@pytest.mark.parametrize(("archive", "problem"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_archive(archive, problem, deadline):
    with deadline(2), pytest.raises(PackageError, match=problem) as raised:
        read_all(archive)
    assert str(raised.value).startswith("test.cpio: ")


def test_gnu_cpio_refuses_what_the_reader_refuses_for_climbing_names(tmp_path):
    """GNU cpio, unpacking, drops the leading ../ of the same name; the reader refuses the archive."""
    archive = entry(b"../../etc/passwd", b"x\n") + TRAILER
    (tmp_path / "out").mkdir()
    rpmbuild.run(
        "sh", "-c", f"cd '{tmp_path}/out' && cpio -i -d --quiet --no-absolute-filenames", stdin=archive
    )
    assert (tmp_path / "out/etc/passwd").read_bytes() == b"x\n"
    with pytest.raises(PackageError, match="climbs out of the root"):
        read_all(archive)
