# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit every ELF file of a root: does each one's interpreter, libraries and symbol versions resolve?

Each file's own needs are resolved the way its loader would (loader.RootLoader) and each version
it needs (GLIBC_2.34, say) is looked up in the version definitions of the library it resolved to,
so "version `GLIBC_2.34' not found" is found offline. Libraries are audited as files themselves,
so a problem deep in a dependency chain shows up at the library that has it.

The cost follows the ELF files, not all the files: each directory is listed once, a file found
there is looked at once (its first bytes, and only a regular file's), and only links and the
libraries' search paths are resolved inside the root.
"""

from __future__ import annotations

import contextlib
import gc
import os
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import elf, loader
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

# Where programs and libraries live on a Linux root; /usr/lib/debug holds debug files, not code.
SCAN_DIRS = (
    "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
    "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32", "/usr/libexec",
    "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/opt",
)  # fmt: skip
SKIP_DIRS = ("/usr/lib/debug",)


@dataclass
class FileReport:
    """What is wrong with one file (nothing, when ``problems`` is empty)."""

    path: str
    kind: str = ""
    interpreter: str | None = None
    libraries: dict[str, str | None] = field(default_factory=dict)  # NEEDED -> path found, None if missing
    problems: list[str] = field(default_factory=list)


@dataclass
class Audit:
    root: str
    files: list[FileReport] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # dangling links and links that climb out of the root
    config_problems: list[str] = field(default_factory=list)

    @property
    def broken(self) -> list[FileReport]:
        return [f for f in self.files if f.problems]

    def summary(self) -> dict:
        return {
            "elf_files": len(self.files),
            "broken_files": len(self.broken),
            "missing_libraries": sum(1 for f in self.files for p in f.libraries.values() if p is None),
            "bad_links": len(self.links),
        }

    def as_dict(self) -> dict:
        return {
            "root": self.root,
            "summary": self.summary(),
            "broken": [asdict(f) for f in self.broken],
            "links": self.links,
            "config_problems": self.config_problems,
        }


def audit_root(root: str, extra_dirs: tuple[str, ...] = ()) -> Audit:
    rl = loader.RootLoader(root)
    result = Audit(root=root, config_problems=list(rl.problems))
    # Nothing writes to the root during an audit: each directory is resolved once for all its files.
    with rootfs.remembered_lookups(), _no_cycle_collection():
        for inside, is_link in walk(root, (*SCAN_DIRS, *extra_dirs)):
            if is_link:
                problem = link_problem(root, inside)
                if problem:
                    result.links.append(problem)
                continue
            # walk() names every other entry by its own path, free of links: nothing to resolve.
            report = audit_file(rl, inside, canonical=True)
            if report:
                result.files.append(report)
    result.files.sort(key=lambda report: report.path)
    result.links.sort()
    return result


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Within the block, no pass of the cycle collector: an audit keeps every file's parse (tens of
    thousands of small objects, none garbage before the end) and the passes over them cost a third
    of its time. Reference counting still frees everything else at once."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def walk(root: str, dirs: tuple[str, ...]) -> Iterator[tuple[str, bool]]:
    """(path inside the root, is a symlink) of every entry under ``dirs`` that is not a directory.

    Each real directory is listed once; what each entry is comes from the listing itself (d_type),
    so a file costs no lookup of its own. Only the ``dirs`` are resolved inside the root: below
    them no link is followed, so every path yielded that is not a link names the file itself.
    """
    seen: set[tuple[int, int]] = set()
    for top in dirs:
        where = rootfs.resolve(root, top)
        try:
            st = os.stat(where.host)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        pending = [(where.host, where.inside)]
        while pending:
            host_dir, inside_dir = pending.pop()
            prefix = inside_dir.rstrip("/") + "/"
            try:
                with os.scandir(host_dir) as listing:
                    entries = list(listing)
            except OSError:
                continue  # unreadable or gone: as os.walk, nothing to audit there
            below = []
            for entry in entries:
                inside = prefix + entry.name
                if inside in SKIP_DIRS:
                    continue
                if entry.is_symlink():
                    yield inside, True
                elif entry.is_dir(follow_symlinks=False):
                    try:
                        sub = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if (sub.st_dev, sub.st_ino) not in seen:
                        seen.add((sub.st_dev, sub.st_ino))
                        below.append((entry.path, inside))
                else:
                    yield inside, False
            pending.extend(reversed(below))


def link_problem(root: str, inside: str) -> str:
    """A sentence when the link at ``inside`` dangles or climbs out of the root; empty when fine."""
    try:
        where = rootfs.resolve(root, inside)
    except rootfs.RootError as exc:
        return str(exc)
    if where.escaped:
        return f"{inside}: climbs out of the root ({'; '.join(where.links)})"
    if not os.path.lexists(where.host):
        return f"{inside}: dangling link ({'; '.join(where.links)})"
    return ""


def audit_file(rl: loader.RootLoader, inside: str, *, canonical: bool = False) -> FileReport | None:
    """The report of one file, or None when it is not an ELF file at all (scripts, data).

    ``canonical``: ``inside`` is known to lead through no link (loader.RootLoader.read).
    """
    try:
        info = rl.read(inside, canonical=canonical)
    except elf.ElfError as exc:
        if exc.not_elf:
            return None
        return FileReport(path=inside, kind="damaged", problems=[f"damaged ELF file: {exc.problem}"])
    report = FileReport(path=inside, kind=info.kind, interpreter=info.interpreter)
    if not info.needed and not info.interpreter:
        return report
    if info.interpreter:
        report.problems += interpreter_problems(rl, info)
    me = loader.Loaded(path=inside, info=info)
    preloaded = rl.preloaded(info)
    found = {}
    for name in info.needed:
        if name in preloaded:
            hit = loader.Found(name=name, path=preloaded[name].path, how="loaded")
        else:
            hit = rl.find(me, name, [])
        report.libraries[name] = hit.path
        found[name] = hit
        if hit.path is None:
            why = f" (passed over: {'; '.join(hit.passed_over)})" if hit.passed_over else ""
            report.problems.append(f"{name}: not found{why}")
    report.problems += version_problems(rl, inside, info, found)
    return report


def interpreter_problems(rl: loader.RootLoader, info: elf.ElfInfo) -> list[str]:
    path = info.interpreter or ""
    if not rl.lexists(path):
        return [f"interpreter {path}: missing"]
    try:
        interp = rl.read(path)
    except elf.ElfError as exc:
        return [f"interpreter {path}: {exc.problem}"]
    if not loader.compatible(info, interp):
        return [f"interpreter {path}: {interp.bits}-bit {interp.machine_name}, not {info.machine_name}"]
    return []


def version_problems(
    rl: loader.RootLoader, inside: str, info: elf.ElfInfo, found: dict[str, loader.Found]
) -> list[str]:
    """Each symbol version the file needs that the library it resolved to does not define.

    Worded as the loader words it: "LIB: version `GLIBC_2.34' not found (required by FILE)".
    """
    problems = []
    for need in info.version_needs:
        hit = found.get(need.file)
        if hit is None or hit.path is None:
            continue  # the missing library itself is already reported
        defined = rl.defined_versions(hit.path)
        for version in need.versions:
            if version.name not in defined and not version.weak:
                problems.append(f"{hit.path}: version `{version.name}' not found (required by {inside})")
    return problems
