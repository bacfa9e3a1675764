# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what the dynamic loader reads from an ELF file: interpreter, needed libraries, versions.

Everything is found through the program headers, as ``ld.so`` finds it, so stripped files without
section headers read the same. Dynamic addresses (DT_STRTAB, DT_VERNEED, DT_VERDEF) become file
offsets through the PT_LOAD segments. Only the bytes needed are read (header, program headers, the
dynamic array, the strings and version records it points to), never the whole file.

The files come from a broken or hostile root: every offset and size is checked against the file
before it is read, every count and chain is capped and loop-checked, and anything wrong raises
ElfError naming the file and the problem.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError

# e_ident
ELF_MAGIC = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2

# e_type
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
TYPE_NAMES = {
    0: "none",
    ET_REL: "relocatable",
    ET_EXEC: "executable",
    ET_DYN: "shared object",
    ET_CORE: "core",
}

# p_type
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
PN_XNUM = 0xFFFF  # e_phnum overflow: the real count is in section header 0's sh_info

# d_tag
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_SONAME, DT_RPATH = 0, 1, 5, 10, 14, 15
DT_RUNPATH, DT_FLAGS = 29, 30
DT_FLAGS_1, DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = (
    0x6FFFFFFB,
    0x6FFFFFFC,
    0x6FFFFFFD,
    0x6FFFFFFE,
    0x6FFFFFFF,
)

DF_BIND_NOW = 0x8
DF_1_NOW, DF_1_NODEFLIB, DF_1_PIE = 0x1, 0x800, 0x08000000

# vd_flags / vna_flags
VER_FLG_BASE, VER_FLG_WEAK = 0x1, 0x2

# e_machine -> short name; a few depend on the class or byte order (see machine_name()).
EM_386, EM_MIPS, EM_PPC64, EM_S390, EM_X86_64, EM_AARCH64, EM_RISCV = 3, 8, 21, 22, 62, 183, 243
MACHINE_NAMES = {
    2: "sparc",
    EM_386: "i386",
    4: "m68k",
    EM_MIPS: "mips",
    15: "parisc",
    20: "ppc",
    EM_PPC64: "ppc64",
    EM_S390: "s390",
    40: "arm",
    42: "sh",
    43: "sparc64",
    50: "ia64",
    EM_X86_64: "x86_64",
    EM_AARCH64: "aarch64",
    EM_RISCV: "riscv",
    258: "loongarch",
    0x9026: "alpha",
}

# What the file is to someone repairing a root (ElfInfo.kind).
STATIC_EXECUTABLE = "static executable"
DYNAMIC_EXECUTABLE = "dynamic executable"
PIE = "PIE"
SHARED_LIBRARY = "shared library"
RELOCATABLE = "relocatable object"
CORE = "core dump"

NOT_ELF = "not an ELF file"

# Caps far above anything a linker writes, so a hostile file cannot make the reader allocate or
# loop without bound. The kernel refuses an interpreter path longer than PATH_MAX.
MAX_PHNUM = 4096
MAX_DYNAMIC = 4096
MAX_VERSION_RECORDS = 16384
MAX_STRING = 32768
MAX_INTERP = 4096
BLOCK = 4096
MAX_CACHED_BLOCKS = 64


class ElfError(LifelineError):
    """An ELF file cannot be read as the loader would read it; the message says which file and why."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem

    @property
    def not_elf(self) -> bool:
        """True when the file is simply not ELF (a script, a text file), rather than a damaged ELF file."""
        return self.problem == NOT_ELF


@dataclass
class Segment:
    """One program header."""

    type: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    flags: int


@dataclass
class NeededVersion:
    """One version a file needs from a library (a Vernaux record): ``GLIBC_2.34`` from ``libc.so.6``."""

    name: str
    flags: int
    index: int  # vna_other: the index symbol versions refer to
    hash: int

    @property
    def weak(self) -> bool:
        return bool(self.flags & VER_FLG_WEAK)


@dataclass
class VersionNeed:
    """The versions needed from one library (a Verneed record)."""

    file: str
    versions: list[NeededVersion] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.versions]


@dataclass
class VersionDef:
    """One version a library defines (a Verdef record); the base one carries the file's own name."""

    name: str
    flags: int
    index: int
    hash: int
    parents: list[str] = field(default_factory=list)

    @property
    def is_base(self) -> bool:
        return bool(self.flags & VER_FLG_BASE)


@dataclass
class ElfInfo:
    """What the kernel and the dynamic loader read from one ELF file."""

    path: str
    bits: int  # 32 or 64
    endian: str  # "little" or "big"
    osabi: int
    type: int  # ET_*
    machine: int  # EM_*
    entry: int = 0
    segments: list[Segment] = field(default_factory=list)
    interpreter: str | None = None
    has_dynamic: bool = False
    dynamic: list[tuple[int, int]] = field(default_factory=list)  # (d_tag, d_val) up to DT_NULL
    needed: list[str] = field(default_factory=list)
    soname: str | None = None
    rpath: str | None = None
    runpath: str | None = None
    flags: int = 0
    flags_1: int = 0
    version_needs: list[VersionNeed] = field(default_factory=list)
    version_defs: list[VersionDef] = field(default_factory=list)

    @property
    def machine_name(self) -> str:
        return machine_name(self.machine, self.bits, self.endian)

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type {self.type:#x}")

    @property
    def pie(self) -> bool:
        return bool(self.flags_1 & DF_1_PIE)

    @property
    def nodeflib(self) -> bool:
        """DF_1_NODEFLIB: the loader must not search the default directories for this file's libraries."""
        return bool(self.flags_1 & DF_1_NODEFLIB)

    @property
    def bind_now(self) -> bool:
        return bool(self.flags & DF_BIND_NOW or self.flags_1 & DF_1_NOW)

    @property
    def kind(self) -> str:
        """Static or dynamic executable, PIE or shared library, as far as a repair cares.

        Only a PT_INTERP makes the kernel start a loader, so a static PIE (ET_DYN with DF_1_PIE but
        no interpreter) is a static executable. libc.so.6 has an interpreter (it can be run) but is
        a shared library; PIEs linked before DF_1_PIE existed are told apart by having no soname.
        """
        if self.type == ET_REL:
            return RELOCATABLE
        if self.type == ET_CORE:
            return CORE
        if self.type == ET_EXEC:
            return DYNAMIC_EXECUTABLE if self.interpreter is not None else STATIC_EXECUTABLE
        if self.type == ET_DYN:
            if self.pie and self.interpreter is None:
                return STATIC_EXECUTABLE
            if self.pie or (self.interpreter is not None and self.soname is None):
                return PIE
            return SHARED_LIBRARY
        return self.type_name

    @property
    def is_executable(self) -> bool:
        return self.kind in (STATIC_EXECUTABLE, DYNAMIC_EXECUTABLE, PIE)

    @property
    def is_shared_library(self) -> bool:
        return self.kind == SHARED_LIBRARY

    @property
    def needs_loader(self) -> bool:
        """True when running this file starts a dynamic loader (it has a PT_INTERP)."""
        return self.interpreter is not None

    @property
    def defined_versions(self) -> list[str]:
        """The version names a library defines, without the base one (its own file name)."""
        return [d.name for d in self.version_defs if not d.is_base]


def machine_name(machine: int, bits: int, endian: str) -> str:
    """A short name for e_machine, "em-N" for unknown ones; class and byte order refine a few."""
    name = MACHINE_NAMES.get(machine, f"em-{machine}")
    if machine == EM_X86_64 and bits == 32:
        return "x32"
    if machine == EM_PPC64 and endian == "little":
        return "ppc64le"
    if machine == EM_S390 and bits == 64:
        return "s390x"
    if machine in (EM_MIPS, EM_RISCV) and bits == 64:
        return name + "64"
    if machine == EM_RISCV:
        return name + "32"
    return name


@dataclass(frozen=True)
class _Layout:
    """The struct formats of one ELF class and byte order."""

    bits: int
    endian: str
    header: struct.Struct  # e_type .. e_shstrndx, after e_ident
    phdr: struct.Struct
    dyn: struct.Struct
    shdr_info: struct.Struct  # sh_info of section header 0, for PN_XNUM
    shdr_info_at: int
    verneed: struct.Struct  # vn_version vn_cnt vn_file vn_aux vn_next
    vernaux: struct.Struct  # vna_hash vna_flags vna_other vna_name vna_next
    verdef: struct.Struct  # vd_version vd_flags vd_ndx vd_cnt vd_hash vd_aux vd_next
    verdaux: struct.Struct  # vda_name vda_next

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1

    def phdr_fields(self, raw: tuple[int, ...]) -> Segment:
        if self.bits == 64:
            p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _align = raw
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, p_flags, _align = raw
        return Segment(p_type, p_offset, p_vaddr, p_filesz, p_memsz, p_flags)


def _layout(bits: int, order: str) -> _Layout:
    word, sword = ("Q", "q") if bits == 64 else ("I", "i")
    return _Layout(
        bits=bits,
        endian="little" if order == "<" else "big",
        header=struct.Struct(order + f"HHI{word * 3}IHHHHHH"),
        phdr=struct.Struct(order + ("IIQQQQQQ" if bits == 64 else "IIIIIIII")),
        dyn=struct.Struct(order + sword + word),  # d_tag is signed, d_val/d_ptr not
        shdr_info=struct.Struct(order + "I"),
        shdr_info_at=44 if bits == 64 else 28,
        verneed=struct.Struct(order + "HHIII"),
        vernaux=struct.Struct(order + "IHHII"),
        verdef=struct.Struct(order + "HHHHIII"),
        verdaux=struct.Struct(order + "II"),
    )


_LAYOUTS = {
    (cls, data): _layout(bits, order)
    for cls, bits in ((ELFCLASS32, 32), (ELFCLASS64, 64))
    for data, order in ((ELFDATA2LSB, "<"), (ELFDATA2MSB, ">"))
}


class _Reader:
    """Bounded reads from a file descriptor or bytes: every read is checked against the size.

    Small reads come from a few cached 4 KiB blocks, because the records the loader follows (a
    verneed entry, its name in the string table, the next entry) sit close together.
    """

    def __init__(self, path: str, size: int, pread: Callable[[int, int], bytes]) -> None:
        self.path = path
        self.size = size
        self._pread = pread
        self._blocks: dict[int, bytes] = {}

    def error(self, problem: str) -> ElfError:
        return ElfError(self.path, problem)

    def check(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise self.error(
                f"{what} ({size} bytes at offset {offset:#x}) lies beyond the end of the file "
                f"({self.size} bytes): truncated or corrupt"
            )

    def read(self, offset: int, size: int, what: str) -> bytes:
        self.check(offset, size, what)
        first, last = offset // BLOCK, (offset + size - 1) // BLOCK
        if size > BLOCK or first != last:
            return self._raw(offset, size, what)
        start = offset - first * BLOCK
        return self._block(first, what)[start : start + size]

    def string(self, offset: int, end: int, what: str) -> bytes:
        """The NUL-terminated bytes at ``offset``; the NUL must come before ``end`` and MAX_STRING."""
        limit = min(end, self.size, offset + MAX_STRING + 1)
        pieces, pos = [], offset
        while pos < limit:
            block = self._block(pos // BLOCK, what)
            start = pos % BLOCK
            stop = min(len(block), start + limit - pos)
            nul = block.find(b"\0", start, stop)
            if nul >= 0:
                pieces.append(block[start:nul])
                return b"".join(pieces)
            pieces.append(block[start:stop])
            pos += stop - start
        if limit == offset + MAX_STRING + 1:
            raise self.error(f"{what} at offset {offset:#x} is longer than {MAX_STRING} bytes")
        where = "the end of the file" if limit == self.size else f"the end of its table at {limit:#x}"
        raise self.error(f"{what} at offset {offset:#x} has no terminating NUL before {where}")

    def read_uncached(self, offset: int, size: int, what: str) -> bytes:
        self.check(offset, size, what)
        return self._raw(offset, size, what)

    def _block(self, index: int, what: str) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            if len(self._blocks) >= MAX_CACHED_BLOCKS:
                self._blocks.clear()
            block = self._raw(index * BLOCK, min(BLOCK, self.size - index * BLOCK), what)
            self._blocks[index] = block
        return block

    def _raw(self, offset: int, size: int, what: str) -> bytes:
        try:
            data = self._pread(offset, size)
        except OSError as exc:
            raise self.error(f"reading {what}: {os.strerror(exc.errno or errno.EIO)}") from exc
        if len(data) != size:
            raise self.error(f"{what}: the file ended at {offset + len(data):#x} while reading (it shrank?)")
        return data


class _Parser:
    """One file's parse: the reader, its struct layout and the PT_LOAD map from addresses to offsets."""

    def __init__(self, reader: _Reader, layout: _Layout) -> None:
        self.reader = reader
        self.layout = layout
        self.loads: list[Segment] = []
        self.strtab: tuple[int, int] | None = None  # (file offset, end offset) of DT_STRTAB
        self.records = 0

    def error(self, problem: str) -> ElfError:
        return self.reader.error(problem)

    def use_string_table(self, table: tuple[int, int]) -> None:
        """Where DT_STRTAB's strings are: (file offset, end offset)."""
        self.strtab = table

    def offset_of(self, addr: int, size: int, what: str) -> tuple[int, int]:
        """File offset of ``size`` bytes at address ``addr``, and the end of that PT_LOAD's file part."""
        for seg in self.loads:
            if seg.vaddr <= addr and addr + size <= seg.vaddr + seg.filesz:
                return seg.offset + addr - seg.vaddr, seg.offset + seg.filesz
        raise self.error(
            f"{what} at address {addr:#x} ({size} bytes) is not inside the file part of any PT_LOAD segment"
        )

    def unpack(self, fmt: struct.Struct, addr: int, what: str) -> tuple[int, ...]:
        offset, _available = self.offset_of(addr, fmt.size, what)
        return fmt.unpack(self.reader.read(offset, fmt.size, what))

    def dynstr(self, index: int, what: str) -> str:
        if self.strtab is None:
            raise self.error(f"{what} names a string, but there is no DT_STRTAB")
        start, end = self.strtab
        if index >= end - start:
            raise self.error(
                f"{what}: string offset {index:#x} is beyond the string table ({end - start} bytes)"
            )
        return self.reader.string(start + index, end, what).decode("utf-8", "surrogateescape")

    def count_record(self, what: str) -> None:
        self.records += 1
        if self.records > MAX_VERSION_RECORDS:
            raise self.error(f"{what}: more than {MAX_VERSION_RECORDS} version records")


def read_elf(path: str) -> ElfInfo:
    """Parse the ELF file at ``path`` (a regular file; a symlink is refused, not followed)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        # Look before opening: opening a device node runs its driver's code.
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            raise ElfError(path, _not_regular(mode))
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ElfError(path, "a symbolic link, not followed") from exc
        raise ElfError(path, os.strerror(exc.errno or errno.EIO)) from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ElfError(path, _not_regular(st.st_mode))
        return _parse(_Reader(path, st.st_size, lambda offset, size: os.pread(fd, size, offset)))
    finally:
        os.close(fd)


def parse_elf(data: bytes, path: str = "<bytes>") -> ElfInfo:
    """Parse an ELF image held in memory; ``path`` only names it in errors and in the result."""
    view = memoryview(data)
    return _parse(_Reader(path, len(data), lambda offset, size: bytes(view[offset : offset + size])))


def _not_regular(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link, not followed"
    kind = "a directory" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
    return f"not a regular file ({kind})"


def _parse(reader: _Reader) -> ElfInfo:
    # The magic is checked on the first 16 bytes before anything else is read: most files of a
    # root are not ELF, and a big one must not cost more than this one small read.
    ident = reader.read_uncached(0, min(16, reader.size), "e_ident")
    if ident[:4] != ELF_MAGIC:
        raise reader.error(NOT_ELF)
    if len(ident) < 16:
        raise reader.error(f"truncated: the file ends inside the ELF identification ({reader.size} bytes)")
    if ident[4] not in (ELFCLASS32, ELFCLASS64):
        raise reader.error(f"unknown ELF class {ident[4]} (1 is 32-bit, 2 is 64-bit)")
    if ident[5] not in (ELFDATA2LSB, ELFDATA2MSB):
        raise reader.error(f"unknown byte order {ident[5]} (1 is little-endian, 2 is big-endian)")
    layout = _LAYOUTS[ident[4], ident[5]]
    fields = layout.header.unpack(reader.read(16, layout.header.size, "ELF header"))
    (
        e_type,
        e_machine,
        _version,
        e_entry,
        e_phoff,
        e_shoff,
        _flags,
        _ehsize,
        e_phentsize,
        e_phnum,
        *_sections,
    ) = fields
    info = ElfInfo(
        path=reader.path,
        bits=layout.bits,
        endian=layout.endian,
        osabi=ident[7],
        type=e_type,
        machine=e_machine,
        entry=e_entry,
    )
    parser = _Parser(reader, layout)
    phnum = _phnum(reader, layout, e_phnum, e_shoff)
    info.segments = _program_headers(reader, layout, e_phoff, e_phentsize, phnum)
    parser.loads = [seg for seg in info.segments if seg.type == PT_LOAD]
    _check_loads(reader, parser.loads)
    interp = next((seg for seg in info.segments if seg.type == PT_INTERP), None)
    if interp is not None:
        info.interpreter = _interpreter(reader, interp)
    dynamic = next((seg for seg in info.segments if seg.type == PT_DYNAMIC), None)
    if dynamic is not None:
        info.has_dynamic = True
        _read_dynamic(parser, dynamic, info)
    return info


def _phnum(reader: _Reader, layout: _Layout, e_phnum: int, e_shoff: int) -> int:
    if e_phnum != PN_XNUM:
        return e_phnum
    if e_shoff == 0:
        raise reader.error("e_phnum is PN_XNUM but there is no section header 0 to hold the real count")
    at = e_shoff + layout.shdr_info_at
    (count,) = layout.shdr_info.unpack(reader.read(at, 4, "sh_info of section header 0 (PN_XNUM)"))
    return count


def _program_headers(
    reader: _Reader, layout: _Layout, phoff: int, phentsize: int, phnum: int
) -> list[Segment]:
    if phnum == 0:
        return []
    if phnum > MAX_PHNUM:
        raise reader.error(f"{phnum} program headers, more than {MAX_PHNUM}: corrupt e_phnum")
    if phentsize != layout.phdr.size:
        raise reader.error(
            f"e_phentsize is {phentsize}, ELF{layout.bits} program headers are {layout.phdr.size}"
        )
    table = reader.read(phoff, phnum * phentsize, f"program header table ({phnum} entries)")
    return [layout.phdr_fields(raw) for raw in layout.phdr.iter_unpack(table)]


def _check_loads(reader: _Reader, loads: list[Segment]) -> None:
    """Every PT_LOAD's file part must be in the file: mapping past the end is a truncated file.

    A segment with no file part (only zero-filled memory) maps nothing from the file.
    """
    for number, seg in enumerate(loads, 1):
        if seg.filesz:
            reader.check(seg.offset, seg.filesz, f"PT_LOAD segment {number}")


def _interpreter(reader: _Reader, seg: Segment) -> str:
    if seg.filesz > MAX_INTERP:
        raise reader.error(f"PT_INTERP is {seg.filesz} bytes, longer than {MAX_INTERP} (PATH_MAX)")
    if seg.filesz == 0:
        # objcopy --only-keep-debug leaves this: a separate debug-info file, not a loadable one.
        raise reader.error("PT_INTERP is empty (p_filesz 0)")
    raw = reader.read(seg.offset, seg.filesz, "PT_INTERP")
    # The kernel insists on the terminating NUL in the segment's last byte.
    if not raw.endswith(b"\0"):
        raise reader.error("PT_INTERP is not NUL-terminated")
    return raw[: raw.index(b"\0")].decode("utf-8", "surrogateescape")


def _read_dynamic(parser: _Parser, seg: Segment, info: ElfInfo) -> None:
    entries = _dynamic_entries(parser.reader, parser.layout, seg)
    info.dynamic = entries
    values: dict[int, int] = {}
    for tag, value in entries:
        values[tag] = value  # the last one wins, as in ld.so's dynamic info table
    if DT_STRTAB in values:
        parser.use_string_table(_string_table(parser, values[DT_STRTAB], values.get(DT_STRSZ)))
    for number, (tag, value) in enumerate(entries):
        if tag == DT_NEEDED:
            info.needed.append(parser.dynstr(value, f"DT_NEEDED (dynamic entry {number})"))
    for tag, name in ((DT_SONAME, "soname"), (DT_RPATH, "rpath"), (DT_RUNPATH, "runpath")):
        if tag in values:
            setattr(info, name, parser.dynstr(values[tag], f"DT_{name.upper()}"))
    info.flags = values.get(DT_FLAGS, 0)
    info.flags_1 = values.get(DT_FLAGS_1, 0)
    if DT_VERNEED in values:
        info.version_needs = _version_needs(parser, values[DT_VERNEED], values.get(DT_VERNEEDNUM))
    if DT_VERDEF in values:
        info.version_defs = _version_defs(parser, values[DT_VERDEF], values.get(DT_VERDEFNUM))


def _dynamic_entries(reader: _Reader, layout: _Layout, seg: Segment) -> list[tuple[int, int]]:
    """The dynamic array up to DT_NULL (or the end of the segment, as readelf reads it)."""
    size = layout.dyn.size
    count = seg.filesz // size
    if count > MAX_DYNAMIC:
        # A linker writes a few dozen entries; only a DT_NULL within the cap makes a bigger segment usable.
        count = MAX_DYNAMIC
    raw = reader.read(seg.offset, count * size, "PT_DYNAMIC")
    entries = []
    for tag, value in layout.dyn.iter_unpack(raw):
        if tag == DT_NULL:
            return entries
        entries.append((tag, value))
    if count == MAX_DYNAMIC and seg.filesz // size > MAX_DYNAMIC:
        raise reader.error(f"PT_DYNAMIC has no DT_NULL within its first {MAX_DYNAMIC} entries")
    return entries


def _string_table(parser: _Parser, addr: int, strsz: int | None) -> tuple[int, int]:
    if strsz is None:
        # Without DT_STRSZ the strings may run to the end of the segment holding them.
        return parser.offset_of(addr, 1, "DT_STRTAB")
    offset, _available = parser.offset_of(addr, strsz, f"DT_STRTAB (DT_STRSZ {strsz} bytes)")
    return offset, offset + strsz


def _chain(parser: _Parser, first: int, fmt: struct.Struct, what: str) -> list[tuple[int, tuple[int, ...]]]:
    """(address, fields) of each record of a version chain; the last field is the offset to the next.

    An offset of 0 ends the chain. Offsets add in the file's address width, as in the loader, so a
    hostile chain can wrap back to an earlier record: that is a loop, and an error.
    """
    seen: dict[int, int] = {}
    records = []
    addr = first
    while True:
        parser.count_record(what)
        seen[addr] = len(seen)
        record = parser.unpack(fmt, addr, f"{what} record {len(seen)}")
        records.append((addr, record))
        if record[-1] == 0:
            return records
        addr = (addr + record[-1]) & parser.layout.mask
        if addr in seen:
            raise parser.error(
                f"{what} chain loops: record {len(seen)} leads back to record {seen[addr] + 1}"
            )


def _check_count(parser: _Parser, what: str, found: int, declared: int | None) -> None:
    if declared is not None and found != declared:
        raise parser.error(f"{what}: the chain has {found} records, the count says {declared}")


def _version_needs(parser: _Parser, addr: int, declared: int | None) -> list[VersionNeed]:
    layout, needs = parser.layout, []
    records = _chain(parser, addr, layout.verneed, "version need")
    _check_count(parser, "version need (DT_VERNEEDNUM)", len(records), declared)
    for number, (at, (version, cnt, file_name, aux, _next)) in enumerate(records, 1):
        what = f"version need {number}"
        if version != 1:
            raise parser.error(f"{what} has vn_version {version}, only 1 is defined")
        need = VersionNeed(file=parser.dynstr(file_name, f"{what} file name"))
        what = f"{what} ({need.file}) auxiliary"
        auxiliaries = _chain(parser, (at + aux) & layout.mask, layout.vernaux, what)
        _check_count(parser, f"{what} (vn_cnt)", len(auxiliaries), cnt)
        for _at, (vna_hash, vna_flags, vna_other, vna_name, _next) in auxiliaries:
            name = parser.dynstr(vna_name, f"{what} name")
            need.versions.append(NeededVersion(name=name, flags=vna_flags, index=vna_other, hash=vna_hash))
        needs.append(need)
    return needs


def _version_defs(parser: _Parser, addr: int, declared: int | None) -> list[VersionDef]:
    layout, defs = parser.layout, []
    records = _chain(parser, addr, layout.verdef, "version definition")
    _check_count(parser, "version definition (DT_VERDEFNUM)", len(records), declared)
    for number, (at, (version, flags, ndx, cnt, vd_hash, aux, _next)) in enumerate(records, 1):
        what = f"version definition {number}"
        if version != 1:
            raise parser.error(f"{what} has vd_version {version}, only 1 is defined")
        what = f"{what} auxiliary"
        auxiliaries = _chain(parser, (at + aux) & layout.mask, layout.verdaux, what)
        _check_count(parser, f"{what} (vd_cnt)", len(auxiliaries), cnt)
        names = [parser.dynstr(vda_name, f"{what} name") for _at, (vda_name, _next) in auxiliaries]
        defs.append(VersionDef(name=names[0], flags=flags, index=ndx, hash=vd_hash, parents=names[1:]))
    return defs
