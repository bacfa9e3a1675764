# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An rpm header, parsed and checked the way rpm checks one before it trusts it.

A header is what rpm stores for each installed package (and what opens every .rpm after the lead and
the signature): an optional 8-byte magic, the entry count ``il`` and data length ``dl`` (big-endian),
``il`` index entries of 16 bytes (tag, type, offset, count) and ``dl`` bytes of data.

The first entry of a modern header is a region tag (HEADERIMMUTABLE, 63): its data is a 16-byte
trailer whose negative offset says how many entries the immutable region holds (``ril``); the data
up to and including the trailer is the region (``rdl`` bytes). rpm appends "dribble" entries after
the region when it installs a package (the signature digests, INSTALLTIME, ...); a dribble entry
replaces a region entry with the same tag. SHA1HEADER / SHA256HEADER are digests over the magic,
``ril``, ``rdl``, the region's entries and the region's data; rpm skips a database header whose
digest does not match, and so does this reader (``Header.digest_problem``).

Every count, offset, alignment and string is checked before use, with rpm's own caps (65535
entries, 256 MiB of data, a million array items), so a hostile blob gives a PackageError naming
what is wrong, never an IndexError or a huge allocation.
"""

from __future__ import annotations

import hashlib
import struct

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError, PackageFile

MAGIC = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"

# Types (rpmtag.h rpmTagType).
NULL, CHAR, INT8, INT16, INT32, INT64, STRING, BIN, STRING_ARRAY, I18NSTRING = range(10)
TYPE_NAMES = (
    "NULL",
    "CHAR",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "STRING",
    "BIN",
    "STRING_ARRAY",
    "I18NSTRING",
)
_SIZES = {CHAR: 1, INT8: 1, INT16: 2, INT32: 4, INT64: 8, BIN: 1}
_INT_FORMATS = {INT8: "B", CHAR: "B", INT16: "H", INT32: "I", INT64: "Q"}
_STRING_TYPES = (STRING, STRING_ARRAY, I18NSTRING)

# Region tags; a real tag is never below I18NTABLE.
HEADERIMAGE, HEADERSIGNATURES, HEADERIMMUTABLE = 61, 62, 63
HEADERI18NTABLE = 100
REGION_TAGS = (HEADERIMAGE, HEADERSIGNATURES, HEADERIMMUTABLE)

# Tags this reader uses (rpmtag.h).
SIGMD5 = 261
SHA1HEADER = 269
SHA256HEADER = 273
SHA3_256HEADER = 279
NAME = 1000
VERSION = 1001
RELEASE = 1002
EPOCH = 1003
SUMMARY = 1004
INSTALLTIME = 1008
VENDOR = 1011
ARCH = 1022
OLDFILENAMES = 1027
FILESIZES = 1028
FILEMODES = 1030
FILEDIGESTS = 1035
FILELINKTOS = 1036
FILEFLAGS = 1037
FILEUSERNAME = 1039
FILEGROUPNAME = 1040
SOURCERPM = 1044
NOSOURCE = 1051
NOPATCH = 1052
DIRINDEXES = 1116
BASENAMES = 1117
DIRNAMES = 1118
LONGFILESIZES = 5008
FILEDIGESTALGO = 5011

# File flags (rpmfiles.h rpmfileAttrs), and the letters `rpm --qf %{FILEFLAGS:fflags}` prints, in its order.
CONFIG, DOC, ICON, MISSINGOK, NOREPLACE, SPECFILE, GHOST, LICENSE, README = (1 << bit for bit in range(9))
PUBKEY, ARTIFACT = 1 << 11, 1 << 12
FFLAG_LETTERS = (
    (DOC, "d"),
    (CONFIG, "c"),
    (SPECFILE, "s"),
    (MISSINGOK, "m"),
    (NOREPLACE, "n"),
    (GHOST, "g"),
    (LICENSE, "l"),
    (README, "r"),
    (ARTIFACT, "a"),
)

# FILEDIGESTALGO values (rpmcrypto.h) -> hashlib names; a header without the tag uses md5.
DIGEST_ALGORITHMS = {
    1: "md5",
    2: "sha1",
    8: "sha256",
    9: "sha384",
    10: "sha512",
    11: "sha224",
    12: "sha3_256",
    14: "sha3_512",
}
HEADER_DIGESTS = ((SHA256HEADER, "sha256"), (SHA1HEADER, "sha1"), (SHA3_256HEADER, "sha3_256"))

# rpm's caps (lib/header.cc): tags, data bytes, array items, whole header.
MAX_ENTRIES = 0xFFFF
MAX_DATA = 0x0FFFFFFF
MAX_ARRAY = 0x000FFFFF
MAX_HEADER = 256 << 20
ENTRY = struct.Struct(">iIiI")  # tag, type, offset, count (rpm keeps offset and tag signed)


def fflags(flags: int) -> str:
    """The letters rpm prints for FILEFLAGS: config|missingok|noreplace|ghost -> "cmng"."""
    return "".join(letter for bit, letter in FFLAG_LETTERS if flags & bit)


class Entry:
    """One index entry, checked: ``length`` is its data's length in bytes."""

    __slots__ = ("count", "length", "offset", "tag", "type")

    def __init__(self, tag: int, kind: int, offset: int, count: int, length: int = 0):
        self.tag = tag
        self.type = kind
        self.offset = offset
        self.count = count
        self.length = length


class Header:
    """A parsed, checked rpm header. ``instance`` is the database's number for it (0 when none)."""

    def __init__(self, blob: bytes, instance: int = 0, where: str = "rpm header"):
        self.instance = instance
        self.where = where
        if blob[:8] == MAGIC:
            blob = blob[8:]
        self.blob = bytes(blob)
        self.il = self.dl = self.ril = self.rdl = 0
        self.region_tag = 0
        self.entries: dict[int, Entry] = {}
        self._parse()

    # ---- structure -----------------------------------------------------------------------------

    def _bad(self, what: str) -> PackageError:
        return PackageError(f"{self.where}: {what}")

    def _parse(self) -> None:
        blob = self.blob
        if len(blob) < 8:
            raise self._bad(f"{len(blob)} bytes, too short for a header")
        il, dl = struct.unpack_from(">II", blob, 0)
        if il < 1 or il > MAX_ENTRIES:
            raise self._bad(f"{il} index entries (rpm allows 1 to {MAX_ENTRIES})")
        if dl > MAX_DATA:
            raise self._bad(f"claims {dl} bytes of data (rpm allows at most {MAX_DATA})")
        size = 8 + 16 * il + dl
        if size >= MAX_HEADER or size != len(blob):
            raise self._bad(
                f"claims {il} entries and {dl} bytes of data ({size} bytes), but holds {len(blob)} bytes"
            )
        self.il, self.dl = il, dl
        self._data_start = 8 + 16 * il
        raw = [Entry(*fields) for fields in ENTRY.iter_unpack(blob[8 : self._data_start])]
        self._region(raw[0])
        self._check_entries(raw)
        self._load(raw)

    def _region(self, first: Entry) -> None:
        """Find the immutable region (hdrblobVerifyRegion); a header without one is a legacy header."""
        if first.tag not in REGION_TAGS:
            self.ril, self.rdl = 0, 0  # as rpm: a legacy header's digest covers no region
            return
        if first.type != BIN or first.count != 16:
            raise self._bad(
                f"region tag {first.tag} has type {first.type} and count {first.count}, not BIN of 16"
            )
        if first.offset < 0 or first.offset + 16 > self.dl:
            raise self._bad(f"region trailer at offset {first.offset} is past the data ({self.dl} bytes)")
        tag, kind, offset, count = ENTRY.unpack_from(self.blob, self._data_start + first.offset)
        if first.tag == HEADERSIGNATURES and tag == HEADERIMAGE:
            tag = HEADERSIGNATURES  # old packages wrote this; rpm accepts it
        if tag != first.tag or kind != BIN or count != 16:
            raise self._bad(f"region trailer is tag {tag} type {kind} count {count}, not {first.tag} BIN 16")
        offset = -offset
        ril = offset // 16
        rdl = first.offset + 16
        if offset % 16 or not 0 <= ril <= self.il or rdl > self.dl:
            raise self._bad(
                f"region of {ril} entries and {rdl} bytes does not fit {self.il} entries and {self.dl} bytes"
            )
        self.region_tag = first.tag
        self.ril, self.rdl = ril, rdl

    def _check_entries(self, raw: list[Entry]) -> None:
        """hdrblobVerifyInfo: each entry's tag, type, count, alignment and data, in offset order."""
        blob, start, dl = self.blob, self._data_start, self.dl
        end = 0
        for index, entry in enumerate(raw):
            if index == 0 and self.region_tag:
                continue
            what = _Described(index, entry)
            if entry.offset < end:
                raise self._bad(f"{what} overlaps the data before it")
            if entry.tag < HEADERI18NTABLE:
                raise self._bad(f"{what}: tag below {HEADERI18NTABLE}")
            if not CHAR <= entry.type <= I18NSTRING:
                raise self._bad(f"{what}: unknown type")
            if entry.count < 1 or entry.count > dl:
                raise self._bad(f"{what}: count out of range")
            if entry.type != BIN and entry.count > MAX_ARRAY:
                raise self._bad(f"{what}: more than {MAX_ARRAY} items")
            size = _SIZES.get(entry.type, 1)
            if entry.offset % size:
                raise self._bad(f"{what}: misaligned for {TYPE_NAMES[entry.type]}")
            if entry.offset > dl:
                raise self._bad(f"{what}: offset past the data ({dl} bytes)")
            if entry.type in _STRING_TYPES:
                if entry.type == STRING and entry.count != 1:
                    raise self._bad(f"{what}: a STRING holds one string")
                # The strings end before the next entry's data (or the region trailer) or they overlap it:
                # split only that far, in C, rather than search NUL by NUL.
                limit = dl
                if index + 1 < len(raw) and raw[index + 1].offset > entry.offset:
                    limit = raw[index + 1].offset
                if self.region_tag and entry.offset < self.rdl - 16:
                    limit = min(limit, self.rdl - 16)
                parts = blob[start + entry.offset : start + limit].split(b"\0", entry.count)
                if len(parts) <= entry.count:
                    raise self._bad(
                        f"{what}: {entry.count} strings without their NULs before the data that follows"
                    )
                entry.length = sum(map(len, parts[: entry.count])) + entry.count
            else:
                entry.length = size * entry.count
                if entry.offset + entry.length > dl:
                    raise self._bad(f"{what}: {entry.length} bytes of data run past the end ({dl} bytes)")
            end = entry.offset + entry.length
            if self.region_tag and end > self.rdl - 16 and entry.offset < self.rdl:
                raise self._bad(f"{what}: data overlaps the region trailer")

    def _load(self, raw: list[Entry]) -> None:
        """hdrblobImport: the region's entries, then dribble entries replacing those with their tag;
        the data must add up to ``dl`` exactly (entries, alignment, trailer)."""
        if self.region_tag:
            ril = self.ril if raw[0].offset != 0 else self.il
            region, dribbles = raw[1:ril], raw[ril:]
        else:
            region, dribbles = raw, []
        used = 0
        for entry in region:
            used = _aligned(used, entry.type) + entry.length
        for entry in dribbles:
            used = _aligned(used, entry.type) + entry.length
        if self.region_tag:
            used += 16
        if used != self.dl:
            raise self._bad(f"entries account for {used} bytes of data, the header says {self.dl}")
        for entry in region:
            self.entries[entry.tag] = entry
        for entry in dribbles:
            if entry.tag == BASENAMES:
                self.entries.pop(OLDFILENAMES, None)
            self.entries[entry.tag] = entry

    # ---- typed getters -------------------------------------------------------------------------

    def has(self, tag: int) -> bool:
        return tag in self.entries

    def _entry(self, tag: int, kinds: tuple) -> Entry | None:
        entry = self.entries.get(tag)
        if entry is not None and entry.type not in kinds:
            raise self._bad(
                f"tag {tag} has type {TYPE_NAMES[entry.type]}, not {'/'.join(TYPE_NAMES[k] for k in kinds)}"
            )
        return entry

    def strings(self, tag: int) -> list[str]:
        """A string or string array tag as text (bytes that are not UTF-8 kept as surrogates, as os does)."""
        entry = self._entry(tag, _STRING_TYPES)
        if entry is None:
            return []
        start = self._data_start + entry.offset
        raw = self.blob[start : start + entry.length - 1].split(b"\0")
        return [item.decode("utf-8", "surrogateescape") for item in raw]

    def string(self, tag: int, default: str = "") -> str:
        """A single string; for an I18N string, its first (untranslated) text, as rpm shows it in C locale."""
        values = self.strings(tag)
        return values[0] if values else default

    def integers(self, tag: int) -> list[int]:
        """An integer tag's values, unsigned, as rpm prints them."""
        entry = self._entry(tag, (CHAR, INT8, INT16, INT32, INT64))
        if entry is None:
            return []
        return list(
            struct.unpack_from(
                f">{entry.count}{_INT_FORMATS[entry.type]}", self.blob, self._data_start + entry.offset
            )
        )

    def integer(self, tag: int, default: int | None = None) -> int | None:
        values = self.integers(tag)
        return values[0] if values else default

    def binary(self, tag: int) -> bytes:
        entry = self._entry(tag, (BIN, CHAR, INT8))
        if entry is None:
            return b""
        start = self._data_start + entry.offset
        return self.blob[start : start + entry.length]

    # ---- the package ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.string(NAME)

    @property
    def version(self) -> str:
        return self.string(VERSION)

    @property
    def release(self) -> str:
        return self.string(RELEASE)

    @property
    def epoch(self) -> str:
        value = self.integer(EPOCH)
        return "" if value is None else str(value)

    @property
    def arch(self) -> str:
        return self.string(ARCH)

    @property
    def vendor(self) -> str:
        return self.string(VENDOR)

    @property
    def sourcerpm(self) -> str:
        return self.string(SOURCERPM)

    @property
    def sigmd5(self) -> str:
        return self.binary(SIGMD5).hex()

    @property
    def sha1header(self) -> str:
        return self.string(SHA1HEADER)

    @property
    def sha256header(self) -> str:
        return self.string(SHA256HEADER)

    @property
    def installtime(self) -> int | None:
        return self.integer(INSTALLTIME)

    @property
    def nevra(self) -> str:
        """name-[epoch:]version-release.arch, the way rpm -q names a package."""
        epoch = f"{self.epoch}:" if self.epoch else ""
        return f"{self.name}-{epoch}{self.version}-{self.release}.{self.arch}"

    @property
    def nvra(self) -> str:
        """How rpm -qa names the package (%{nvr}%{archsuffix}): a header without SOURCERPM counts as a
        source package, ".src" (".nosrc"); else ".ARCH", or nothing without an ARCH (gpg-pubkey, whose
        SOURCERPM rpm sets to the text "(none)")."""
        if not self.has(SOURCERPM):
            suffix = ".nosrc" if self.has(NOSOURCE) or self.has(NOPATCH) else ".src"
        else:
            suffix = f".{self.arch}" if self.has(ARCH) else ""
        return f"{self.name}-{self.version}-{self.release}{suffix}"

    def identity(self) -> dict:
        return {
            "name": self.name,
            "epoch": self.epoch,
            "version": self.version,
            "release": self.release,
            "arch": self.arch,
            "vendor": self.vendor,
            "sourcerpm": self.sourcerpm,
            "sigmd5": self.sigmd5,
            "sha1header": self.sha1header,
            "sha256header": self.sha256header,
            "installtime": self.installtime,
        }

    # ---- the header's own digests --------------------------------------------------------------

    def digest_problem(self) -> str:
        """Why rpm would skip this header ("" when every header digest it records matches): the
        digests cover the magic, ril and rdl, the region's entries and the region's data."""
        wanted = [(tag, algorithm) for tag, algorithm in HEADER_DIGESTS if self.has(tag)]
        if not wanted:
            return ""
        covered = (
            MAGIC,
            struct.pack(">II", self.ril, self.rdl),
            self.blob[8 : 8 + 16 * self.ril],
            self.blob[self._data_start : self._data_start + self.rdl],
        )
        problems = []
        for tag, algorithm in wanted:
            try:
                recorded = self.string(tag).lower()
            except PackageError as exc:
                problems.append(str(exc))
                continue
            digest = hashlib.new(algorithm)
            for part in covered:
                digest.update(part)
            if digest.hexdigest() != recorded:
                problems.append(
                    f"header {algorithm.upper()} digest BAD"
                    f" (recorded {recorded or 'nothing'}, computed {digest.hexdigest()})"
                )
        return "; ".join(problems)

    # ---- files ---------------------------------------------------------------------------------

    def paths(self) -> list[str]:
        """Every path the package lists, in its order (BASENAMES + DIRINDEXES + DIRNAMES, or OLDFILENAMES)."""
        if self.has(BASENAMES):
            basenames = self.strings(BASENAMES)
            indexes = self.integers(DIRINDEXES)
            dirnames = self.strings(DIRNAMES)
            if len(indexes) != len(basenames):
                raise self._bad(f"{len(basenames)} BASENAMES but {len(indexes)} DIRINDEXES")
            try:
                return [dirnames[index] + base for index, base in zip(indexes, basenames)]
            except IndexError:
                raise self._bad(f"a DIRINDEXES entry is past the {len(dirnames)} DIRNAMES") from None
        return self.strings(OLDFILENAMES)

    def _per_file(self, values: list, count: int, tag: int, default) -> list:
        if not values:
            return [default] * count
        if len(values) != count:
            raise self._bad(f"tag {tag} has {len(values)} values for {count} files")
        return values

    def file_flags(self) -> list[int]:
        return self._per_file(self.integers(FILEFLAGS), len(self.paths()), FILEFLAGS, 0)

    def digest_algorithm(self) -> str:
        number = self.integer(FILEDIGESTALGO, 1)
        if number not in DIGEST_ALGORITHMS:
            raise self._bad(f"unknown file digest algorithm {number}")
        return DIGEST_ALGORITHMS[number]

    def files(self) -> list[PackageFile]:
        """The file list as packages.model records it."""
        paths = self.paths()
        count = len(paths)
        if not count:
            return []
        algorithm = self.digest_algorithm()
        sizes = self.integers(LONGFILESIZES) if self.has(LONGFILESIZES) else self.integers(FILESIZES)
        columns = zip(
            paths,
            self._per_file(self.strings(FILEDIGESTS), count, FILEDIGESTS, ""),
            self._per_file(self.integers(FILEMODES), count, FILEMODES, 0),
            self._per_file(sizes, count, FILESIZES, 0),
            self._per_file(self.strings(FILELINKTOS), count, FILELINKTOS, ""),
            self._per_file(self.integers(FILEFLAGS), count, FILEFLAGS, 0),
            self._per_file(self.strings(FILEUSERNAME), count, FILEUSERNAME, ""),
            self._per_file(self.strings(FILEGROUPNAME), count, FILEGROUPNAME, ""),
        )
        return [
            PackageFile(
                path=path,
                digest=digest.lower(),
                algorithm=algorithm if digest else "",
                mode=mode,
                size=size,
                link=link,
                user=user,
                group=group,
                config=bool(flags & CONFIG),
                ghost=bool(flags & GHOST),
            )
            for path, digest, mode, size, link, flags, user, group in columns
        ]


class _Described:
    """An entry's description for a message, formatted only when a message is made."""

    def __init__(self, index: int, entry: Entry):
        self.index, self.entry = index, entry

    def __str__(self) -> str:
        entry = self.entry
        where = f"offset {entry.offset}, count {entry.count}"
        return f"entry {self.index} (tag {entry.tag}, type {entry.type}, {where})"


def _aligned(used: int, kind: int) -> int:
    """``used`` rounded up to the alignment of ``kind`` (rpm's alignDiff)."""
    size = _SIZES.get(kind, 1)
    return used + (-used % size) if size > 1 else used


def parse(blob: bytes, instance: int = 0, where: str = "rpm header") -> Header:
    """A checked Header from a blob (with or without the 8-byte magic); PackageError when damaged."""
    return Header(blob, instance, where)
