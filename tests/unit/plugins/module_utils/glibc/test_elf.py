"""elf: what the loader reads from ELF files, checked on real Debian trees, crafted and hostile files.

The oracles are independent of the code under test: pyelftools and readelf find the dynamic and
version tables through the section headers, elf.py through the program headers.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import elf
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc.elf import (
    DF_1_NODEFLIB,
    DF_1_NOW,
    DF_1_PIE,
    DT_FLAGS_1,
    DT_NEEDED,
    DT_NULL,
    DT_RPATH,
    DT_RUNPATH,
    DT_SONAME,
    DT_STRSZ,
    DT_STRTAB,
    DT_VERDEF,
    DT_VERDEFNUM,
    DT_VERNEED,
    DT_VERNEEDNUM,
    EM_386,
    EM_AARCH64,
    EM_MIPS,
    EM_PPC64,
    EM_RISCV,
    EM_S390,
    EM_X86_64,
    ET_DYN,
    ET_EXEC,
    ET_REL,
    PT_DYNAMIC,
    PT_INTERP,
    PT_LOAD,
    ElfError,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection
from elftools.elf.segments import InterpSegment

from support.trees import SUITES, TREES
from support.trees import debian_tree as tree

MULTIARCH = "/usr/lib/x86_64-linux-gnu"
GLIBC_FAMILY = (
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libresolv.so.2",
    "libnss_files.so.2",
)
READELF_SAMPLE_EVERY = 15  # every 15th ELF file of a tree (plus the glibc family) goes through readelf

DT_DEBUG = 21
EM_ARM = 40
BASE, WEAK = elf.VER_FLG_BASE, elf.VER_FLG_WEAK

# readelf's names for DT_FLAGS_1 bits, in bit order (binutils get_dynamic_flags), to decode independently.
READELF_FLAGS_1 = [
    "NOW",
    "GLOBAL",
    "GROUP",
    "NODELETE",
    "LOADFLTR",
    "INITFIRST",
    "NOOPEN",
    "ORIGIN",
    "DIRECT",
    "TRANS",
    "INTERPOSE",
    "NODEFLIB",
    "NODUMP",
    "CONFALT",
    "ENDFILTEE",
    "DISPRELDNE",
    "DISPRELPND",
    "NODIRECT",
    "IGNMULDEF",
    "NOKSYMS",
    "NOHDR",
    "EDITED",
    "NORELOC",
    "SYMINTPOSE",
    "GLOBAUDIT",
    "SINGLETON",
    "STUB",
    "PIE",
    "KMOD",
    "WEAKFILTER",
    "NOCOMMON",
]
READELF_VERSION_FLAGS = {"none": 0, "BASE": BASE, "WEAK": WEAK, "INFO": 0x4}


def elf_hash(name: str) -> int:
    """The SysV ELF hash that vna_hash and vd_hash hold (the loader compares it before the name)."""
    h = 0
    for byte in name.encode():
        h = (h << 4) + byte
        high = h & 0xF0000000
        if high:
            h ^= high >> 24
        h &= ~high & 0xFFFFFFFF
    return h


# ---- the facts compared with the oracles --------------------------------------------------------


def facts(info: elf.ElfInfo, *, hashes: bool = True) -> dict:
    """ElfInfo in the shape the oracles produce."""

    def need(v: elf.NeededVersion) -> tuple:
        return (v.name, v.flags, v.index, v.hash) if hashes else (v.name, v.flags, v.index)

    def define(d: elf.VersionDef) -> tuple:
        return (
            (d.name, d.flags, d.index, d.hash, d.parents) if hashes else (d.name, d.flags, d.index, d.parents)
        )

    return {
        "interp": info.interpreter,
        "needed": info.needed,
        "soname": info.soname,
        "rpath": info.rpath,
        "runpath": info.runpath,
        "flags_1": info.flags_1,
        "verneed": [(n.file, [need(v) for v in n.versions]) for n in info.version_needs],
        "verdef": [define(d) for d in info.version_defs],
    }


def pyelftools_facts(stream: io.IOBase) -> dict:
    """The same facts from pyelftools, which reads the dynamic and version tables through sections."""
    found = dict(
        interp=None, needed=[], soname=None, rpath=None, runpath=None, flags_1=0, verneed=[], verdef=[]
    )
    elffile = ELFFile(stream)
    for segment in elffile.iter_segments():
        if isinstance(segment, InterpSegment):
            found["interp"] = segment.get_interp_name()
            break
    for section in elffile.iter_sections():
        if isinstance(section, DynamicSection):
            for tag in section.iter_tags():
                kind = tag.entry.d_tag
                if kind == "DT_NEEDED":
                    found["needed"].append(tag.needed)
                elif kind in ("DT_SONAME", "DT_RPATH", "DT_RUNPATH"):
                    key = kind[3:].lower()
                    found[key] = getattr(tag, key)
                elif kind == "DT_FLAGS_1":
                    found["flags_1"] = tag.entry.d_val
        elif isinstance(section, GNUVerNeedSection):
            for verneed, auxiliaries in section.iter_versions():
                versions = [(a.name, a["vna_flags"], a["vna_other"], a["vna_hash"]) for a in auxiliaries]
                found["verneed"].append((verneed.name, versions))
        elif isinstance(section, GNUVerDefSection):
            for verdef, auxiliaries in section.iter_versions():
                names = [a.name for a in auxiliaries]
                found["verdef"].append(
                    (names[0], verdef["vd_flags"], verdef["vd_ndx"], verdef["vd_hash"], names[1:])
                )
    return found


def readelf_facts(path: Path) -> dict:
    """The same facts (without hashes) parsed from ``readelf -d -V -l -W``, plus flags_1 as names."""
    out = subprocess.run(
        ["readelf", "-d", "-V", "-l", "-W", str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    ).stdout
    found = dict(
        interp=None, needed=[], soname=None, rpath=None, runpath=None, flags_1=set(), verneed=[], verdef=[]
    )
    dynamic = {
        "NEEDED": "Shared library",
        "SONAME": "Library soname",
        "RPATH": "Library rpath",
        "RUNPATH": "Library runpath",
    }
    for line in out.splitlines():
        if m := re.search(r"\[Requesting program interpreter: (.*)\]$", line):
            found["interp"] = m[1]
        elif m := re.match(r"\s*0x[0-9a-f]+ \((\w+)\)\s+(.*)$", line):
            tag, value = m[1], m[2]
            if tag in dynamic:
                text = re.fullmatch(re.escape(dynamic[tag]) + r": \[(.*)\]", value)[1]
                if tag == "NEEDED":
                    found["needed"].append(text)
                else:
                    found[tag.lower()] = text
            elif tag == "FLAGS_1":
                found["flags_1"] = set(value.removeprefix("Flags:").split())
        elif m := re.match(r"\s*\S+: Version: \d+\s+File: (\S+)\s+Cnt: \d+$", line):
            found["verneed"].append((m[1], []))
        elif m := re.match(r"\s*\S+:\s+Name: (\S+)\s+Flags: (.*?)\s+Version: (\d+)$", line):
            found["verneed"][-1][1].append((m[1], version_flags(m[2]), int(m[3])))
        elif m := re.match(r"\s*\S+: Rev: \d+\s+Flags: (.*?)\s+Index: (\d+)\s+Cnt: \d+\s+Name: (\S+)$", line):
            found["verdef"].append((m[3], version_flags(m[1]), int(m[2]), []))
        elif m := re.match(r"\s*\S+: Parent \d+: (\S+)$", line):
            found["verdef"][-1][3].append(m[1])
    return found


def version_flags(text: str) -> int:
    return sum(READELF_VERSION_FLAGS[word] for word in text.split(" | "))


def flags_1_names(value: int) -> set[str]:
    return {name for bit, name in enumerate(READELF_FLAGS_1) if value & (1 << bit)}


# ---- crafted files --------------------------------------------------------------------------------

VADDR = 0x10000  # load address of file offset 0: dynamic addresses differ from file offsets

SHT_PROGBITS, SHT_STRTAB, SHT_DYNAMIC = 1, 3, 6
SHT_GNU_VERDEF, SHT_GNU_VERNEED = 0x6FFFFFFD, 0x6FFFFFFE
SHF_ALLOC = 0x2

# Field positions of the version records (same in both classes).
RECORD_FIELDS = {
    "verneed": {
        "vn_version": (0, "H"),
        "vn_cnt": (2, "H"),
        "vn_file": (4, "I"),
        "vn_aux": (8, "I"),
        "vn_next": (12, "I"),
    },
    "vernaux": {"vna_hash": (0, "I"), "vna_flags": (4, "H"), "vna_name": (8, "I"), "vna_next": (12, "I")},
    "verdef": {
        "vd_version": (0, "H"),
        "vd_flags": (2, "H"),
        "vd_cnt": (6, "H"),
        "vd_aux": (12, "I"),
        "vd_next": (16, "I"),
    },
    "verdaux": {"vda_name": (0, "I"), "vda_next": (4, "I")},
}
HEADER_FIELDS = {
    64: {"e_phoff": (32, "Q"), "e_shoff": (40, "Q"), "e_phentsize": (54, "H"), "e_phnum": (56, "H")},
    32: {"e_phoff": (28, "I"), "e_shoff": (32, "I"), "e_phentsize": (42, "H"), "e_phnum": (44, "H")},
}
PHDR_FIELDS = {
    64: {
        "p_type": (0, "I"),
        "p_offset": (8, "Q"),
        "p_vaddr": (16, "Q"),
        "p_filesz": (32, "Q"),
        "p_memsz": (40, "Q"),
    },
    32: {
        "p_type": (0, "I"),
        "p_offset": (4, "I"),
        "p_vaddr": (8, "I"),
        "p_filesz": (16, "I"),
        "p_memsz": (20, "I"),
    },
}


@dataclass
class Crafted:
    """A crafted ELF image and where its parts are, so hostile cases can change one field."""

    data: bytearray
    bits: int
    order: str
    phdrs: dict[int, int] = field(default_factory=dict)  # p_type -> offset of its program header
    dynamic: dict[int, int] = field(default_factory=dict)  # d_tag -> offset of its (first) entry
    records: dict[str, list[int]] = field(default_factory=dict)  # "verneed" ... -> record offsets
    strings: tuple[int, int] = (0, 0)  # offset and size of the string table
    tail: int = 0  # offset of the extra bytes appended to the file

    def put(self, offset: int, fmt: str, value: int) -> None:
        struct.pack_into(self.order + fmt, self.data, offset, value)

    def set_header(self, name: str, value: int) -> None:
        at, fmt = HEADER_FIELDS[self.bits][name]
        self.put(at, fmt, value)

    def set_phdr(self, p_type: int, name: str, value: int) -> None:
        at, fmt = PHDR_FIELDS[self.bits][name]
        self.put(self.phdrs[p_type] + at, fmt, value)

    def set_dynamic(self, tag: int, value: int | None = None, *, new_tag: int | None = None) -> None:
        """Change the value of the first ``tag`` entry, or turn it into a ``new_tag`` entry."""
        word = "q" if self.bits == 64 else "i"
        at = self.dynamic[tag]
        if value is not None:
            self.put(at + self.bits // 8, word.upper(), value)
        if new_tag is not None:
            self.put(at, word, new_tag)

    def set_record(self, table: str, number: int, name: str, value: int) -> None:
        at, fmt = RECORD_FIELDS[table][name]
        self.put(self.records[table][number] + at, fmt, value)

    def address(self, offset: int) -> int:
        return VADDR + offset

    def truncate(self, size: int) -> None:
        """Cut the file and shrink the PT_LOAD with it, so only what lies at the cut is broken."""
        del self.data[size:]
        self.set_phdr(PT_LOAD, "p_filesz", size)
        self.set_phdr(PT_LOAD, "p_memsz", size)


class StringTable:
    """A dynamic string table under construction: each distinct string once, offset 0 the empty one."""

    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self.offsets: dict[str, int] = {}

    def add(self, text: str) -> int:
        if text not in self.offsets:
            self.offsets[text] = len(self.data)
            self.data.extend(text.encode() + b"\0")
        return self.offsets[text]


def craft(
    bits: int = 64,
    order: str = "<",
    *,
    e_type: int = ET_DYN,
    machine: int = EM_X86_64,
    interp: str | None = "/lib/ld-test.so.1",
    dynamic: bool = True,
    needed: tuple[str, ...] = ("libc.so.6", "libm.so.6"),
    soname: str | None = None,
    rpath: str | None = None,
    runpath: str | None = None,
    flags_1: int | None = None,
    verneed: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = (
        ("libc.so.6", (("GLIBC_2.2.5", 0), ("GLIBC_2.34", 0))),
        ("libm.so.6", (("GLIBC_2.29", WEAK),)),
    ),
    verdef: tuple[tuple[str, int, tuple[str, ...]], ...] = (),
    sections: bool = True,
    tail: bytes = b"",
) -> Crafted:
    """A minimal dynamic ELF file: header, PT_LOAD (the whole file), PT_INTERP, PT_DYNAMIC, strings and
    version tables; with ``sections`` also the section headers pyelftools and readelf read.

    Layout: header, program headers, interpreter, version needs, version definitions, dynamic array,
    string table, ``tail``, then the section headers.
    """
    ehsize, phsize, dynsize = (64, 56, 16) if bits == 64 else (52, 32, 8)
    if not dynamic:
        needed, verneed, verdef = (), (), ()
    kinds = [PT_LOAD] + ([PT_INTERP] if interp is not None else []) + ([PT_DYNAMIC] if dynamic else [])
    crafted = Crafted(bytearray(ehsize + phsize * len(kinds)), bits, order)
    crafted.records = {"verneed": [], "vernaux": [], "verdef": [], "verdaux": []}
    strings = StringTable()
    at = {"interp": len(crafted.data)}
    if interp is not None:
        crafted.data.extend(interp.encode() + b"\0")
    align(crafted.data)

    at["verneed"] = len(crafted.data)
    append_version_needs(crafted, verneed, strings, first_index=max(len(verdef), 1) + 1)
    at["verdef"] = len(crafted.data)
    append_version_definitions(crafted, verdef, strings)
    align(crafted.data)

    entries = [(DT_NEEDED, strings.add(name)) for name in needed]
    entries += [
        (tag, strings.add(v))
        for tag, v in ((DT_SONAME, soname), (DT_RPATH, rpath), (DT_RUNPATH, runpath))
        if v
    ]
    entries += [(DT_FLAGS_1, flags_1)] if flags_1 is not None else []
    entries += [(DT_VERNEED, VADDR + at["verneed"]), (DT_VERNEEDNUM, len(verneed))] if verneed else []
    entries += [(DT_VERDEF, VADDR + at["verdef"]), (DT_VERDEFNUM, len(verdef))] if verdef else []
    at["dynamic"] = len(crafted.data)
    at["strings"] = at["dynamic"] + dynsize * (len(entries) + 3) if dynamic else at["dynamic"]
    if dynamic:
        entries += [(DT_STRTAB, VADDR + at["strings"]), (DT_STRSZ, len(strings.data)), (DT_NULL, 0)]
        append_dynamic(crafted, entries)
        crafted.strings = (len(crafted.data), len(strings.data))
        crafted.data.extend(strings.data)
    align(crafted.data)
    crafted.tail = len(crafted.data)
    crafted.data.extend(tail)

    sizes = {
        ".interp": (at["interp"], len(interp) + 1 if interp is not None else 0),
        ".gnu.version_r": (at["verneed"], at["verdef"] - at["verneed"]),
        ".gnu.version_d": (at["verdef"], at["dynamic"] - at["verdef"]),
        ".dynamic": (at["dynamic"], at["strings"] - at["dynamic"]),
        ".dynstr": (at["strings"], len(strings.data) if dynamic else 0),
    }
    shoff, shnum = append_section_headers(crafted, sizes, len(verneed), len(verdef)) if sections else (0, 0)

    segments = {PT_LOAD: (0, len(crafted.data)), PT_INTERP: sizes[".interp"], PT_DYNAMIC: sizes[".dynamic"]}
    for number, kind in enumerate(kinds):
        crafted.phdrs[kind] = ehsize + number * phsize
        crafted.data[crafted.phdrs[kind] : crafted.phdrs[kind] + phsize] = program_header(
            bits, order, kind, *segments[kind]
        )
    crafted.data[:ehsize] = elf_header(bits, order, e_type, machine, len(kinds), shoff, shnum)
    return crafted


def align(data: bytearray, to: int = 8) -> None:
    data.extend(b"\0" * (-len(data) % to))


def append_version_needs(crafted: Crafted, verneed: tuple, strings: StringTable, first_index: int) -> None:
    """Verneed records, each followed by its Vernaux records, chained as GNU ld writes them."""
    order, index = crafted.order, first_index
    for n, (file, versions) in enumerate(verneed):
        crafted.records["verneed"].append(len(crafted.data))
        following = 0 if n == len(verneed) - 1 else 16 + 16 * len(versions)
        crafted.data.extend(struct.pack(order + "HHIII", 1, len(versions), strings.add(file), 16, following))
        for v, (name, flags) in enumerate(versions):
            crafted.records["vernaux"].append(len(crafted.data))
            following = 0 if v == len(versions) - 1 else 16
            crafted.data.extend(
                struct.pack(order + "IHHII", elf_hash(name), flags, index, strings.add(name), following)
            )
            index += 1


def append_version_definitions(crafted: Crafted, verdef: tuple, strings: StringTable) -> None:
    """Verdef records (index 1 upwards), each followed by its Verdaux records: the name, then parents."""
    order = crafted.order
    for n, (name, flags, parents) in enumerate(verdef):
        crafted.records["verdef"].append(len(crafted.data))
        names = (name, *parents)
        following = 0 if n == len(verdef) - 1 else 20 + 8 * len(names)
        crafted.data.extend(
            struct.pack(order + "HHHHIII", 1, flags, n + 1, len(names), elf_hash(name), 20, following)
        )
        for a, text in enumerate(names):
            crafted.records["verdaux"].append(len(crafted.data))
            crafted.data.extend(struct.pack(order + "II", strings.add(text), 0 if a == len(names) - 1 else 8))


def append_dynamic(crafted: Crafted, entries: list[tuple[int, int]]) -> None:
    fmt = crafted.order + ("qQ" if crafted.bits == 64 else "iI")
    for tag, value in entries:
        crafted.dynamic.setdefault(tag, len(crafted.data))
        crafted.data.extend(struct.pack(fmt, tag, value))


def program_header(bits: int, order: str, kind: int, offset: int, size: int) -> bytes:
    vaddr, flags = VADDR + offset, 4  # PF_R
    if bits == 64:
        return struct.pack(order + "IIQQQQQQ", kind, flags, offset, vaddr, vaddr, size, size, 8)
    return struct.pack(order + "IIIIIIII", kind, offset, vaddr, vaddr, size, size, flags, 4)


def elf_header(bits: int, order: str, e_type: int, machine: int, phnum: int, shoff: int, shnum: int) -> bytes:
    ehsize, phsize, shsize = (64, 56, 64) if bits == 64 else (52, 32, 40)
    ident = b"\x7fELF" + bytes([bits // 32, 1 if order == "<" else 2, 1, 0]) + b"\0" * 8
    word = "Q" if bits == 64 else "I"
    fields = (e_type, machine, 1, VADDR + ehsize, ehsize, shoff, 0, ehsize, phsize, phnum)
    shstrndx = shnum - 1 if shnum else 0  # .shstrtab is the last section
    return ident + struct.pack(
        order + f"HHI{word * 3}IHHHHHH", *fields, shsize if shnum else 0, shnum, shstrndx
    )


def append_section_headers(crafted: Crafted, sizes: dict, verneeds: int, verdefs: int) -> tuple[int, int]:
    """.shstrtab and the section headers of the non-empty parts; returns (e_shoff, e_shnum)."""
    kinds = {
        ".interp": (SHT_PROGBITS, 0, 0),  # (sh_type, sh_info, sh_entsize)
        ".gnu.version_r": (SHT_GNU_VERNEED, verneeds, 0),
        ".gnu.version_d": (SHT_GNU_VERDEF, verdefs, 0),
        ".dynamic": (SHT_DYNAMIC, 0, 16 if crafted.bits == 64 else 8),
        ".dynstr": (SHT_STRTAB, 0, 0),
    }
    present = [name for name in kinds if sizes[name][1]]
    names = StringTable()
    for name in [*present, ".shstrtab"]:
        names.add(name)
    shstrtab_at = len(crafted.data)
    crafted.data.extend(names.data)
    align(crafted.data)
    shoff = len(crafted.data)
    fmt = crafted.order + ("IIQQQQIIQQ" if crafted.bits == 64 else "IIIIIIIIII")
    dynstr = present.index(".dynstr") + 1 if ".dynstr" in present else 0
    crafted.data.extend(bytes(struct.calcsize(fmt)))  # section 0
    for name in present:
        kind, info, entsize = kinds[name]
        offset, size = sizes[name]
        link = dynstr if kind in (SHT_GNU_VERNEED, SHT_GNU_VERDEF, SHT_DYNAMIC) else 0
        header = (names.add(name), kind, SHF_ALLOC, VADDR + offset, offset, size, link, info, 8, entsize)
        crafted.data.extend(struct.pack(fmt, *header))
    shstrtab = (names.add(".shstrtab"), SHT_STRTAB, 0, 0, shstrtab_at, len(names.data), 0, 0, 1, 0)
    crafted.data.extend(struct.pack(fmt, *shstrtab))
    return shoff, len(present) + 2


def readelf_shape(info: elf.ElfInfo) -> dict:
    """facts() as readelf shows them: no hashes, DT_FLAGS_1 as names."""
    shaped = facts(info, hashes=False)
    shaped["flags_1"] = flags_1_names(info.flags_1)
    shaped["verneed"] = [(file, list(versions)) for file, versions in shaped["verneed"]]
    return shaped


def readelf_of(tmp_path: Path, data: bytes) -> dict:
    path = tmp_path / "crafted"
    path.write_bytes(data)
    return readelf_facts(path)


# ---- crafted files of every class and byte order -----------------------------------------------

LIBRARY = dict(
    soname="libtest.so.1",
    rpath="/opt/old/lib",
    runpath="$ORIGIN/../lib:/opt/test/lib",
    flags_1=DF_1_NOW | DF_1_NODEFLIB,
    verdef=(("libtest.so.1", BASE, ()), ("TEST_1.0", 0, ()), ("TEST_2.0", 0, ("TEST_1.0",))),
)

VARIANTS = [
    pytest.param(32, "<", EM_386, "i386", id="ELF32 little-endian i386"),
    pytest.param(32, ">", EM_MIPS, "mips", id="ELF32 big-endian mips"),
    pytest.param(64, "<", EM_X86_64, "x86_64", id="ELF64 little-endian x86_64"),
    pytest.param(64, ">", EM_S390, "s390x", id="ELF64 big-endian s390x"),
]


@pytest.mark.parametrize(("bits", "order", "machine", "name"), VARIANTS)
def test_crafted_library(tmp_path, bits, order, machine, name):
    data = bytes(craft(bits, order, machine=machine, **LIBRARY).data)

    info = elf.parse_elf(data, "crafted")

    assert (info.bits, info.endian, info.machine, info.machine_name) == (
        bits,
        "little" if order == "<" else "big",
        machine,
        name,
    )
    assert (info.type, info.kind, info.is_shared_library, info.is_executable) == (
        ET_DYN,
        elf.SHARED_LIBRARY,
        True,
        False,
    )
    assert info.interpreter == "/lib/ld-test.so.1"
    assert info.needed == ["libc.so.6", "libm.so.6"]
    assert (info.soname, info.rpath, info.runpath) == (
        "libtest.so.1",
        "/opt/old/lib",
        "$ORIGIN/../lib:/opt/test/lib",
    )
    assert (info.nodeflib, info.pie, info.bind_now) == (True, False, True)
    assert [(n.file, n.names) for n in info.version_needs] == [
        ("libc.so.6", ["GLIBC_2.2.5", "GLIBC_2.34"]),
        ("libm.so.6", ["GLIBC_2.29"]),
    ]
    assert [v.weak for n in info.version_needs for v in n.versions] == [False, False, True]
    assert [(d.name, d.is_base, d.index, d.parents) for d in info.version_defs] == [
        ("libtest.so.1", True, 1, []),
        ("TEST_1.0", False, 2, []),
        ("TEST_2.0", False, 3, ["TEST_1.0"]),
    ]
    assert info.defined_versions == ["TEST_1.0", "TEST_2.0"]
    assert facts(info) == pyelftools_facts(io.BytesIO(data))
    assert readelf_shape(info) == readelf_of(tmp_path, data)


@pytest.mark.parametrize(("bits", "order", "machine", "name"), VARIANTS)
def test_crafted_without_section_headers_reads_the_same(bits, order, machine, name):
    """A stripped file (no section headers at all) reads through its program headers alone."""
    whole = elf.parse_elf(bytes(craft(bits, order, machine=machine, **LIBRARY).data))
    stripped = bytes(craft(bits, order, machine=machine, sections=False, **LIBRARY).data)

    assert stripped.find(b".dynstr") == -1
    assert facts(elf.parse_elf(stripped)) == facts(whole)


KINDS = [
    pytest.param(
        dict(e_type=ET_EXEC, interp=None, dynamic=False), elf.STATIC_EXECUTABLE, False, id="static executable"
    ),
    pytest.param(dict(e_type=ET_EXEC), elf.DYNAMIC_EXECUTABLE, True, id="dynamic executable"),
    pytest.param(dict(flags_1=DF_1_NOW | DF_1_PIE), elf.PIE, True, id="PIE"),
    pytest.param(dict(), elf.PIE, True, id="PIE linked before DF_1_PIE (interpreter, no soname)"),
    pytest.param(dict(flags_1=DF_1_PIE, interp=None), elf.STATIC_EXECUTABLE, False, id="static PIE"),
    pytest.param(dict(soname="libc.so.6"), elf.SHARED_LIBRARY, True, id="library with an interpreter (libc)"),
    pytest.param(dict(soname="libz.so.1", interp=None), elf.SHARED_LIBRARY, False, id="shared library"),
    pytest.param(dict(interp=None), elf.SHARED_LIBRARY, False, id="shared library without soname"),
    pytest.param(dict(e_type=ET_REL, interp=None, dynamic=False), elf.RELOCATABLE, False, id="object file"),
]


@pytest.mark.parametrize(("spec", "kind", "needs_loader"), KINDS)
def test_kind(spec, kind, needs_loader):
    info = elf.parse_elf(bytes(craft(**spec).data))

    assert (info.kind, info.needs_loader) == (kind, needs_loader)
    assert info.is_executable == (kind in (elf.STATIC_EXECUTABLE, elf.DYNAMIC_EXECUTABLE, elf.PIE))
    assert info.is_shared_library == (kind == elf.SHARED_LIBRARY)


def test_static_executable_has_nothing_dynamic():
    info = elf.parse_elf(bytes(craft(e_type=ET_EXEC, interp=None, dynamic=False).data))

    assert (info.has_dynamic, info.interpreter, info.needed, info.dynamic) == (False, None, [], [])
    assert [seg.type for seg in info.segments] == [PT_LOAD]


@pytest.mark.parametrize(
    ("bits", "order", "machine", "name"),
    [
        pytest.param(64, "<", EM_AARCH64, "aarch64", id="aarch64"),
        pytest.param(32, "<", EM_ARM, "arm", id="arm"),
        pytest.param(64, ">", EM_PPC64, "ppc64", id="ppc64"),
        pytest.param(64, "<", EM_PPC64, "ppc64le", id="ppc64le"),
        pytest.param(64, "<", EM_RISCV, "riscv64", id="riscv64"),
        pytest.param(64, ">", EM_MIPS, "mips64", id="mips64"),
        pytest.param(32, "<", EM_X86_64, "x32", id="x32"),
        pytest.param(32, ">", EM_S390, "s390", id="s390 (31-bit)"),
        pytest.param(64, "<", 0x7777, "em-30583", id="unknown machine"),
    ],
)
def test_machine_name(bits, order, machine, name):
    assert elf.parse_elf(bytes(craft(bits, order, machine=machine).data)).machine_name == name


def test_a_load_segment_of_zero_filled_memory_maps_nothing_from_the_file():
    crafted = craft()
    crafted.set_phdr(PT_INTERP, "p_type", PT_LOAD)
    crafted.set_phdr(PT_INTERP, "p_offset", 1 << 30)
    crafted.set_phdr(PT_INTERP, "p_filesz", 0)

    info = elf.parse_elf(bytes(crafted.data))

    assert [seg.type for seg in info.segments] == [PT_LOAD, PT_LOAD, PT_DYNAMIC]
    assert info.needed == ["libc.so.6", "libm.so.6"]


def test_dynamic_without_strsz_reads_strings_to_the_segment_end():
    crafted = craft(soname="libnostrsz.so.1")
    crafted.set_dynamic(DT_STRSZ, new_tag=DT_DEBUG)

    info = elf.parse_elf(bytes(crafted.data))

    assert (info.soname, info.needed) == ("libnostrsz.so.1", ["libc.so.6", "libm.so.6"])


def test_last_soname_wins_as_in_the_loader():
    """ld.so keeps the last entry of a tag it reads once; NEEDED entries are all kept, in order."""
    crafted = craft(soname="libfirst.so.1", rpath="libsecond.so.1")
    crafted.set_dynamic(DT_RPATH, new_tag=DT_SONAME)

    info = elf.parse_elf(bytes(crafted.data))

    assert (info.soname, info.rpath) == ("libsecond.so.1", None)
    assert info.needed == ["libc.so.6", "libm.so.6"]


# ---- hostile files ------------------------------------------------------------------------------


def cut(size: int):
    """Cut the file at ``size``, leaving its program headers as they are."""

    def mutate(c: Crafted) -> None:
        del c.data[size:]

    return mutate


def wrap(table: str, source: int, field_name: str, target: int):
    """Point record ``source``'s next field back at record ``target`` (an offset that wraps around)."""

    def mutate(c: Crafted) -> None:
        relative = c.records[table][target] - c.records[table][source]
        c.set_record(table, source, field_name, relative % (1 << c.bits))

    return mutate


def unterminated_last_string(*, strsz: bool):
    """Cut the file just before the NUL of the last string; with or without DT_STRSZ."""

    def mutate(c: Crafted) -> None:
        start, size = c.strings
        c.truncate(start + size - 1)
        if strsz:
            c.set_dynamic(DT_STRSZ, size - 1)
        else:
            c.set_dynamic(DT_STRSZ, new_tag=DT_DEBUG)

    return mutate


def pointing_at_tail(tag: int):
    return lambda c: c.set_dynamic(tag, c.address(c.tail))


def dynamic_in_tail(c: Crafted) -> None:
    c.set_phdr(PT_DYNAMIC, "p_offset", c.tail)
    c.set_phdr(PT_DYNAMIC, "p_filesz", len(c.data) - c.tail)


def random_after_magic(seed: int, fixed: bytes) -> bytes:
    noise = random.Random(seed).randbytes(4096)
    return b"\x7fELF" + fixed + noise[len(fixed) :]


NO_NULL_DYNAMIC = struct.pack("<qQ", DT_DEBUG, 0) * 5000
RUNAWAY_VERDEFS = struct.pack("<HHHHIII", 1, 0, 1, 1, 0, 20, 20) * 16400
IDENT_16 = bytes(craft().data[:16])

# (build arguments or raw bytes, change, what the error must say)
HOSTILE = [
    pytest.param(b"", None, "not an ELF file", id="empty"),
    pytest.param(b"\x7fEL", None, "not an ELF file", id="3 bytes"),
    pytest.param(b"\x7fELF", None, "ends inside the ELF identification", id="magic only"),
    pytest.param(b"#!/bin/sh\nexec true\n" * 40, None, "not an ELF file", id="a script"),
    pytest.param(
        IDENT_16, None, r"ELF header \(48 bytes at offset 0x10\) lies beyond the end", id="16 bytes"
    ),
    pytest.param(b"\x7fELF\x03\x01\x01" + b"\0" * 57, None, "unknown ELF class 3", id="unknown class"),
    pytest.param(b"\x7fELF\x02\x00\x01" + b"\0" * 57, None, "unknown byte order 0", id="unknown byte order"),
    pytest.param({}, cut(64 + 3 * 56), "PT_LOAD segment 1 .* beyond the end", id="cut after program headers"),
    pytest.param({}, cut(100), r"program header table \(3 entries\)", id="cut inside program headers"),
    pytest.param(
        {},
        lambda c: c.set_header("e_phnum", 0xFFF0),
        "65520 program headers, more than 4096",
        id="e_phnum huge",
    ),
    pytest.param(
        {"sections": False},
        lambda c: c.set_header("e_phnum", 0xFFFF),
        "e_phnum is PN_XNUM but there is no section header 0",
        id="e_phnum PN_XNUM, no section header",
    ),
    pytest.param(
        {"sections": False},
        lambda c: (c.set_header("e_phnum", 0xFFFF), c.set_header("e_shoff", 1 << 30)),
        "sh_info of section header 0",
        id="PN_XNUM, section header beyond EOF",
    ),
    pytest.param(
        {},
        lambda c: c.set_header("e_phoff", 1 << 40),
        "program header table .* beyond the end",
        id="e_phoff beyond EOF",
    ),
    pytest.param({}, lambda c: c.set_header("e_phentsize", 40), "e_phentsize is 40", id="e_phentsize wrong"),
    pytest.param(
        {},
        lambda c: c.set_phdr(PT_LOAD, "p_filesz", 1 << 20),
        "PT_LOAD segment 1 .* beyond",
        id="PT_LOAD beyond EOF",
    ),
    pytest.param(
        {},
        lambda c: c.set_phdr(PT_INTERP, "p_offset", 1 << 20),
        "PT_INTERP .* beyond",
        id="PT_INTERP beyond EOF",
    ),
    pytest.param(
        {},
        lambda c: c.set_phdr(PT_INTERP, "p_filesz", 17),
        "PT_INTERP is not NUL-terminated",
        id="PT_INTERP no NUL",
    ),
    pytest.param(
        {},
        lambda c: c.set_phdr(PT_INTERP, "p_filesz", 0),
        r"PT_INTERP is empty \(p_filesz 0\)",
        id="PT_INTERP empty (as in a separate debug file)",
    ),
    pytest.param(
        {},
        lambda c: c.set_phdr(PT_INTERP, "p_filesz", 5000),
        "PT_INTERP is 5000 bytes",
        id="PT_INTERP > PATH_MAX",
    ),
    pytest.param(
        {},
        lambda c: c.set_phdr(PT_DYNAMIC, "p_offset", 1 << 20),
        "PT_DYNAMIC .* beyond",
        id="PT_DYNAMIC beyond EOF",
    ),
    pytest.param(
        {"tail": NO_NULL_DYNAMIC},
        dynamic_in_tail,
        "no DT_NULL within its first 4096 entries",
        id="PT_DYNAMIC of 5000 entries, no DT_NULL",
    ),
    pytest.param(
        {},
        lambda c: c.set_dynamic(DT_STRTAB, 0x100),
        "DT_STRTAB .* not inside the file part of any PT_LOAD",
        id="DT_STRTAB outside any PT_LOAD",
    ),
    pytest.param(
        {},
        lambda c: c.set_dynamic(DT_STRSZ, 1 << 20),
        "DT_STRTAB .* not inside the file part of any PT_LOAD",
        id="DT_STRSZ past the segment",
    ),
    pytest.param(
        {},
        lambda c: c.set_dynamic(DT_STRTAB, new_tag=DT_DEBUG),
        "DT_NEEDED .* names a string, but there is no DT_STRTAB",
        id="DT_NEEDED without DT_STRTAB",
    ),
    pytest.param(
        {},
        lambda c: c.set_dynamic(DT_NEEDED, 10_000),
        r"DT_NEEDED \(dynamic entry 0\): string offset 0x2710 is beyond the string table",
        id="DT_NEEDED offset beyond DT_STRSZ",
    ),
    pytest.param(
        {"sections": False},
        unterminated_last_string(strsz=True),
        "name at offset .* has no terminating NUL before the end of the file",
        id="string without NUL at the end of the file",
    ),
    pytest.param(
        {"sections": False},
        unterminated_last_string(strsz=False),
        "name at offset .* has no terminating NUL before the end of the file",
        id="string without NUL at the end of the file, no DT_STRSZ",
    ),
    pytest.param(
        {"sections": False},
        lambda c: c.set_dynamic(DT_STRSZ, c.strings[1] - 3),
        "name at offset .* has no terminating NUL before the end of its table",
        id="last string runs past DT_STRSZ",
    ),
    pytest.param(
        {},
        lambda c: c.set_record("verneed", 0, "vn_next", 0),
        r"version need \(DT_VERNEEDNUM\): the chain has 1 records, the count says 2",
        id="vn_next points to itself (0) while the count says 2",
    ),
    pytest.param(
        {"bits": 32},
        wrap("verneed", 1, "vn_next", 0),
        "version need chain loops: record 2 leads back to record 1",
        id="verneed chain loops (ELF32, vn_next wraps back)",
    ),
    pytest.param(
        {"bits": 32},
        wrap("vernaux", 1, "vna_next", 0),
        r"version need 1 \(libc.so.6\) auxiliary chain loops",
        id="vernaux chain loops",
    ),
    pytest.param(
        {"bits": 32, **LIBRARY},
        wrap("verdef", 2, "vd_next", 0),
        "version definition chain loops: record 3 leads back to record 1",
        id="verdef chain loops (ELF32, vd_next wraps back)",
    ),
    pytest.param(
        {"bits": 32, "order": ">", **LIBRARY},
        wrap("verdef", 2, "vd_next", 1),
        "version definition chain loops: record 3 leads back to record 2",
        id="verdef chain loops (ELF32 big-endian)",
    ),
    pytest.param(
        {"bits": 32, **LIBRARY},
        wrap("verdaux", 3, "vda_next", 2),
        "version definition 3 auxiliary chain loops",
        id="verdaux chain loops",
    ),
    pytest.param(
        {**LIBRARY},
        lambda c: c.set_record("verdef", 0, "vd_next", 0),
        r"version definition \(DT_VERDEFNUM\): the chain has 1 records, the count says 3",
        id="verdef chain shorter than DT_VERDEFNUM",
    ),
    pytest.param(
        {},
        lambda c: c.set_record("verneed", 0, "vn_cnt", 5),
        r"\(vn_cnt\): the chain has 2 records, the count says 5",
        id="vn_cnt larger than the chain",
    ),
    pytest.param(
        {},
        lambda c: c.set_record("verneed", 0, "vn_next", 1 << 20),
        "version need record 2 at address .* not inside the file part of any PT_LOAD",
        id="vn_next beyond the file",
    ),
    pytest.param(
        {}, lambda c: c.set_record("verneed", 0, "vn_version", 2), "vn_version 2", id="unknown vn_version"
    ),
    pytest.param(
        {**LIBRARY},
        lambda c: c.set_record("verdaux", 1, "vda_name", 1 << 20),
        "version definition 2 auxiliary name: string offset 0x100000 is beyond the string table",
        id="vda_name beyond DT_STRSZ",
    ),
    pytest.param(
        {**LIBRARY, "tail": RUNAWAY_VERDEFS},
        pointing_at_tail(DT_VERDEF),
        "more than 16384 version records",
        id="16400 chained version definitions",
    ),
    *[
        pytest.param(random_after_magic(seed, fixed), None, r"\w", id=f"random bytes after the magic {n}")
        for n, (seed, fixed) in enumerate(
            [(1, b""), (2, b"\x02\x01\x01"), (3, b"\x02\x02\x01"), (4, b"\x01\x01\x01"), (5, b"\x01\x02\x01")]
        )
    ],
]


def hostile_bytes(spec: bytes | dict, change) -> bytes:
    if isinstance(spec, bytes):
        return spec
    crafted = craft(**spec)
    change(crafted)
    return bytes(crafted.data)


@pytest.mark.parametrize(("spec", "change", "problem"), HOSTILE)
def test_hostile_file(tmp_path, deadline, spec, change, problem):
    path = tmp_path / "hostile"
    path.write_bytes(hostile_bytes(spec, change))

    with deadline(1), pytest.raises(ElfError, match=problem) as from_path:
        elf.read_elf(str(path))
    with deadline(1), pytest.raises(ElfError) as from_bytes:
        elf.parse_elf(path.read_bytes(), str(path))

    assert str(from_path.value).startswith(f"{path}: ")
    assert from_path.value.problem == from_bytes.value.problem
    assert from_path.value.not_elf == (problem == "not an ELF file")


def test_hostile_cases_start_from_a_valid_file():
    """Each crafted case breaks one thing: built without its change, every case parses."""
    for case in HOSTILE:
        spec = case.values[0]
        if isinstance(spec, dict):
            assert elf.parse_elf(bytes(craft(**spec).data)).needed == ["libc.so.6", "libm.so.6"], case.id


@pytest.mark.parametrize("bits", [32, 64])
def test_pn_xnum_takes_the_count_from_section_header_0(bits):
    crafted = craft(bits, ">")
    crafted.set_header("e_phnum", 0xFFFF)
    shoff_at, fmt = HEADER_FIELDS[bits]["e_shoff"]
    (shoff,) = struct.unpack_from(">" + fmt, crafted.data, shoff_at)
    crafted.put(shoff + (44 if bits == 64 else 28), "I", 3)

    info = elf.parse_elf(bytes(crafted.data))

    assert [seg.type for seg in info.segments] == [PT_LOAD, PT_INTERP, PT_DYNAMIC]
    assert info.needed == ["libc.so.6", "libm.so.6"]


@pytest.mark.parametrize(("bits", "order"), [(32, "<"), (32, ">"), (64, "<"), (64, ">")])
def test_every_truncation_of_a_crafted_file_is_an_error(deadline, bits, order):
    """The PT_LOAD covers the whole crafted file, so a cut anywhere is a truncated file."""
    data = bytes(craft(bits, order, **LIBRARY).data)

    with deadline(5):
        for size in range(len(data)):
            with pytest.raises(ElfError):
                elf.parse_elf(data[:size])


@pytest.mark.parametrize(("bits", "order"), [(32, "<"), (32, ">"), (64, "<"), (64, ">")])
def test_random_damage_gives_a_result_or_elf_error(deadline, bits, order):
    """Flipped bits and bytes anywhere in a file: a result or ElfError, never another exception or a hang."""
    data = bytes(craft(bits, order, **LIBRARY).data)
    rng = random.Random(f"{bits}{order}")
    outcomes = {"parsed": 0, "refused": 0}

    with deadline(10):
        for _ in range(2000):
            damaged = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(damaged))
                damaged[at] = (
                    rng.randrange(256) if rng.random() < 0.5 else damaged[at] ^ (1 << rng.randrange(8))
                )
            try:
                elf.parse_elf(bytes(damaged))
                outcomes["parsed"] += 1
            except ElfError:
                outcomes["refused"] += 1

    assert outcomes["parsed"] and outcomes["refused"], outcomes


# ---- what is at the path ------------------------------------------------------------------------


def make_node(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "node"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "chardev":
        os.mknod(path, 0o600 | 0o020000, os.stat("/dev/null").st_rdev)
    elif kind == "symlink":
        (tmp_path / "real").write_bytes(craft().data)
        path.symlink_to("real")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("GLIBC_2.34 libc.so.6\n" * 100)
    return path


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        pytest.param("directory", r"not a regular file \(a directory\)", id="a directory"),
        pytest.param(
            "fifo", r"not a regular file \(a device, FIFO or socket\)", id="a FIFO (must not block)"
        ),
        pytest.param("chardev", r"not a regular file \(a device", id="a character device (never opened)"),
        pytest.param("symlink", "a symbolic link, not followed", id="a symlink to an ELF file"),
        pytest.param("empty", "not an ELF file", id="a 0-byte file"),
        pytest.param("text", "not an ELF file", id="a text file"),
        pytest.param("missing", "No such file or directory", id="missing"),
    ],
)
def test_read_elf_refuses(tmp_path, deadline, kind, problem):
    path = make_node(tmp_path, kind)

    with deadline(1), pytest.raises(ElfError, match=problem) as raised:
        elf.read_elf(str(path))

    assert raised.value.path == str(path)


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        pytest.param("symlink", "a symbolic link, not followed", id="symlink: O_NOFOLLOW refuses it"),
        pytest.param(
            "fifo", r"not a regular file \(a device, FIFO or socket\)", id="FIFO: O_NONBLOCK, then fstat"
        ),
    ],
)
def test_read_elf_refuses_a_node_swapped_in_after_the_look(tmp_path, deadline, kind, problem):
    """Between lstat and open the file can change; open and fstat still refuse it without blocking."""
    path = make_node(tmp_path, kind)
    regular = tmp_path / "regular"
    regular.write_bytes(b"")
    lstat = os.lstat

    with deadline(1), pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            os, "lstat", lambda p, *a, **k: lstat(regular) if str(p) == str(path) else lstat(p, *a, **k)
        )
        with pytest.raises(ElfError, match=problem):
            elf.read_elf(str(path))


def test_not_elf_is_told_apart_from_damaged_elf(tmp_path):
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    damaged = tmp_path / "damaged"
    damaged.write_bytes(craft().data[:100])

    with pytest.raises(ElfError) as not_elf:
        elf.read_elf(str(script))
    with pytest.raises(ElfError) as broken:
        elf.read_elf(str(damaged))

    assert (not_elf.value.not_elf, broken.value.not_elf) == (True, False)


# ---- real Debian trees --------------------------------------------------------------------------


@cache
def elf_files(suite: str) -> tuple[Path, ...]:
    """Every ELF file under lib*/, usr/lib*/, usr/bin and usr/sbin of a tree, symlinks not followed."""
    root = tree(suite)
    tops = [*sorted(root.glob("lib*")), *sorted(root.glob("usr/lib*")), root / "usr/bin", root / "usr/sbin"]
    found = []
    for top in tops:
        if top.is_symlink() or not top.is_dir():
            continue  # merged /usr: lib -> usr/lib is walked once, as usr/lib
        for directory, subdirectories, names in os.walk(top):
            subdirectories.sort()
            for name in sorted(names):
                path = Path(directory, name)
                if path.is_symlink() or not path.is_file():
                    continue
                with path.open("rb") as stream:
                    if stream.read(4) == b"\x7fELF":
                        found.append(path)
    return tuple(found)


def glibc_family(suite: str) -> list[Path]:
    root = tree(suite)
    return [Path(rootfs.resolve(str(root), f"{MULTIARCH}/{name}").host) for name in GLIBC_FAMILY]


def differences(mine: dict, theirs: dict) -> str:
    return "; ".join(
        f"{key}: elf.py {mine[key]!r} != {theirs[key]!r}" for key in mine if mine[key] != theirs[key]
    )


@pytest.mark.parametrize("suite", SUITES)
def test_real_files_agree_with_pyelftools(suite):
    files = elf_files(suite)
    assert len(files) > 500, f"only {len(files)} ELF files found in {tree(suite)}"
    assert set(glibc_family(suite)) <= set(files)

    disagreements = []
    for path in files:
        try:
            mine = facts(elf.read_elf(str(path)))
        except ElfError as exc:
            disagreements.append(str(exc))
            continue
        with path.open("rb") as stream:
            theirs = pyelftools_facts(stream)
        if mine != theirs:
            disagreements.append(f"{path}: {differences(mine, theirs)}")

    assert not disagreements, f"{len(disagreements)} of {len(files)} files:\n" + "\n".join(disagreements[:20])


@pytest.mark.parametrize("suite", SUITES)
def test_real_files_agree_with_readelf(suite):
    sample = [*glibc_family(suite), *elf_files(suite)[::READELF_SAMPLE_EVERY]]
    assert shutil.which("readelf"), "readelf (binutils) is needed as an oracle: run `make apt`"

    disagreements = []
    for path in sample:
        mine, theirs = readelf_shape(elf.read_elf(str(path))), readelf_facts(path)
        if mine != theirs:
            disagreements.append(f"{path}: {differences(mine, theirs)}")

    assert not disagreements, "\n".join(disagreements[:20])


def upstream(version: str) -> tuple[int, ...]:
    """(2, 36) from a Debian version like 2.36-9+deb12u14, or from a version name like GLIBC_2.36."""
    return tuple(int(part) for part in re.match(r"(?:GLIBC_)?(\d+(?:\.\d+)*)", version)[1].split("."))


@pytest.mark.parametrize("suite", SUITES)
def test_glibc_family(suite):
    loader, libc, libm, libpthread, libresolv, libnss_files = (
        elf.read_elf(str(path)) for path in glibc_family(suite)
    )
    packaged = upstream(json.loads((TREES / f"{suite}.manifest.json").read_text())["libc6"])

    assert (loader.kind, loader.interpreter, loader.soname) == (
        elf.SHARED_LIBRARY,
        None,
        "ld-linux-x86-64.so.2",
    )
    assert loader.version_defs[0].name == "ld-linux-x86-64.so.2" and loader.version_defs[0].is_base
    assert {"GLIBC_2.2.5", "GLIBC_PRIVATE"} <= set(loader.defined_versions)
    # libc.so.6 can be run (it prints its version), so it has an interpreter; it is still a library.
    assert (libc.kind, libc.interpreter, libc.soname) == (
        elf.SHARED_LIBRARY,
        "/lib64/ld-linux-x86-64.so.2",
        "libc.so.6",
    )
    assert libc.needed == ["ld-linux-x86-64.so.2"]
    assert [d.name for d in libc.version_defs if d.is_base] == ["libc.so.6"]
    assert {"GLIBC_2.2.5", "GLIBC_2.3", "GLIBC_2.17", "GLIBC_PRIVATE"} <= set(libc.defined_versions)
    newest = max(upstream(v) for v in libc.defined_versions if v.startswith("GLIBC_2"))
    assert (2, 30) <= newest <= packaged, f"libc.so.6 defines up to {newest}, package libc6 is {packaged}"
    assert [n.file for n in libc.version_needs] == ["ld-linux-x86-64.so.2"]
    assert "GLIBC_PRIVATE" in libc.version_needs[0].names
    assert "libc.so.6" in libm.needed and "GLIBC_2.29" in libm.defined_versions
    for info, soname in ((libpthread, "libpthread.so.0"), (libresolv, "libresolv.so.2")):
        assert (info.soname, info.kind, info.machine_name) == (soname, elf.SHARED_LIBRARY, "x86_64")
    assert libnss_files.soname == "libnss_files.so.2"
    assert all(d.hash == elf_hash(d.name) for d in libc.version_defs)


@pytest.mark.parametrize("suite", SUITES)
def test_every_needed_version_is_defined_in_the_tree(suite):
    """A healthy tree: each version a file needs is defined by the library of that soname.

    This is the rule the restore-glibc audit applies to a broken root.
    """
    infos = [elf.read_elf(str(path)) for path in elf_files(suite)]
    defined: dict[str, set[str]] = {}
    for info in infos:
        if info.soname and info.version_defs:
            defined.setdefault(info.soname, set()).update(info.defined_versions)
    ls = next(info for info in infos if info.path.endswith("/usr/bin/ls"))

    missing, checked = [], 0
    for info in infos:
        for need in info.version_needs:
            for version in need.versions:
                assert version.hash == elf_hash(version.name), f"{info.path}: {version}"
                if need.file in defined:
                    checked += 1
                    if version.name not in defined[need.file]:
                        missing.append(f"{info.path}: {need.file} {version.name}")

    assert checked > 1000
    assert not missing, "\n".join(missing[:20])
    assert (ls.kind, ls.interpreter, ls.pie) == (elf.PIE, "/lib64/ld-linux-x86-64.so.2", True)
    assert "libc.so.6" in ls.needed and "libc.so.6" in [n.file for n in ls.version_needs]


def bookworm_libc() -> Path:
    return glibc_family("bookworm")[GLIBC_FAMILY.index("libc.so.6")]


def test_real_libc_from_bytes_and_without_section_headers():
    path = bookworm_libc()
    data = bytearray(path.read_bytes())
    from_path = elf.read_elf(str(path))
    # What sstrip leaves: no section header table at all (e_shoff, e_shnum, e_shstrndx zeroed).
    struct.pack_into("<Q", data, 40, 0)
    struct.pack_into("<HHH", data, 58, 0, 0, 0)

    stripped = elf.parse_elf(bytes(data), "stripped")

    assert facts(stripped) == facts(from_path) == facts(elf.parse_elf(path.read_bytes()))
    assert len(stripped.version_defs) > 30
    assert pyelftools_facts(io.BytesIO(bytes(data)))["verdef"] == [], (
        "pyelftools reads versions from sections"
    )


def test_reads_only_what_it_needs(monkeypatch):
    """A 2 MB libc is parsed from a few blocks: the header, the tables and strings the loader reads."""
    path = bookworm_libc()
    read = []
    pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, size, offset: read.append(size) or pread(fd, size, offset))

    info = elf.read_elf(str(path))

    monkeypatch.undo()
    assert len(info.version_defs) > 30
    assert sum(read) <= 128 * 1024 < path.stat().st_size // 10, f"read {sum(read)} bytes in {len(read)} reads"


def truncation_points(size: int, info: elf.ElfInfo) -> dict[str, int]:
    phdr_end = 64 + 56 * len(info.segments)
    last_load = max(seg.offset + seg.filesz for seg in info.segments if seg.type == PT_LOAD)
    return {
        "64 bytes (the ELF header)": 64,
        "just after the program headers": phdr_end,
        "10%": size // 10,
        "50%": size // 2,
        "90%": size * 9 // 10,
        "one byte short of the last PT_LOAD": last_load - 1,
    }


@pytest.mark.parametrize(
    "point",
    [
        "64 bytes (the ELF header)",
        "just after the program headers",
        "10%",
        "50%",
        "90%",
        "one byte short of the last PT_LOAD",
    ],
)
def test_truncated_libc(tmp_path, deadline, point):
    source = bookworm_libc()
    data = source.read_bytes()
    size = truncation_points(len(data), elf.read_elf(str(source)))[point]
    path = tmp_path / "libc.so.6"
    path.write_bytes(data[:size])

    with deadline(1), pytest.raises(ElfError, match="beyond the end of the file") as raised:
        elf.read_elf(str(path))

    assert str(path) in str(raised.value)


def test_libc_cut_after_its_last_segment_still_reads(tmp_path):
    """Only section headers and non-loaded sections lie past the last PT_LOAD; the loader needs none."""
    source = bookworm_libc()
    info = elf.read_elf(str(source))
    end = max(seg.offset + seg.filesz for seg in info.segments if seg.type == PT_LOAD)
    path = tmp_path / "libc.so.6"
    path.write_bytes(source.read_bytes()[:end])

    assert end < source.stat().st_size
    assert facts(elf.read_elf(str(path))) == facts(info)
