# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read .rpm files without rpm.

An .rpm is a 96-byte lead (magic ed ab ee db, major 3 for v3/v4 packages, 4 for v6), the signature
header (zero-padded to 8 bytes), the main header (rpm/header.py parses both) and the payload: a cpio
archive (rpm/cpio.py) compressed as PAYLOADCOMPRESSOR says (packages/compression.py). The main header
is the truth about every file (mode, size, owner, link target, digest); the payload carries the
contents, and is checked against the header as it is read: every entry must be a file the header
lists with the type and size it records, every file but %ghost ones must be there, and a file's
content must have the digest the header records. Sizes are checked before anything is allocated, and
the uncompressed payload is capped at the size the package records.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.packages import compression, digests
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.digests import CHUNK
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import (
    InstalledPackage,
    PackageError,
    PackageFile,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.package_archive import (
    PackageArchive,
    Window,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import cpio
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import header as rpmheader

LEAD_SIZE = 96
LEAD_MAGIC = b"\xed\xab\xee\xdb"
LEAD_MAJORS = (3, 4)  # 3: v3 and v4 packages; 4: v6 packages
# rpm's caps on a signature header (hdrblobVerifyLengths): 32 entries, 64 MiB of data.
MAX_SIGNATURE_ENTRIES = 32
MAX_SIGNATURE_DATA = 64 << 20
# When a package records no uncompressed size, the payload stops here (the largest packages
# unpack to a few GB).
MAX_UNPACKED = 16 << 30

# Signature tags (rpmtag.h RPMSIGTAG_*): header+payload size, uncompressed payload size.
SIG_SIZE, SIG_LONGSIZE = 1000, 270
SIG_PAYLOADSIZE, SIG_LONGARCHIVESIZE = 1007, 271
# Main header tags.
FILEDEVICES, FILEINODES = 1095, 1096
PAYLOADFORMAT, PAYLOADCOMPRESSOR = 1124, 1125
PAYLOADDIGEST, PAYLOADDIGESTALGO = 5092, 5093
PAYLOADSIZE, PAYLOADSIZEALT = 5112, 5113
RPMFORMAT = 5114
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class Member(PackageFile):
    """A file the payload holds, described by the header. ``links``: the other paths of its hard-link set."""

    index: int = field(default=0, repr=False)  # the file's number in the header
    links: tuple = ()

    @property
    def linkname(self) -> str:
        """A symbolic link's target, under the name debfile.Member gives it."""
        return self.link


class RpmArchive(PackageArchive):
    """A .rpm file read with the standard library: lead, signature, header, cpio payload.

    The lead and both headers are read when the object is made (PackageError when the file is no rpm
    package); the payload when members() or read() needs it.
    """

    KIND = "an rpm package"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.unpacked_limit = MAX_UNPACKED
        self.zstd_time_limit = compression.ZSTD_TIME_LIMIT
        self._members: dict[str, Member] | None = None
        try:
            self.format = self._read_lead()
            self.signature, offset = self._read_header(LEAD_SIZE, "signature", signature=True)
            self.header, self.payload_offset = self._read_header(offset, "header", signature=False)
            if self.header.has(RPMFORMAT):
                self.format = self.header.integer(RPMFORMAT) or self.format
            self._check_sizes()
            self.compression = self._payload_compression()
            self.files = self.header.files()
            self._index_of = {entry.path: index for index, entry in enumerate(self.files)}
            self._link_sets = self._hardlink_sets()
            self._content_of = {i: i for i in range(len(self.files))}
            for indexes in self._link_sets.values():
                for index in indexes:
                    self._content_of[index] = indexes[-1]
        except BaseException:
            self._handle.close()
            raise

    # -- lead and headers

    def _read_lead(self) -> int:
        lead = self._pread(LEAD_SIZE, 0)
        if lead[:4] != LEAD_MAGIC:
            raise self.not_this_kind("no rpm lead magic")
        if len(lead) < LEAD_SIZE:
            raise self.not_this_kind(f"its lead is cut short: {len(lead)} of {LEAD_SIZE} bytes")
        if lead[4] not in LEAD_MAJORS:
            raise self.not_this_kind(f"lead format {lead[4]}.{lead[5]}, not 3 (v4) or 4 (v6)")
        return 6 if lead[4] == 4 else 4

    def _read_header(self, offset: int, what: str, signature: bool):
        """The header at ``offset`` and where what follows it starts; its sizes checked before reading it."""
        intro = self._pread(16, offset)
        if len(intro) < 16:
            raise self.not_this_kind(f"the {what} is cut short at offset {offset}")
        if intro[:8] != rpmheader.MAGIC:
            raise self.not_this_kind(f"no {what} header magic at offset {offset}")
        il, dl = struct.unpack(">II", intro[8:16])
        max_il, max_dl = (
            (MAX_SIGNATURE_ENTRIES, MAX_SIGNATURE_DATA)
            if signature
            else (rpmheader.MAX_ENTRIES, rpmheader.MAX_DATA)
        )
        if not 1 <= il <= max_il or dl > max_dl:
            raise self.not_this_kind(
                f"its {what} claims {il} entries and {dl} bytes of data"
                f" (rpm allows 1 to {max_il} and {max_dl})"
            )
        size = 16 + 16 * il + dl
        if offset + size > self.size:
            raise self.not_this_kind(
                f"its {what} claims {size} bytes at offset {offset}, the file ends after "
                f"{self.size - offset} (cut short or damaged)"
            )
        blob = self._pread(size, offset)
        parsed = rpmheader.parse(blob, where=f"{self.path}: {what}")
        end = offset + size
        if signature:
            end += -end % 8
        return parsed, end

    def _check_sizes(self) -> None:
        """A file shorter than its signature says is cut short: say so before reading the payload."""
        recorded = self.signature.integer(SIG_LONGSIZE) or self.signature.integer(SIG_SIZE)
        header_start = self.payload_offset - (16 + 16 * self.header.il + self.header.dl)
        if recorded and header_start + recorded > self.size:
            raise PackageError(
                f"{self.path} is cut short: its signature says header and payload are {recorded} bytes, "
                f"the file holds {self.size - header_start}"
            )
        # A v6 signature records no sizes; its header records the compressed payload's.
        payload_size = self.header.integer(PAYLOADSIZE)
        if payload_size and self.payload_offset + payload_size > self.size:
            raise PackageError(
                f"{self.path} is cut short: its header says the payload is {payload_size} bytes, "
                f"the file holds {self.size - self.payload_offset}"
            )
        blob = rpmheader.MAGIC + self.header.blob
        for tag, algorithm in rpmheader.HEADER_DIGESTS:
            recorded = self.signature.string(tag).lower() if self.signature.has(tag) else ""
            if recorded and hashlib.new(algorithm, blob).hexdigest() != recorded:
                raise PackageError(
                    f"{self.path}: its header does not have the {algorithm} digest its signature records "
                    "(damaged or altered package)"
                )

    def _payload_compression(self) -> str:
        payload_format = self.header.string(PAYLOADFORMAT, "cpio")
        if payload_format != "cpio":
            raise PackageError(f"{self.path}: its payload is {payload_format!r}, not cpio (a delta rpm?)")
        compressor = self.header.string(PAYLOADCOMPRESSOR)
        if not compressor:
            # rpm reads a package that names none with gzip, whose reader passes plain data through.
            compressor = "gzip" if self._pread(2, self.payload_offset) == GZIP_MAGIC else ""
        if compressor not in compression.COMPRESSIONS:
            raise PackageError(
                f"{self.path}: its payload is compressed with {compressor!r}, not readable here"
            )
        return compressor

    @property
    def unpacked_size(self) -> int:
        """The uncompressed payload's size as the package records it; 0 when it does not."""
        for where, tag in (
            (self.signature, SIG_LONGARCHIVESIZE),
            (self.signature, SIG_PAYLOADSIZE),
            (self.header, PAYLOADSIZEALT),
        ):
            value = where.integer(tag)
            if value:
                return value
        return 0

    @property
    def package(self) -> InstalledPackage:
        """The package this file installs, as the rpm database would record it."""
        return InstalledPackage(
            manager="rpm",
            name=self.header.name,
            version=self.header.version,
            arch=self.header.arch,
            release=self.header.release,
            epoch=self.header.epoch,
            vendor=self.header.vendor,
            details={
                "format": self.format,
                "sourcerpm": self.header.sourcerpm,
                # A package file keeps its header's digests in the signature; the database, in the header.
                "sha256header": self.signature.string(rpmheader.SHA256HEADER),
                "sha1header": self.signature.string(rpmheader.SHA1HEADER),
                "payload": self.compression or "none",
            },
        )

    @property
    def identity(self) -> InstalledPackage:
        """The package in the shape every package manager's shares (as DebArchive.identity)."""
        return self.package

    def recorded_digest(self, path: str) -> tuple[str, str]:
        """(digest, algorithm) the header records for the regular file ``path``; ("", "") if none."""
        index = self._index_of.get(path)
        entry = self.files[index] if index is not None else None
        return (entry.digest, entry.algorithm) if entry is not None and entry.digest else ("", "")

    # -- hard links

    def _hardlink_sets(self) -> dict[int, list[int]]:
        """The hard-link sets, by the index of the file whose payload entry carries their content:
        the set's last, as rpm writes them. Regular files sharing device and inode form a set."""
        devices = self.header.integers(FILEDEVICES)
        inodes = self.header.integers(FILEINODES)
        if len(devices) != len(self.files) or len(inodes) != len(self.files):
            return {}
        sets: dict[tuple[int, int], list[int]] = {}
        for index, entry in enumerate(self.files):
            if stat.S_ISREG(entry.mode) and not entry.ghost:
                sets.setdefault((devices[index], inodes[index]), []).append(index)
        return {indexes[-1]: indexes for indexes in sets.values() if len(indexes) > 1}

    def _payload_size(self, index: int) -> int:
        """The data a payload entry carries for file ``index`` (rpm's iterReadArchiveNext)."""
        entry = self.files[index]
        if stat.S_ISLNK(entry.mode):
            return entry.size
        if stat.S_ISREG(entry.mode) and self._content_of[index] == index:
            return entry.size
        return 0

    def _stripped_size(self, index: int) -> int:
        if index >= len(self.files):
            raise PackageError(
                f"{self.path}: a payload entry names file #{index}; the header lists {len(self.files)}"
            )
        return self._payload_size(index)

    # -- the payload

    def members(self) -> dict[str, Member]:
        """The files the payload holds, by path, described by the header; read and checked once."""
        if self._members is None:
            algorithm = self.header.integer(PAYLOADDIGESTALGO, 8)
            recorded = self.header.strings(PAYLOADDIGEST) if self.header.has(PAYLOADDIGEST) else []
            name = rpmheader.DIGEST_ALGORITHMS.get(algorithm or 0, "")
            digest = digests.new_digest(name) if recorded and name in digests.ALGORITHMS else None
            table: dict[str, Member] = {}
            with _Payload(self, digest) as payload:
                for index, _entry in payload:
                    table[self.files[index].path] = self._member(index)
                payload.finish()
            if digest is not None and digest.hexdigest() not in [r.lower() for r in recorded]:
                raise PackageError(
                    f"{self.path}: the payload's {name} digest is {digest.hexdigest()}, "
                    f"the header records {recorded[0]} (damaged package)"
                )
            self._members = table
        return self._members

    def _member(self, index: int) -> Member:
        entry = self.files[index]
        linked = self._link_sets.get(self._content_of[index], ())
        links = tuple(self.files[i].path for i in linked if i != index)
        return Member(**{**entry.__dict__, "index": index, "links": links})

    def _wanted_index(self, path: str, limit: int) -> int:
        wanted = cpio.clean_path(path.encode("utf-8", "surrogateescape"), self.path)
        index = self._index_of.get(wanted)
        if index is None:
            raise PackageError(f"{self.path} has no {wanted}")
        entry = self.files[index]
        if entry.ghost:
            raise PackageError(f"{self.path}: {wanted} is a %ghost file, which the package does not carry")
        if entry.kind != "file":
            raise PackageError(
                f"{self.path}: {wanted} is a {entry.kind or 'file of no type'}, not a regular file"
            )
        if entry.size > limit:
            raise PackageError(f"{self.path}: {wanted} is {entry.size} bytes, more than the {limit} allowed")
        return self._content_of[index]

    def read_many(self, paths: Iterable[str], limit: int = 256 << 20) -> dict[str, bytes]:
        """The contents of several regular files in one pass over the payload, each checked against
        the header's digest (hard-linked files share their content)."""
        wanted = {p: self._wanted_index(p, limit) for p in paths}
        found: dict[int, bytes] = {}
        needed = set(wanted.values())
        with _Payload(self, None) as payload:
            for index, _entry in payload:
                if index in needed:
                    found[index] = self._checked_content(payload, index)
                    if len(found) == len(needed):
                        break
        return {path: found[index] for path, index in wanted.items()}

    def read(self, path: str, limit: int = 256 << 20) -> bytes:
        """The content of one regular file (a hard link gives its set's content), digest checked."""
        return self.read_many([path], limit)[path]

    def _checked_content(self, payload: _Payload, index: int) -> bytes:
        entry = self.files[index]
        chunks = []
        digest = digests.new_digest(entry.algorithm) if entry.digest else None
        while True:
            chunk = payload.reader.read(CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            if digest is not None:
                digest.update(chunk)
        data = b"".join(chunks)
        if digest is None:
            raise PackageError(f"{self.path}: the header records no digest for {entry.path}; not trusted")
        # Old packages record zeros as the md5 of an empty file (rpm accepts that too).
        zeros_for_empty = not data and set(entry.digest) == {"0"}
        if digest.hexdigest() != entry.digest and not zeros_for_empty:
            raise PackageError(
                f"{self.path}: {entry.path} has {entry.algorithm} {digest.hexdigest()} in the payload, "
                f"the header records {entry.digest} (damaged package)"
            )
        return data


class _Payload:
    """One pass over the payload: decompressed, its cpio entries mapped to header files and checked."""

    def __init__(self, archive: RpmArchive, digest) -> None:
        self._archive = archive
        self._digest = digest
        self._seen: set[int] = set()
        self.reader: cpio.CpioReader | None = None

    def __enter__(self) -> _Payload:
        archive = self._archive
        what = f"{archive.path}: payload"
        self._window = Window(
            archive._handle, archive.payload_offset, archive.size - archive.payload_offset, self._digest
        )
        raw = io.BufferedReader(self._window, CHUNK)
        cap = min(archive.unpacked_size or archive.unpacked_limit, archive.unpacked_limit)
        self._context = compression.decompressed(
            raw, archive.compression, what, cap, time_limit=archive.zstd_time_limit
        )
        stream = self._context.__enter__()
        self.reader = cpio.CpioReader(stream, what, archive._stripped_size)
        return self

    def __exit__(self, *exc) -> bool:
        return bool(self._context.__exit__(*exc))

    def __iter__(self):
        archive = self._archive
        for entry in self.reader:
            index = entry.index if entry.index >= 0 else archive._index_of.get(entry.path, -1)
            if index < 0:
                raise PackageError(
                    f"{archive.path}: the payload holds {entry.path}, which the header does not list"
                )
            if archive.files[index].ghost:
                continue  # rpm < 4.11 sometimes put %ghost files in the payload; rpm skips them
            self._check(index, entry)
            self._seen.add(index)
            yield index, entry

    def _check(self, index: int, entry: cpio.Entry) -> None:
        archive = self._archive
        listed = archive.files[index]
        if index in self._seen:
            raise PackageError(f"{archive.path}: the payload holds {listed.path} twice")
        if entry.index < 0 and stat.S_IFMT(entry.mode) != stat.S_IFMT(listed.mode):
            raise PackageError(
                f"{archive.path}: the payload's {listed.path} has mode {entry.mode:o},"
                f" the header {listed.mode:o}"
            )
        expected = archive._payload_size(index)
        if entry.size != expected:
            raise PackageError(
                f"{archive.path}: the payload's {listed.path} holds {entry.size} bytes,"
                f" the header says {expected}"
            )
        if stat.S_ISLNK(listed.mode):
            target = self.reader.read(entry.size).decode("utf-8", "surrogateescape")
            if target != listed.link:
                raise PackageError(
                    f"{archive.path}: the payload's {listed.path} links to {target!r},"
                    f" the header to {listed.link!r}"
                )

    def finish(self) -> None:
        """After the last entry: every file but %ghost ones was there; the raw payload read to its end."""
        archive = self._archive
        missing = [
            entry.path
            for index, entry in enumerate(archive.files)
            if not entry.ghost and index not in self._seen
        ]
        if missing:
            raise PackageError(
                f"{archive.path}: the payload lacks {len(missing)} file(s) the header lists:"
                f" {', '.join(missing[:5])}"
            )
        self._window.drain()


def is_rpm(path: str) -> bool:
    """Whether the file starts with the rpm lead's magic (the name is never looked at)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and os.pread(fd, 4, 0) == LEAD_MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)
