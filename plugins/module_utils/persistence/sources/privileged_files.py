# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: setuid and setgid files and files with capabilities (the ``security.capability``
extended attribute), found by a bounded walk of the root's usual trees.

The walk never follows a link, never leaves the filesystem of the tree it started in, and never
enters the quarantine directory (whose files are already held). Each file is an item with the traits
"setuid", "setgid", "capability" and "capability:<name>" for each capability it grants, plus what
its package says: "checksum-mismatch" when its content is no longer the packaged one, and
"mode-changed" when its package shipped it without the setuid or setgid bit it has now (rpm records
modes; on dpkg the .deb apt kept in its cache does, and dpkg-statoverride's list names the legitimate
changes).
"""

from __future__ import annotations

import os
import posixpath
import stat
import struct

from ansible_collections.lifeline.rescue.plugins.module_utils.host import forked
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import integrity as package_integrity
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import database as dpkgdb
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    records as quarantine_records,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

KIND = "privileged_file"
TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/etc", "/var", "/srv")
TREES += ("/home", "/root", "/tmp")
# A busy server holds a few hundred thousand files in these trees; past this the walk stops, noted.
MAX_WALKED = 2_000_000
MAX_WALK_DEPTH = 40
# A walk of a few hundred thousand files takes seconds; one this long is stuck (a hung disk).
WALK_TIMEOUT = 600
CAPABILITY_XATTR = "security.capability"
# The kernel's trees (on a live root) and the quarantine, whose files are already held.
NEVER_WALKED = frozenset({"/", "/proc", "/sys", "/dev", "/run", quarantine_records.DEFAULT_QUARANTINE_DIR})
SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID
EXECUTABLE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
# Other systems' files kept inside this one: container images and their layers, machine and build
# chroots. Their su and passwd are setuid as their own packages shipped them, and no package of
# this root lists them; they run inside those systems, not on this one. Other sources read what
# makes them start (the containers source).
OTHER_SYSTEMS = (
    "/var/lib/docker",
    "/var/lib/containers",
    "/var/lib/containerd",
    "/var/lib/buildkit",
    "/var/lib/rancher",
    "/var/lib/lxc",
    "/var/lib/lxd",
    "/var/lib/incus",
    "/var/lib/machines",
    "/var/lib/snapd",
    "/var/lib/schroot",
    "/var/lib/mock",
    "/var/cache/pbuilder",
    "/var/chroot",
    "/srv/chroot",
)
HOME_OTHER_SYSTEMS = (".local/share/containers",)

# linux/capability.h, by bit number.
CAPABILITIES = (
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
)
_VFS_CAP_REVISION_MASK = 0xFF000000
_VFS_CAP_FLAGS_EFFECTIVE = 0x000001
# vfs_cap_data revisions -> how many (permitted, inheritable) 32-bit pairs follow magic_etc.
_VFS_CAP_SETS = {0x01000000: 1, 0x02000000: 2, 0x03000000: 2}


def capability_names(value: bytes) -> tuple[list[str], bool] | None:
    """(names of the capabilities a vfs_cap_data value grants, permitted or inheritable, whether
    they are effective at once); None when the value is no vfs_cap_data the kernel would read."""
    if len(value) < 4:
        return None
    (magic,) = struct.unpack_from("<I", value)
    sets = _VFS_CAP_SETS.get(magic & _VFS_CAP_REVISION_MASK)
    if sets is None or len(value) < 4 + 8 * sets:
        return None
    bits = 0
    for index in range(sets):
        permitted, inheritable = struct.unpack_from("<II", value, 4 + 8 * index)
        bits |= (permitted | inheritable) << (32 * index)
    names = [
        CAPABILITIES[bit] if bit < len(CAPABILITIES) else f"cap_{bit}" for bit in range(64) if bits >> bit & 1
    ]
    return names, bool(magic & _VFS_CAP_FLAGS_EFFECTIVE)


def begin(reader: RootReader) -> None:
    """Start the walk in a forked copy of this process: it needs nothing the other sources find,
    and is the scan's longest read after the hashing."""
    if hasattr(os, "fork"):
        reader.started[KIND] = forked.ForkedWork(lambda: _walk_noted(reader), WALK_TIMEOUT)


def collect(reader: RootReader) -> None:
    overrides: dict[str, tuple[str, str, int]] = {}
    if reader.package_manager == "dpkg":
        try:
            overrides = dpkgdb.statoverrides(reader.root)
        except PackageError as exc:
            reader.note(KIND, dpkgdb.STATOVERRIDE, str(exc))
    for path, st, capability in _walked(reader):
        _item(reader, path, st, capability, overrides)


def _walked(reader: RootReader) -> list[tuple[str, os.stat_result, bytes]]:
    """The walk's findings: the forked walk's when it brought them back, else walked here."""
    started = reader.started.pop(KIND, None)
    if started is not None:
        try:
            found, notes = started.result()
        except forked.ForkTimeout as exc:
            reader.note(KIND, "/", f"the walk for setuid, setgid and capable files {exc}: none is listed")
            return []
        except forked.ForkError:
            pass  # walked here instead
        else:
            reader.notes += notes
            return found
    return walk(reader)


def _walk_noted(reader: RootReader) -> tuple[list[tuple[str, os.stat_result, bytes]], list[dict]]:
    noted = len(reader.notes)
    found = walk(reader)
    return found, reader.notes[noted:]


def walk(reader: RootReader) -> list[tuple[str, os.stat_result, bytes]]:
    """(path inside the root, lstat, capability xattr or b"") of every setuid, setgid or capable
    regular file of the usual trees."""
    found: list[tuple[str, os.stat_result, bytes]] = []
    # Directories by (device, inode): a tree a link makes reachable twice is walked once.
    walked: set[tuple[int, int]] = set()
    others = {
        *OTHER_SYSTEMS,
        *(posixpath.join(a.home, d) for a in reader.homes() for d in HOME_OTHER_SYSTEMS),
    }
    pruned = (*NEVER_WALKED, *others)
    for top in TREES:
        resolved = reader.resolved_path(top)
        if resolved == "/":
            reader.note(KIND, top, "a link to the root itself: not walked again")
            continue
        if resolved is None or resolved in NEVER_WALKED:
            continue
        for path, entry in reader.walk(
            KIND,
            top,
            prune=pruned,
            depth=MAX_WALK_DEPTH,
            limit=MAX_WALKED,
            one_filesystem=True,
            walked=walked,
        ):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            # The kernel applies a file's capabilities only when it executes it: a file no one may
            # execute is not asked (a busy server's /usr holds forty thousand files, two thousand
            # of them executable).
            capability = _capability(entry.path) if st.st_mode & EXECUTABLE else b""
            if st.st_mode & SPECIAL_BITS or capability:
                found.append((path, st, capability))
    return found


def _capability(host: str) -> bytes:
    try:
        return os.getxattr(host, CAPABILITY_XATTR, follow_symlinks=False)
    except OSError:
        return b""


def _item(reader: RootReader, path: str, st: os.stat_result, capability: bytes, overrides: dict) -> None:
    mode = st.st_mode
    traits = set()
    described = [f"mode {stat.S_IMODE(mode):04o}, owner {reader.uid_names.get(st.st_uid, st.st_uid)}"]
    if mode & stat.S_ISUID:
        traits.add("setuid")
    if mode & stat.S_ISGID:
        traits.add("setgid")
    if capability:
        traits.add("capability")
        decoded = capability_names(capability)
        if decoded is None:
            described.append(f"a {CAPABILITY_XATTR} value the kernel does not read ({capability.hex()})")
        else:
            names, effective = decoded
            traits.update(f"capability:{name}" for name in names)
            described.append(f"capabilities {','.join(names) or 'none'}{'+ep' if effective else '+p'}")
    integrity = reader.integrity()
    if not reader.unowned(path) and reader.package_database:
        verdict = integrity.verdict(path)
        if verdict.status == package_integrity.MISMATCH:
            traits.add("checksum-mismatch")
            described.append(f"its content is not the one {verdict.package} installed")
        if _mode_changed(integrity, path, mode, overrides):
            traits.add("mode-changed")
            described.append("its package shipped it without this setuid or setgid bit")
    facts = FileFacts(path=path, kind=KIND, resolved=path, st=st)
    executes = reader.resolved_too([path])
    reader.items.append(
        Item(
            KIND,
            facts,
            text="; ".join(described),
            user=reader.uid_names.get(st.st_uid, str(st.st_uid)),
            executes=executes,
            references=executes,
            payload=path,
            traits=frozenset(traits),
        )
    )


def _mode_changed(integrity: package_integrity.Integrity, path: str, mode: int, overrides: dict) -> bool:
    """The file has a setuid or setgid bit its package did not ship it with, and no statoverride
    entry gives it this mode."""
    if any(overrides.get(alias, (0, 0, -1))[2] == stat.S_IMODE(mode) for alias in integrity.aliases(path)):
        return False
    shipped = integrity.shipped_mode(path)
    if shipped is None:
        return False
    return bool(mode & SPECIAL_BITS & ~shipped)
