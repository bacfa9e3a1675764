# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The accounts a root's packages define, read offline from what the packages installed.

Debian's base-passwd ships the static accounts (/usr/share/base-passwd/passwd.master), Red Hat's
setup package lists them (/usr/share/doc/setup*/uidgid); packages declare the others in sysusers.d
files or create them in their maintainer scripts (dpkg's *.preinst and *.postinst, rpm's %pre and
%post scriptlets, which the rpm database keeps) with adduser, useradd or systemd-sysusers. An account
none of these names was made by hand, or by an intruder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.packages import installed
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

BASE_PASSWD = "/usr/share/base-passwd/passwd.master"
SYSUSERS_DIRS = ("/usr/lib/sysusers.d", "/lib/sysusers.d")
DPKG_INFO = "/var/lib/dpkg/info"
# Maintainer scripts and definition files are small; a larger one is not read.
MAX_SCRIPT = 1 << 20
MAX_SCRIPTS = 20000
# rpm header tags of the install scriptlets (%pre, %post) and of the provides (user(name) since 4.19).
PREIN, POSTIN, PROVIDENAME = 1023, 1024, 1047
# The shell the tools give a system account when a definition names none.
NOLOGIN = "/usr/sbin/nologin"

_CREATES = re.compile(r"\b(?:adduser|useradd|systemd-sysusers|sysusers)\b")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\$?")
_SHELL_OPTION = re.compile(r"(?:--shell[= ]|(?<!\S)-s\s*)[\"']?(/[^\s\"';]+)")
_PROVIDED_USER = re.compile(r"user\(([^)\s]+)\)")


@dataclass(frozen=True)
class Definition:
    """Where a package defines an account, and the login shell it gives (None: not known)."""

    where: str
    shell: str | None = None
    gid: int | None = None


def defined_accounts(
    root: str, owned: Callable[[str], str | None]
) -> tuple[dict[str, Definition], list[str]]:
    """The accounts the packages of ``root`` define, by name, and the problems met reading them.

    ``owned`` names the packages owning a path inside the root (None when none does): a sysusers.d
    file counts only when a package installed it.
    """
    found: dict[str, Definition] = {}
    problems: list[str] = []
    _static(root, found, problems)
    _sysusers(root, owned, found, problems)
    _dpkg_scripts(root, found, problems)
    _rpm_scriptlets(root, found, problems)
    return found, problems


def has_base_definitions(definitions: dict[str, Definition]) -> bool:
    """Whether the root holds the list of its distribution's static accounts (base-passwd's or
    setup's): without it, which system account a package defines cannot be told."""
    return any(d.where.startswith(("base-passwd ", "setup ")) for d in definitions.values())


def _read(root: str, path: str, problems: list[str]) -> str:
    try:
        data = rootfs.read_bytes(root, path, MAX_SCRIPT, missing_ok=True)
    except rootfs.RootError as exc:
        problems.append(str(exc))
        return ""
    return (data or b"").decode("utf-8", "replace")


def _listing(root: str, directory: str) -> list[str]:
    """The names in a directory of the root (sorted, at most MAX_SCRIPTS); [] when there is none."""
    try:
        where = rootfs.resolve(root, directory)
        if where.escaped:
            return []
        names = sorted(os.listdir(where.host))
    except (rootfs.RootError, OSError):
        return []
    return names[:MAX_SCRIPTS]


def _add(found: dict[str, Definition], name: str, definition: Definition) -> None:
    found.setdefault(name, definition)


def _static(root: str, found: dict[str, Definition], problems: list[str]) -> None:
    """base-passwd's master file (Debian) and setup's uidgid list (Red Hat)."""
    for line in _read(root, BASE_PASSWD, problems).splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[0]:
            gid = int(fields[3]) if fields[3].isdigit() else None
            _add(found, fields[0], Definition(f"base-passwd ({BASE_PASSWD})", fields[6], gid))
    for name in _listing(root, "/usr/share/doc"):
        if not name.startswith("setup"):
            continue
        path = f"/usr/share/doc/{name}/uidgid"
        for line in _read(root, path, problems).splitlines():
            # NAME UID GID HOME SHELL PACKAGES; "-" for what a line leaves open.
            words = line.split()
            if len(words) >= 5 and not words[0].startswith("#") and words[1] != "-":
                gid = int(words[2]) if words[2].isdigit() else None
                shell = words[4] if words[4].startswith("/") else None
                _add(found, words[0], Definition(f"setup ({path})", shell, gid))


def _sysusers(
    root: str, owned: Callable[[str], str | None], found: dict[str, Definition], problems: list[str]
) -> None:
    for directory in SYSUSERS_DIRS:
        for name in _listing(root, directory):
            path = f"{directory}/{name}"
            package = owned(path)
            if not name.endswith(".conf") or not package:
                continue
            for user in sysusers_users(_read(root, path, problems)):
                _add(found, user, Definition(f"{package} ({path})", NOLOGIN))


def sysusers_users(text: str) -> list[str]:
    """The users a sysusers.d file creates ("u NAME ..." lines; sysusers gives them no login shell
    unless a later field names one, which lifeline does not trust to be a login shell)."""
    users = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in ("u", "u!"):
            users.append(words[1])
    return users


def _dpkg_scripts(root: str, found: dict[str, Definition], problems: list[str]) -> None:
    for name in _listing(root, DPKG_INFO):
        if name.endswith((".preinst", ".postinst")):
            package = name.rsplit(".", 1)[0].split(":")[0]
            script = f"{DPKG_INFO}/{name}"
            for user, shell in script_accounts(_read(root, script, problems)):
                _add(found, user, Definition(f"{package} ({script})", shell))


def script_accounts(text: str) -> list[tuple[str, str | None]]:
    """(name, shell) of every word a maintainer script that creates accounts names: the script may
    hold the name in a variable, so every word of it counts; the shell is the one an adduser or
    useradd line naming the word gives (--shell, -s), adduser --system's nologin, else unknown."""
    if not _CREATES.search(text):
        return []
    logical = text.replace("\\\n", " ").splitlines()
    shells: dict[str, str | None] = {}
    for line in logical:
        if not re.search(r"\b(?:adduser|useradd)\b", line):
            continue
        shell_option = _SHELL_OPTION.search(line)
        shell = shell_option.group(1) if shell_option else (NOLOGIN if "--system" in line else None)
        for word in _WORD.findall(line):
            shells.setdefault(word, shell)
    return [(word, shells.get(word)) for word in dict.fromkeys(_WORD.findall(text))]


def _rpm_scriptlets(root: str, found: dict[str, Definition], problems: list[str]) -> None:
    try:
        database = installed.database_of(root)
    except PackageError as exc:
        problems.append(str(exc))
        return
    if database is None or database.manager != "rpm" or not hasattr(database, "headers"):
        return
    try:
        headers = database.headers()
    except PackageError as exc:
        problems.append(str(exc))
        return
    for header in headers:
        package = header.string(1000)
        for provided in header.strings(PROVIDENAME):
            user = _PROVIDED_USER.fullmatch(provided)
            if user:
                _add(found, user.group(1), Definition(f"{package} (provides {provided})", NOLOGIN))
        for tag, label in ((PREIN, "%pre"), (POSTIN, "%post")):
            for user, shell in script_accounts(header.string(tag)):
                _add(found, user, Definition(f"{package} ({label} scriptlet)", shell))
