# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The target's accounts and groups, read from its own /etc/passwd and /etc/group, never the rescuer's."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    # What the persistence scan also reads; two accounts are equal by the fields above.
    password: str = field(default="", compare=False)  # "x": the hash is in /etc/shadow
    gecos: str = field(default="", compare=False)
    line: str = field(default="", compare=False)  # the line as the file holds it


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
                fields[0],
                uid,
                gid,
                fields[5] if complete else "",
                fields[6] if complete else "",
                complete,
                fields[1],
                fields[4] if complete else "",
                line,
            )
        )
    return found


@dataclass(frozen=True)
class ShadowEntry:
    """One line of /etc/shadow: ``last_change`` is the day of the last password change (days since
    1970-01-01), None where the field is empty or not a number."""

    name: str
    password: str
    last_change: int | None
    line: str


def parse_shadow(text: str) -> list[ShadowEntry]:
    """Every line of /etc/shadow with a name and a password field, in file order."""
    found = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 2 or not fields[0] or fields[0].startswith("#"):
            continue
        day = fields[2] if len(fields) > 2 else ""
        found.append(ShadowEntry(fields[0], fields[1], int(day) if day.isdigit() else None, line))
    return found


def parse_login_defs(text: str) -> dict[str, str]:
    """The settings of /etc/login.defs ("NAME value" lines; comments and blank lines skipped)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and not words[0].startswith("#"):
            found[words[0]] = words[1]
    return found


def parse_group(text: str) -> list[tuple[str, int]]:
    """(name, gid) of every line of /etc/group whose gid is a number, in file order."""
    found = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] and fields[2].isdigit():
            found.append((fields[0], int(fields[2])))
    return found


def group_members(text: str) -> dict[int, list[str]]:
    """The members listed in /etc/group (the fourth field) of each gid, every line of a gid counted."""
    found: dict[int, list[str]] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] and fields[2].isdigit():
            found.setdefault(int(fields[2]), []).extend(m for m in fields[3].split(",") if m)
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
