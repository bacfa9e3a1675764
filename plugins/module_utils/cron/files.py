# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crontabs of a root and what cron makes of each: where they are, and which lines it refuses.

Every location cron (Debian's or Red Hat's cronie) or anacron reads is listed, each file is read
inside the root (never through a link out of it, never a device or FIFO) and checked with the
grammar of ``crontab``: the file rules cron applies before reading a line, then each line.

Which cron reads them is ``installed_cron``'s to say (the one place that decides it): Debian's cron
(its dpkg package's version picks the release's reading) or cronie (RHEL, CentOS, Rocky, Alma,
Fedora, SUSE; also Debian's ``cronie`` package). Their locations: /etc/crontab and /etc/cron.d for
both (each with its own rules for names in cron.d); user crontabs in /var/spool/cron/crontabs/USER
(Debian's cron, and cronie as Debian builds it), /var/spool/cron/USER (cronie as Red Hat builds it)
or /var/spool/cron/tabs/USER (SUSE's; its layout is taken from SUSE's packaging, not checked against
a SUSE cronie here). /etc/anacrontab and /etc/cron.hourly/0anacron are anacron's: /etc/anacrontab is
read in the anacron grammar of the cron installed (cronie's anacron knows more named periods);
0anacron is a script run-parts runs, no crontab.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.cron import anacrontab, crontab, file_rules
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import installed as installed_packages
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.target import (
    accounts,
    rootfs,
    safewrite,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.target.report_text import iso, shown

# Kinds of crontab, as check_file_rules knows them (anacrontab is anacron's own format).
SYSTEM = "crontab"
CRON_D = "cron.d"
USER = "user"
ANACRONTAB = "anacrontab"

# A crontab is small; a flood of NULs from a runaway writer is not, and must still be read whole so
# that the lines behind it are saved. Beyond this nothing is read and the file is reported.
MAX_CRONTAB = 256 << 20
# Lines shown in a finding are cut here: a 1 MB line would make the report unreadable.

_LOCATIONS = (
    ("/etc/crontab", SYSTEM),
    ("/etc/anacrontab", ANACRONTAB),
)
DEBIAN_SPOOL = "/var/spool/cron/crontabs"
RED_HAT_SPOOL = "/var/spool/cron"
SUSE_SPOOL = "/var/spool/cron/tabs"
_DIRECTORIES = (
    ("/etc/cron.d", CRON_D),
    (DEBIAN_SPOOL, USER),  # Debian (cron, and its cronie package)
    (SUSE_SPOOL, USER),  # SUSE (cronie)
    (RED_HAT_SPOOL, USER),  # Red Hat (cronie); Debian and SUSE keep only directories here
)
# The daemons, as their packages install them.
CRONIE_DAEMON = "/usr/sbin/crond"
DEBIAN_DAEMON = "/usr/sbin/cron"


@dataclass
class LineFinding:
    """A line cron refuses (``error`` in cron's words) or reads differently than it looks (a note)."""

    line: int
    error: str
    text: str
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "error": self.error, "text": self.text, "notes": self.notes}


# What a link in a cron location leads to (LinkFacts.state).
LEADS_TO_FILE = "file"
DANGLING = "dangling"
LOOP = "loop"
OUT_OF_ROOT = "out of the root"
NOT_REGULAR = "not a regular file"


@dataclass
class LinkFacts:
    """A crontab location that is a symbolic link, reported as a link: what it says (``target``),
    where it leads inside the root (``leads_to``, '' when it leads nowhere), the state of what is
    there, the packages that list that path (none: no package owns it), whether that path is itself
    a crontab location, and whether the installed cron opens a crontab through a link of this kind.
    """

    target: str
    leads_to: str
    state: str
    link_uid: int
    owners: list[str] = field(default_factory=list)
    crontab: bool = False
    cron_follows: bool = False
    cron_name: str = ""

    @property
    def not_a_crontab(self) -> bool:
        """Leads to a file that is no crontab: outside the cron locations (shadow, a script, a
        file in /tmp). Such a file is never read as a crontab, never repaired, never written."""
        return self.state == LEADS_TO_FILE and not self.crontab

    def finding(self, path: str) -> str:
        """The link as what it is, for the report: where it leads, whose file that is, what cron does."""
        where = {
            LEADS_TO_FILE: f"a link to {self.leads_to}",
            DANGLING: f"a dangling link (to {self.target}, where nothing is)",
            LOOP: f"a link loop (to {self.target})",
            OUT_OF_ROOT: f"a link out of the root (to {self.target})",
            NOT_REGULAR: f"a link to {self.leads_to}, which is not a regular file",
        }[self.state]
        owner = (
            (f"owned by package {', '.join(self.owners)}" if self.owners else "owned by no package")
            if self.state in (LEADS_TO_FILE, NOT_REGULAR)
            else ""
        )
        if self.not_a_crontab:
            what = f"which is not a crontab (outside the cron locations; {owner})"
        elif self.state == LEADS_TO_FILE:
            what = f"a crontab location ({owner})"
        else:
            what = ""
        if self.state != LEADS_TO_FILE:
            cron = f"{self.cron_name} cannot open it (CAN'T OPEN)"
        elif self.cron_follows:
            cron = f"{self.cron_name} opens it through the link and reads it as a crontab"
        else:
            cron = f"{self.cron_name} does not open a crontab through a link here (CAN'T OPEN)"
        steps = (
            f"not rewritten through the link: remove the link (rm {path}) unless it belongs there"
            if self.not_a_crontab or self.state != LEADS_TO_FILE
            else "never rewritten through the link: a repair of the file is made at its own path"
        )
        return f"{path}: {', '.join(filter(None, [where, what]))}; {cron}; {steps}"

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "leads_to": self.leads_to,
            "state": self.state,
            "link_uid": self.link_uid,
            "owners": self.owners,
            "crontab": self.crontab,
            "not_a_crontab": self.not_a_crontab,
            "cron_follows": self.cron_follows,
        }


@dataclass
class CronFile:
    """One crontab of the root and cron's view of it.

    ``data`` is None when the file could not be read (``unreadable`` says why). ``ignored`` says why
    cron skips the file by its name (then nothing else about it matters to cron). ``rules`` are the
    other whole-file problems (refused, missing last newline), ``bytes`` the garbage bytes,
    ``lines`` the refused lines.
    """

    path: str
    kind: str
    user: str = ""
    data: bytes | None = None
    mode: int = 0
    uid: int = -1
    gid: int = -1
    nlink: int = 1
    link_uid: int | None = None
    mtime: float = 0.0
    ctime: float = 0.0
    unreadable: str = ""
    ignored: str = ""
    # The path is a symbolic link (None: it is not): reported as a link, never written through.
    link: LinkFacts | None = None
    # The file the bytes came from, for the compare-and-swap of a repair (None: nothing read).
    read_from: safewrite.ReadFrom | None = None
    rules: list[str] = field(default_factory=list)
    bytes: list[file_rules.ByteFinding] = field(default_factory=list)
    lines: list[LineFinding] = field(default_factory=list)
    jobs: int = 0

    skips_bad_lines: bool = False  # cronie: a refused line costs only itself

    @property
    def cron_reads(self) -> bool:
        """Whether cron runs this file's jobs as it is now (for Debian's cron one refused line makes
        it skip them all; cronie runs the other lines)."""
        refused_lines = bool(self.lines) and not self.skips_bad_lines
        not_a_crontab = self.link is not None and self.link.not_a_crontab
        return not (self.ignored or self.unreadable or self.rules or refused_lines or not_a_crontab)

    @property
    def healthy(self) -> bool:
        # Invalid UTF-8 in a line cron accepts is only reported: cron reads bytes, not characters.
        stray = [b for b in self.bytes if b.kind != "utf8"]
        if self.link is not None and self.link.not_a_crontab and not self.ignored:
            return False  # a finding of its own, whatever cron makes of the file
        return bool(self.ignored) or not (self.unreadable or self.rules or stray or self.lines)

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "kind": self.kind,
            "user": self.user,
            "size": len(self.data) if self.data is not None else None,
            "mode": f"{stat.S_IMODE(self.mode):04o}",
            "uid": self.uid,
            "gid": self.gid,
            "sha256": "" if self.data is None else safewrite.sha256_of(self.data),
            "unreadable": self.unreadable,
            "ignored": self.ignored,
            "link": self.link.as_dict() if self.link is not None else None,
            "not_a_crontab": self.link.finding(self.path) if self.link and self.link.not_a_crontab else "",
            "rules": self.rules,
            "bytes": [
                {"kind": b.kind, "line": b.line, "offset": b.offset, "column": b.column, "length": b.length}
                for b in self.bytes
            ],
            "lines": [one.as_dict() for one in self.lines],
            "mtime": iso(self.mtime) if self.mtime else "",
            "ctime": iso(self.ctime) if self.ctime else "",
            "jobs": self.jobs,
            "cron_reads": self.cron_reads,
            "healthy": self.healthy,
        }


def _listing(root: str, directory: str) -> list[str]:
    """Names in a directory of the root (resolved inside it), sorted; empty when there is none."""
    try:
        host = rootfs.resolve(root, directory).host
        if not stat.S_ISDIR(os.lstat(host).st_mode):
            return []
        return sorted(os.listdir(host))
    except (OSError, rootfs.RootError):
        return []


def locations(root: str) -> list[tuple[str, str, str]]:
    """Every crontab path cron or anacron would read in the root: (path, kind, user), in a fixed order.

    Entries that are not regular files are listed too (a directory in cron.d, a dangling link): they
    are findings. In /var/spool/cron only files count, since Debian keeps its spool directories there.
    """
    found = [(path, kind, "") for path, kind in _LOCATIONS if rootfs.lexists(root, path)]
    for directory, kind in _DIRECTORIES:
        for name in _listing(root, directory):
            path = f"{directory}/{name}"
            if directory == "/var/spool/cron":
                try:
                    if stat.S_ISDIR(os.stat(rootfs.resolve(root, path).host).st_mode):
                        continue
                except (OSError, rootfs.RootError):
                    pass
            found.append((path, kind, name if kind == USER else ""))
    return found


def ignored_by_name(path: str, kind: str, reader: Reader | None = None) -> str:
    """Why cron skips this file because of its name or directory alone ('' when it reads it)."""
    directory, name = os.path.split(path)
    if reader is not None and kind == USER and directory != reader.spool:
        return f"{name}: not read: {reader.dialect.name} reads user crontabs in {reader.spool}"
    if reader is not None and reader.dialect.cronie:
        if kind not in (CRON_D, USER):
            return ""
        why = file_rules.cronie_skips_name(name, directory)
        return f"{name}: ignored by cronie: {why}" if why else ""
    if kind != CRON_D:
        return ""
    return "; ".join(file_rules.check_file_rules(name, stat.S_IFREG, 0, b"", CRON_D))


def read(root: str, path: str, kind: str, user: str = "", reader: Reader | None = None) -> CronFile:
    """Read one crontab of the root with its inode facts; an unreadable one says why.

    A path that is a symbolic link is reported as a link (``link``); one that leads to a file that
    is not a crontab is not read at all: its lines are none of cron's business to repair, and a
    file such as /etc/shadow must not reach a report line by line.
    """
    cron_file = CronFile(path=path, kind=kind, user=user, ignored=ignored_by_name(path, kind, reader))
    own = _lstat(root, path)
    if own is not None and stat.S_ISLNK(own.st_mode):
        cron_file.link = link_facts(root, path, kind, own, reader)
        if cron_file.link.not_a_crontab:
            cron_file.link_uid = own.st_uid
            target = _lstat(root, cron_file.link.leads_to)
            if target is not None:
                cron_file.mode, cron_file.uid, cron_file.gid = target.st_mode, target.st_uid, target.st_gid
            return cron_file
    try:
        where = rootfs.resolve(root, path)
    except rootfs.RootError as exc:
        cron_file.unreadable = str(exc)
        return cron_file
    if where.escaped:
        cron_file.unreadable = f"{path} leads out of the root ({'; '.join(where.links)}): not read"
        return cron_file
    try:
        st = os.lstat(where.host)
        if where.links:
            # System crontabs may be links owned by root; cron judges the link's owner too.
            cron_file.link_uid = os.lstat(rootfs.resolve(root, path, follow_last=False).host).st_uid
    except OSError as exc:
        cron_file.unreadable = f"{rootfs.shown(root, path, where)}: {exc.strerror}"
        return cron_file
    cron_file.mode, cron_file.uid, cron_file.gid = st.st_mode, st.st_uid, st.st_gid
    cron_file.nlink, cron_file.mtime, cron_file.ctime = st.st_nlink, st.st_mtime, st.st_ctime
    if not stat.S_ISREG(st.st_mode):
        cron_file.unreadable = (
            f"{rootfs.shown(root, path, where)} is not a regular file: cron does not read it"
        )
        return cron_file
    try:
        cron_file.data = rootfs.read_bytes(root, path, MAX_CRONTAB)
        cron_file.read_from = safewrite.ReadFrom(where.host, st.st_dev, st.st_ino)
    except rootfs.RootError as exc:
        cron_file.unreadable = str(exc)
    return cron_file


def is_crontab_location(path: str) -> bool:
    """Whether cron or anacron reads ``path`` (inside the root, canonical) as a crontab of its own."""
    directories = {directory for directory, _kind in _DIRECTORIES}
    return path in {where for where, _kind in _LOCATIONS} or os.path.dirname(path) in directories


def link_facts(root: str, path: str, kind: str, own: os.stat_result, reader: Reader | None) -> LinkFacts:
    """What the link at ``path`` (``own``: its lstat) leads to inside the root, whose file that is,
    and whether the installed cron opens a crontab through it.

    Debian's cron follows a link for /etc/crontab and /etc/cron.d (its man page: both the link and
    the file must be owned by root) and never for a user crontab (opened with O_NOFOLLOW: CAN'T
    OPEN); cronie opens every crontab following links (database.c check_open), whoever owns them.
    """
    dialect = reader.dialect if reader is not None else crontab.CLASSIC
    facts = LinkFacts(
        target=os.readlink(rootfs.resolve(root, path, follow_last=False).host),
        leads_to="",
        state=LEADS_TO_FILE,
        link_uid=own.st_uid,
        cron_follows=dialect.cronie or kind != USER,
        cron_name="cronie" if dialect.cronie else "Debian's cron",
    )
    try:
        where = rootfs.resolve(root, path)
    except rootfs.RootError:
        facts.state = LOOP
        return facts
    if where.escaped:
        facts.state = OUT_OF_ROOT
        return facts
    target = _lstat(root, where.inside)
    if target is None:
        facts.state = DANGLING
        return facts
    facts.leads_to = where.inside
    facts.state = LEADS_TO_FILE if stat.S_ISREG(target.st_mode) else NOT_REGULAR
    facts.crontab = is_crontab_location(where.inside)
    facts.owners = package_owners(root, where.inside, reader)
    return facts


def package_owners(root: str, path: str, reader: Reader | None) -> list[str]:
    """The packages that list ``path`` (its /usr-merged twin too: dpkg lists /bin/x for /usr/bin/x)."""
    owners = reader.owners(root) if reader is not None else _owners_of(root)
    twin = path[len("/usr") :] if path.startswith("/usr/") else "/usr" + path
    return sorted({*owners.get(path, []), *owners.get(twin, [])})


def _owners_of(root: str) -> dict[str, list[str]]:
    try:
        database = installed_packages.database_of(root)
        return database.owners() if database is not None else {}
    except PackageError:
        return {}  # an unreadable database owns nothing: the link is reported as owned by none


@dataclass
class Reader:
    """What decides how cron reads this root's crontabs: its accounts, its cron's dialect and the
    spool directory that cron reads user crontabs from."""

    users: dict[str, tuple[int, int]] | None
    dialect: crontab.Dialect = crontab.CLASSIC
    spool: str = DEBIAN_SPOOL
    # Every path a package of the root lists, read once and only when a link asks (_owners_of).
    package_paths: dict[str, list[str]] | None = None

    def owners(self, root: str) -> dict[str, list[str]]:
        if self.package_paths is None:
            self.package_paths = _owners_of(root)
        return self.package_paths


@dataclass(frozen=True)
class InstalledCron:
    """The cron of a root: its dialect, its user spool, and what showed it (for a report)."""

    dialect: crontab.Dialect
    spool: str
    evidence: str


def installed_cron(root: str) -> InstalledCron:
    """Which cron the root has: the one place that decides between Debian's cron and cronie.

    First the root's package database (packages.installed: dpkg or rpm, read offline): ``cronie``
    from dpkg is Debian's build of it (spool /var/spool/cron/crontabs), from rpm Red Hat's
    (/var/spool/cron) or SUSE's (/var/spool/cron/tabs, when that directory exists); ``cron`` from
    dpkg is Debian's cron, its version picks the release's reading. Then, with no database or none
    that names a cron, the files: cronie's daemon /usr/sbin/crond (a program, not a link to
    another one), Debian's /usr/sbin/cron, or, with no daemon left, user crontabs right in
    /var/spool/cron and no crontabs/ beside them. Nothing found: the stricter classic Debian reading.
    """
    try:
        database = installed_packages.database_of(root)
    except PackageError:
        database = None  # an unreadable database: the files still tell
    try:
        cronie = database.find("cronie") if database is not None else []
        cron = database.find("cron") if database is not None and database.manager == "dpkg" else []
    except PackageError:
        cronie, cron = [], []
    if cronie:
        package = cronie[0]
        spool = DEBIAN_SPOOL
        if package.manager == "rpm":
            spool = SUSE_SPOOL if _is_directory(root, SUSE_SPOOL) else RED_HAT_SPOOL
        return InstalledCron(crontab.CRONIE, spool, f"{package.manager}: {package.label}")
    if cron:
        package = cron[0]
        return InstalledCron(crontab.dialect_for(package.version), DEBIAN_SPOOL, f"dpkg: {package.label}")
    if _is_program(root, CRONIE_DAEMON):
        spool = SUSE_SPOOL if _is_directory(root, SUSE_SPOOL) else RED_HAT_SPOOL
        return InstalledCron(crontab.CRONIE, spool, f"{CRONIE_DAEMON} (cronie's daemon)")
    if _is_program(root, DEBIAN_DAEMON):
        return InstalledCron(crontab.CLASSIC, DEBIAN_SPOOL, f"{DEBIAN_DAEMON} (Debian's cron daemon)")
    if not _is_directory(root, DEBIAN_SPOOL) and any(
        _is_file(root, f"{RED_HAT_SPOOL}/{name}") for name in _listing(root, RED_HAT_SPOOL)
    ):
        evidence = f"user crontabs in {RED_HAT_SPOOL} (cronie's spool)"
        return InstalledCron(crontab.CRONIE, RED_HAT_SPOOL, evidence)
    return InstalledCron(crontab.CLASSIC, DEBIAN_SPOOL, "no cron found: the classic Debian reading")


def _lstat(root: str, path: str) -> os.stat_result | None:
    """The path's own inode inside the root (a link is not followed)."""
    try:
        return os.lstat(rootfs.resolve(root, path, follow_last=False).host)
    except (OSError, rootfs.RootError):
        return None


def _is_program(root: str, path: str) -> bool:
    """A regular file with an execute bit (busybox's crond is a link to busybox: not cronie)."""
    st = _lstat(root, path)
    return st is not None and stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)


def _is_directory(root: str, path: str) -> bool:
    st = _lstat(root, path)
    return st is not None and stat.S_ISDIR(st.st_mode)


def _is_file(root: str, path: str) -> bool:
    st = _lstat(root, path)
    return st is not None and stat.S_ISREG(st.st_mode)


def reader_of(root: str) -> Reader:
    """The root's accounts and how its installed cron reads crontabs (``installed_cron``)."""
    cron = installed_cron(root)
    users = accounts.read_passwd(root)
    return Reader(None if users is None else accounts.ids_by_name(users), cron.dialect, cron.spool)


def check(cron_file: CronFile, reader: Reader) -> CronFile:
    """Fill in what cron makes of a file that was read: file rules, garbage bytes, refused lines."""
    data = cron_file.data
    if data is None:
        return cron_file
    users = reader.users
    if cron_file.kind != ANACRONTAB:
        account = (users or {}).get(cron_file.user)
        rules = file_rules.check_file_rules(
            os.path.basename(cron_file.path),
            cron_file.mode,
            cron_file.uid,
            data,
            cron_file.kind,
            nlink=cron_file.nlink,
            user_uid=account[0] if account and cron_file.kind == USER else None,
            link_uid=cron_file.link_uid,
            known_user=users is None or cron_file.kind != USER or account is not None,
            cronie=reader.dialect.cronie,
            directory=os.path.dirname(cron_file.path),
        )
        # An orphan (no account of its name) is put aside by cron, not refused: nothing to repair.
        orphan = [rule for rule in rules if file_rules.ORPHAN in rule]
        cron_file.ignored = "; ".join(filter(None, [cron_file.ignored, *orphan]))
        cron_file.rules = [rule for rule in rules if rule not in cron_file.ignored]
    cron_file.bytes = file_rules.byte_findings(data)
    cron_file.skips_bad_lines = reader.dialect.skips_bad_lines and cron_file.kind != ANACRONTAB
    for number, entry in enumerate(parse(data, cron_file.kind, reader, cron_file.user), start=1):
        if entry.kind == "job":
            cron_file.jobs += 1
        elif entry.kind == "error":
            cron_file.lines.append(LineFinding(number, entry.error, shown(entry.line), entry.notes))
    # The limits that make cron give up on a whole file: Debian's 10,000 lines; cronie's user
    # crontab limits (entries, assignments, a long run of comments).
    limits = crontab.TOO_MANY_LINES, crontab.TOO_MANY_ENTRIES, crontab.TOO_MANY_ENVS, crontab.TOO_MUCH_GARBAGE
    if reader.dialect.cronie:  # only user crontabs have limits
        big = cron_file.kind == USER and (
            data.count(b"\n") > crontab.CRONIE_MAX_USER_ENVS or len(data) > crontab.CRONIE_MAX_GARBAGE
        )
    else:
        big = data.count(b"\n") > crontab.MAX_TAB_LINES
    if cron_file.kind != ANACRONTAB and big:
        text = data.decode("utf-8", "surrogateescape")
        first = crontab.first_error(
            text,
            cron_file.kind != USER,
            users=users,
            dialect=reader.dialect,
            privileged=is_privileged(cron_file, reader),
        )
        if first is not None and first.error in limits:
            cron_file.rules.append(f"{os.path.basename(cron_file.path)}: {first.error} (line {first.lineno})")
    return cron_file


def is_privileged(cron_file: CronFile, reader: Reader) -> bool:
    """A user crontab of an account with uid 0 (cronie lets it switch a job's log line off)."""
    account = (reader.users or {}).get(cron_file.user) if cron_file.kind == USER else None
    return account is not None and account[0] == 0


def parse(data: bytes, kind: str, reader: Reader, user: str = "") -> list[crontab.Entry]:
    """Every line of a crontab's bytes, as cron reads it (undecodable bytes kept, surrogate-escaped)."""
    text = data.decode("utf-8", "surrogateescape")
    if kind == ANACRONTAB:
        lines = text.split("\n")[: -1 if text.endswith("\n") else None]
        return [anacrontab.parse_line(line, cronie=reader.dialect.cronie) for line in lines]
    account = (reader.users or {}).get(user) if kind == USER else None
    return crontab.parse_text(
        text,
        kind != USER,
        users=reader.users,
        dialect=reader.dialect,
        privileged=account is not None and account[0] == 0,
    )


def audit(root: str) -> list[CronFile]:
    """Every crontab of the root, read and checked."""
    reader = reader_of(root)
    return [check(read(root, path, kind, user, reader), reader) for path, kind, user in locations(root)]
