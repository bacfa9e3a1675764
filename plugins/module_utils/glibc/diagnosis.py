# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Diagnose a root's glibc, offline: which glibc it runs, which member of the family is broken, and
where a good copy of each broken member comes from.

The expected state comes from the target's own package database when it has one (the files of
libc6 or glibc, their recorded digests and, for rpm, their link targets), else from the family's
names found in the loader's directories.
Each member is then checked as the loader would meet it: present, a link that stays in the root
and does not dangle, an ELF file of the system's class and machine, and the system's glibc (its
recorded checksum, or the version string glibc writes into libc and ld.so). Nothing here changes
the root: repair.py carries out the plan.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections import Counter
from dataclasses import asdict, dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import elf, ldso
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import digests, installed
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import (
    Database,
    InstalledPackage,
    PackageError,
    PackageFile,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs


class GlibcError(LifelineError):
    """The root's glibc cannot be diagnosed or repaired; the message says why and what to do."""


# Debian architecture names by ELF machine name, to find the libc6 of the system's own architecture.
DPKG_ARCH = {
    "x86_64": "amd64",
    "i386": "i386",
    "aarch64": "arm64",
    "arm": "armhf",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64el",
}
# rpm architecture names by ELF machine name; a 32-bit x86 glibc is built for i686 (older: i586, i386).
RPM_ARCH = {
    "x86_64": ("x86_64",),
    "i386": ("i686", "i586", "i386"),
    "aarch64": ("aarch64",),
    "arm": ("armv7hl", "armv7hnl"),
    "ppc64le": ("ppc64le",),
    "ppc64": ("ppc64",),
    "s390x": ("s390x",),
    "riscv64": ("riscv64",),
}
# The package holding glibc's loader and libc, by package manager.
GLIBC_PACKAGES = {"dpkg": ("libc6", "libc6.1"), "rpm": ("glibc",)}

# Members of the glibc family by file name: the loader, libc and the libraries glibc ships beside it.
FAMILY_NAME = re.compile(
    r"^(ld-linux[\w.-]*\.so\.\d+|ld64\.so\.\d+|ld-[\d.]+\.so"
    r"|lib(c|m|mvec|pthread|dl|rt|resolv|util|anl|nsl|BrokenLocale|thread_db|c_malloc_debug"
    r"|nss_(files|dns|compat|hesiod|db))(-[\d.]+)?\.so(\.[\d.]+)?)$"
)
# Versioned file names of older glibc layouts: libc-2.31.so, ld-2.31.so.
VERSIONED_NAME = re.compile(r"-(\d+\.\d+(?:\.\d+)?)\.so$")
# glibc writes "... stable release version 2.36." into libc.so.6 and (since 2.34 or so) into ld.so.
RELEASE = re.compile(rb"release version (\d+\.\d+(?:\.\d+)?)")
# Suffixes an admin gives a copy renamed away beside the original: libc.so.6.bak, libc.so.6~ ...
RENAMED = re.compile(r"^[.~_-]")
MAX_SCAN = 64 << 20

# Files that make every program of the root load something else; the loader reads them all.
ENVIRONMENT_FILES = (
    "/etc/environment",
    "/etc/profile",
    "/etc/bash.bashrc",
    "/etc/security/pam_env.conf",
)
LD_VARIABLE = re.compile(r"\b(LD_LIBRARY_PATH|LD_PRELOAD)\b\s*(=|DEFAULT=|OVERRIDE=)?\s*\"?([^\"\s;]*)")


@dataclass
class Identity:
    """Which glibc the root runs, and how its files are laid out."""

    version: str  # upstream, "2.36"
    machine: str  # ELF machine name of the system's programs, "x86_64"
    bits: int
    interpreter: str  # the PT_INTERP the system's programs ask for
    libdir: str  # the directory holding libc.so.6 as the package lists it
    layout: str  # "versioned files with soname links" or "soname files"
    merged_usr: bool
    package: str = ""  # "libc6 2.36-9+deb12u14 amd64", "glibc-2.28-42.el8.x86_64"; empty without a database
    database: str = ""  # "rpm sqlite /var/lib/rpm/rpmdb.sqlite"; empty without a package database
    digest: str = ""  # the algorithm of the package's recorded file digests: "md5", "sha256"
    evidence: list[str] = field(default_factory=list)


@dataclass
class Member:
    """One file of the glibc family as the system expects it."""

    path: str  # inside the root, as the package lists it
    kind: str  # "file" or "link"
    digest: str = ""  # the recorded digest of a file; of the file a link leads to, for a link
    algorithm: str = ""  # the digest's algorithm: "md5" (dpkg), "sha256" (rpm), ...
    link: str = ""  # what a link should say ("libc-2.31.so"); empty when unknown
    mode: int = 0o644


@dataclass
class Finding:
    """A member the loader cannot use, or loader configuration pulling in another glibc."""

    path: str
    problem: str  # missing, dangling, escapes, damaged, wrong_arch, foreign, modified, config
    detail: str
    line: int = 0  # for a configuration finding: the line of ``path`` that does it
    renamed_away: list[str] = field(default_factory=list)


@dataclass
class Diagnosis:
    root: str
    identity: Identity
    members: list[Member]
    findings: list[Finding]

    def as_dict(self) -> dict:
        return {
            "root": self.root,
            "glibc": asdict(self.identity),
            "members": len(self.members),
            "findings": [asdict(f) for f in self.findings],
        }


def file_version(host_path: str) -> str:
    """The glibc release a loader or libc file says it belongs to; empty when it does not say."""
    match = VERSIONED_NAME.search(os.path.basename(host_path))
    # libthread_db-1.0.so names its own interface version, not the glibc release it belongs to.
    if match and not os.path.basename(host_path).startswith("libthread_db-"):
        return match.group(1)
    try:
        with open(host_path, "rb") as handle:
            data = handle.read(MAX_SCAN)
    except OSError:
        return ""
    found = RELEASE.search(data)
    return found.group(1).decode() if found else ""


# The directories a system's own glibc lives in; a glibc copy elsewhere (/opt/glibc-2.14) is another
# installation whose files only its own loader loads, so the system's audit does not judge them.
SYSTEM_LIBDIR = re.compile(r"^/(usr/)?lib(32|64|x32)?(/[^/]*-linux-gnu[^/]*)?$")


def glibc_problem(path: str, problem: str) -> bool:
    """Whether a problem the whole-root audit found at ``path`` is the system glibc's own: a member
    of the family not found, a GLIBC_ symbol version missing, an interpreter missing or wrong."""
    if FAMILY_NAME.match(os.path.basename(path)) and not SYSTEM_LIBDIR.match(os.path.dirname(path)):
        return False
    name = os.path.basename(problem.split(":", 1)[0])
    return bool(FAMILY_NAME.match(name)) or "`GLIBC_" in problem or problem.startswith("interpreter ")


# ---- identity ---------------------------------------------------------------------------------

PROGRAMS = ("/bin/sh", "/bin/ls", "/usr/bin/env", "/bin/bash", "/usr/bin/python3", "/sbin/init", "/bin/mount")


def system_programs(root: str) -> list[elf.ElfInfo]:
    """ELF programs of the root that ask for a loader: a few well-known ones, else the first of /usr/bin."""
    found = []
    names = list(PROGRAMS)
    bindir = rootfs.resolve(root, "/usr/bin").host
    with contextlib.suppress(OSError):
        names += ["/usr/bin/" + n for n in sorted(os.listdir(bindir))[:200]]
    for name in names:
        where = rootfs.resolve(root, name)
        if where.escaped or not os.path.isfile(where.host):
            continue
        try:
            info = elf.read_elf(where.host)
        except elf.ElfError:
            continue
        if info.interpreter:
            found.append(info)
        if len(found) >= 12:
            break
    return found


def identify(root: str) -> tuple[Identity, list[Member]]:
    """The root's glibc and the members of its family; raises GlibcError when there is none."""
    programs = system_programs(root)
    if not programs:
        raise GlibcError(
            f"{root}: no dynamically linked program found under /bin, /usr/bin or /sbin, so there is "
            "no glibc to restore (is this the right root? a static or busybox system?)"
        )
    votes = Counter((p.interpreter, p.machine_name, p.bits) for p in programs)
    (interpreter, machine, bits), count = votes.most_common(1)[0]
    evidence = [f"{count} of {len(programs)} system programs ask for {interpreter} ({bits}-bit {machine})"]
    database, pkg = _glibc_package(root, machine, evidence)
    members = []
    if pkg is not None:
        try:
            members = _members_from_package(root, database, pkg)
        except PackageError as exc:
            evidence.append(f"package database unusable for {pkg.label}: {exc}")
            pkg = None
    if pkg is not None:
        version = pkg.upstream
        evidence.append(f"package database ({database.manager} {database.backend}): {pkg.label}")
        package = pkg.label
    else:
        members = _members_from_names(root, machine, bits, interpreter)
        version = ""
        package = ""
    libc = next((m for m in members if os.path.basename(m.path) == "libc.so.6"), None)
    if libc is None:
        raise GlibcError(f"{root}: no libc.so.6 is known to this root (no package lists it, none is present)")
    for member in members:
        if os.path.basename(member.path) in ("libc.so.6", os.path.basename(interpreter)) and not version:
            version = file_version(rootfs.resolve(root, member.path).host)
    if not version:
        raise GlibcError(
            f"{root}: cannot tell which glibc this root runs: no package database entry for glibc and "
            "neither libc.so.6 nor the loader names its release; give glibc_restore_source"
        )
    if pkg is None:
        _expect_versioned_files(root, members, version, machine, bits)
    links = [m for m in members if m.kind == "link"]
    layout = (
        "versioned files with soname links"
        if any(m.path.endswith("libc.so.6") for m in links)
        else "soname files"
    )
    usr = rootfs.resolve(root, "/lib").inside
    identity = Identity(
        version=version,
        machine=machine,
        bits=bits,
        interpreter=interpreter,
        libdir=os.path.dirname(libc.path),
        layout=layout,
        merged_usr=usr.startswith("/usr/"),
        package=package,
        database=f"{database.manager} {database.backend} {database.path}" if pkg is not None else "",
        digest=next((m.algorithm for m in members if m.algorithm), ""),
        evidence=evidence,
    )
    return identity, members


def _glibc_package(
    root: str, machine: str, evidence: list[str]
) -> tuple[Database | None, InstalledPackage | None]:
    """The root's package database and its glibc package of the system's architecture, if any.

    A database that cannot be read is said so in the evidence: the family is then found by its names,
    and nothing is taken for "glibc is not installed".
    """
    try:
        database = installed.database_of(root)
    except PackageError as exc:
        evidence.append(str(exc))
        return None, None
    if database is None:
        evidence.append("no package database (neither dpkg's nor rpm's): the family is found by its names")
        return None, None
    names = GLIBC_PACKAGES.get(database.manager, ())
    arches = (DPKG_ARCH.get(machine, ""),) if database.manager == "dpkg" else RPM_ARCH.get(machine, ("",))
    try:
        for name in names:
            for arch in arches:
                found = database.find(name, arch)
                if found:
                    return database, found[0]
    except PackageError as exc:
        evidence.append(f"{installed.UNREADABLE}{exc}")
        return None, None
    evidence.append(
        f"the {database.manager} database ({database.backend} {database.path}) lists no "
        f"{' or '.join(names)} of {machine}"
    )
    return database, None


def _members_from_package(root: str, database: Database, pkg: InstalledPackage) -> list[Member]:
    """The family's files and links as the package lists them: digests as recorded, link targets as
    recorded (rpm) or found from the files' sonames (dpkg records none)."""
    listed = [
        f
        for f in database.files(pkg)
        if FAMILY_NAME.match(os.path.basename(f.path)) and not f.ghost and f.kind in ("", "file", "link")
    ]
    # dpkg records no file types: a path with a recorded md5 is a file, one without may be a link.
    files = {f.path: _file_member(f) for f in listed if f.kind == "file" or (f.kind == "" and f.digest)}
    members = list(files.values())
    by_name: dict[str, Member] = {}
    for member in files.values():
        soname = _soname(root, member.path)
        if soname:
            by_name.setdefault(soname, member)
        by_name.setdefault(_stem(os.path.basename(member.path)), member)
    for entry in listed:
        if entry.path in files:
            continue
        if entry.link:
            target = files.get(os.path.normpath(os.path.join(os.path.dirname(entry.path), entry.link)))
            members.append(_link_member(entry.path, entry.link, target))
            continue
        if entry.kind == "link":
            continue  # a link whose target the database did not record: nothing to restore it to
        name = os.path.basename(entry.path)
        target = by_name.get(name) or by_name.get(_stem(name))
        if target is None:
            continue  # a directory, or a link whose file this package does not ship
        same_dir = os.path.dirname(target.path) == os.path.dirname(entry.path)
        members.append(
            _link_member(entry.path, os.path.basename(target.path) if same_dir else target.path, target)
        )
    return members


def _file_member(entry: PackageFile) -> Member:
    return Member(
        path=entry.path,
        kind="file",
        digest=entry.digest,
        algorithm=entry.algorithm,
        mode=(entry.mode & 0o7777) or 0o644,
    )


def _link_member(path: str, link: str, target: Member | None) -> Member:
    return Member(
        path=path,
        kind="link",
        digest=target.digest if target else "",
        algorithm=target.algorithm if target else "",
        link=link,
    )


def _stem(name: str) -> str:
    """What a soname link and its versioned file share, for when the file is gone and its soname
    cannot be read: libc.so.6 and libc-2.31.so -> libc; ld-linux-x86-64.so.2 and ld-2.31.so -> ld."""
    stem = re.split(r"-[\d.]+\.so$|\.so(\.|$)", name, maxsplit=1)[0]
    return "ld" if stem.startswith("ld-linux") or stem.startswith("ld64") else stem


def _soname(root: str, path: str) -> str:
    try:
        return elf.read_elf(rootfs.resolve(root, path).host).soname or ""
    except (elf.ElfError, rootfs.RootError):  # a member that is now a link loop has no soname to read
        return ""


def _members_from_names(root: str, machine: str, bits: int, interpreter: str) -> list[Member]:
    """The family as found in the loader's directories, for roots without a dpkg database.

    A name seen only as a renamed-away copy (libc.so.6.bak) still counts: it is the member that went.
    """
    members: dict[str, Member] = {}
    for directory in ldso.system_dirs(root, machine, bits == 64):
        where = rootfs.resolve(root, directory)
        try:
            names = sorted(os.listdir(where.host))
        except OSError:
            continue
        for name in names:
            base = name
            if not FAMILY_NAME.match(name):
                stem = next((n for n in _soname_names(name) if FAMILY_NAME.match(n)), "")
                if not stem:
                    continue
                base = stem
            path = os.path.join(where.inside, base)
            if path in members:
                continue
            host = os.path.join(where.host, base)
            if not os.path.lexists(host):
                host = os.path.join(where.host, name)  # seen only as the copy: it was what the copy is
            kind = "link" if os.path.islink(host) else "file"
            link = os.readlink(host) if kind == "link" else ""
            members[path] = Member(path=path, kind=kind, link=link)
    members.setdefault(interpreter, Member(path=interpreter, kind="link"))
    # libc.so.6 is expected beside the loader's real file even when nothing of it is left.
    libdir = os.path.dirname(rootfs.resolve(root, interpreter).inside)
    if not any(os.path.basename(p) == "libc.so.6" for p in members):
        members[os.path.join(libdir, "libc.so.6")] = Member(
            path=os.path.join(libdir, "libc.so.6"), kind="file"
        )
    return list(members.values())


def _expect_versioned_files(root: str, members: list[Member], version: str, machine: str, bits: int) -> None:
    """Without a database, a soname link of the versioned layout (libc.so.6 -> libc-2.17.so) should
    lead to the versioned file of the system's release, whatever it says now (a link to a foreign
    glibc under /opt, or nothing at all when it was removed): the file beside it, else the one in
    the loader's directories (Debian's /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-2.31.so)."""
    for member in members:
        if member.kind != "link":
            continue
        here = os.path.dirname(member.path)
        versioned = f"{_stem(os.path.basename(member.path))}-{version}.so"
        for directory in [here, *ldso.system_dirs(root, machine, bits == 64)]:
            candidate = os.path.join(directory, versioned)
            if candidate == member.path or member.link in (versioned, candidate):
                break
            try:
                where = rootfs.resolve(root, candidate)
            except rootfs.RootError:
                continue
            if not where.escaped and os.path.isfile(where.host):
                member.link = versioned if directory == here else candidate
                break


def _soname_names(name: str) -> list[str]:
    """The names a renamed-away copy was renamed from: libc.so.6.bak -> libc.so.6."""
    return [name[:i] for i in range(len(name) - 1, 0, -1) if RENAMED.match(name[i:])]


# ---- checks -----------------------------------------------------------------------------------


def diagnose(root: str) -> Diagnosis:
    identity, members = identify(root)
    findings = []
    system = _system_elf(root, identity)
    for member in members:
        finding = check_member(root, identity, system, member)
        if finding:
            finding.renamed_away = renamed_away(root, member, identity)
            findings.append(finding)
    known = {rootfs.resolve(root, m.path, follow_last=False).inside for m in members}
    if rootfs.resolve(root, identity.interpreter, follow_last=False).inside not in known:
        finding = check_member(root, identity, system, Member(path=identity.interpreter, kind="link"))
        if finding:
            findings.append(finding)
    findings += config_findings(root, identity)
    return Diagnosis(root=root, identity=identity, members=members, findings=findings)


def _system_elf(root: str, identity: Identity) -> elf.ElfInfo | None:
    for info in system_programs(root):
        if info.interpreter == identity.interpreter and info.machine_name == identity.machine:
            return info
    return None


def check_member(root: str, identity: Identity, system: elf.ElfInfo | None, member: Member) -> Finding | None:
    """What keeps the loader from using this member as the system's glibc; None when nothing."""
    path = member.path
    try:
        where = rootfs.resolve(root, path)
    except rootfs.RootError as exc:
        return Finding(path, "dangling", str(exc))
    chain = "; ".join(where.links)
    if not rootfs.lexists(root, path):
        return Finding(path, "missing", f"{path} is missing")
    if where.escaped:
        return Finding(path, "escapes", f"{path} leads out of the root ({chain})")
    try:
        st = os.stat(where.host)
    except OSError:
        return Finding(path, "dangling", f"{path} is a dangling link ({chain})")
    if not stat.S_ISREG(st.st_mode):
        return Finding(path, "damaged", f"{path} is not a regular file (it resolves to {where.inside})")
    try:
        info = elf.read_elf(where.host)
    except elf.ElfError as exc:
        return Finding(path, "damaged", f"{path}: {exc.problem}")
    if system is not None and (info.bits, info.machine) != (system.bits, system.machine):
        return Finding(
            path,
            "wrong_arch",
            f"{path} is a {info.bits}-bit {info.machine_name} file, not {identity.machine}",
        )
    via = f" ({chain})" if chain else ""
    if member.digest:
        actual = digests.digest_of(where.host, member.algorithm)
        if actual == member.digest:
            return None
        version = file_version(where.host)
        if version and version != identity.version:
            return Finding(
                path, "foreign", f"{path} is glibc {version}, the system runs glibc {identity.version}{via}"
            )
        return Finding(path, "modified", f"{path} differs from the file the package installed{via}")
    version = file_version(where.host)
    if version and version != identity.version:
        return Finding(
            path, "foreign", f"{path} is glibc {version}, the system runs glibc {identity.version}{via}"
        )
    return None


def renamed_away(root: str, member: Member, identity: Identity) -> list[str]:
    """Copies of the member renamed away beside it (libc.so.6.bak) that hold the system's glibc."""
    where = rootfs.resolve(root, os.path.dirname(member.path))
    name = os.path.basename(member.path)
    try:
        names = sorted(os.listdir(where.host))
    except OSError:
        return []
    copies = []
    for other in names:
        if not other.startswith(name) or other == name or not RENAMED.match(other[len(name) :]):
            continue
        inside = os.path.join(where.inside, other)
        if good_copy(root, inside, member, identity):
            copies.append(inside)
    return copies


def good_copy(root: str, inside: str, member: Member, identity: Identity) -> bool:
    """Whether the file at ``inside`` can stand in for the member: its checksum, else its release."""
    try:
        where = rootfs.resolve(root, inside)
    except rootfs.RootError:  # a copy that is a link loop is no copy
        return False
    if where.escaped or not os.path.isfile(where.host):
        return False
    if member.digest:
        return digests.digest_of(where.host, member.algorithm) == member.digest
    try:
        elf.read_elf(where.host)
    except elf.ElfError:
        return False
    return file_version(where.host) in ("", identity.version)


# ---- loader configuration -------------------------------------------------------------------


def config_findings(root: str, identity: Identity) -> list[Finding]:
    """ld.so.conf directories, ld.so.preload entries and system-wide LD_* settings that bring in
    a glibc other than the system's."""
    findings = []
    conf, _notes = ldso.read_ld_so_conf(root)
    # The system's own library directories are checked member by member, never disabled.
    own = {
        rootfs.resolve(root, d).inside for d in ldso.system_dirs(root, identity.machine, identity.bits == 64)
    }
    own.add(rootfs.resolve(root, identity.libdir).inside)
    for entry in conf:
        if _inside(root, entry.path) in own:
            continue
        foreign = foreign_glibc_in(root, entry.path, identity)
        if foreign:
            conf_file, _colon, number = entry.source.rpartition(":")
            findings.append(
                Finding(
                    conf_file,
                    "config",
                    f"{entry.source}: {entry.path} holds {foreign}, searched before the system's glibc",
                    line=int(number or 0),
                )
            )
    preload = "/etc/ld.so.preload"
    try:
        text = rootfs.read_text(root, preload, limit=64 * 1024)
    except rootfs.RootError:
        text = ""
    for number, line in enumerate(text.splitlines(), 1):
        for word in line.split("#", 1)[0].replace(":", " ").split():
            problem = preload_problem(root, word, identity)
            if problem:
                findings.append(
                    Finding(preload, "config", f"{preload}:{number}: {word} {problem}", line=number)
                )
    for source, number, value in environment_settings(root):
        for directory in value.split(":"):
            if not directory.startswith("/") or _inside(root, directory) in own:
                continue
            foreign = foreign_glibc_in(root, directory, identity)
            if foreign:
                findings.append(
                    Finding(
                        source,
                        "config",
                        f"{source}:{number}: LD_LIBRARY_PATH names {directory}, which holds {foreign}",
                        line=number,
                    )
                )
    return findings


def _inside(root: str, path: str) -> str:
    """Where ``path`` leads inside the root; '' for a link loop (which the loader just skips)."""
    try:
        return rootfs.resolve(root, path).inside
    except rootfs.RootError:
        return ""


def foreign_glibc_in(root: str, directory: str, identity: Identity) -> str:
    """'glibc X (libc.so.6)' when the directory holds a libc or loader of another release."""
    for name in ("libc.so.6", os.path.basename(identity.interpreter)):
        try:
            where = rootfs.resolve(root, os.path.join(directory, name))
        except rootfs.RootError:
            continue
        if where.escaped or not os.path.isfile(where.host):
            continue
        version = file_version(where.host)
        if version and version != identity.version:
            return f"glibc {version} ({name})"
    return ""


def preload_problem(root: str, path: str, identity: Identity) -> str:
    try:
        where = rootfs.resolve(root, path)
    except rootfs.RootError:
        return "is a link loop (every program prints an error about it)"
    if where.escaped:
        return "leads out of the root"
    if not os.path.exists(where.host):
        return "is missing (every program prints an error about it)"
    if FAMILY_NAME.match(os.path.basename(where.inside)):
        version = file_version(where.host)
        if version and version != identity.version:
            return f"is glibc {version}, the system runs glibc {identity.version}"
    return ""


def environment_settings(root: str) -> list[tuple[str, int, str]]:
    """(file, line, value) of LD_LIBRARY_PATH settings in the files every login reads."""
    files = list(ENVIRONMENT_FILES)
    profile_d = rootfs.resolve(root, "/etc/profile.d")
    with contextlib.suppress(OSError):
        files += [f"/etc/profile.d/{n}" for n in sorted(os.listdir(profile_d.host)) if n.endswith(".sh")]
    found = []
    for path in files:
        try:
            text = rootfs.read_text(root, path, limit=1 << 20)
        except rootfs.RootError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for match in LD_VARIABLE.finditer(line):
                if match.group(1) == "LD_LIBRARY_PATH" and match.group(3):
                    found.append((path, number, match.group(3)))
    return found
