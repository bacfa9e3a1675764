# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cpio archive inside an rpm package's payload, read as a stream.

rpm writes SVR4 "newc" cpio (magic 070701; 070702 is the same with a checksum rpm ignores): a
110-byte header of 13 eight-digit hex fields, the NUL-terminated name, the data, each padded to 4
bytes, and a last entry named TRAILER!!!. Packages with a file of 4 GiB or more (rpm >= 4.12), and
every v6 package, use rpm's stripped form (magic 07070X): the header holds only the file's index in
the rpm header, which also gives its size; the trailer stays a newc entry.

Every field is checked before use; names are made absolute and clean, and a name that would leave the
root is refused; an entry whose data runs past the end of the stream is an error. Nothing is held
but the entry being read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError

NEWC, CRC, STRIPPED = b"070701", b"070702", b"07070X"
TRAILER = b"TRAILER!!!"
FIELDS = (
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "size",
    "dev_major",
    "dev_minor",
    "rdev_major",
    "rdev_minor",
    "namesize",
    "checksum",
)
HEADER = 6 + 8 * len(FIELDS)  # 110
STRIPPED_HEADER = 6 + 8
MAX_NAME = 4096  # rpm's CPIO_NAMESIZE_MAX
END_INDEX = 0xFFFFFFFF  # a stripped header with index -1 also ends the archive (rpm's reader)
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SKIP = 1 << 20


@dataclass
class Entry:
    """One cpio header. ``index`` is the rpm header's file index (stripped form), else -1."""

    path: str  # "/usr/bin/x" (newc); "" in the stripped form, where the rpm header names the file
    size: int
    index: int = -1
    mode: int = 0
    uid: int = 0
    gid: int = 0
    nlink: int = 0
    mtime: int = 0
    ino: int = 0


def clean_path(raw: bytes, what: str) -> str:
    """A cpio name ("./usr/bin/x", "usr/bin/x", "/usr/bin/x", ".") as "/usr/bin/x"; refused if it climbs."""
    name = raw.decode("utf-8", "surrogateescape")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PackageError(f"{what}: cpio entry {name!r} climbs out of the root; package refused")
    return "/" + "/".join(parts)


class CpioReader:
    """The entries of a cpio stream, in order: iterate for the entries, ``read()`` the current one's data.

    ``stripped_size(index)`` gives a stripped entry's data size (from the rpm header); it raises
    PackageError for an index the header does not have.
    """

    def __init__(self, stream, what: str, stripped_size: Callable[[int], int] | None = None) -> None:
        self._stream = stream
        self._what = what
        self._stripped_size = stripped_size
        self._offset = 0
        self._left = 0  # data bytes of the current entry not read yet
        self._entry: Entry | None = None
        self.ended = False  # the trailer was read

    def _bad(self, why: str) -> PackageError:
        return PackageError(f"{self._what}: {why}")

    def _exactly(self, size: int, needed_for: str) -> bytes:
        data = self._stream.read(size) if size else b""
        while len(data) < size:
            more = self._stream.read(size - len(data))
            if not more:
                raise self._bad(f"the payload ends inside {needed_for} (cut short)")
            data += more
        self._offset += size
        return data

    def _pad(self, needed_for: str) -> None:
        self._exactly(-self._offset % 4, needed_for)

    def _hex(self, raw: bytes, field: str, at: int) -> int:
        if len(raw) != 8 or not _HEX.issuperset(raw):
            raise self._bad(f"cpio header at payload offset {at}: field {field} is {raw!r}, not 8 hex digits")
        return int(raw, 16)

    def __iter__(self) -> Iterator[Entry]:
        while True:
            self._finish_entry()
            at = self._offset
            magic = self._stream.read(6)
            if not magic:
                raise self._bad(f"the payload ends at offset {at} without the cpio trailer (cut short)")
            self._offset += len(magic)
            if len(magic) < 6:
                magic += self._exactly(6 - len(magic), "a cpio header")
            if magic == STRIPPED:
                entry = self._stripped(at)
            elif magic in (NEWC, CRC):
                entry = self._newc(at)
            else:
                raise self._bad(
                    f"no cpio header at payload offset {at} (found {magic!r}): not a cpio archive"
                )
            if entry is None:
                self.ended = True
                return
            self._entry, self._left = entry, entry.size
            yield entry

    def _stripped(self, at: int) -> Entry | None:
        index = self._hex(self._exactly(8, "a cpio header"), "index", at)
        self._pad("a cpio header")
        if index == END_INDEX:
            return None
        if self._stripped_size is None:
            raise self._bad(f"stripped cpio entry at payload offset {at} where none may be")
        return Entry(path="", size=self._stripped_size(index), index=index)

    def _newc(self, at: int) -> Entry | None:
        raw = self._exactly(HEADER - 6, "a cpio header")
        values = {field: self._hex(raw[i * 8 : i * 8 + 8], field, at) for i, field in enumerate(FIELDS)}
        namesize = values["namesize"]
        if not 2 <= namesize <= MAX_NAME:
            raise self._bad(
                f"cpio header at payload offset {at}: name size {namesize} (rpm allows 2 to {MAX_NAME})"
            )
        name = self._exactly(namesize, "a cpio name")
        if name[-1:] != b"\0" or b"\0" in name[:-1]:
            raise self._bad(
                f"cpio name at payload offset {at} is not one NUL-terminated string: {name[:64]!r}"
            )
        self._pad("a cpio name")
        name = name[:-1]
        if name == TRAILER:
            return None
        return Entry(
            path=clean_path(name, self._what),
            size=values["size"],
            mode=values["mode"],
            uid=values["uid"],
            gid=values["gid"],
            nlink=values["nlink"],
            mtime=values["mtime"],
            ino=values["ino"],
        )

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all when negative) of the current entry's data; PackageError if cut short."""
        want = self._left if size < 0 else min(size, self._left)
        path = self._entry.path or f"file #{self._entry.index}" if self._entry else "?"
        data = self._exactly(want, f"the data of {path} ({self._entry.size if self._entry else 0} bytes)")
        self._left -= want
        return data

    def _finish_entry(self) -> None:
        """Skip what is left of the current entry's data, and its padding."""
        if self._entry is None:
            return
        while self._left:
            self.read(min(self._left, _SKIP))
        self._pad(f"the padding after {self._entry.path or self._entry.index}")
        self._entry = None
