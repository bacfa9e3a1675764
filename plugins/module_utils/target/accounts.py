# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The target's accounts and groups, read from its own /etc/passwd and /etc/group, never the rescuer's."""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

# An account database larger than this is not read (a hostile root's 50 GB /etc/passwd).
MAX_DATABASE = 16 << 20


@dataclass(frozen=True)
class Account:
    """One line of /etc/passwd; uid and gid are -1 where the line does not hold a number."""

    name: str
    uid: int
    gid: int
    home: str = ""
    shell: str = ""
    complete: bool = False  # all seven fields, uid and gid numbers: a line the C library would use


def _number(field: str) -> int:
    return int(field) if field.isdigit() else -1


def parse_passwd(text: str) -> list[Account]:
    """Every line with a name and at least four fields, in file order (the first of a name wins
    when looked up, as getpwnam does); comment lines are skipped."""
    found = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 4 or not fields[0] or fields[0].startswith("#"):
            continue
        uid, gid = _number(fields[2]), _number(fields[3])
        complete = len(fields) >= 7 and uid >= 0 and gid >= 0
        found.append(
            Account(
                fields[0], uid, gid, fields[5] if complete else "", fields[6] if complete else "", complete
            )
        )
    return found


def parse_group(text: str) -> list[tuple[str, int]]:
    """(name, gid) of every line of /etc/group whose gid is a number, in file order."""
    found = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and fields[2].isdigit():
            found.append((fields[0], int(fields[2])))
    return found


def read_passwd(root: str) -> list[Account] | None:
    """The root's accounts; None when its /etc/passwd cannot be read (missing, a link out, too big)."""
    try:
        return parse_passwd(rootfs.read_text(root, "/etc/passwd", limit=MAX_DATABASE))
    except rootfs.RootError:
        return None


def read_group(root: str) -> list[tuple[str, int]] | None:
    """The root's groups; None when its /etc/group cannot be read."""
    try:
        return parse_group(rootfs.read_text(root, "/etc/group", limit=MAX_DATABASE))
    except rootfs.RootError:
        return None


def ids_by_name(accounts: list[Account]) -> dict[str, tuple[int, int]]:
    """uid and gid by user name, the first line of a name winning."""
    found: dict[str, tuple[int, int]] = {}
    for account in accounts:
        found.setdefault(account.name, (account.uid, account.gid))
    return found


def group_id(root: str, name: str) -> int | None:
    """The gid of group ``name`` in the root's /etc/group; None when unknown."""
    return next((gid for group, gid in read_group(root) or [] if group == name), None)
