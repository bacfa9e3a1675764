# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan and carry out the repair of a diagnosed glibc (glibc.Diagnosis).

Each broken member gets its good content from the first source that has it, in this order: the
root's own file the link should lead to (libc.so.6 -> libc-2.31.so), a copy renamed away beside
it (libc.so.6.bak), the root's package cache (/var/cache/apt/archives/libc6_*.deb), a package
file the user gives. A restored file must match the package's recorded checksum when there is
one. Files are restored before the links that lead to them; every replaced file or link is
backed up first; loader configuration that pulls in another glibc is commented out, not deleted.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import asdict, dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import diagnosis as glibc
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc.diagnosis import GlibcError
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import digests
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import database as dpkgdb
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import debfile
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs, safewrite

PACKAGE_CACHE = "/var/cache/apt/archives"
DISABLED = "# lifeline: disabled, it brings in another glibc: "


@dataclass
class Action:
    """One change to the root, described before it is made."""

    path: str  # inside the root
    action: str  # relink, restore, disable
    source: str  # where the good content comes from, in words
    before: str
    after: str
    md5: str = ""  # the checksum the restored file must have, when recorded
    origin: str = ""  # the file the content comes from (inside the root for the cache and copies)
    backup: str = ""
    line: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Deb:
    """A package file that holds the system's own glibc (same package, version, architecture)."""

    path: str
    where: str  # "package cache" or "package file"
    archive: debfile.DebArchive


def describe(root: str, path: str) -> str:
    """What is at ``path`` now, in a few words, for the before side of an action."""
    try:
        host = safewrite.host_path(root, path)
    except safewrite.WriteError as exc:
        return str(exc)
    if os.path.islink(host):
        return f"link -> {os.readlink(host)}"
    if os.path.isfile(host):
        return f"file, md5 {digests.md5_of(host)}"
    return "missing" if not os.path.lexists(host) else "not a file"


def package_files(root: str, diagnosis: glibc.Diagnosis, source: str) -> list[Deb]:
    """The package files holding this system's glibc: the root's cache first, then ``source``.

    A ``source`` of another package, version or architecture is refused with a clear error; the
    cache's other versions are passed over.
    """
    debs = []
    cache = rootfs.resolve(root, PACKAGE_CACHE)
    if not cache.escaped:
        for path in sorted(glob.glob(os.path.join(cache.host, "libc6*.deb"))):
            try:
                deb = debfile.DebArchive(path)
            except dpkgdb.PackageError:
                continue
            if not mismatch(deb, diagnosis.identity):
                debs.append(Deb(os.path.join(PACKAGE_CACHE, os.path.basename(path)), "package cache", deb))
    if source:
        for path in _source_files(source):
            try:
                deb = debfile.DebArchive(path)
            except dpkgdb.PackageError as exc:
                raise GlibcError(f"glibc_restore_source: {exc}") from exc
            wrong = mismatch(deb, diagnosis.identity)
            if wrong:
                raise GlibcError(
                    f"glibc_restore_source {path} {wrong}: give the package of the target's own glibc"
                )
            debs.append(Deb(path, "package file", deb))
    return debs


def _source_files(source: str) -> list[str]:
    if os.path.isdir(source):
        found = sorted(glob.glob(os.path.join(source, "libc6*.deb")))
        if not found:
            raise GlibcError(f"glibc_restore_source {source} is a directory without libc6*.deb files")
        return found
    if not os.path.isfile(source):
        raise GlibcError(f"glibc_restore_source {source} does not exist on the host running the repair")
    return [source]


def mismatch(deb: debfile.DebArchive, identity: glibc.Identity) -> str:
    """Why the package is not the system's glibc, in words; empty when it is."""
    name = deb.control.get("Package", "")
    version = deb.control.get("Version", "")
    arch = deb.control.get("Architecture", "")
    have = f"is {name} {version} {arch}"
    if name not in glibc.GLIBC_PACKAGES:
        return f"{have}, not a glibc package (libc6)"
    if identity.package:
        if identity.package != f"{name} {version} {arch}":
            return f"{have}, the target has {identity.package}"
        return ""
    upstream = dpkgdb.Package(name=name, version=version, arch=arch, status="").upstream
    if upstream != identity.version or arch != glibc.DPKG_ARCH.get(identity.machine, arch):
        return f"{have}, the target runs glibc {identity.version} on {identity.machine}"
    return ""


def plan(root: str, diagnosis: glibc.Diagnosis, source: str = "") -> list[Action]:
    """The actions that repair every finding; raises GlibcError naming a member no source can mend."""
    by_path = {m.path: m for m in diagnosis.members}
    broken = {f.path: f for f in diagnosis.findings if f.problem != "config"}
    debs: list[Deb] | None = None
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
            action = Action(member.path, "restore", "renamed-away copy", "", "", md5=member.md5, origin=copy)
        if action is None:
            if debs is None:
                debs = package_files(root, diagnosis, source)
            action = _from_package(member, debs)
        if action is None:
            unmendable.append(finding.detail)
            continue
        action.before = describe(root, member.path)
        actions.append(action)
    if unmendable:
        raise GlibcError(
            "no good copy found for: " + "; ".join(unmendable) + ". Looked for the root's own files, copies "
            f"renamed away beside them, {PACKAGE_CACHE}/libc6_*.deb of the installed version"
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


def _from_package(member: glibc.Member, debs: list[Deb]) -> Action | None:
    for deb in debs:
        entry = deb.archive.members().get(member.path)
        if entry is None:
            continue
        if entry.kind == "link":
            return Action(member.path, "relink", deb.where, "", f"link -> {entry.linkname}", origin=deb.path)
        if entry.kind in ("file", "hardlink"):
            md5 = member.md5 or deb.archive.md5sums.get(member.path, "")
            return Action(member.path, "restore", deb.where, "", "", md5=md5, origin=deb.path)
    return None


def apply(root: str, actions: list[Action], source: str, backup_dir: str) -> None:
    """Carry out the plan, backing up first; a restored file whose checksum is wrong is never installed."""
    if not actions:
        return
    debs = {}
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
        data, mode, uid, gid = _content(root, action, source, debs)
        digest = digests.new_md5()
        digest.update(data)
        actual = digest.hexdigest()
        if action.md5 and actual != action.md5:
            raise GlibcError(
                f"{action.source} holds a {action.path} with md5 {actual}, but the package recorded "
                f"{action.md5}: not installed; give a good copy as glibc_restore_source"
            )
        keep = _existing_owner(host)
        if keep:
            mode, uid, gid = keep
        action.backup = safewrite.backup(root, action.path, run_dir)
        safewrite.write_file(host, data, mode, uid, gid)
        action.after = f"file, md5 {actual}" + (" (matches the package's record)" if action.md5 else "")


def _content(root: str, action: Action, source: str, debs: dict) -> tuple[bytes, int, int, int]:
    """(bytes, mode, uid, gid) of the good copy the action names."""
    kind, path = action.source, action.origin
    if kind == "renamed-away copy":
        host = rootfs.resolve(root, path).host
        st = os.stat(host)
        with open(host, "rb") as handle:
            return handle.read(), st.st_mode, st.st_uid, st.st_gid
    if path not in debs:
        host = rootfs.resolve(root, path).host if kind == "package cache" else path
        debs[path] = debfile.DebArchive(host)
    deb = debs[path]
    entry = deb.members()[action.path]
    return deb.read(action.path), entry.mode, entry.uid, entry.gid


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
