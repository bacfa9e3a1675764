# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the persistence scan knows about one root, and the items the sources collect into it.

A ``RootReader`` reads the root as data: nothing of it runs, no link leads out of it, every read is
bounded, and every problem is a note rather than an error. It knows the root's accounts, groups and
home directories, which package owns a file, where a path leads, and what a command line runs;
each file is read once however many locations name it. The sources (``persistence/sources/``) read
their locations through it and add the items they find to ``items``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
from collections.abc import Iterator

from ansible_collections.lifeline.rescue.plugins.module_utils.host import forked
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import installed, integrity
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import Database, PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    records as quarantine_records,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import (
    MAX_DEPTH,
    MAX_ENTRIES,
    MAX_PAYLOAD,
    MAX_TEXT,
    PAYLOAD_DEPTH,
    SHOWN,
    FileFacts,
    Item,
    PayloadLine,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.target import (
    accounts,
    report_text,
    rootfs,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account

# Where a program named without a path is looked up: a shell's PATH (udev passes its own).
PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def lines(data: bytes) -> Iterator[tuple[int, str]]:
    """(number, text) of each line holding something; NUL bytes a runaway writer left are dropped,
    so a job they polluted is still seen."""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.strip(b" \t\r\0"):
            yield number, raw.replace(b"\0", b"").decode("utf-8", "replace").rstrip("\r")


def file_type(mode: int) -> str:
    """The type of a file as reports name it ("file", "directory", "symlink", ...)."""
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


# Interpreters whose scripts are not shell: their lines are matched as text, not read as commands.
_SHELL_NAMES = frozenset({"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "busybox"})
_NOT_SHELL_SUFFIXES = (".py", ".pl", ".pm", ".rb", ".php", ".js", ".lua", ".tcl", ".awk")


def script_language(data: bytes, path: str) -> str:
    """ "shell" for a shell script (its #! names a shell, or it has none and no other language's
    suffix), else the interpreter's name ("python3", "perl", ...)."""
    first = data.split(b"\n", 1)[0].decode("utf-8", "replace")
    if first.startswith("#!"):
        words = first[2:].split()
        if words and posixpath.basename(words[0]) == "env":
            words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        name = posixpath.basename(words[0]) if words else "sh"
        return "shell" if name in _SHELL_NAMES else name
    return "other" if path.endswith(_NOT_SHELL_SUFFIXES) else "shell"


def _head(host: str) -> bytes:
    """The first bytes of a regular file (checked by the caller), never following a link."""
    fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def binary(data: bytes) -> bool:
    """True for an ELF file or one with NUL bytes near its start: not a script to read line by line."""
    return data.startswith(b"\x7fELF") or b"\0" in data[:4096]


class RootReader:
    """One root as the sources read it, and what they collected: ``items``, ``files`` (by the path
    they were found at), ``notes``, ``marked_lines`` (lines an earlier quarantine commented out) and
    ``unit_links`` (the links that enable a systemd unit).

    ``indicators`` are the paths the rules name as signs of a compromise (``~/`` for every home).
    """

    def __init__(self, root: str, indicators: tuple[str, ...] = ()) -> None:
        self.root = os.path.abspath(root)
        self.indicators = indicators
        self.notes: list[dict] = []
        self.items: list[Item] = []
        self.files: dict[str, FileFacts] = {}
        self.marked_lines: list[dict] = []
        # Work a source started in the background (source.begin), by its location kind.
        self.started: dict[str, forked.ForkedWork] = {}
        self.unit_links: list[tuple[str, str]] = []
        self._scanned: set[str] = set()
        self._listed: set[str] = set()
        self._which: dict[tuple[str, tuple[str, ...]], str | None] = {}
        self._analysed: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._kinds: dict[str, str] = {}
        self._resolved: dict[str, str | None] = {}
        self._packages: dict[str, str | None] = {}
        self._home_list: list[Account] | None = None
        self._in_homes: dict[str, list[str]] = {}
        self._payload_cache: dict[str, tuple[str, list[PayloadLine]] | None] = {}
        self._deep_noted: set[str] = set()
        self._loops_noted: set[str] = set()
        self._database: Database | None = None
        self.accounts = self._read_accounts()
        self.users = {a.name: a for a in self.accounts}
        self.uid_names = {a.uid: a.name for a in reversed(self.accounts)}
        self.gid_names = self._read_groups()
        self.package_manager = ""
        self._integrity: integrity.Integrity | None = None
        self.owners, self.package_database = self._read_owners()

    def _read_owners(self) -> tuple[dict[str, list[str]], bool]:
        """Every path a package lists -> its packages, and whether the root has a readable database."""
        try:
            database = installed.database_of(self.root)
            if database is None:
                raise PackageError("no package database (neither dpkg's nor rpm's)")
            owners = database.owners()
            self.package_manager = database.manager
            self._database = database
            return owners, True
        except PackageError as exc:
            self.note("", installed.WHERE, f"{exc}: no file counts as owned or as unowned")
            return {}, False

    # -- the root --------------------------------------------------------------------------------

    def note(self, kind: str, path: str, problem: str) -> None:
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

    def kind_of(self, path: str) -> str:
        """The type of what ``path`` leads to inside the root ("missing" for nothing or a loop)."""
        if path not in self._kinds:
            resolved = self.resolved_path(path)
            kind = "missing"
            if resolved is not None:
                with contextlib.suppress(OSError):
                    kind = file_type(os.lstat(rootfs.join(self.root, resolved)).st_mode)
            self._kinds[path] = kind
        return self._kinds[path]

    def _read_small(self, path: str) -> str:
        try:
            data = rootfs.read_bytes(self.root, path, MAX_TEXT, missing_ok=True)
        except rootfs.RootError as exc:
            self.note("", path, str(exc))
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

    def homes(self) -> list[Account]:
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
                self.note("", account.home, f"home of {account.name}: {exc}")
                continue
            if where.inside in seen or where.escaped or not os.path.isdir(where.host):
                continue
            seen.add(where.inside)
            found.append(account)
        self._home_list = found
        return found

    def in_homes(self, path: str) -> list[str]:
        """``path``, or for one starting with ~/ that path in every home directory."""
        if path not in self._in_homes:
            if path.startswith("~/"):
                self._in_homes[path] = [
                    shell_commands.normal_path(posixpath.join(a.home, path[2:])) for a in self.homes()
                ]
            else:
                self._in_homes[path] = [path]
        return self._in_homes[path]

    # -- directories and files -------------------------------------------------------------------

    def entries(
        self, kind: str, directory: str, *, recursive: bool = False, once: bool = True
    ) -> list[tuple[str, bool]]:
        """(path, is a symbolic link) of every entry of a directory of the root, sorted, each directory
        read once (on a merged-/usr root /lib/x and /usr/lib/x are one); subdirectories are descended
        into only when ``recursive`` and never through a link."""
        try:
            where = rootfs.resolve(self.root, directory)
        except rootfs.RootError as exc:
            self.note(kind, directory, str(exc))
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
                    self.note(kind, inside, f"cannot be listed: {exc.strerror}")
                elif inside == where.inside:
                    self.note(kind, directory, "is not a directory")
                continue
            for entry in entries:
                if len(found) >= MAX_ENTRIES:
                    self.note(kind, directory, f"holds more than {MAX_ENTRIES} entries; the rest is not read")
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

    def file(
        self, kind: str, path: str, account: Account | None = None, *, read: bool = True
    ) -> FileFacts | None:
        """Facts and content of a file at a location; None (with a note when it matters) when it is
        missing, not a regular file, a link loop or a link above the root, or was already read."""
        try:
            where = rootfs.resolve(self.root, path)
        except rootfs.RootError as exc:
            self.note(kind, path, str(exc))
            return None
        if where.escaped:
            self.note(
                kind, path, f"a symbolic link leads above the root ({'; '.join(where.links)}): not read"
            )
            return None
        try:
            st = os.lstat(where.host)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and self._is_link(path):
                self.note(kind, path, f"a dangling symbolic link ({'; '.join(where.links)})")
            elif not isinstance(exc, FileNotFoundError):
                self.note(kind, path, exc.strerror or str(exc))
            return None
        if where.inside in self._scanned:
            return None
        if not stat.S_ISREG(st.st_mode):
            self.note(kind, path, f"is a {file_type(st.st_mode)}, not a regular file: not read")
            return None
        self._scanned.add(where.inside)
        facts = FileFacts(path=path, kind=kind, resolved=where.inside, st=st, account=account)
        if read:
            try:
                facts.data = rootfs.read_bytes(self.root, where.inside, MAX_TEXT)
            except rootfs.RootError as exc:
                self.note(kind, path, str(exc))
        self.files[path] = facts
        return facts

    def any_file(self, kind: str, path: str) -> FileFacts | None:
        """Facts of whatever lies at ``path`` (any type, its last link not followed), never read;
        None when nothing is there or it was already met."""
        if path in self.files or not rootfs.lexists(self.root, path):
            return None
        try:
            where = rootfs.resolve(self.root, path, follow_last=False)
            st = os.lstat(where.host)
        except (OSError, rootfs.RootError):
            return None
        if where.inside in self._scanned:
            return None
        self._scanned.add(where.inside)
        facts = FileFacts(path=path, kind=kind, resolved=where.inside, st=st)
        self.files[path] = facts
        return facts

    def text_lines(self, facts: FileFacts) -> Iterator[tuple[int, str]]:
        """The lines of a file that are not quarantine comments (those are recorded instead)."""
        for number, text in lines(facts.data or b""):
            rules = quarantine_records.marked_rules(text)
            if rules is None:
                yield number, text
                continue
            shown = report_text.shown(text, SHOWN)
            self.marked_lines.append(
                quarantine_records.marked_line(facts.path, facts.resolved, number, shown, rules)
            )

    # -- items -----------------------------------------------------------------------------------

    def file_item(self, facts: FileFacts, *, runs: bool = False, also_names: tuple[str, ...] = ()) -> None:
        """The file itself as an item; ``runs`` when the location runs it as a program, ``also_names``
        the other paths that lead to it (the runlevel links that start an init script)."""
        executes = self.resolved_too([facts.path]) if runs else ()
        user = facts.account.name if facts.account else ""
        references = tuple(dict.fromkeys([*executes, *also_names]))
        self.items.append(Item(facts.kind, facts, user=user, executes=executes, references=references))

    def command_item(
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
        """A line that runs ``command`` as an item; ``shell_command`` is what the shell is given when
        that differs (cron's % conversion), ``search`` where a program named without a path is."""
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
            self.payload(executes),
        )
        self.items.append(item)
        return item

    def command_lines(self, facts: FileFacts, user: str = "") -> None:
        """Each line of a script that is not a comment is a command it runs."""
        for number, text in self.text_lines(facts):
            stripped = text.lstrip()
            if not stripped.startswith("#"):
                self.command_item(facts, number, text, stripped, user=user)

    def script(self, kind: str, path: str, *, runs: bool, account: Account | None = None) -> None:
        """A program a location runs: the file itself, and each line when it is a text script."""
        facts = self.file(kind, path, account)
        if facts is None:
            return
        self.file_item(facts, runs=runs)
        if facts.data is not None and not binary(facts.data):
            self.command_lines(facts)

    def _analyse(self, command: str, search: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(paths the command runs, every absolute path it names), resolved inside the root too.
        Answered once a command: scripts repeat their lines ("exit 0", "fi", log_end_msg)."""
        key = (command, search)
        if key not in self._analysed:
            programs, named = shell_commands.programs_and_paths(command)
            found = (p if p.startswith("/") else self._lookup(p, search) for p in programs)
            runs = self.resolved_too([p for p in found if p])
            self._analysed[key] = runs, tuple(dict.fromkeys([*runs, *named]))
        return self._analysed[key]

    def _lookup(self, name: str, search: tuple[str, ...]) -> str | None:
        key = (name, search)
        if key not in self._which:
            self._which[key] = next(
                (
                    f"{d}/{name}"
                    for d in search
                    if self.kind_of(f"{d}/{name}") not in ("missing", "directory")
                ),
                None,
            )
        return self._which[key]

    def resolved_too(self, paths: list[str]) -> tuple[str, ...]:
        """The paths and, for those reached through links, where the links lead inside the root."""
        out: list[str] = []
        for path in paths:
            out.append(path)
            resolved = self.resolved_path(path)
            if resolved and resolved != path:
                out.append(resolved)
        return tuple(dict.fromkeys(out))

    def payload(self, executes: tuple[str, ...]) -> str | None:
        """The file a command runs: the first existing one no package owns, else the first existing."""
        first = None
        for path in executes:
            if self.kind_of(path) in ("missing", "directory"):
                continue
            if self.unowned(path):
                return path
            first = first or path
        return first

    # -- what a payload runs -------------------------------------------------------------------

    def follow_payloads(self) -> None:
        """Give every item the lines of the scripts it runs (``Item.payload_lines``); once all
        sources have read their locations, so a script that is a location itself (rc.local, which
        rc-local.service runs) is judged there and not again."""
        for item in self.items:
            if item.executes:
                item.payload_lines = self.payload_chain(item.executes)

    def payload_chain(self, executes: tuple[str, ...]) -> tuple[PayloadLine, ...]:
        """The lines of the scripts a command runs that no package vouches for, followed through
        the scripts those lines run (a wrapper that execs another), at most PAYLOAD_DEPTH deep, each
        script once. Packaged scripts, programs that are not text and what cannot be read safely
        (a loop, a link above the root, a huge file: a note) are not followed."""
        chain: list[PayloadLine] = []
        seen: set[str] = set()
        for path in executes:
            self._follow(path, 1, (), seen, chain)
        return tuple(chain)

    def _follow(
        self, path: str, depth: int, callers: tuple[str, ...], seen: set[str], chain: list[PayloadLine]
    ) -> None:
        found = self._payload_lines(path)
        if found is None:
            return
        resolved, script = found
        if resolved in callers:
            if resolved not in self._loops_noted:
                self._loops_noted.add(resolved)
                self.note(
                    "", resolved, f"runs itself again through {' -> '.join(callers)}: a loop, read once"
                )
            return
        if resolved in seen:
            return
        seen.add(resolved)
        chain += script
        for line in script:
            for runs in line.runs:
                if depth < PAYLOAD_DEPTH:
                    self._follow(runs, depth + 1, (*callers, resolved), seen, chain)
                elif self._payload_lines(runs) is not None and runs not in self._deep_noted:
                    self._deep_noted.add(runs)
                    self.note(
                        "",
                        runs,
                        f"run by {line.path} line {line.line}, {PAYLOAD_DEPTH} scripts deep: "
                        "not followed further",
                    )

    def _payload_lines(self, path: str) -> tuple[str, list[PayloadLine]] | None:
        """(where ``path`` leads, the lines to judge) of a script to follow; None for anything else.
        Read once per file however many items run it."""
        if path in self._payload_cache:
            return self._payload_cache[path]
        self._payload_cache[path] = None
        try:
            where = rootfs.resolve(self.root, path)
        except rootfs.RootError as exc:
            self.note("", path, f"a program a startup item runs: {exc}")
            return None
        if where.escaped:
            self.note(
                "",
                path,
                f"a program a startup item runs leads above the root ({'; '.join(where.links)}): not read",
            )
            return None
        if where.inside != path and where.inside in self._payload_cache:
            self._payload_cache[path] = self._payload_cache[where.inside]
            return self._payload_cache[path]
        data = self._script_text(path, where)
        if data is None:
            return None
        shell = script_language(data, where.inside) == "shell"
        found: list[PayloadLine] = []
        for number, text in lines(data):
            stripped = text.strip()
            if not stripped or stripped.startswith("#"):
                continue
            runs, names = self._analyse(stripped, PATH) if shell else ((), ())
            found.append(PayloadLine(where.inside, number, report_text.shown(stripped, SHOWN), runs, names))
        self._payload_cache[path] = self._payload_cache[where.inside] = (where.inside, found)
        return self._payload_cache[path]

    def _script_text(self, path: str, where: rootfs.Resolved) -> bytes | None:
        """The content of a text script no package vouches for at ``where``; None for a location
        (judged where it lies), anything but a regular file, a binary, or a vouched-for script.
        Without a package database no script counts as unvouched: nothing is judged."""
        if where.inside in self._scanned or not self.package_database:
            return None
        try:
            st = os.lstat(where.host)
        except OSError:
            return None  # a program that is not there runs nothing
        try:
            if not stat.S_ISREG(st.st_mode):
                return None
            owned = self.package_of(where.inside) is not None
            if owned and st.st_size > MAX_PAYLOAD:
                return None  # a packaged program that size is no script
            if binary(_head(where.host)):
                return None
            data = rootfs.read_bytes(self.root, where.inside, MAX_PAYLOAD)
        except (OSError, rootfs.RootError) as exc:
            self.note("", path, f"a program a startup item runs, not judged: {exc}")
            return None
        if data is None or binary(data) or (owned and self.vouched_for(where.inside)):
            return None
        return data

    def vouched_for(self, path: str) -> bool:
        """True for a file a package owns whose content its package's recorded checksum does not
        contradict: its lines are the package's, not judged again (stock scripts name /tmp in many
        harmless ways)."""
        return (
            self.package_of(path) is not None and self.integrity().verdict(path).status != integrity.MISMATCH
        )

    # -- ownership -------------------------------------------------------------------------------

    def _aliases(self, path: str) -> list[str]:
        """``path`` and its other spelling on a merged-/usr root (dpkg lists /lib/x for /usr/lib/x)."""
        return self.integrity().aliases(path)

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

    def integrity(self) -> integrity.Integrity:
        """Whether packaged files still have their recorded digests (hashed only when asked, once)."""
        if self._integrity is None:
            self._integrity = integrity.Integrity(self.root, self._database, self.owners)
        return self._integrity

    def close(self) -> None:
        """End the work started in the background (forked walks, hashing threads)."""
        for started in self.started.values():
            started.close()
        self.started.clear()
        if self._integrity is not None:
            self._integrity.close()

    # -- bounded walks ---------------------------------------------------------------------------

    def walk(
        self,
        kind: str,
        directory: str,
        *,
        prune: tuple[str, ...] = (),
        depth: int = 12,
        limit: int = 200000,
        one_filesystem: bool = False,
        walked: set[tuple[int, int]] | None = None,
    ) -> Iterator[tuple[str, os.DirEntry]]:
        """(path, entry) of everything below a directory of the root that is not a directory, never
        through a link, at most ``depth`` levels down and ``limit`` entries (a note says so when a
        tree is larger); ``prune`` are directories (inside the root) not descended into, a trailing
        '*' naming every directory that starts so. With ``one_filesystem`` no mount point below it
        is entered; ``walked`` holds the (device, inode) of directories already walked, so a tree
        reachable twice (by a link, by a bind mount) is walked once across calls."""
        try:
            where = rootfs.resolve(self.root, directory)
            top = os.lstat(where.host)
        except FileNotFoundError:
            return
        except (OSError, rootfs.RootError) as exc:
            self.note(kind, directory, str(exc))
            return
        walked = set() if walked is None else walked
        if where.escaped or (top.st_dev, top.st_ino) in walked:
            return
        walked.add((top.st_dev, top.st_ino))
        # Paths are joined by hand and prune tested as a set and a prefix tuple: a server's /usr
        # holds tens of thousands of entries.
        exact = {p for p in prune if not p.endswith("*")}
        prefixes = tuple(p[:-1] for p in prune if p.endswith("*"))
        pending, seen = [(where.inside, 0)], 0
        while pending:
            inside, level = pending.pop()
            try:
                with os.scandir(rootfs.join(self.root, inside)) as listing:
                    entries = list(listing)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                    self.note(kind, inside, f"cannot be listed: {exc.strerror}")
                continue
            base = inside.rstrip("/") + "/"
            for entry in entries:
                seen += 1
                if seen > limit:
                    self.note(kind, directory, f"holds more than {limit} entries; the rest is not read")
                    return
                path = base + entry.name
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        yield path, entry
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if (
                    level < depth
                    and path not in exact
                    and not (prefixes and path.startswith(prefixes))
                    and key not in walked
                    and not (one_filesystem and st.st_dev != top.st_dev)
                ):
                    walked.add(key)
                    pending.append((path, level + 1))
