# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolve an ELF file's libraries the way the target's own glibc loader would, offline.

For each NEEDED name of an object, in glibc's order: the RPATH of the object and of the objects
that loaded it, up to the executable (each only while it has no RUNPATH); the object's own
RUNPATH; the directories of ld.so.conf (what ld.so.cache holds); the loader's built-in
directories. The last two are skipped for an object marked NODEFLIB. A candidate of another ELF
class or machine is passed over, as glibc does. Every path is resolved inside the root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import elf, ldso
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs


@dataclass
class Found:
    """Where one NEEDED name resolved to, or why it did not."""

    name: str
    path: str | None = None  # inside the root, as the loader opened it
    real: str | None = None  # the same after symlinks, inside the root
    how: str = ""  # rpath, runpath, conf, system, path
    passed_over: list[str] = field(default_factory=list)  # candidates of the wrong class or not ELF


@dataclass
class Loaded:
    """One object of a load tree and what each of its NEEDED names resolved to."""

    path: str
    info: elf.ElfInfo
    found: list[Found] = field(default_factory=list)


class RootLoader:
    """The target's loader configuration plus a cache of the ELF files read from its root."""

    def __init__(self, root: str) -> None:
        self.root = root
        conf, self.problems = ldso.read_ld_so_conf(root)
        self.conf_dirs = [d.path for d in conf]
        self._elves: dict[str, elf.ElfInfo | elf.ElfError] = {}
        # Like the files read, where a path leads is taken as fixed for the loader's lifetime: an
        # audit asks for the same interpreter and libraries thousands of times.
        self._real: dict[str, str] = {}
        self._exists: dict[str, bool] = {}
        self._defined: dict[str, frozenset[str]] = {}
        # Searches that depend only on the directories and the kind of object asking: the same for
        # thousands of files of a root, so each is made once.
        self._system: dict[tuple[str, int], list[str]] = {}
        self._searched: dict[tuple, Found] = {}

    def read(self, inside: str, *, canonical: bool = False) -> elf.ElfInfo:
        """The ELF file at ``inside`` (following links within the root); raises ElfError.

        ``canonical``: the caller knows ``inside`` leads through no link (a directory walk that
        follows none found it), so it is not resolved again component by component.
        """
        real = inside if canonical else self.real(inside)
        if real not in self._elves:
            try:
                self._elves[real] = elf.read_elf(rootfs.join(self.root, real))
            except elf.ElfError as exc:
                self._elves[real] = exc
        cached = self._elves[real]
        if isinstance(cached, elf.ElfError):
            raise cached
        return cached

    def real(self, inside: str) -> str:
        """Where ``inside`` leads inside the root, links followed (rootfs.resolve); RootError on a loop."""
        real = self._real.get(inside)
        if real is None:
            real = self._real[inside] = rootfs.resolve(self.root, inside).inside
        return real

    def lexists(self, inside: str) -> bool:
        """rootfs.lexists, asked once per path."""
        exists = self._exists.get(inside)
        if exists is None:
            exists = self._exists[inside] = rootfs.lexists(self.root, inside)
        return exists

    def defined_versions(self, inside: str) -> frozenset[str]:
        """The version names the library at ``inside`` defines (ElfInfo.defined_versions); raises ElfError."""
        real = self.real(inside)
        defined = self._defined.get(real)
        if defined is None:
            defined = self._defined[real] = frozenset(self.read(real, canonical=True).defined_versions)
        return defined

    def search_dirs(self, obj: Loaded, chain: list[Loaded]) -> list[tuple[str, str]]:
        """(directory, why) in the order glibc searches them for a NEEDED name of ``obj``."""
        dirs: list[tuple[str, str]] = []
        if not obj.info.runpath:
            for owner in [obj, *chain]:
                if owner.info.rpath and not owner.info.runpath:
                    dirs += [(d, "rpath") for d in expand(owner.info.rpath, owner.path)]
        if obj.info.runpath:
            dirs += [(d, "runpath") for d in expand(obj.info.runpath, obj.path)]
        if not obj.info.nodeflib:
            dirs += [(d, "conf") for d in self.conf_dirs]
            key = (obj.info.machine_name, obj.info.bits)
            if key not in self._system:
                self._system[key] = ldso.system_dirs(self.root, obj.info.machine_name, obj.info.bits == 64)
            dirs += [(d, "system") for d in self._system[key]]
        return dirs

    def find(self, obj: Loaded, name: str, chain: list[Loaded]) -> Found:
        wanted = (obj.info.bits, obj.info.endian, obj.info.machine)
        if "/" in name:
            # A NEEDED path may use $ORIGIN too (a bundled interpreter's $ORIGIN/../lib/libpython...).
            origin = os.path.dirname(obj.path)
            named = name.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
            path = os.path.normpath(os.path.join(origin, named))
            key: tuple = (name, path, *wanted)
            if key not in self._searched:
                self._searched[key] = self._first_compatible(obj.info, name, [(path, "path")])
        else:
            dirs = self.search_dirs(obj, chain)
            key = (name, tuple(dirs), *wanted)
            if key not in self._searched:
                candidates = [(os.path.join(d, name), why) for d, why in dirs]
                self._searched[key] = self._first_compatible(obj.info, name, candidates)
        cached = self._searched[key]
        return Found(cached.name, cached.path, cached.real, cached.how, list(cached.passed_over))

    def _first_compatible(self, wanted: elf.ElfInfo, name: str, candidates: list[tuple[str, str]]) -> Found:
        found = Found(name=name)
        for path, why in candidates:
            if not self.lexists(path):
                continue
            try:
                info = self.read(path)
            except elf.ElfError as exc:
                found.passed_over.append(f"{path}: {exc.problem}")
                continue
            if not compatible(wanted, info):
                found.passed_over.append(
                    f"{path}: {info.bits}-bit {info.machine_name}, not {wanted.machine_name}"
                )
                continue
            found.path, found.how = path, why
            found.real = self.real(path)
            return found
        return found

    def preloaded(self, info: elf.ElfInfo) -> dict[str, Loaded]:
        """What the loader has mapped before it searches any NEEDED name: itself, the interpreter.

        Keyed by its file name and its soname, the names a NEEDED entry can match it by.
        """
        if not info.interpreter:
            return {}
        try:
            interp = Loaded(path=info.interpreter, info=self.read(info.interpreter))
        except elf.ElfError:
            return {}  # the audit reports the interpreter itself
        names = {os.path.basename(interp.path): interp}
        if interp.info.soname:
            names[interp.info.soname] = interp
        return names

    def load_tree(self, path: str) -> list[Loaded]:
        """Every object the loader would map for ``path``, breadth first as ld.so loads them.

        A NEEDED name that matches an object already loaded (the interpreter's soname, say) is
        that object, as in glibc: it is not searched for again.
        """
        first = Loaded(path=path, info=self.read(path))
        by_name = self.preloaded(first.info)
        loaded = [first, *{id(o): o for o in by_name.values()}.values()]
        by_real: dict[str, Loaded] = {}
        queue: list[tuple[Loaded, list[Loaded]]] = [(first, [])]
        while queue:
            obj, chain = queue.pop(0)
            for name in obj.info.needed:
                if name in by_name:
                    known = by_name[name]
                    obj.found.append(
                        Found(
                            name=name,
                            path=known.path,
                            how="loaded",
                            real=self.real(known.path),
                        )
                    )
                    continue
                result = self.find(obj, name, chain)
                obj.found.append(result)
                if result.path is None or result.real is None:
                    continue
                child = by_real.get(result.real)
                if child is None:
                    child = Loaded(path=result.path, info=self.read(result.path))
                    by_real[result.real] = child
                    loaded.append(child)
                    queue.append((child, [obj, *chain]))
                by_name[name] = child
                if child.info.soname:
                    by_name.setdefault(child.info.soname, child)
        return loaded


def expand(search: str, origin_of: str) -> list[str]:
    """A DT_RPATH/DT_RUNPATH value as directories, $ORIGIN and ${ORIGIN} replaced."""
    origin = os.path.dirname(origin_of)
    dirs = []
    for entry in search.split(":"):
        entry = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
        dirs.append(
            os.path.normpath(entry) if entry.startswith("/") else os.path.normpath(os.path.join("/", entry))
        )
    return dirs


def compatible(a: elf.ElfInfo, b: elf.ElfInfo) -> bool:
    """Whether the loader of ``a`` would accept ``b``: same class, byte order and machine."""
    return (a.bits, a.endian, a.machine) == (b.bits, b.endian, b.machine)
