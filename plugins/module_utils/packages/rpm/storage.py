# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The three formats rpm keeps its package headers in, each read without writing a byte.

Every reader yields what rpm's iterator sees: (instance number, header blob) for each package, and
the instances it had to pass over with why. A database whose structure is damaged (a page loop, an
offset past the end, a wrong magic, not a database at all) raises PackageError: an empty result
must only ever mean "no packages", never "could not read".

- ``bdb``: a Berkeley DB hash file ``Packages`` (RHEL/CentOS 5-8, Fedora before 33), walked page by
  page as rpm's own read-only bdb_ro backend does; metadata in either byte order.
- ``ndb``: rpm's own ``Packages.db`` (SUSE): a header, slots naming blobs, blobs with an adler32.
- ``sqlite``: ``rpmdb.sqlite`` (RHEL 9+, Fedora 33+), read from a private copy on the rescuer
  together with its -wal and -journal files, so sqlite neither writes beside the target's database
  nor misses the pages it had not yet checkpointed.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import struct
import tempfile
import zlib

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError

# rpm's cap for one header (lib/header.cc headerMaxbytes); no blob is read past it.
MAX_BLOB = 256 << 20
# A database file is read in place (bdb, ndb) or copied (sqlite) up to this size.
MAX_DATABASE = 4 << 30
COPY_CHUNK = 1 << 20


class DatabaseFile:
    """A regular file of the target opened for reading only, never blocking (a FIFO is refused
    before it is opened) and never following a last link; ``pread`` fails on a short read."""

    def __init__(self, host_path: str, shown: str):
        self.shown = shown
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            if not stat.S_ISREG(os.lstat(host_path).st_mode):
                raise PackageError(f"{shown} is not a regular file")
            self.fd = os.open(host_path, flags)
        except OSError as exc:
            raise PackageError(f"{shown}: {os.strerror(exc.errno or errno.EIO)}") from exc
        try:
            info = os.fstat(self.fd)
            if not stat.S_ISREG(info.st_mode):
                raise PackageError(f"{shown} is not a regular file")
        except (OSError, PackageError):
            os.close(self.fd)
            raise
        self.size = info.st_size
        if self.size > MAX_DATABASE:
            self.close()
            raise PackageError(f"{shown} is {self.size} bytes, more than the {MAX_DATABASE} read")

    def pread(self, offset: int, size: int, what: str = "") -> bytes:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise PackageError(
                f"{self.shown}: {what or 'data'} at {offset}+{size} is past the end ({self.size} bytes)"
            )
        try:
            data = os.pread(self.fd, size, offset)
        except OSError as exc:
            raise PackageError(f"{self.shown}: {os.strerror(exc.errno or errno.EIO)}") from exc
        if len(data) != size:
            raise PackageError(f"{self.shown}: {what or 'data'} at {offset} cut short (the file shrank?)")
        return data

    def copy_to(self, destination: str) -> None:
        """Copy the file's bytes to the rescuer's ``destination``."""
        done = 0
        with open(destination, "wb") as out:
            while True:
                try:
                    chunk = os.read(self.fd, COPY_CHUNK)
                except OSError as exc:
                    raise PackageError(f"{self.shown}: {os.strerror(exc.errno or errno.EIO)}") from exc
                if not chunk:
                    break
                done += len(chunk)
                if done > MAX_DATABASE:
                    raise PackageError(f"{self.shown} grew past {MAX_DATABASE} bytes while copied")
                out.write(chunk)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Blobs:
    """What a backend read: ``found`` (instance, blob) in the database's order, ``skipped``
    (instance, why) for records that exist but cannot be read, ``notes`` for what was odd but read."""

    def __init__(self):
        self.found: list[tuple[int, bytes]] = []
        self.skipped: list[tuple[int, str]] = []
        self.notes: list[str] = []


# ---- Berkeley DB hash ----------------------------------------------------------------------------

BDB_HASH_MAGIC = 0x00061561
BDB_BTREE_MAGIC = 0x00053162
P_OVERFLOW, P_HASH_UNSORTED, P_HASHMETA, P_HASH = 7, 2, 8, 13
H_KEYDATA, H_DUPLICATE, H_OFFPAGE, H_OFFDUP = 1, 2, 3, 4
PAGE_HEADER = 26  # lsn 8, pgno 4, prev 4, next 4, entries 2, hf_offset 2, level 1, type 1


def read_bdb(db: DatabaseFile) -> Blobs:
    """Every record of a BDB hash ``Packages``: key = the instance (4 bytes), value = the header."""
    meta = db.pread(0, 512, "the metadata page") if db.size >= 512 else b""
    if len(meta) < 512:
        raise PackageError(f"{db.shown}: {db.size} bytes, too short for a Berkeley DB file")
    for order in "<>":
        magic = struct.unpack_from(order + "I", meta, 12)[0]
        if magic in (BDB_HASH_MAGIC, BDB_BTREE_MAGIC):
            break
    else:
        raise PackageError(f"{db.shown}: not a Berkeley DB file (magic {meta[12:16].hex()})")
    if magic == BDB_BTREE_MAGIC:
        raise PackageError(f"{db.shown}: a Berkeley DB btree, not the hash rpm keeps packages in")
    version, pagesize = struct.unpack_from(order + "II", meta, 16)
    last_page = struct.unpack_from(order + "I", meta, 32)[0]
    max_bucket, _high, _low = struct.unpack_from(order + "III", meta, 72)
    spares = struct.unpack_from(order + "32I", meta, 96)
    if not 8 <= version <= 10:
        raise PackageError(f"{db.shown}: Berkeley DB hash version {version}, rpm reads 8 to 10")
    if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
        raise PackageError(f"{db.shown}: page size {pagesize} is not a Berkeley DB page size")
    if (last_page + 1) * pagesize > db.size:
        raise PackageError(
            f"{db.shown}: {last_page + 1} pages of {pagesize} bytes, the file holds {db.size} bytes"
        )
    if max_bucket > last_page:
        raise PackageError(f"{db.shown}: {max_bucket + 1} buckets in {last_page + 1} pages")

    def page(number: int, what: str) -> bytes:
        if not 0 < number <= last_page:
            raise PackageError(f"{db.shown}: {what} names page {number}, past the last page {last_page}")
        data = db.pread(number * pagesize, pagesize, f"page {number}")
        if struct.unpack_from(order + "I", data, 8)[0] != number:
            raise PackageError(
                f"{db.shown}: page {number} calls itself page {struct.unpack_from(order + 'I', data, 8)[0]}"
            )
        return data

    def overflow(first: int, length: int, owner: str) -> bytes:
        if length == 0 or length > min(MAX_BLOB, db.size):
            raise PackageError(f"{db.shown}: {owner} claims {length} bytes in overflow pages")
        parts, got, number, seen = [], 0, first, set()
        while got < length:
            if number in seen:
                raise PackageError(f"{db.shown}: {owner}'s overflow pages loop back to page {number}")
            seen.add(number)
            data = page(number, f"{owner}'s overflow chain")
            if data[25] != P_OVERFLOW:
                raise PackageError(
                    f"{db.shown}: page {number} of {owner}'s overflow chain is not an overflow page"
                )
            used = struct.unpack_from(order + "H", data, 22)[0]
            if PAGE_HEADER + used > pagesize or used > length - got or (used == 0 and got < length):
                raise PackageError(f"{db.shown}: overflow page {number} holds {used} bytes, which do not fit")
            parts.append(data[PAGE_HEADER : PAGE_HEADER + used])
            got += used
            number = struct.unpack_from(order + "I", data, 16)[0]
        return b"".join(parts)

    def item(data: bytes, number: int, offset: int, length: int, owner: str) -> bytes:
        if length <= 0 or offset + length > pagesize or offset < PAGE_HEADER:
            raise PackageError(
                f"{db.shown}: page {number}: {owner} at {offset}+{length} does not fit the page"
            )
        kind = data[offset]
        if kind == H_KEYDATA:
            return data[offset + 1 : offset + length]
        if kind == H_OFFPAGE:
            if length != 12:
                raise PackageError(
                    f"{db.shown}: page {number}: {owner}'s overflow reference is {length} bytes, not 12"
                )
            first, total = struct.unpack_from(order + "II", data, offset + 4)
            return overflow(first, total, owner)
        raise PackageError(f"{db.shown}: page {number}: {owner} is of item type {kind}, not data rpm writes")

    result = Blobs()
    visited: set[int] = set()
    for bucket in range(max_bucket + 1):
        number = bucket + spares[bucket.bit_length()]
        while number:
            if number in visited:
                raise PackageError(f"{db.shown}: hash pages loop back to page {number}")
            visited.add(number)
            data = page(number, f"bucket {bucket}")
            if data[25] not in (P_HASH, P_HASH_UNSORTED, P_HASHMETA):
                raise PackageError(
                    f"{db.shown}: page {number} of bucket {bucket} is not a hash page (type {data[25]})"
                )
            entries = struct.unpack_from(order + "H", data, 20)[0]
            if PAGE_HEADER + 2 * entries > pagesize:
                raise PackageError(f"{db.shown}: page {number} claims {entries} entries")
            offsets = struct.unpack_from(f"{order}{entries}H", data, PAGE_HEADER)
            for index in range(0, entries - 1, 2):
                key_offset, value_offset = offsets[index], offsets[index + 1]
                key_end = pagesize if index == 0 else offsets[index - 1]
                key = item(data, number, key_offset, key_end - key_offset, f"key {index // 2}")
                if len(key) != 4:
                    raise PackageError(
                        f"{db.shown}: page {number}: a key of {len(key)} bytes, not an instance number"
                    )
                instance = struct.unpack(order + "I", key)[0]
                value = item(data, number, value_offset, key_offset - value_offset, f"record {instance}")
                if instance == 0:
                    continue  # rpm's counter of the next instance number, not a package
                result.found.append((instance, value))
            number = struct.unpack_from(order + "I", data, 16)[0]
    if order == ">":
        result.notes.append("big-endian Berkeley DB")
    return result


# ---- ndb ------------------------------------------------------------------------------------------

NDB_MAGIC, SLOT_MAGIC, BLOB_HEAD, BLOB_TAIL = b"RpmP", b"Slot", b"BlbS", b"BlbE"
NDB_PAGE, NDB_BLOCK = 4096, 16


def read_ndb(db: DatabaseFile) -> Blobs:
    """Every blob ``Packages.db``'s slots name, its head, tail and adler32 checked."""
    if db.size < 32:
        raise PackageError(f"{db.shown}: {db.size} bytes, too short for an ndb Packages.db")
    head = db.pread(0, 32, "the header")
    if head[:4] != NDB_MAGIC:
        raise PackageError(f"{db.shown}: not an ndb Packages.db (magic {head[:4]!r})")
    version, generation, slot_pages, next_index = struct.unpack_from("<IIII", head, 4)
    if version != 0:
        raise PackageError(f"{db.shown}: ndb version {version}, only version 0 exists")
    if db.size % NDB_BLOCK:
        raise PackageError(f"{db.shown}: {db.size} bytes, not whole blocks of {NDB_BLOCK} (truncated?)")
    if slot_pages == 0 or slot_pages * NDB_PAGE > db.size:
        raise PackageError(f"{db.shown}: {slot_pages} slot pages, the file holds {db.size} bytes")
    blocks = db.size // NDB_BLOCK
    first_block = slot_pages * NDB_PAGE // NDB_BLOCK
    slots = db.pread(0, slot_pages * NDB_PAGE, "the slots")
    result = Blobs()
    seen: set[int] = set()
    for offset in range(32, len(slots), 16):
        magic, index, block, count = struct.unpack_from("<4sIII", slots, offset)
        if magic != SLOT_MAGIC:
            raise PackageError(f"{db.shown}: slot {offset // 16} has no slot magic (damaged slot page)")
        if block == 0:
            continue  # a free slot
        if index == 0 or count == 0 or block < first_block or block + count > blocks:
            raise PackageError(
                f"{db.shown}: slot {offset // 16} names blocks {block}+{count} of package {index}: bad"
            )
        if index in seen:
            raise PackageError(f"{db.shown}: package {index} has two slots")
        seen.add(index)
        why = _ndb_blob(db, index, block, count, result)
        if why:
            result.skipped.append((index, why))
    result.found.sort()
    result.notes.append(f"ndb generation {generation}, next package index {next_index}")
    return result


def _ndb_blob(db: DatabaseFile, index: int, block: int, count: int, result: Blobs) -> str:
    """Read one blob into ``result``; the reason when it cannot be (rpm passes over it too)."""
    if count * NDB_BLOCK > MAX_BLOB + 64 or count * NDB_BLOCK < 16 + 12:
        return f"its blob spans {count} blocks"
    raw = db.pread(block * NDB_BLOCK, count * NDB_BLOCK, f"package {index}'s blob")
    magic, owner, _generation, length = struct.unpack_from("<4sIII", raw, 0)
    if magic != BLOB_HEAD or owner != index:
        return "its blob has no blob magic or names another package"
    if count != (16 + length + 12 + NDB_BLOCK - 1) // NDB_BLOCK:
        return f"its blob of {length} bytes does not fill its {count} blocks"
    checksum, tail_length, tail_magic = struct.unpack_from("<I I 4s", raw, len(raw) - 12)
    if tail_magic != BLOB_TAIL or tail_length != length:
        return "its blob's tail is damaged"
    if zlib.adler32(raw[: len(raw) - 12]) != checksum:
        # rpm does not check the adler32 when it reads a package (only on --verifydb); the header's
        # own digests decide, as for rpm. Say so.
        result.notes.append(f"package {index}'s blob fails its adler32")
    result.found.append((index, raw[16 : 16 + length]))
    return ""


# ---- sqlite ---------------------------------------------------------------------------------------

SQLITE_COMPANIONS = ("-wal", "-journal")


def read_sqlite(db: DatabaseFile, companions: dict[str, DatabaseFile]) -> Blobs:
    """Every row of ``Packages(hnum, blob)``, read from a private copy of the database and its
    -wal / -journal files (``companions``, by suffix): sqlite then applies the log to the copy."""
    scratch = tempfile.mkdtemp(prefix="lifeline-rpmdb-")
    try:
        copy = os.path.join(scratch, "rpmdb.sqlite")
        db.copy_to(copy)
        for suffix, companion in companions.items():
            companion.copy_to(copy + suffix)
        return _sqlite_rows(copy, db.shown)
    except OSError as exc:
        raise PackageError(f"{db.shown}: copying it to read it failed: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _sqlite_rows(copy: str, shown: str) -> Blobs:
    try:
        # Imported here: a python built without sqlite still reads dpkg, Berkeley DB and ndb.
        import sqlite3
    except ImportError as exc:
        raise PackageError(
            f"{shown}: this python has no sqlite3 module to read an sqlite rpm database; run the "
            "rescue from a python that has it (every distribution's python3 does)"
        ) from exc
    result = Blobs()
    try:
        # The copy is ours: sqlite may replay its log into it. The target's files are never opened by sqlite.
        connection = sqlite3.connect(copy, timeout=1.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise PackageError(f"{shown}: sqlite cannot open it: {exc}") from exc
    try:
        connection.execute("PRAGMA query_only = 1")
        rows = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum")
        for instance, blob in rows:
            if not isinstance(instance, int) or instance <= 0:
                result.skipped.append((0, f"a row with instance {instance!r}"))
            elif not isinstance(blob, bytes) or len(blob) > MAX_BLOB:
                result.skipped.append((instance, "its blob is not a header"))
            else:
                result.found.append((instance, blob))
    except sqlite3.Error as exc:
        raise PackageError(f"{shown}: {exc}") from exc
    finally:
        connection.close()
    return result
