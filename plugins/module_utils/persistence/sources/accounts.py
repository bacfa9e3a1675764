# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the accounts of /etc/passwd with what /etc/shadow, /etc/login.defs, the copies shadow-utils
keeps of the previous files (/etc/passwd-, /etc/shadow-) and the root's packages say about them.

Each account is an item whose ``traits`` state what no pattern can read: a second uid 0, a system
account no package defines or whose login shell is not the one its package gives, an empty password,
an account added or changed by the last change of the files. Humans are listed, never alarms by
themselves; an account the quarantine locked (password locked, no login shell) is listed as locked.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import time

from ansible_collections.lifeline.rescue.plugins.module_utils.packages import account_definitions
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.target import accounts, rootfs
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account, ShadowEntry

KIND = "account"
PASSWD, SHADOW, GROUP = "/etc/passwd", "/etc/shadow", "/etc/group"
# What shadow-utils leaves of the files before its last change (commonio's backups).
PASSWD_BACKUP, SHADOW_BACKUP = "/etc/passwd-", "/etc/shadow-"
LOGIN_DEFS = "/etc/login.defs"
# Shells that give no session: an account with one of these cannot log in.
NO_LOGIN_SHELLS = frozenset({"nologin", "false", "true", "sync", "shutdown", "halt"})
# The traits that make an alarm; a locked account keeps none of them (it is listed as "locked").
ALARM_TRAITS = frozenset(
    {
        "uid-0",
        "gid-0",
        "not-defined-by-a-package",
        "login-shell-changed",
        "has-keys",
        "new-since-backup",
        "password-changed",
        "empty-password",
    }
)


def is_login_shell(shell: str) -> bool:
    """True unless the shell is one that gives no session; an empty field means /bin/sh."""
    return posixpath.basename(shell) not in NO_LOGIN_SHELLS


def collect(reader: RootReader) -> None:
    facts = reader.file(KIND, PASSWD)
    if facts is None:
        return
    context = _Context(reader)
    for number, text in reader.text_lines(facts):
        parsed = accounts.parse_passwd(text)
        if not parsed or not parsed[0].complete:
            continue
        account = parsed[0]
        traits, notes = context.judge(account)
        shell = account.shell or "/bin/sh"
        executes = reader.resolved_too([shell]) if shell.startswith("/") else ()
        # A login runs the account's shell: it is the item's command, and its file the payload.
        reader.items.append(
            Item(
                KIND,
                dataclasses.replace(facts, notes=notes),
                number,
                text,
                shell,
                account.name,
                executes=executes,
                references=executes,
                payload=reader.payload(executes),
                traits=frozenset(traits),
            )
        )


class _Context:
    """What judging one account needs from the rest of the root, read once."""

    def __init__(self, reader: RootReader) -> None:
        self.reader = reader
        self.shadow = _first_by_name(accounts.parse_shadow(self._text(SHADOW)))
        self.old_shadow = _first_by_name(accounts.parse_shadow(self._text(SHADOW_BACKUP)))
        old_passwd = self._text(PASSWD_BACKUP, keep_missing=True)
        self.old_passwd = (
            None
            if old_passwd is None
            else {a.name: a for a in reversed(accounts.parse_passwd(old_passwd)) if a.complete}
        )
        self.root_group = accounts.group_members(self._text(GROUP)).get(0, [])
        settings = accounts.parse_login_defs(self._text(LOGIN_DEFS))
        self.sys_uid_max, self.uid_min, self.uid_max = _uid_ranges(
            settings, self._text("/etc/redhat-release")
        )
        self.definitions, problems = account_definitions.defined_accounts(reader.root, reader.package_of)
        for problem in problems:
            reader.note(KIND, "", f"the accounts packages define: {problem}")
        # A root without its distribution's list of static accounts (another distribution, or the
        # list lost) cannot say which system account is one of its own: none is judged by it.
        self.judge_definitions = reader.package_database and account_definitions.has_base_definitions(
            self.definitions
        )

    def _text(self, path: str, *, keep_missing: bool = False) -> str | None:
        try:
            data = rootfs.read_bytes(self.reader.root, path, accounts.MAX_DATABASE, missing_ok=True)
        except rootfs.RootError as exc:
            self.reader.note(KIND, path, str(exc))
            data = None
        if data is None:
            return None if keep_missing else ""
        return data.replace(b"\0", b"").decode("utf-8", "replace")

    def judge(self, account: Account) -> tuple[set[str], list[str]]:
        """The traits of an account and the evidence a report shows with them."""
        traits: set[str] = set()
        notes: list[str] = []
        entry = self.shadow.get(account.name)
        definition = self.definitions.get(account.name)
        login = is_login_shell(account.shell)
        human = self._human(account)
        system = not human and account.uid != 0
        traits.add("human" if human else "system-account" if system else "superuser")
        if login:
            traits.add("login-shell")
        if entry is not None and entry.last_change is not None:
            day = time.strftime("%Y-%m-%d", time.gmtime(entry.last_change * 86400))
            notes.append(f"{SHADOW}: password last changed {day} (day {entry.last_change} since 1970-01-01)")
        notes.append(f"defined by {definition.where}" if definition else "defined by no package")
        if account.uid == 0 and account.name != "root":
            traits.add("uid-0")
        if account.gid == 0 and account.name != "root" and not (definition and definition.gid == 0):
            traits.add("gid-0")
        if account.name != "root" and account.name in self.root_group:
            traits.add("gid-0")
            notes.append(f"a member of root's group (gid 0) in {GROUP}")
        if system and definition is None and self.judge_definitions:
            traits.add("not-defined-by-a-package")
        if not human and login and self._shell_changed(account, definition, notes):
            traits.add("login-shell-changed")
        if not human and login and self._has_keys(account):
            traits.add("has-keys")
            notes.append(f"{account.home}/.ssh holds authorized keys")
        if definition is None and self._changed_since_backup(account, notes):
            traits.add("new-since-backup")
        if human and not self._home_exists(account):
            traits.add("no-home")
            notes.append(f"its home {account.home} does not exist")
        if account.name == "root" and self._password_changed(entry):
            traits.add("password-changed")
            notes.append(
                f"root's password hash differs from the one in {SHADOW_BACKUP} (before the last change)"
            )
        password = _password(account, entry)
        if login and password == "":
            traits.add("empty-password")
            notes.append("the password is empty: a login needs none")
        if not login and password[:1] in ("!", "*") and traits & ALARM_TRAITS:
            traits -= ALARM_TRAITS
            traits.add("locked")
            notes.append("locked: the password is locked and the shell gives no session")
        return traits, notes

    def _human(self, account: Account) -> bool:
        """A person's account: in the range useradd gives people, or living in /home (an account made
        on an older release whose people started at uid 500 keeps its uid)."""
        if account.uid == 0:
            return False
        if self.uid_min <= account.uid <= self.uid_max:
            return True
        return account.home.startswith("/home/") and self._home_owned_by(account)

    def _home_exists(self, account: Account) -> bool:
        try:
            where = rootfs.resolve(self.reader.root, account.home)
            return not where.escaped and os.path.isdir(where.host)
        except rootfs.RootError:
            return False

    def _home_owned_by(self, account: Account) -> bool:
        try:
            where = rootfs.resolve(self.reader.root, account.home)
            return not where.escaped and os.stat(where.host).st_uid == account.uid
        except (rootfs.RootError, OSError):
            return False

    def _shell_changed(
        self, account: Account, definition: account_definitions.Definition | None, notes: list[str]
    ) -> bool:
        """The package gives the account no login shell, or its shell is a file no package owns."""
        shell = account.shell or "/bin/sh"
        if definition is not None and definition.shell and not is_login_shell(definition.shell):
            notes.append(f"its package gives it {definition.shell}, it has {shell!r}")
            return True
        if self.reader.kind_of(shell) not in ("missing", "directory") and self.reader.unowned(shell):
            notes.append(f"its shell {shell!r} is a file no package owns")
            return True
        return False

    def _has_keys(self, account: Account) -> bool:
        if not account.home.startswith("/"):
            return False
        for name in ("authorized_keys", "authorized_keys2"):
            try:
                data = rootfs.read_bytes(
                    self.reader.root, posixpath.join(account.home, ".ssh", name), 1 << 20, missing_ok=True
                )
            except rootfs.RootError:
                continue
            for line in (data or b"").splitlines():
                if line.strip() and not line.lstrip().startswith(b"#"):
                    return True
        return False

    def _changed_since_backup(self, account: Account, notes: list[str]) -> bool:
        """Added or changed by the last change: absent from /etc/passwd-, or there with other fields
        (the password field aside: pwconv moved the hashes to /etc/shadow after base-passwd wrote
        the first copy)."""
        if self.old_passwd is None:
            return False
        old = self.old_passwd.get(account.name)
        if old is None:
            notes.append(f"absent from {PASSWD_BACKUP}: added by the last change of the account files")
            return True
        if _comparable(old) != _comparable(account):
            notes.append(f"{PASSWD_BACKUP} had {old.line!r}: changed by the last change of the account files")
            return True
        return False

    def _password_changed(self, entry: ShadowEntry | None) -> bool:
        old = self.old_shadow.get("root")
        return entry is not None and old is not None and old.password != entry.password


def _first_by_name(entries: list[ShadowEntry]) -> dict[str, ShadowEntry]:
    found: dict[str, ShadowEntry] = {}
    for entry in entries:
        found.setdefault(entry.name, entry)
    return found


def _comparable(account: Account) -> tuple:
    return (account.uid, account.gid, account.gecos, account.home, account.shell)


def _password(account: Account, entry: ShadowEntry | None) -> str:
    """The password a login is checked against: the shadow entry's when /etc/passwd says "x"."""
    if account.password == "x" and entry is not None:
        return entry.password
    return account.password


def _uid_ranges(settings: dict[str, str], redhat_release: str) -> tuple[int, int, int]:
    """(SYS_UID_MAX, UID_MIN, UID_MAX) as useradd of the root would use them: login.defs, else the
    defaults of its shadow-utils (people from 500 up to Red Hat 6, from 1000 since)."""

    def number(name: str) -> int | None:
        value = settings.get(name, "")
        return int(value) if value.isdigit() else None

    old_red_hat = any(f"release {n}" in redhat_release for n in "3456")
    uid_min = number("UID_MIN") or (500 if old_red_hat else 1000)
    sys_uid_max = number("SYS_UID_MAX") or uid_min - 1
    uid_max = number("UID_MAX") or 60000
    return sys_uid_max, uid_min, uid_max
