# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a target's dynamic loader looks for libraries: its ld.so.conf and its built-in directories.

Read offline, inside the target root (rootfs), the way ldconfig reads them: comments, ``include``
lines with glob patterns (relative ones against the including file's directory, matches sorted),
and the compiled-in system directories, which on Debian are the multiarch ones.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

# A configuration that includes itself, directly or not, must end somewhere.
MAX_INCLUDE_DEPTH = 16

# Debian's multiarch triplets by ELF machine name (and byte order where it matters).
MULTIARCH = {
    "x86_64": "x86_64-linux-gnu",
    "i386": "i386-linux-gnu",
    "aarch64": "aarch64-linux-gnu",
    "arm": "arm-linux-gnueabihf",
    "ppc64le": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu",
    "riscv": "riscv64-linux-gnu",
    "mips64el": "mips64el-linux-gnuabi64",
}


@dataclass(frozen=True)
class ConfDir:
    """A library directory named by the target's loader configuration."""

    path: str  # as the target sees it
    source: str  # "FILE:LINE" it came from


def read_ld_so_conf(root: str, conf: str = "/etc/ld.so.conf") -> tuple[list[ConfDir], list[str]]:
    """(directories in search order, first mention wins; problems found) of the target's ld.so.conf."""
    dirs: list[ConfDir] = []
    problems: list[str] = []
    _read_conf(root, conf, dirs, problems, depth=0, seen=set())
    unique, named = [], set()
    for entry in dirs:
        if entry.path not in named:
            named.add(entry.path)
            unique.append(entry)
    return unique, problems


def _read_conf(
    root: str, conf: str, dirs: list[ConfDir], problems: list[str], depth: int, seen: set[str]
) -> None:
    where = rootfs.resolve(root, conf).inside
    if depth > MAX_INCLUDE_DEPTH or where in seen:
        problems.append(f"{conf} is included again (an include loop); its second inclusion was ignored")
        return
    seen.add(where)
    try:
        text = rootfs.read_text(root, conf)
    except rootfs.RootError as exc:
        if depth == 0 or rootfs.lexists(root, conf):
            problems.append(str(exc))
        return
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "include":
            for pattern in words[1:]:
                if not pattern.startswith("/"):
                    pattern = os.path.join(os.path.dirname(conf), pattern)
                for included in glob_inside(root, pattern):
                    _read_conf(root, included, dirs, problems, depth + 1, seen)
        elif words[0] == "hwcap":
            continue  # obsolete, ignored by ldconfig too
        else:
            # libc5's "dir=TYPE" form still parses; the type is irrelevant to glibc.
            path = os.path.normpath(line.split("=", 1)[0].rstrip("/") or "/")
            dirs.append(ConfDir(path=path, source=f"{conf}:{number}"))


def glob_inside(root: str, pattern: str) -> list[str]:
    """Paths inside the root matching an absolute glob pattern, sorted, never leaving the root."""
    found = ["/"]
    for part in [p for p in pattern.split("/") if p]:
        matches = []
        for base in found:
            if not any(char in part for char in "*?["):
                matches.append(os.path.join(base, part))
                continue
            try:
                names = os.listdir(rootfs.resolve(root, base).host)
            except OSError:
                continue
            matches += [os.path.join(base, n) for n in sorted(names) if fnmatch.fnmatchcase(n, part)]
        found = matches
    return sorted(p for p in found if rootfs.lexists(root, p))


def system_dirs(root: str, machine: str, elf64: bool) -> list[str]:
    """The loader's compiled-in search directories for this machine, judged from the root's layout.

    Debian builds glibc with multiarch directories first; Red Hat-style 64-bit systems use lib64.
    """
    triplet = MULTIARCH.get(machine)
    if triplet and os.path.isdir(rootfs.resolve(root, f"/lib/{triplet}").host):
        return [f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib", "/usr/lib"]
    if elf64 and os.path.isdir(rootfs.resolve(root, "/lib64").host):
        return ["/lib64", "/usr/lib64"]
    return ["/lib", "/usr/lib"]
