# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crontab errors cron has already logged on a root: syslog and cron logs, rotated and gzipped.

Read as data inside the root (rootfs: never through a link out of it, never a device or FIFO), each
file bounded: a plain log is read from its end (the newest lines), a gzipped one is decompressed up
to a cap so that a gzip bomb cannot exhaust memory; what was left unread is said in ``notes``.

Message forms (checked against Debian's cron under rsyslog on bullseye, bookworm and trixie; the
cronie forms from its source):

- Debian, a line cron refuses, then what it does about the file::

    cron[16]: Error: bad minute; while reading /etc/cron.d/job
    cron[16]: (*system*job) ERROR (Syntax error, this crontab file will be ignored)
    cron[16]: Error: bad hour; while reading crontab for user alice
    cron[16]: (alice) ERROR (Missing newline before EOF, this crontab file will be ignored)

- Debian, a file cron refuses: ``(*system*job) INSECURE MODE (group/other writable) (/etc/cron.d/job)``,
  ``(*system*) WRONG FILE OWNER (/etc/crontab)``, ``(alice) ORPHAN (no passwd entry)``; older Debian
  releases said ``(alice) WRONG INODE INFO (crontabs/alice)``.
- cronie (Red Hat; checked against cronie 1.7.2's daemon under rsyslog), a refused line (the other
  lines of the file still run), a last line without its newline, a user crontab over its limits::

    crond[812]: (CRON) bad minute (/etc/cron.d/job)
    crond[812]: (CRON) missing newline before EOF (/var/spool/cron/alice)
    crond[812]: (CRON) too many entries (/var/spool/cron/alice)
    crond[812]: (alice) FAILED (loading cron table)

  and a file it refuses: ``(root) BAD FILE MODE (/etc/cron.d/job)``, ``(root) NOT REGULAR
  (/etc/cron.d/dir)``, ``(alice) WRONG FILE OWNER (/var/spool/cron/alice)``, ``(alice) BAD LINK
  COUNT (/var/spool/cron/alice)``, ``(root) CAN'T OPEN (/etc/cron.d/x): Permission denied``,
  ``(ghost) ORPHAN (no passwd entry)``. Its other ERROR lines name no crontab and are not
  crontab errors: ``(CRON) ERROR (Only privileged user can disable logging)`` (before a "bad
  option"), ``(CRON) ERROR (bad value of RANDOM_DELAY)``, ``(bob) ERROR (getpwnam() failed - user
  unknown)`` (a system crontab's job for a user without an account, when it is due). On a Red Hat
  host rsyslog writes them to /var/log/cron (cron.* there), on Debian to /var/log/syslog.

Timestamps are rsyslog's traditional "Nov 22 13:20:01" (bullseye) or RFC 3339
"2026-11-22T13:20:01.922231+00:00" (bookworm and trixie).

A host without rsyslog (Debian's default from bookworm on) keeps cron's words in the systemd
journal only: ``scan_journal`` reads the journal files of the root's /var/log/journal with the
rescuer's journalctl (``--file`` each, so only the target's), cron's entries only, the newest ones
bounded.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import stat
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner, ToolError
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

LOG_DIR = "/var/log"
# Live and rotated logs: syslog, syslog.1, syslog.2.gz, cron.log.1, cron-20240101.gz, messages...
_LOG_NAME = re.compile(
    r"(?P<base>syslog|cron(?:\.log)?|messages|daemon\.log)(?:[.-](?P<rot>\d+))?(?P<gz>\.gz)?"
)
# Each log file is read up to this many bytes (the text of a gzipped one, decompressed).
MAX_BYTES = 64 << 20
MAX_COMPRESSED = 64 << 20
_CHUNK = 1 << 20

# cronie's daemon is crond; the process that starts a job calls itself CROND.
PROGRAMS = ("cron", "CRON", "crond", "CROND")
JOURNAL_DIR = "/var/log/journal"
# The newest entries of cron's read from the journal (its job lines make a long history).
MAX_JOURNAL_ENTRIES = 50_000
SYNTAX_ERROR = "syntax error"

_TIMESTAMP = (
    r"(?P<ts>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
)
_LINE = re.compile(
    _TIMESTAMP + r" (?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)", re.DOTALL
)
_DEBIAN_ERROR = re.compile(
    r"Error: (?P<kind>.+?); while reading (?:crontab for user (?P<user>.+)|(?P<path>/.*))", re.DOTALL
)
# log_it: "(NAME) EVENT (DETAIL)", cronie may add ": strerror".
_LOG_IT = re.compile(r"\((?P<name>[^)]*)\) (?P<event>.+?) \((?P<detail>.*)\)(?:: (?P<errno>.*))?", re.DOTALL)
# load_user's verdicts on a whole file: "ERROR (<why>, this crontab file will be ignored)".
_IGNORED = {
    "Syntax error": SYNTAX_ERROR,
    "Missing newline before EOF": crontab.MISSING_NEWLINE,
}
# Events about a file or directory cron refuses or cannot read (Debian, older Debian, cronie).
_FILE_EVENTS = (
    "WRONG FILE OWNER",
    "WRONG SYMLINK OWNER",
    "INSECURE MODE (group/other writable)",
    "INSECURE MODE (mode 0600 expected)",
    "NUMBER OF HARD LINKS > 1",
    "NOT A REGULAR FILE",
    "CAN'T OPEN SYMLINK",
    "CAN'T OPEN",
    "LSTAT FAILED",
    "FSTAT FAILED",
    "STAT FAILED",
    "OPENDIR FAILED",
    "WRONG INODE INFO",
    "BAD FILE MODE",
    "NOT REGULAR",
    "BAD LINK COUNT",
)
# The events hold parentheses themselves ("INSECURE MODE (mode 0600 expected)"): match them whole.
_FILE_EVENT = re.compile(
    r"\((?P<name>[^)]*)\) (?P<event>"
    + "|".join(re.escape(e) for e in sorted(_FILE_EVENTS, key=len, reverse=True))
    + r") \((?P<detail>.*)\)(?:: (?P<errno>.*))?",
    re.DOTALL,
)
_CRON_ERRORS = (
    crontab.BAD_MINUTE,
    crontab.BAD_HOUR,
    crontab.BAD_DOM,
    crontab.BAD_MONTH,
    crontab.BAD_DOW,
    crontab.BAD_COMMAND,
    crontab.BAD_TIMESPEC,
    crontab.BAD_USERNAME,
    crontab.BAD_COMMAND_LEN,
    "bad option",
    "out of memory",
)
# cronie's words about a whole file it reads (user.c): "(CRON) too many entries (/var/spool/cron/x)".
_CRONIE_FILE_ERRORS = (
    crontab.MISSING_NEWLINE,
    crontab.TOO_MANY_ENTRIES,
    crontab.TOO_MANY_ENVS,
    crontab.TOO_MUCH_GARBAGE,
)


@dataclass(frozen=True)
class LoggedError:
    """One error cron logged about a crontab.

    ``log`` is the log file's path inside the root, ``line`` the line's number in it (from 1),
    ``timestamp`` the line's timestamp as written, ``kind`` cron's words ("bad minute",
    "WRONG FILE OWNER", "syntax error", "missing newline before EOF", "ORPHAN", ...),
    ``crontab`` the crontab it is about ('' when the line names none; for a Debian user crontab,
    named by its user only, the spool path /var/spool/cron/crontabs/USER), ``message`` what cron
    wrote (after "cron[pid]: ").
    """

    log: str
    line: int
    timestamp: str
    kind: str
    crontab: str
    message: str
    host: str = ""
    program: str = ""
    pid: int = 0


def scan_logs(root: str, *, max_bytes: int = MAX_BYTES, notes: list[str] | None = None) -> list[LoggedError]:
    """Every crontab error cron logged in the root's syslog, cron, messages and daemon logs.

    Oldest rotation first, so each log's errors come out in time order. ``notes`` (when given)
    receives what could not be read or was cut.
    """
    notes = notes if notes is not None else []
    found: list[LoggedError] = []
    for path in log_files(root, notes):
        text = _read_log(root, path, max_bytes, notes)
        if text is None:
            continue
        data, first_line = text
        found.extend(parse_log(data, path, first_line=first_line))
    return found


def scan_journal(root: str, run: Runner, notes: list[str] | None = None) -> list[LoggedError]:
    """Every crontab error cron logged in the root's systemd journal (none when it keeps none).

    journalctl is given the journal files themselves: regular files found inside the root without
    following a link (a linked file could lead to the rescuer's own journal). A missing journalctl
    or an unreadable journal is a note.
    """
    notes = notes if notes is not None else []
    try:
        where = rootfs.resolve(root, JOURNAL_DIR)
    except rootfs.RootError as exc:
        notes.append(f"the journal was not read: {exc}")
        return []
    files = journal_files(where.host)
    if not files:
        return []
    argv = ["journalctl", *(f"--file={f}" for f in files), "--output", "json", "--no-pager"]
    argv += ["--output-fields", "MESSAGE,SYSLOG_IDENTIFIER,_PID,_HOSTNAME"]
    argv += ["--lines", str(MAX_JOURNAL_ENTRIES), *(f"SYSLOG_IDENTIFIER={p}" for p in PROGRAMS)]
    try:
        text = run(argv)
    except ToolError as exc:
        notes.append(f"the journal in {JOURNAL_DIR} was not read: {exc}")
        return []
    entries = text.splitlines()
    if len(entries) >= MAX_JOURNAL_ENTRIES:
        notes.append(f"only cron's newest {MAX_JOURNAL_ENTRIES} journal entries were read")
    return parse_journal(entries)


def journal_files(directory: str) -> list[str]:
    """The journal files in ``directory`` and its machine-id subdirectories: regular files only,
    reached without a link (``directory`` itself was resolved inside the root)."""
    found = []
    try:
        top = os.scandir(directory)
    except OSError:
        return []
    with top:
        for entry in top:
            if entry.is_dir(follow_symlinks=False):
                try:
                    with os.scandir(entry.path) as inner:
                        found += [f.path for f in inner if _journal_file(f)]
                except OSError:
                    continue
            elif _journal_file(entry):
                found.append(entry.path)
    return sorted(found)


def _journal_file(entry: os.DirEntry) -> bool:
    return entry.is_file(follow_symlinks=False) and entry.name.endswith((".journal", ".journal~"))


def parse_journal(entries: list[str], log: str = "journal:" + JOURNAL_DIR) -> list[LoggedError]:
    """Cron's errors among ``journalctl --output json`` lines; ``line`` is an entry's place in them."""
    found = []
    for number, text in enumerate(entries, 1):
        try:
            entry = json.loads(text)
        except ValueError:
            continue
        program, message = entry.get("SYSLOG_IDENTIFIER"), entry.get("MESSAGE")
        if isinstance(message, list):  # not UTF-8: journalctl gives the bytes as numbers
            message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode(
                "utf-8", "replace"
            )
        if program not in PROGRAMS or not isinstance(message, str):
            continue
        judged = _classify(message, program in ("crond", "CROND"))
        if judged is None:
            continue
        try:
            micro = int(entry.get("__REALTIME_TIMESTAMP", 0))
            pid = int(entry.get("_PID") or 0)
        except ValueError:
            micro, pid = 0, 0
        utc = datetime.timezone.utc
        stamp = datetime.datetime.fromtimestamp(micro / 1e6, tz=utc).isoformat()
        found.append(
            LoggedError(
                log=log,
                line=number,
                timestamp=stamp,
                kind=judged[0],
                crontab=judged[1],
                message=message,
                host=str(entry.get("_HOSTNAME", "")),
                program=program,
                pid=pid,
            )
        )
    return found


def log_files(root: str, notes: list[str]) -> list[str]:
    """The logs cron writes to, inside the root: live ones and their rotations, oldest first."""
    try:
        where = rootfs.resolve(root, LOG_DIR)
    except rootfs.RootError as exc:
        notes.append(str(exc))
        return []
    try:
        names = os.listdir(where.host)
    except OSError as exc:
        if not isinstance(exc, FileNotFoundError):
            notes.append(f"{LOG_DIR} in {root}: {exc.strerror}")
        return []
    keyed = []
    for name in names:
        m = _LOG_NAME.fullmatch(name)
        if m is None:
            continue
        rot = m.group("rot")
        # Numbered rotations count up with age; dated ones (cron-20240101) count up with time.
        order = (-int(rot) if len(rot) < 8 else int(rot) - 10**9) if rot else 0
        keyed.append(((m.group("base"), order), f"{where.inside.rstrip('/')}/{name}"))
    return [path for _key, path in sorted(keyed)]


def _read_log(root: str, path: str, max_bytes: int, notes: list[str]) -> tuple[bytes, int] | None:
    """The bytes to scan and the number of the first line they hold."""
    try:
        if path.endswith(".gz"):
            compressed = rootfs.read_bytes(root, path, MAX_COMPRESSED) or b""
            return _gunzip(compressed, path, max_bytes, notes), 1
        return _read_tail(root, path, max_bytes, notes)
    except rootfs.RootError as exc:
        notes.append(f"{path}: not read: {exc}")
        return None


def _gunzip(compressed: bytes, path: str, max_bytes: int, notes: list[str]) -> bytes:
    """Decompress every gzip member, never holding more than ``max_bytes`` of output."""
    out: list[bytes] = []
    size = 0
    rest = compressed
    try:
        while rest and size <= max_bytes:
            engine = zlib.decompressobj(wbits=31)
            chunk = engine.decompress(rest, max_bytes + 1 - size)
            out.append(chunk)
            size += len(chunk)
            while engine.unconsumed_tail and size <= max_bytes:
                chunk = engine.decompress(engine.unconsumed_tail, max_bytes + 1 - size)
                out.append(chunk)
                size += len(chunk)
            if engine.unconsumed_tail or not engine.eof:
                if size <= max_bytes:
                    notes.append(f"{path}: the gzip data ends early; read what it held")
                break
            rest = engine.unused_data.lstrip(b"\0")  # gzip may pad members with zeros
    except zlib.error as exc:
        notes.append(f"{path}: damaged gzip data ({exc}); read what came before the damage")
    data = b"".join(out)
    if len(data) > max_bytes:
        notes.append(
            f"{path}: only the first {max_bytes} bytes of its decompressed text were read (it holds more)"
        )
        data = data[: data.rfind(b"\n", 0, max_bytes) + 1]
    return data


def _read_tail(root: str, path: str, max_bytes: int, notes: list[str]) -> tuple[bytes, int]:
    """The last ``max_bytes`` of a plain log (whole lines) and the number of the first line read."""
    where = rootfs.resolve(root, path)
    named = rootfs.shown(root, path, where)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        # Look before opening: a device node or FIFO planted in a hostile root is never opened.
        if not stat.S_ISREG(os.lstat(where.host).st_mode):
            raise rootfs.RootError(f"{named} in {root} is not a regular file")
        fd = os.open(where.host, flags)
    except OSError as exc:
        raise rootfs.RootError(f"{named} in {root}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise rootfs.RootError(f"{named} in {root} is not a regular file")
        # One byte before the part read tells whether it starts at a whole line.
        start = max(0, st.st_size - max_bytes - 1)
        skipped_lines = 0
        offset = 0
        while offset < start:  # count the lines left unread, without holding them
            chunk = os.pread(fd, min(_CHUNK, start - offset), offset)
            if not chunk:
                break
            skipped_lines += chunk.count(b"\n")
            offset += len(chunk)
        parts: list[bytes] = []
        while offset < st.st_size:
            chunk = os.pread(fd, min(_CHUNK, st.st_size - offset), offset)
            if not chunk:
                break
            parts.append(chunk)
            offset += len(chunk)
    except OSError as exc:
        raise rootfs.RootError(f"{named} in {root}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    data = b"".join(parts)
    if start == 0:
        return data, 1
    # Drop the line read only in part (up to and with the first newline).
    cut = data.find(b"\n") + 1
    skipped_lines += data.count(b"\n", 0, cut)
    notes.append(f"{path}: only its last {max_bytes} bytes were read (from line {skipped_lines + 1} on)")
    return data[cut:], skipped_lines + 1


def parse_log(data: bytes, log: str, *, first_line: int = 1) -> list[LoggedError]:
    """The crontab errors in one log's bytes (cron's lines only)."""
    found: list[LoggedError] = []
    number, counted = first_line, 0
    next_start = 0
    # Visit only the lines that name cron: a log is mostly other programs' lines (or a flood of
    # empty ones), and the search and the newline count run in C.
    for hit in _cron_words(data):
        if hit < next_start:
            continue
        start = data.rfind(b"\n", 0, hit) + 1
        end = data.find(b"\n", hit)
        end = len(data) if end < 0 else end
        number += data.count(b"\n", counted, start)
        counted, next_start = start, end + 1
        error = parse_line(data[start:end].decode("utf-8", "surrogateescape"), log, number)
        if error is not None:
            found.append(error)
    return found


def _cron_words(data: bytes) -> Iterator[int]:
    """Where "cron" or "CRON" occurs, in order (bytes.find: far faster than a regex on a big log)."""
    lower, upper = data.find(b"cron"), data.find(b"CRON")
    while lower >= 0 or upper >= 0:
        if upper < 0 or 0 <= lower < upper:
            yield lower
            lower = data.find(b"cron", lower + 1)
        else:
            yield upper
            upper = data.find(b"CRON", upper + 1)


def parse_line(line: str, log: str = "", number: int = 0) -> LoggedError | None:
    """One log line as a crontab error of cron's, or None (another program, or not an error)."""
    m = _LINE.fullmatch(line.rstrip("\r"))
    if m is None or m.group("prog") not in PROGRAMS:
        return None
    msg = m.group("msg")
    cronie = m.group("prog") in ("crond", "CROND")
    found = _classify(msg, cronie)
    if found is None:
        return None
    kind, path = found
    return LoggedError(
        log=log,
        line=number,
        timestamp=m.group("ts"),
        kind=kind,
        crontab=path,
        message=msg,
        host=m.group("host"),
        program=m.group("prog"),
        pid=int(m.group("pid") or 0),
    )


def _classify(msg: str, cronie: bool) -> tuple[str, str] | None:
    """(kind, crontab path) of a cron message that reports an error, else None."""
    m = _DEBIAN_ERROR.fullmatch(msg)
    if m:
        user = m.group("user")
        return m.group("kind"), _user_crontab(user, cronie) if user is not None else m.group("path")
    m = _FILE_EVENT.fullmatch(msg)
    if m:
        return m.group("event"), _detail_path(m.group("detail"), m.group("name"), cronie)
    m = _LOG_IT.fullmatch(msg)
    if m is None:
        return None
    name, event, detail = m.group("name"), m.group("event"), m.group("detail")
    if cronie and event in ("ERROR", "FAILED"):
        return None  # cronie's ERROR and FAILED lines name no crontab (see the module's docstring)
    if cronie and event in _CRONIE_FILE_ERRORS and name == "CRON":
        return event, detail
    if event == "ERROR":
        why = detail.split(", this crontab file will be ignored")[0]
        kind = _IGNORED.get(why, crontab.TOO_MANY_LINES if why.startswith("crontab must not be") else why)
        return kind, _named_crontab(name, cronie)
    if event == "ORPHAN":
        return event, _named_crontab(name, cronie)
    if event in _CRON_ERRORS:  # cronie: "(CRON) bad minute (/etc/crontab)"
        return event, detail
    return None


def _named_crontab(name: str, cronie: bool) -> str:
    """The crontab behind cron's name for it: "*system*" is /etc/crontab, "*system*x" a cron.d file."""
    if name == "*system*":
        return "/etc/crontab"
    if name.startswith("*system*"):
        return f"/etc/cron.d/{name[len('*system*') :]}"
    return _user_crontab(name, cronie)


def _user_crontab(user: str, cronie: bool) -> str:
    return f"/var/spool/cron/{user}" if cronie else f"/var/spool/cron/crontabs/{user}"


def _detail_path(detail: str, name: str, cronie: bool) -> str:
    if detail.startswith("/"):
        return detail
    if detail.startswith("crontabs/"):  # older Debian cron logged paths relative to /var/spool/cron
        return f"/var/spool/cron/{detail}"
    return _named_crontab(name, cronie) if name != "CRON" else detail


_TRADITIONAL = re.compile(r"(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2})")


def seconds_of(timestamp: str, year: int) -> float | None:
    """A log timestamp as seconds since the epoch; None when it cannot be read.

    RFC 3339 timestamps say everything. A traditional one ("Nov 22 13:46:21") has no year and no
    zone: ``year`` is the log file's, and the time is read as the rescuer's local time, which is
    close enough to tell an error logged before a crontab last changed from one logged after.
    """
    try:
        return datetime.datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        pass
    m = _TRADITIONAL.fullmatch(timestamp.strip())
    if m is None:
        return None
    try:
        moment = time.strptime(f"{year} {m['month']} {m['day']} {m['time']}", "%Y %b %d %H:%M:%S")
    except ValueError:
        return None
    return time.mktime(moment)
