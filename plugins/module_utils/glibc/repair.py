# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan and carry out the repair of a diagnosed glibc (glibc.Diagnosis).

Each broken member gets its good content from the first source that has it, in this order: the
root's own file the link should lead to (libc.so.6 -> libc-2.31.so), a copy renamed away beside
it (libc.so.6.bak), the root's package caches (apt's; yum's, dnf's and zypper's), a package file
the user gives (.deb or .rpm). A restored file must match the digest its package database (or, with
no database, its package file) records. Files are restored before the links that lead to them;
every replaced file or link is backed up first; loader configuration that pulls in another glibc is
commented out, not deleted.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import stat
from dataclasses import asdict, dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import diagnosis as glibc
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc.diagnosis import GlibcError
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import archives, digests
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import debfile
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg.debfile import DebArchive
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import (
    PackageError,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm.rpmfile import RpmArchive
from ansible_collections.lifeline.rescue.plugins.module_utils.target import accounts, rootfs, safewrite

# Where each package manager keeps the packages it downloaded: (directory, how deep, file pattern).
PACKAGE_CACHES = {
    "dpkg": (("/var/cache/apt/archives", 0, "libc6*.deb"),),
    "rpm": (
        ("/var/cache/yum", 4, "glibc-[0-9]*.rpm"),  # yum: <arch>/<release>/<repo>/packages/
        ("/var/cache/dnf", 2, "glibc-[0-9]*.rpm"),  # dnf: <repo>-<hash>/packages/
        ("/var/cache/libdnf5", 2, "glibc-[0-9]*.rpm"),  # dnf5: <repo>-<hash>/packages/
        ("/var/cache/zypp/packages", 4, "glibc-[0-9]*.rpm"),  # zypper: <repo>/<arch>/
    ),
}
PACKAGE_FILES = ("libc6*.deb", "glibc-[0-9]*.rpm")
# A cache is walked this far at most: a hostile root's cache may hold millions of entries.
MAX_CACHE_ENTRIES = 100_000
DISABLED = "# lifeline: disabled, it brings in another glibc: "


@dataclass
class Action:
    """One change to the root, described before it is made."""

    path: str  # inside the root
    action: str  # relink, restore, disable
    source: str  # where the good content comes from, in words
    before: str
    after: str
    digest: str = ""  # the digest the restored file must have, when recorded
    algorithm: str = ""  # its algorithm: "md5" (dpkg), "sha256" (rpm), ...
    origin: str = ""  # the file the content comes from (inside the root for the cache and copies)
    backup: str = ""
    line: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PackageSource:
    """A package file that holds the system's own glibc (same package, version, architecture)."""

    path: str  # inside the root for a cache, on the rescuer for the user's file
    where: str  # "package cache" or "package file"
    archive: DebArchive | RpmArchive


def describe(root: str, path: str, algorithm: str = "md5") -> str:
    """What is at ``path`` now, in a few words, for the before side of an action."""
    try:
        host = safewrite.host_path(root, path)
    except safewrite.WriteError as exc:
        return str(exc)
    if os.path.islink(host):
        return f"link -> {os.readlink(host)}"
    if os.path.isfile(host):
        return f"file, {algorithm} {digests.digest_of(host, algorithm)}"
    return "missing" if not os.path.lexists(host) else "not a file"


def package_files(root: str, diagnosis: glibc.Diagnosis, source: str) -> list[PackageSource]:
    """The package files holding this system's glibc: the root's caches first, then ``source``.

    A ``source`` of another package, version or architecture is refused with a clear error; the
    caches' other versions are passed over.
    """
    found = []
    for inside, host in cached_packages(root, _manager(diagnosis.identity)):
        try:
            archive = archives.open_package(host)
        except PackageError:
            continue
        if not mismatch(archive, diagnosis.identity):
            found.append(PackageSource(inside, "package cache", archive))
    if source:
        for path in _source_files(source):
            try:
                archive = archives.open_package(path)
            except PackageError as exc:
                raise GlibcError(f"glibc_restore_source: {exc}") from exc
            wrong = mismatch(archive, diagnosis.identity)
            if wrong:
                raise GlibcError(
                    f"glibc_restore_source {path} {wrong}: give the package of the target's own glibc"
                )
            found.append(PackageSource(path, "package file", archive))
    return found


def _manager(identity: glibc.Identity) -> str:
    """The root's package manager ("dpkg", "rpm"), or "" when it has no database."""
    return identity.database.split(" ", 1)[0]


def cached_packages(root: str, manager: str) -> list[tuple[str, str]]:
    """(path inside the root, path on the rescuer) of each glibc package file in the root's package
    caches, newest name last; every cache when the manager is unknown. Links are never followed:
    a cache entry leading out of the root is no package of the root's."""
    found = []
    caches = PACKAGE_CACHES.get(manager) or tuple(c for m in PACKAGE_CACHES.values() for c in m)
    seen = 0
    for base, depth, pattern in caches:
        try:
            where = rootfs.resolve(root, base)
        except rootfs.RootError:
            continue
        if where.escaped or not os.path.isdir(where.host):
            continue
        for top, dirs, names in os.walk(where.host):
            level = os.path.relpath(top, where.host).count(os.sep) + (top != where.host)
            if level >= depth:
                dirs[:] = []
            seen += len(dirs) + len(names)
            if seen > MAX_CACHE_ENTRIES:
                return found
            for name in sorted(names):
                host = os.path.join(top, name)
                if fnmatch.fnmatch(name, pattern) and stat.S_ISREG(os.lstat(host).st_mode):
                    found.append((where.inside + host[len(where.host) :], host))
    return found


def _source_files(source: str) -> list[str]:
    if os.path.isdir(source):
        found = sorted(p for pattern in PACKAGE_FILES for p in glob.glob(os.path.join(source, pattern)))
        if not found:
            raise GlibcError(
                f"glibc_restore_source {source} is a directory without libc6*.deb or glibc-*.rpm files"
            )
        return found
    if not os.path.isfile(source):
        raise GlibcError(f"glibc_restore_source {source} does not exist on the host running the repair")
    return [source]


def mismatch(archive, identity: glibc.Identity) -> str:
    """Why the package file is not the system's glibc, in words; empty when it is."""
    pkg = archive.identity
    have = f"is {pkg.label}"
    manager = _manager(identity)
    if manager and pkg.manager != manager:
        kind = {"dpkg": "a Debian package", "rpm": "an rpm package"}
        return f"{have}, {kind.get(pkg.manager, pkg.manager)}; the target's packages are {manager}'s"
    if pkg.name not in glibc.GLIBC_PACKAGES.get(pkg.manager, ()):
        return f"{have}, not a glibc package ({' or '.join(glibc.GLIBC_PACKAGES.get(pkg.manager, ()))})"
    if identity.package:
        if identity.package != pkg.label:
            return f"{have}, the target has {identity.package}"
        return ""
    arches = (
        (glibc.DPKG_ARCH.get(identity.machine, pkg.arch),)
        if pkg.manager == "dpkg"
        else glibc.RPM_ARCH.get(identity.machine, (pkg.arch,))
    )
    if pkg.upstream != identity.version or pkg.arch not in arches:
        return f"{have}, the target runs glibc {identity.version} on {identity.machine}"
    return ""


def plan(root: str, diagnosis: glibc.Diagnosis, source: str = "") -> list[Action]:
    """The actions that repair every finding; raises GlibcError naming a member no source can mend."""
    by_path = {m.path: m for m in diagnosis.members}
    broken = {f.path: f for f in diagnosis.findings if f.problem != "config"}
    sources: list[PackageSource] | None = None
    actions: list[Action] = []
    unmendable = []
    # Files first, so that a link planned after them may lead to a file restored before it.
    ordered = sorted(
        broken.values(), key=lambda f: by_path.get(f.path, glibc.Member(f.path, "link")).kind != "file"
    )
    for finding in ordered:
        member = by_path.get(finding.path) or glibc.Member(path=finding.path, kind="link")
        action = _top_level_link(root, diagnosis, member.path) or _relink(
            root, diagnosis, member, broken, actions
        )
        if action is None and finding.renamed_away:
            copy = finding.renamed_away[0]
            action = Action(
                member.path,
                "restore",
                "renamed-away copy",
                "",
                "",
                digest=member.digest,
                algorithm=member.algorithm,
                origin=copy,
            )
        if action is None:
            if sources is None:
                sources = package_files(root, diagnosis, source)
            action = _from_package(member, sources)
        if action is None:
            unmendable.append(finding.detail)
            continue
        action.before = describe(root, member.path, diagnosis.identity.digest or "md5")
        actions.append(action)
    if unmendable:
        raise GlibcError(
            "no good copy found for: " + "; ".join(unmendable) + ". Looked for the root's own files, copies "
            f"renamed away beside them, {_caches_in_words(diagnosis.identity)} of the installed version"
            + (f" and {source}" if source else "")
            + ": give the package file of the target's glibc as glibc_restore_source"
            + (f" ({diagnosis.identity.package})" if diagnosis.identity.package else "")
        )
    disabled = set()
    for finding in diagnosis.findings:
        # One line may name several foreign directories: it is commented out once.
        if finding.problem == "config" and (finding.path, finding.line) not in disabled:
            disabled.add((finding.path, finding.line))
            actions.append(
                Action(
                    finding.path,
                    "disable",
                    "",
                    finding.detail,
                    f"line {finding.line} commented out",
                    line=finding.line,
                )
            )
    return actions


def _top_level_link(root: str, diagnosis: glibc.Diagnosis, path: str) -> Action | None:
    """A merged-/usr root whose top-level directory link is gone (/lib64 -> usr/lib64): put it back,
    when /usr holds what the member needs."""
    parent = os.path.dirname(path)
    if not diagnosis.identity.merged_usr or parent.count("/") != 1 or rootfs.lexists(root, parent):
        return None
    if not rootfs.lexists(root, "/usr" + path):
        return None
    return Action(
        parent, "relink", "the merged /usr layout", "", f"link -> usr{parent}", origin="/usr" + parent
    )


def _relink(
    root: str, diagnosis: glibc.Diagnosis, member: glibc.Member, broken: dict, planned: list[Action]
) -> Action | None:
    """Point a link member back at the root's own file, when that file is good or about to be."""
    if member.kind != "link" or not member.link:
        return None
    target = os.path.normpath(os.path.join(os.path.dirname(member.path), member.link))
    target_member = next((m for m in diagnosis.members if m.path == target), None)
    about_to_be = any(a.path == target for a in planned)
    if not about_to_be:
        if target in broken or not rootfs.lexists(root, target):
            return None
        if not glibc.good_copy(root, target, member, diagnosis.identity):
            return None
    what = "the root's own file" if target_member else "the root's file"
    return Action(member.path, "relink", what, "", f"link -> {member.link}", origin=target)


def _caches_in_words(identity: glibc.Identity) -> str:
    caches = PACKAGE_CACHES.get(_manager(identity)) or tuple(c for m in PACKAGE_CACHES.values() for c in m)
    return ", ".join(f"{base}/{'**/' if depth else ''}{pattern}" for base, depth, pattern in caches)


def _from_package(member: glibc.Member, sources: list[PackageSource]) -> Action | None:
    for package in sources:
        entry = package.archive.members().get(member.path)
        if entry is None:
            continue
        if entry.kind == "link":
            return Action(
                member.path,
                "relink",
                package.where,
                "",
                f"link -> {entry.linkname}",
                origin=package.path,
            )
        if entry.kind in ("file", "hardlink"):
            digest, algorithm = member.digest, member.algorithm
            if not digest:
                digest, algorithm = package.archive.recorded_digest(member.path)
            return Action(
                member.path,
                "restore",
                package.where,
                "",
                "",
                digest=digest,
                algorithm=algorithm,
                origin=package.path,
            )
    return None


def apply(root: str, actions: list[Action], backup_dir: str) -> None:
    """Carry out the plan, backing up first; a restored file whose checksum is wrong is never installed."""
    if not actions:
        return
    opened: dict = {}
    # Every directory the plan writes to is checked before the first write, so a read-only
    # target is refused with nothing changed, backups included.
    for action in actions:
        safewrite.refuse_read_only(os.path.dirname(safewrite.host_path(root, action.path)))
    run_dir = safewrite.backup_dir_for(root, backup_dir)
    for action in actions:
        host = safewrite.host_path(root, action.path)
        safewrite.refuse_read_only(os.path.dirname(host))
        if action.action == "disable":
            _disable_line(root, action, run_dir)
            continue
        if action.action == "relink":
            target = action.after.split("-> ", 1)[1]
            action.backup = safewrite.backup(root, action.path, run_dir)
            safewrite.write_link(host, target)
            continue
        data, mode, uid, gid = _content(root, action, opened)
        algorithm = action.algorithm or "md5"
        digest = digests.new_digest(algorithm)
        digest.update(data)
        actual = digest.hexdigest()
        if action.digest and actual != action.digest:
            raise GlibcError(
                f"{action.source} holds a {action.path} with {algorithm} {actual}, but the package recorded "
                f"{action.digest}: not installed; give a good copy as glibc_restore_source"
            )
        keep = _existing_owner(host)
        if keep:
            mode, uid, gid = keep
        action.backup = safewrite.backup(root, action.path, run_dir)
        safewrite.write_file(host, data, mode, uid, gid)
        action.after = f"file, {algorithm} {actual}" + (
            " (matches the package's record)" if action.digest else ""
        )


def _content(root: str, action: Action, opened: dict) -> tuple[bytes, int, int, int]:
    """(bytes, mode, uid, gid) of the good copy the action names."""
    kind, path = action.source, action.origin
    if kind == "renamed-away copy":
        host = rootfs.resolve(root, path).host
        st = os.stat(host)
        with open(host, "rb") as handle:
            return handle.read(), st.st_mode, st.st_uid, st.st_gid
    if path not in opened:
        host = rootfs.resolve(root, path).host if kind == "package cache" else path
        opened[path] = archives.open_package(host)
    archive = opened[path]
    entry = archive.members()[action.path]
    if isinstance(entry, debfile.Member):
        return archive.read(action.path), entry.mode, entry.uid, entry.gid
    # rpm records owners by name: the target's own accounts say which ids they are.
    users = accounts.ids_by_name(accounts.read_passwd(root) or [])
    uid = 0 if entry.user == "root" else users.get(entry.user, (0, 0))[0]
    gid = 0 if entry.group == "root" else accounts.group_id(root, entry.group) or 0
    return archive.read(action.path), entry.mode, uid, gid


def _existing_owner(host: str) -> tuple[int, int, int] | None:
    """Mode and owner of the regular file being replaced, which the restored one keeps."""
    try:
        st = os.lstat(host)
    except OSError:
        return None
    return (st.st_mode, st.st_uid, st.st_gid) if stat.S_ISREG(st.st_mode) else None


def _disable_line(root: str, action: Action, run_dir: str) -> None:
    where = rootfs.resolve(root, action.path)
    host = where.host
    with open(host, "rb") as handle:
        # Lines numbered as the readers number them (str.splitlines: a form feed or a lone CR ends
        # one too); surrogateescape gives back every byte as it was.
        lines = handle.read().decode("utf-8", "surrogateescape").splitlines(keepends=True)
    index = action.line - 1
    if index >= len(lines) or lines[index].startswith(DISABLED):
        return
    lines[index] = DISABLED + lines[index]
    st = os.stat(host)
    # The file the line is in, not a link leading to it: the backup must hold the text as it was.
    action.backup = safewrite.backup(root, where.inside, run_dir)
    data = "".join(lines).encode("utf-8", "surrogateescape")
    safewrite.write_file(host, data, st.st_mode, st.st_uid, st.st_gid)
