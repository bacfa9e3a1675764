# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find what makes a root run code by itself besides what its packages installed.

Every place a Linux system starts programs from unasked (cron and anacron, at jobs, systemd units,
timers and generators, rc.local and init scripts, udev rules, login shells' files, the loader's
preload list, desktop autostart, ssh forced commands) is read as data inside the root: nothing of
the root runs, no link leads out of it, every read is bounded. Each line or file that starts
something is an item, with what it runs and how often; the rules (persistence_rules) decide which
items are findings, and each finding carries the evidence of its file and of the program it runs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.cron import anacrontab, crontab
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    records as quarantine_records,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.rules import SEVERITIES, Rule
from ansible_collections.lifeline.rescue.plugins.module_utils.target import (
    accounts,
    dpkgdb,
    report_text,
    rootfs,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account

# Startup files are small; one larger than this is reported, not read (a hostile root's 50 GB file).
MAX_TEXT = 16 << 20
# Payloads are hashed up to this size (miners are a few MB); beyond it the evidence says so.
MAX_HASH = 256 << 20
MAX_ENTRIES = 20000
MAX_DEPTH = 4
# Lines and commands a report shows are cut here (report_text.shown).
SHOWN = 300
# Where a program named without a path is looked up: a shell's PATH; udev's own directories for udev.
PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
UDEV_PATH = ("/usr/lib/udev", "/lib/udev")


@dataclass
class FileFacts:
    """One file at a persistence location as it was read.

    ``path`` is where it was found, ``resolved`` where its links lead inside the root, ``st`` the
    lstat of ``resolved``; ``data`` is None when it was not read. ``account`` is the user it belongs
    to (a user crontab, a file of a home directory), None for system files.
    """

    path: str
    kind: str
    resolved: str
    st: os.stat_result
    data: bytes | None = None
    account: Account | None = None
    notes: list[str] = field(default_factory=list)
    jobs: int = 0


@dataclass
class Item:
    """One thing a location starts: a line (``line`` counts from 1) or the file itself (``line`` None)."""

    kind: str
    file: FileFacts
    line: int | None = None
    text: str = ""
    command: str = ""
    user: str = ""
    interval: int | None = None
    executes: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    payload: str | None = None


@dataclass
class Finding:
    rule: Rule
    item: Item
    matched: list[str]


@dataclass
class Scan:
    """What one scan found; ``findings`` in the order items were met, rules in their order."""

    root: str
    findings: list[Finding]
    notes: list[dict]
    already_quarantined: list[dict]
    files: int
    items: int
    package_database: bool
    seconds: float
    scanner: _Scanner

    def finding_dicts(self) -> list[dict]:
        return [self.scanner.finding_dict(f) for f in self.findings]

    def summary(self) -> dict:
        by_severity = dict.fromkeys(SEVERITIES, 0)
        by_location: dict[str, int] = {}
        by_rule: dict[str, int] = {}
        for finding in self.findings:
            by_severity[finding.rule.severity] += 1
            by_location[finding.item.kind] = by_location.get(finding.item.kind, 0) + 1
            by_rule[finding.rule.id] = by_rule.get(finding.rule.id, 0) + 1
        return {
            "findings": len(self.findings),
            "by_severity": by_severity,
            "by_location": by_location,
            "by_rule": by_rule,
            "files": self.files,
            "items": self.items,
            "notes": len(self.notes),
            "already_quarantined": len(self.already_quarantined),
            "package_database": self.package_database,
            "seconds": round(self.seconds, 3),
        }


def scan(
    root: str, rules: list[Rule], quarantine_dir: str = quarantine_records.DEFAULT_QUARANTINE_DIR
) -> Scan:
    """Read every persistence location of ``root``, apply ``rules`` (persistence_rules.load_rules) and
    list what earlier runs quarantined under ``quarantine_dir``."""
    started = time.monotonic()
    scanner = _Scanner(root, rules)
    scanner.read_all()
    findings = scanner.evaluate()
    held = scanner.quarantined_files(quarantine_dir)
    return Scan(
        root=scanner.root,
        findings=findings,
        notes=scanner.notes,
        already_quarantined=scanner.marked_lines + held,
        files=len(scanner.files),
        items=len(scanner.items),
        package_database=scanner.package_database,
        seconds=time.monotonic() - started,
        scanner=scanner,
    )


SYSTEM_UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/run/systemd/generator",
    "/run/systemd/generator.late",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
USER_UNIT_DIRS = (
    "/etc/systemd/user",
    "/run/systemd/user",
    "/usr/local/lib/systemd/user",
    "/usr/lib/systemd/user",
    "/lib/systemd/user",
)
HOME_UNIT_DIRS = (".config/systemd/user", ".local/share/systemd/user")
GENERATOR_DIRS = tuple(
    f"{base}/{name}"
    for base in ("/etc/systemd", "/run/systemd", "/usr/local/lib/systemd", "/usr/lib/systemd", "/lib/systemd")
    for name in (
        "system-generators",
        "user-generators",
        "system-environment-generators",
        "user-environment-generators",
        "system-shutdown",
        "system-sleep",
    )
)
UDEV_DIRS = (
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/usr/local/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
    "/lib/udev/rules.d",
)
SHELL_FILES = (
    "/etc/profile",
    "/etc/bash.bashrc",
    "/etc/bashrc",
    "/etc/zsh/zshenv",
    "/etc/zsh/zprofile",
    "/etc/zsh/zshrc",
    "/etc/zsh/zlogin",
)
HOME_SHELL_FILES = (".bashrc", ".profile", ".bash_profile", ".bash_login", ".zshrc")
CRON_SCRIPT_DIRS = tuple(f"/etc/cron.{p}" for p in ("hourly", "daily", "weekly", "monthly", "yearly"))
_UNIT_SUFFIX = re.compile(r"\.(?:service|socket|timer|path|mount|automount|swap|target|slice|scope|device)$")
_EXEC_KEYS = frozenset(
    {"ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost", "ExecCondition"}
)
_RUN_PARTS_NAME = re.compile(r"[A-Za-z0-9_-]+")
_UDEV_PROGRAM = re.compile(r"""\b(RUN|PROGRAM|IMPORT)(\{([^}]*)\})?\s*(?:\+=|:=|==|=)\s*"([^"]*)\"""")
_KEY_TYPE = re.compile(r"(?:ssh-|ecdsa-|sk-)\S+")
_AT_UID = re.compile(r"#\s*atrun uid=(\d+)")
_ANACRON_PERIODS = {"@monthl": 30, "@yearly": 365}  # anacron compares 7 characters
_MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _lines(data: bytes) -> Iterator[tuple[int, str]]:
    """(number, text) of each line holding something; NUL bytes a runaway writer left are dropped,
    so a job they polluted is still seen."""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.strip(b" \t\r\0"):
            yield number, raw.replace(b"\0", b"").decode("utf-8", "replace").rstrip("\r")


def _binary(data: bytes) -> bool:
    return data.startswith(b"\x7fELF") or b"\0" in data[:4096]


def _type_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "other"


class _Scanner:
    """Reads the locations of one root into items and evaluates the rules on them."""

    def __init__(self, root: str, rules: list[Rule]) -> None:
        self.root = os.path.abspath(root)
        self.rules = rules
        self.notes: list[dict] = []
        self.items: list[Item] = []
        self.files: dict[str, FileFacts] = {}
        self.marked_lines: list[dict] = []
        self.unit_links: list[tuple[str, str]] = []
        self._scanned: set[str] = set()
        self._listed: set[str] = set()
        self._which: dict[tuple[str, tuple[str, ...]], str | None] = {}
        self._kinds: dict[str, str] = {}
        self._resolved: dict[str, str | None] = {}
        self._packages: dict[str, str | None] = {}
        self._evidence: dict[str, dict] = {}
        self._home_list: list[Account] | None = None
        self._indicators_of: dict[tuple[str, ...], list[str]] = {}
        self.accounts = self._read_accounts()
        self.users = {a.name: a for a in self.accounts}
        self.uid_names = {a.uid: a.name for a in reversed(self.accounts)}
        self.gid_names = self._read_groups()
        try:
            self.owners = dpkgdb.owners(self.root)
            self.package_database = True
        except dpkgdb.PackageError as exc:
            self.owners, self.package_database = {}, False
            self._note("", "/var/lib/dpkg/status", f"{exc}: no file counts as owned or as unowned")
        self.merged = {d for d in _MERGED if self.resolved_path(f"/{d}") == f"/usr/{d}"}

    # -- reading ---------------------------------------------------------------------------------

    def _note(self, kind: str, path: str, problem: str) -> None:
        self.notes.append({"location": kind, "path": path, "problem": problem})

    def _is_link(self, path: str) -> bool:
        try:
            return os.path.islink(rootfs.resolve(self.root, path, follow_last=False).host)
        except rootfs.RootError:
            return False

    def resolved_path(self, path: str) -> str | None:
        """Where ``path`` leads inside the root; None for a link loop. Cached: commands name the same
        programs over and over."""
        if path not in self._resolved:
            try:
                self._resolved[path] = rootfs.resolve(self.root, path).inside
            except rootfs.RootError:
                self._resolved[path] = None
        return self._resolved[path]

    def _read_small(self, path: str) -> str:
        try:
            data = rootfs.read_bytes(self.root, path, 16 << 20, missing_ok=True)
        except rootfs.RootError as exc:
            self._note("", path, str(exc))
            return ""
        return (data or b"").decode("utf-8", "replace")

    def _read_accounts(self) -> list[Account]:
        found = [a for a in accounts.parse_passwd(self._read_small("/etc/passwd")) if a.complete]
        if not any(a.name == "root" for a in found):
            found.insert(0, Account("root", 0, 0, "/root", complete=True))
        return found

    def _read_groups(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for name, gid in accounts.parse_group(self._read_small("/etc/group")):
            names.setdefault(gid, name)
        return names

    def _homes(self) -> list[Account]:
        """Accounts with a home directory in the root, each directory once (root's first)."""
        if self._home_list is not None:
            return self._home_list
        found, seen = [], set()
        for account in sorted(self.accounts, key=lambda a: a.uid != 0):
            if not account.home.startswith("/"):
                continue
            try:
                where = rootfs.resolve(self.root, account.home)
            except rootfs.RootError as exc:
                self._note("", account.home, f"home of {account.name}: {exc}")
                continue
            if where.inside in seen or where.escaped or not os.path.isdir(where.host):
                continue
            seen.add(where.inside)
            found.append(account)
        self._home_list = found
        return found

    def entries(
        self, kind: str, directory: str, *, recursive: bool = False, once: bool = True
    ) -> list[tuple[str, bool]]:
        """(path, is a symbolic link) of every entry of a directory of the root, sorted, each directory
        read once (on a merged-/usr root /lib/x and /usr/lib/x are one); subdirectories are descended
        into only when ``recursive`` and never through a link."""
        try:
            where = rootfs.resolve(self.root, directory)
        except rootfs.RootError as exc:
            self._note(kind, directory, str(exc))
            return []
        if once and where.inside in self._listed:
            return []
        self._listed.add(where.inside)
        found: list[tuple[str, bool]] = []
        pending = [(where.inside, 0)]
        while pending:
            inside, depth = pending.pop(0)
            try:
                with os.scandir(rootfs.join(self.root, inside)) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno != errno.ENOTDIR:
                    self._note(kind, inside, f"cannot be listed: {exc.strerror}")
                elif inside == where.inside:
                    self._note(kind, directory, "is not a directory")
                continue
            for entry in entries:
                if len(found) >= MAX_ENTRIES:
                    self._note(
                        kind, directory, f"holds more than {MAX_ENTRIES} entries; the rest is not read"
                    )
                    return found
                path = posixpath.join(inside, entry.name)
                if entry.is_dir(follow_symlinks=False):
                    if recursive and depth < MAX_DEPTH:
                        pending.append((path, depth + 1))
                    elif not recursive:
                        found.append((path, False))
                    continue
                found.append((path, entry.is_symlink()))
        return found

    def _file(
        self, kind: str, path: str, account: Account | None = None, *, read: bool = True
    ) -> FileFacts | None:
        """Facts and content of a file at a location; None (with a note when it matters) when it is
        missing, not a regular file, a link loop or a link above the root, or was already read."""
        try:
            where = rootfs.resolve(self.root, path)
        except rootfs.RootError as exc:
            self._note(kind, path, str(exc))
            return None
        if where.escaped:
            self._note(
                kind, path, f"a symbolic link leads above the root ({'; '.join(where.links)}): not read"
            )
            return None
        try:
            st = os.lstat(where.host)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and self._is_link(path):
                self._note(kind, path, f"a dangling symbolic link ({'; '.join(where.links)})")
            elif not isinstance(exc, FileNotFoundError):
                self._note(kind, path, exc.strerror or str(exc))
            return None
        if where.inside in self._scanned:
            return None
        if not stat.S_ISREG(st.st_mode):
            self._note(kind, path, f"is a {_type_of(st.st_mode)}, not a regular file: not read")
            return None
        self._scanned.add(where.inside)
        facts = FileFacts(path=path, kind=kind, resolved=where.inside, st=st, account=account)
        if read:
            try:
                facts.data = rootfs.read_bytes(self.root, where.inside, MAX_TEXT)
            except rootfs.RootError as exc:
                self._note(kind, path, str(exc))
        self.files[path] = facts
        return facts

    def _text_lines(self, facts: FileFacts) -> Iterator[tuple[int, str]]:
        """The lines of a file that are not quarantine comments (those are recorded instead)."""
        for number, text in _lines(facts.data or b""):
            rules = quarantine_records.marked_rules(text)
            if rules is None:
                yield number, text
                continue
            shown = report_text.shown(text, SHOWN)
            self.marked_lines.append(
                quarantine_records.marked_line(facts.path, facts.resolved, number, shown, rules)
            )

    def read_all(self) -> None:
        self._cron()
        self._anacron()
        self._cron_scripts()
        self._at_jobs()
        self._systemd()
        self._generators()
        self._rc_local()
        self._init_scripts()
        self._udev()
        self._shell_files()
        self._ld_preload()
        self._autostart()
        self._authorized_keys()
        self._indicators()

    # -- items -----------------------------------------------------------------------------------

    def _file_item(self, facts: FileFacts, *, runs: bool = False) -> None:
        executes = self._resolved_too([facts.path]) if runs else ()
        user = facts.account.name if facts.account else ""
        self.items.append(Item(facts.kind, facts, user=user, executes=executes, references=executes))

    def _command_item(
        self,
        facts: FileFacts,
        number: int,
        text: str,
        command: str,
        *,
        shell_command: str | None = None,
        user: str = "",
        interval: int | None = None,
        search: tuple[str, ...] = PATH,
    ) -> Item:
        executes, references = self._analyse(command if shell_command is None else shell_command, search)
        item = Item(
            facts.kind,
            facts,
            number,
            text,
            command,
            user or (facts.account.name if facts.account else ""),
            interval,
            executes,
            references,
            self._payload(executes),
        )
        self.items.append(item)
        return item

    def _analyse(self, command: str, search: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(paths the command runs, every absolute path it names), resolved inside the root too."""
        programs, named = shell_commands.programs_and_paths(command)
        found = (p if p.startswith("/") else self._lookup(p, search) for p in programs)
        runs = self._resolved_too([p for p in found if p])
        return runs, tuple(dict.fromkeys([*runs, *named]))

    def _lookup(self, name: str, search: tuple[str, ...]) -> str | None:
        key = (name, search)
        if key not in self._which:
            self._which[key] = next(
                (
                    f"{d}/{name}"
                    for d in search
                    if self._kind_of(f"{d}/{name}") not in ("missing", "directory")
                ),
                None,
            )
        return self._which[key]

    def _resolved_too(self, paths: list[str]) -> tuple[str, ...]:
        """The paths and, for those reached through links, where the links lead inside the root."""
        out: list[str] = []
        for path in paths:
            out.append(path)
            resolved = self.resolved_path(path)
            if resolved and resolved != path:
                out.append(resolved)
        return tuple(dict.fromkeys(out))

    def _kind_of(self, path: str) -> str:
        """The type of what ``path`` leads to inside the root ("missing" for nothing or a loop)."""
        if path not in self._kinds:
            resolved = self.resolved_path(path)
            kind = "missing"
            if resolved is not None:
                with contextlib.suppress(OSError):
                    kind = _type_of(os.lstat(rootfs.join(self.root, resolved)).st_mode)
            self._kinds[path] = kind
        return self._kinds[path]

    def _payload(self, executes: tuple[str, ...]) -> str | None:
        """The file a command runs: the first existing one no package owns, else the first existing."""
        first = None
        for path in executes:
            if self._kind_of(path) in ("missing", "directory"):
                continue
            if self.unowned(path):
                return path
            first = first or path
        return first

    # -- ownership -------------------------------------------------------------------------------

    def _aliases(self, path: str) -> list[str]:
        """``path`` and its other spelling on a merged-/usr root (dpkg lists /lib/x for /usr/lib/x)."""
        top = path.split("/", 3)
        if len(top) > 2 and top[1] in self.merged:
            return [path, "/usr" + path]
        if len(top) > 3 and top[1] == "usr" and top[2] in self.merged:
            return [path, path[4:]]
        return [path]

    def package_of(self, path: str) -> str | None:
        """The packages listing ``path`` or the file its links lead to, comma-separated; None if none."""
        if path not in self._packages:
            candidates = self._aliases(path)
            resolved = self.resolved_path(path)
            if resolved and resolved != path:
                candidates += self._aliases(resolved)
            names: list[str] = []
            for candidate in candidates:
                names += self.owners.get(candidate, [])
            self._packages[path] = ", ".join(dict.fromkeys(names)) or None
        return self._packages[path]

    def unowned(self, path: str) -> bool:
        """True only when the package database was read and no package lists the file."""
        return self.package_database and self.package_of(path) is None

    # -- locations -------------------------------------------------------------------------------

    def _cron(self) -> None:
        self._crontab("/etc/crontab", system=True)
        for path, _ in self.entries("cron", "/etc/cron.d"):
            self._crontab(path, system=True)
        for path, _ in self.entries("cron", "/var/spool/cron/crontabs"):
            self._crontab(path, system=False)
        # Red Hat keeps user crontabs right in /var/spool/cron; Debian keeps only directories there.
        for path, is_link in self.entries("cron", "/var/spool/cron"):
            if is_link or self._kind_of(path) == "file":
                self._crontab(path, system=False)

    def _crontab(self, path: str, *, system: bool) -> None:
        owner = None if system else self.users.get(posixpath.basename(path))
        facts = self._file("cron", path, owner)
        if facts is None:
            return
        if path.startswith("/etc/cron.d/") and "." in posixpath.basename(path):
            facts.notes.append("Debian's cron ignores a file of /etc/cron.d whose name holds a dot")
        self._file_item(facts)
        user = "" if system else posixpath.basename(path)
        for number, text in self._text_lines(facts):
            entry = crontab.parse_line(text, system)
            if entry.kind != "job":
                continue
            facts.jobs += 1
            self._command_item(
                facts,
                number,
                text,
                entry.command,
                shell_command=entry.shell_command,
                user=entry.user or user,
                interval=shell_commands.cron_interval(entry),
            )

    def _anacron(self) -> None:
        facts = self._file("anacron", "/etc/anacrontab")
        if facts is None:
            return
        self._file_item(facts)
        for number, text in self._text_lines(facts):
            entry = anacrontab.parse_line(anacrontab.line_text(text))
            if entry.kind != "job":
                continue
            days = entry.period_days or _ANACRON_PERIODS.get(entry.special[:7])
            facts.jobs += 1
            self._command_item(
                facts, number, text, entry.command, user="root", interval=days * 1440 if days else None
            )

    def _scripts(self, kind: str, path: str, *, runs: bool, account: Account | None = None) -> None:
        """A program a location runs: the file itself, and each line when it is a text script."""
        facts = self._file(kind, path, account)
        if facts is None:
            return
        self._file_item(facts, runs=runs)
        if facts.data is not None and not _binary(facts.data):
            self._command_lines(facts)

    def _command_lines(self, facts: FileFacts, user: str = "") -> None:
        """Each line of a script that is not a comment is a command it runs."""
        for number, text in self._text_lines(facts):
            stripped = text.lstrip()
            if not stripped.startswith("#"):
                self._command_item(facts, number, text, stripped, user=user)

    def _cron_scripts(self) -> None:
        for directory in CRON_SCRIPT_DIRS:
            for path, _ in self.entries("cron_script", directory):
                # run-parts runs only names made of letters, digits, '_' and '-'.
                self._scripts(
                    "cron_script", path, runs=bool(_RUN_PARTS_NAME.fullmatch(posixpath.basename(path)))
                )

    def _at_jobs(self) -> None:
        for directory in ("/var/spool/cron/atjobs", "/var/spool/at"):
            for path, _ in self.entries("at", directory):
                if posixpath.basename(path) == ".SEQ" or self._kind_of(path) == "directory":
                    continue
                facts = self._file("at", path)
                if facts is None:
                    continue
                head = _AT_UID.search((facts.data or b"")[:4096].decode("utf-8", "replace"))
                name = self.uid_names.get(int(head.group(1)), head.group(1)) if head else ""
                self._file_item(facts, runs=True)
                self._command_lines(facts, user=name)

    def _systemd(self) -> None:
        places: list[tuple[str, Account | None]] = [(d, None) for d in (*SYSTEM_UNIT_DIRS, *USER_UNIT_DIRS)]
        places += [(posixpath.join(a.home, d), a) for a in self._homes() for d in HOME_UNIT_DIRS]
        unit_dirs = {r for r in (self.resolved_path(d) for d, _ in places) if r}
        services: dict[tuple[str, str], list[Item]] = {}
        timers: list[tuple[FileFacts, str]] = []
        for directory, account in places:
            scope = account.name if account else ("user" if "/user" in directory else "system")
            for path, is_link in self.entries("systemd_unit", directory, recursive=True):
                name = posixpath.basename(path)
                drop_in = posixpath.dirname(path).endswith(".d") and name.endswith(".conf")
                if not (_UNIT_SUFFIX.search(name) or drop_in):
                    continue
                if is_link:
                    target = self.resolved_path(path)
                    if target is None or target == "/dev/null":
                        continue  # a loop is noted when read; /dev/null masks the unit
                    self.unit_links.append((path, target))
                    if posixpath.dirname(target) in unit_dirs:
                        continue  # an enablement link or alias: the unit is read where it lies
                kind = "systemd_timer" if name.endswith(".timer") else "systemd_unit"
                facts = self._file(kind, path, account)
                if facts is None:
                    continue
                if kind == "systemd_timer":
                    timers.append((facts, scope))
                    continue
                items = self._unit(facts)
                if not drop_in:
                    services.setdefault((scope, name), items)
        for facts, scope in timers:
            self._timer(facts, services.get((scope, self._timer_unit(facts)), []))

    @staticmethod
    def _unit_lines(facts: FileFacts) -> Iterator[tuple[int, str, str, str]]:
        """(line, text, key, value) of a unit file's settings, continuation lines joined."""
        pending: tuple[int, str] | None = None
        for number, text in _lines(facts.data or b""):
            if pending:
                number, text = pending[0], pending[1] + " " + text
                pending = None
            stripped = text.strip()
            if stripped[:1] in ("#", ";", "["):
                continue
            if stripped.endswith("\\"):
                pending = (number, text.rstrip()[:-1])
                continue
            key, sep, value = stripped.partition("=")
            if sep:
                yield number, text, key.strip(), value.strip()

    def _unit(self, facts: FileFacts) -> list[Item]:
        self._file_item(facts)
        settings = list(self._unit_lines(facts))
        user = next((v for _, _, k, v in settings if k == "User"), "")
        if not user:
            user = facts.account.name if facts.account else "root"
        items = []
        for number, text, key, value in settings:
            if key in _EXEC_KEYS and value:
                # Prefixes @ - : + ! | change how systemd runs the command, not which one.
                items.append(self._command_item(facts, number, text, value.lstrip("@-:+!|"), user=user))
        return items

    def _timer_unit(self, facts: FileFacts) -> str:
        unit = next((v for _, _, k, v in self._unit_lines(facts) if k == "Unit"), "")
        return unit or re.sub(r"\.timer$", ".service", posixpath.basename(facts.path))

    def _timer(self, facts: FileFacts, service: list[Item]) -> None:
        """A timer is one item: its schedule, and what its service runs."""
        intervals = []
        for _, _, key, value in self._unit_lines(facts):
            if key == "OnCalendar":
                intervals.append(shell_commands.calendar_minutes(value))
            elif key in ("OnUnitActiveSec", "OnUnitInactiveSec"):
                intervals.append(shell_commands.timespan_minutes(value))
        known = [i for i in intervals if i is not None]
        executes = tuple(dict.fromkeys(p for i in service for p in i.executes))
        self.items.append(
            Item(
                "systemd_timer",
                facts,
                user=service[0].user if service else "",
                command="; ".join(i.command for i in service),
                interval=min(known) if known else None,
                executes=executes,
                references=tuple(dict.fromkeys(p for i in service for p in i.references)),
                payload=self._payload(executes),
            )
        )

    def _generators(self) -> None:
        for directory in GENERATOR_DIRS:
            for path, _ in self.entries("systemd_generator", directory):
                # systemd skips hidden files in these directories.
                runs = not posixpath.basename(path).startswith(".")
                self._scripts("systemd_generator", path, runs=runs)

    def _rc_local(self) -> None:
        for path in ("/etc/rc.local", "/etc/rc.d/rc.local"):
            self._scripts("rc_local", path, runs=True)

    def _init_scripts(self) -> None:
        for path, _ in self.entries("init_script", "/etc/init.d"):
            self._scripts("init_script", path, runs=not posixpath.basename(path).startswith("."))

    def _udev(self) -> None:
        for directory in UDEV_DIRS:
            for path, _ in self.entries("udev", directory):
                if not path.endswith(".rules"):
                    continue
                facts = self._file("udev", path)
                if facts is None:
                    continue
                self._file_item(facts)
                for number, text in self._text_lines(facts):
                    if text.lstrip().startswith("#"):
                        continue
                    for m in _UDEV_PROGRAM.finditer(text):
                        option = m.group(3) or ""
                        if m.group(1) == "IMPORT" and option != "program":
                            continue
                        if option == "builtin":
                            continue
                        self._command_item(facts, number, text, m.group(4), user="root", search=UDEV_PATH)

    def _shell_files(self) -> None:
        for path in SHELL_FILES:
            self._shell_file(path)
        for path, _ in self.entries("shell_rc", "/etc/profile.d"):
            self._shell_file(path)
        for account in self._homes():
            for name in HOME_SHELL_FILES:
                self._shell_file(posixpath.join(account.home, name), account)

    def _shell_file(self, path: str, account: Account | None = None) -> None:
        facts = self._file("shell_rc", path, account)
        if facts is not None:
            self._file_item(facts)
            self._command_lines(facts)

    def _ld_preload(self) -> None:
        facts = self._file("ld_preload", "/etc/ld.so.preload")
        if facts is None:
            return
        self._file_item(facts)
        # The loader splits the file at blanks and ':' and reads '#' to the end of a line as a comment.
        for number, text in self._text_lines(facts):
            entries = [e for e in re.split(r"[\s:]+", text.split("#", 1)[0]) if e]
            if not entries:
                continue
            executes = self._resolved_too(
                [shell_commands.normal_path(e) if e.startswith("/") else e for e in entries]
            )
            item = Item(
                "ld_preload", facts, number, text, text.strip(), executes=executes, references=executes
            )
            item.payload = self._payload(executes)
            self.items.append(item)

    def _autostart(self) -> None:
        places = [("/etc/xdg/autostart", None)]
        places += [(posixpath.join(a.home, ".config/autostart"), a) for a in self._homes()]
        for directory, account in places:
            for path, _ in self.entries("xdg_autostart", directory):
                if not path.endswith(".desktop"):
                    continue
                facts = self._file("xdg_autostart", path, account)
                if facts is None:
                    continue
                self._file_item(facts)
                for number, text in self._text_lines(facts):
                    key, sep, value = text.partition("=")
                    if sep and key.strip() == "Exec" and value.strip():
                        self._command_item(facts, number, text, value.strip())

    def _authorized_keys(self) -> None:
        for account in self._homes():
            for name in ("authorized_keys", "authorized_keys2"):
                facts = self._file("authorized_keys", posixpath.join(account.home, ".ssh", name), account)
                if facts is None:
                    continue
                self._file_item(facts)
                for number, text in self._text_lines(facts):
                    stripped = text.strip()
                    if stripped and not stripped.startswith("#"):
                        self._command_item(facts, number, text, forced_command(stripped))

    def _indicators(self) -> None:
        paths = [path for rule in self.rules for path in self._indicator_paths(rule)]
        for path in dict.fromkeys(paths):
            if path in self.files or not rootfs.lexists(self.root, path):
                continue
            try:
                where = rootfs.resolve(self.root, path, follow_last=False)
                st = os.lstat(where.host)
            except (OSError, rootfs.RootError):
                continue
            if where.inside in self._scanned:
                continue
            self._scanned.add(where.inside)
            facts = FileFacts(path=path, kind="indicator_path", resolved=where.inside, st=st)
            self.files[path] = facts
            self._file_item(facts)

    # -- rules -----------------------------------------------------------------------------------

    def evaluate(self) -> list[Finding]:
        plain = [r for r in self.rules if not r.rules]
        dependent = [r for r in self.rules if r.rules]
        findings: list[Finding] = []
        for item in self.items:
            fired: dict[str, Finding] = {}
            for rule in plain:
                matched = self._match(rule, item, fired)
                if matched is not None:
                    fired[rule.id] = Finding(rule, item, matched)
            for rule in dependent:
                matched = self._match(rule, item, fired)
                if matched is not None:
                    fired[rule.id] = Finding(rule, item, matched)
            findings += fired.values()
        return findings

    def _match(self, rule: Rule, item: Item, fired: dict[str, Finding]) -> list[str] | None:
        """Why ``rule`` fires on ``item`` (one reason a condition), None when it does not."""
        if item.kind not in rule.locations:
            return None
        if (rule.scope == "file" and item.line is not None) or (rule.scope == "line" and item.line is None):
            return None
        reasons: list[str] = []
        for patterns, values, label in (
            (rule.command, (item.command,), "command"),
            (rule.executes, item.executes, "runs"),
            (rule.references, item.references, "names"),
        ):
            if patterns:
                hit = next((m for p in patterns for v in values if (m := p.search(v))), None)
                if hit is None:
                    return None
                reasons.append(
                    f"{label}: {report_text.shown(hit.string if label != 'command' else hit.group(), 160)}"
                )
        if rule.indicator_paths:
            hit_path = self._indicator_hit(rule, item)
            if hit_path is None:
                return None
            reasons.append(f"indicator path: {hit_path}")
        if rule.every_minutes is not None:
            if item.interval is None or item.interval > rule.every_minutes:
                return None
            reasons.append(f"runs every {item.interval} minutes or more often")
        if rule.payload_unowned:
            if item.payload is None or not self.unowned(item.payload):
                return None
            reasons.append(f"runs {item.payload}, which no package owns")
        if rule.location_unowned:
            if not self.unowned(item.file.path):
                return None
            reasons.append(f"{item.file.path} is owned by no package")
        if rule.foreign_owner:
            account, uid = item.file.account, item.file.st.st_uid
            if account is None or uid in (account.uid, 0):
                return None
            reasons.append(
                f"{item.file.path} belongs to {self.uid_names.get(uid, uid)}, not to {account.name}"
            )
        if rule.rules:
            also = [r for r in rule.rules if r in fired]
            if not also:
                return None
            reasons.append(f"also matched: {', '.join(also)}")
        return reasons

    def _indicator_paths(self, rule: Rule) -> list[str]:
        """The indicator paths of a rule, one starting with ~/ in every home directory."""
        key = rule.indicator_paths
        if key not in self._indicators_of:
            expanded: list[str] = []
            for indicator in key:
                if indicator.startswith("~/"):
                    expanded += [
                        shell_commands.normal_path(posixpath.join(a.home, indicator[2:]))
                        for a in self._homes()
                    ]
                else:
                    expanded.append(indicator)
            self._indicators_of[key] = expanded
        return self._indicators_of[key]

    def _indicator_hit(self, rule: Rule, item: Item) -> str | None:
        """The indicator path the item's file is (a file item) or a path it names is, or lies below."""
        candidates = (item.file.path, item.file.resolved) if item.line is None else ()
        for path in (*candidates, *item.references):
            for indicator in self._indicator_paths(rule):
                if path == indicator or path.startswith(indicator.rstrip("/") + "/"):
                    return indicator
        return None

    # -- evidence --------------------------------------------------------------------------------

    def evidence(self, path: str, data: bytes | None = None) -> dict:
        """What a responder needs about a file: where it leads, type, owner, mode, times, sha256, package."""
        if path in self._evidence:
            return self._evidence[path]
        info: dict = {
            "path": path,
            "resolved": path,
            "links": [],
            "type": "missing",
            "owner": None,
            "uid": None,
            "gid": None,
            "mode": None,
            "size": None,
            "mtime": None,
            "ctime": None,
            "sha256": None,
            "package": None,
            "problem": "",
        }
        self._evidence[path] = info
        try:
            where = rootfs.resolve(self.root, path)
        except rootfs.RootError as exc:
            info["problem"] = str(exc)
            return info
        info["resolved"], info["links"] = where.inside, where.links
        info["package"] = self.package_of(path)
        try:
            st = os.lstat(where.host)
        except OSError as exc:
            info["problem"] = exc.strerror or str(exc)
            return info
        info.update(self.stat_facts(st))
        if stat.S_ISREG(st.st_mode):
            if data is None:
                try:
                    data = rootfs.read_bytes(self.root, where.inside, MAX_HASH)
                except rootfs.RootError as exc:
                    info["problem"] = str(exc)
            if data is not None:
                info["sha256"] = hashlib.sha256(data).hexdigest()
        return info

    def stat_facts(self, st: os.stat_result) -> dict:
        """Type, owner (names and ids), mode, size and times of a file, as reports and records show them."""
        return {
            "type": _type_of(st.st_mode),
            "owner": f"{self.uid_names.get(st.st_uid, st.st_uid)}:{self.gid_names.get(st.st_gid, st.st_gid)}",
            "uid": st.st_uid,
            "gid": st.st_gid,
            "mode": f"{stat.S_IMODE(st.st_mode):04o}",
            "size": st.st_size,
            "mtime": report_text.iso(st.st_mtime),
            "ctime": report_text.iso(st.st_ctime),
        }

    def finding_dict(self, finding: Finding) -> dict:
        item = finding.item
        return {
            "rule": finding.rule.id,
            "description": finding.rule.description,
            "severity": finding.rule.severity,
            "location": item.kind,
            "path": item.file.path,
            "line": item.line,
            "text": report_text.shown(item.text, SHOWN),
            "command": report_text.shown(item.command, SHOWN),
            "user": item.user,
            "matched": finding.matched,
            "notes": item.file.notes,
            # How a unit is switched on at boot: the links that make a target want it.
            "enabled_by": sorted(
                link for link, to in self.unit_links if to == item.file.resolved and link != item.file.path
            ),
            "file": self.evidence(item.file.path, item.file.data),
            "payload": self.evidence(item.payload) if item.payload else None,
        }

    # -- what the quarantine directory holds ---------------------------------------------------------

    def quarantined_files(self, quarantine_dir: str) -> list[dict]:
        """The reports of files quarantined earlier; a record that cannot be read is a note."""
        held, problems = quarantine_records.held_files(self.root, quarantine_dir, MAX_ENTRIES)
        for path, problem in problems:
            self._note("", path, problem)
        return held


def forced_command(key_line: str) -> str:
    """The command="..." option of an authorized_keys line ('' when it has none)."""
    if _KEY_TYPE.match(key_line):
        return ""
    options, i, quoted = [], 0, False
    while i < len(key_line):
        char = key_line[i]
        if char == "\\" and quoted and i + 1 < len(key_line):
            options.append(key_line[i : i + 2])
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            break
        options.append(char)
        i += 1
    m = re.search(r'(?:^|,)command="((?:[^"\\]|\\.)*)"', "".join(options))
    return m.group(1).replace('\\"', '"') if m else ""
