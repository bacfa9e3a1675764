# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crontab grammar cron accepts, as pure functions: Debian's cron (Vixie cron 3.0pl1 with Debian's
patches) and, as the ``CRONIE`` dialect, cronie.

The parser is a port of cron's own reading (load_user: load_env, then load_entry with get_list,
get_range, get_number and get_string, over the file's bytes) rather than a tidier grammar, because
the point is to predict what the daemon does: which lines it rejects, with which words, and which
odd lines it quietly accepts. Every rule here was checked against the real daemons of bullseye
(3.0pl1-137), bookworm (3.0pl1-162) and trixie (3.0pl1-197) by the oracle test lane.

Three facts of cron's reading shape the whole module:

- cron stops at the first line it refuses and ignores the whole file ("Syntax error, this crontab
  file will be ignored"); a last line without its newline does the same.
- A NUL byte ends what get_string reads (an environment line, a user name, a command): what follows
  it on the line is read as if it started a new line.
- The user field of /etc/crontab and /etc/cron.d is read up to the next blank, across newlines.

Red Hat's cronie (1.7; RHEL, CentOS, Rocky, Alma, Fedora, SUSE) is the ``CRONIE`` dialect: the
same stdio reading, a different load_entry and load_user; cronie.py's docstring lists every
difference.

The reading is cut in modules of this package; callers use this one:
- grammar.py: the error words and limits, the time fields, ``Dialect`` and ``Entry``;
- reading.py: cron's stdio reading over bytes, the same in both crons (get_string, load_env);
- vixie.py: how Debian's cron reads an entry (load_entry, get_list, get_range, get_number);
- cronie.py: how cronie reads an entry and a whole file;
- crontab.py: a line's and a file's verdict, in the dialect's reading.

The rules cron applies to a whole file (owners, modes, names, bytes) are file_rules.py's; the
anacrontab grammar is anacrontab.py's.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection

from ansible_collections.lifeline.rescue.plugins.module_utils.cron.cronie import (
    _cronie_load_user,
    _load_entry_cronie,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.grammar import (
    BAD_COMMAND,
    BAD_COMMAND_LEN,
    BAD_DOM,
    BAD_DOW,
    BAD_HOUR,
    BAD_MINUTE,
    BAD_MONTH,
    BAD_OPTION,
    BAD_TIMESPEC,
    BAD_USERNAME,
    CLASSIC,
    CRONIE,
    CRONIE_MAX,
    CRONIE_MAX_GARBAGE,
    CRONIE_MAX_USER_ENTRIES,
    CRONIE_MAX_USER_ENVS,
    DAYS,
    FIELDS,
    MAX_COMMAND,
    MAX_ENVSTR,
    MAX_TAB_LINES,
    MAX_TEMPSTR,
    MISSING_NEWLINE,
    MONTHS,
    SPECIALS,
    TOO_MANY_ENTRIES,
    TOO_MANY_ENVS,
    TOO_MANY_LINES,
    TOO_MUCH_GARBAGE,
    TRIXIE,
    Dialect,
    Entry,
    Field,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.reading import (
    INT_MAX,
    _b2s,
    _Item,
    _load_env,
    _s2b,
    _Stream,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.vixie import _LINE_LIMIT, _load_entry

__all__ = [
    "BAD_COMMAND",
    "BAD_COMMAND_LEN",
    "BAD_DOM",
    "BAD_DOW",
    "BAD_HOUR",
    "BAD_MINUTE",
    "BAD_MONTH",
    "BAD_OPTION",
    "BAD_TIMESPEC",
    "BAD_USERNAME",
    "CLASSIC",
    "CRONIE",
    "CRONIE_MAX",
    "CRONIE_MAX_GARBAGE",
    "CRONIE_MAX_USER_ENTRIES",
    "CRONIE_MAX_USER_ENVS",
    "DAYS",
    "FIELDS",
    "INT_MAX",
    "MAX_COMMAND",
    "MAX_ENVSTR",
    "MAX_TAB_LINES",
    "MAX_TEMPSTR",
    "MISSING_NEWLINE",
    "MONTHS",
    "SPECIALS",
    "TOO_MANY_ENTRIES",
    "TOO_MANY_ENVS",
    "TOO_MANY_LINES",
    "TOO_MUCH_GARBAGE",
    "TRIXIE",
    "Dialect",
    "Entry",
    "Field",
    "dialect_for",
    "first_error",
    "parse_line",
    "parse_text",
    "split_percent",
]


def dialect_for(version: str) -> Dialect:
    """The dialect of an installed Debian cron package version ("3.0pl1-162"); CLASSIC if unknown."""
    m = re.fullmatch(r"(?:\d+:)?3\.0pl1-(\d+)(?:[.+~].*)?", version.strip())
    if m and int(m.group(1)) >= 187:
        return TRIXIE
    return CLASSIC


def _read(
    stream: _Stream,
    system: bool,
    users: Collection[str] | None,
    dialect: Dialect,
    privileged: bool = False,
    environment: dict[bytes, bytes] | None = None,
) -> _Item:
    """One round of load_user's loop: an assignment, a job, an error, or "eof"."""
    env = _load_env(stream, dialect)
    if env is not None:
        if env.kind == "env" and environment is not None:
            environment[env.name] = env.value
        return env
    if dialect.cronie:
        return _load_entry_cronie(stream, system, users, privileged, environment or {})
    return _load_entry(stream, system, users)


# ---- lines ----------------------------------------------------------------------------------


def parse_line(
    line: str,
    system: bool,
    *,
    users: Collection[str] | None = None,
    dialect: Dialect = CLASSIC,
    privileged: bool = False,
) -> Entry:
    """Read one line (without its newline) the way cron reads a file holding only that line.

    ``system`` is the /etc/crontab and /etc/cron.d format, with a user field. With ``users`` (the
    target's account names) an unknown user is "bad username", as getpwnam makes it for Debian's
    cron (cronie loads the line and says so when the job is due: a note); without it any user name
    is accepted. ``dialect`` picks the cron and release. ``privileged`` is a user crontab of uid 0
    (cronie lets only root switch a job's log line off with a leading '-').
    """
    line = line[:-1] if line.endswith("\n") else line
    data = _s2b(line) + b"\n"
    return _line_entry(data, 0, len(data) - 1, system, users, dialect, line, privileged)


def _line_entry(
    data: bytes,
    start: int,
    end: int,
    system: bool,
    users: Collection[str] | None,
    dialect: Dialect,
    line: str,
    privileged: bool = False,
) -> Entry:
    """The verdict on the line data[start:end] (``end`` at its newline or at the end of the data)."""
    stripped = data[start:end].lstrip(b" \t")
    if not stripped:
        return Entry("blank", line)
    if stripped[:1] == b"#":
        return Entry("comment", line)
    stream = _Stream(data, start)
    items: list[_Item] = []
    environment: dict[bytes, bytes] = {}
    while True:
        item = _read(stream, system, users, dialect, privileged, environment)
        if item.kind == "eof":
            break
        items.append(item)
        if item.kind == "error" or stream.pos > end:
            break
        # A NUL ended what was read; cron goes on with the rest of this line as a line of its own.
        rest = data[stream.pos : end].lstrip(b" \t")
        if not rest or rest[:1] == b"#":
            break
    return _entry_of(items, line, system, dialect)


def _entry_of(items: list[_Item], line: str, system: bool, dialect: Dialect) -> Entry:
    """One line's verdict from what cron read on it (more than one item after a NUL byte)."""
    if not items:
        return Entry("blank", line)
    first = items[0]
    notes = [note for item in items for note in item.notes]
    error = next((item for item in items if item.kind == "error"), None)
    if error is not None:
        if error is not first and dialect.cronie:
            notes.append(
                f"cronie read this line in parts (after a NUL byte, or past {CRONIE_MAX - 1} bytes): "
                f"a later part is refused: {error.error}"
            )
        elif error is not first:
            notes.append(f"the part after a NUL byte is refused by cron: {error.error}")
        if error.error == MISSING_NEWLINE:
            if dialect.skips_bad_lines:
                notes.append("cronie skips this last line only: it has no newline")
            else:
                notes.append("cron ignores the whole file: its last line has no newline")
        return Entry(
            "error",
            line,
            error=error.error,
            special=error.special,
            fields=error.fields,
            user=_b2s(error.user),
            notes=notes,
        )
    if first.kind == "env":
        if dialect.cronie and first.name == b"HOME":
            notes.append(
                "cronie changes into HOME before each job: a job whose HOME does not exist never runs"
            )
        return Entry("env", line, name=_b2s(first.name), value=_b2s(first.value), notes=notes)
    command = _b2s(first.command)
    shell_command, stdin = split_percent(command, cronie=dialect.cronie)
    if system and command[:1] in (" ", "\t"):
        notes.append("the command starts with blanks: cron passes them to the shell")
    if command.endswith("\r"):
        notes.append("the command ends with a carriage return: the shell runs it with that byte")
    if not command.strip(" \t"):
        notes.append("empty command: cron runs the shell with nothing to do")
    return Entry(
        "job",
        line,
        special=first.special,
        fields=first.fields,
        schedule=first.schedule,
        user=_b2s(first.user),
        command=command.lstrip(" \t"),
        shell_command=shell_command,
        stdin=stdin,
        notes=notes,
    )


def split_percent(command: str, *, cronie: bool = False) -> tuple[str, str | None]:
    """What cron gives the shell and the job's standard input (do_command.c).

    The first unescaped % ends the shell command; there ``\\%`` becomes % and (Debian's cron, not
    cronie) ``\\\\`` one backslash. The rest is the job's input: % becomes a newline, ``\\%`` a %, every other
    backslash stays, and a final newline is added when the input does not end with one. The input
    is None when the command holds no unescaped %.
    """
    if "%" not in command and "\\" not in command:
        return command, None
    out: list[str] = []
    escaped = False
    for i, ch in enumerate(command):
        if escaped:
            escaped = False
            if ch == "%" or (ch == "\\" and not cronie):
                out[-1] = ch
                continue
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            return "".join(out), _stdin_text(command[i + 1 :])
        out.append(ch)
    return "".join(out), None


def _stdin_text(rest: str) -> str:
    out: list[str] = []
    escaped = need_newline = False
    for ch in rest:
        if escaped:
            if ch != "%":
                out.append("\\")
        elif ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            out.append(ch)
            need_newline = ch != "\n"
    if escaped:
        out.append("\\")
    if need_newline:
        out.append("\n")
    return "".join(out)


def parse_text(
    text: str,
    system: bool,
    *,
    users: Collection[str] | None = None,
    dialect: Dialect = CLASSIC,
    privileged: bool = False,
) -> list[Entry]:
    """Every line of a crontab, each as cron reads it.

    Debian's cron: each line as cron reads it when every line before it was accepted (one refused
    line makes cron ignore the whole file; ``first_error`` says which). cronie reads every line
    whatever the lines before it hold: the entries are its reading of the whole file.

    A last line without its newline is "missing newline before EOF" unless it is blank or a
    comment (Debian's cron then ignores the whole file, cronie that line only).
    """
    if dialect.cronie:
        return _cronie_parse_text(text, system, users, dialect, privileged)
    data = _s2b(text)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    entries: list[Entry] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        end = data.find(b"\n", start)
        if end < 0:
            end = len(data)
        entry = _line_entry(data, start, end, system, users, dialect, line)
        entry.lineno = number
        _note_missing_newline(entry, line, system, users, dialect, privileged)
        entries.append(entry)
        start = end + 1
    return entries


def _note_missing_newline(
    entry: Entry,
    line: str,
    system: bool,
    users: Collection[str] | None,
    dialect: Dialect,
    privileged: bool,
) -> None:
    if entry.error == MISSING_NEWLINE:
        alone = parse_line(line, system, users=users, dialect=dialect, privileged=privileged)
        if alone.kind in ("job", "env"):
            entry.notes.append(f"the line itself is a valid {alone.kind} once it ends with a newline")


def first_error(
    text: str,
    system: bool,
    *,
    users: Collection[str] | None = None,
    dialect: Dialect = CLASSIC,
    privileged: bool = False,
) -> Entry | None:
    """What makes cron ignore the whole file (its words in ``error``), or None.

    Debian's cron: the first line it refuses, or the line past its 10,000-line limit. cronie: only
    the limits of a user crontab (entries, assignments, a run of comments); its refused lines cost
    only themselves.
    """
    if dialect.cronie:
        return _cronie_load_user(_s2b(text), system, users, dialect, privileged)[1]
    for entry in parse_text(text, system, users=users, dialect=dialect):
        if entry.kind == "error":
            return entry
        # load_user's line counter is checked after every assignment and job it reads.
        if entry.kind in ("env", "job") and entry.lineno + 1 >= _LINE_LIMIT:
            return Entry(
                "error",
                entry.line,
                error=TOO_MANY_LINES,
                lineno=entry.lineno,
                notes=[f"cron ignores the whole file once it reads a line past line {_LINE_LIMIT - 2}"],
            )
    return None


def _cronie_parse_text(
    text: str, system: bool, users: Collection[str] | None, dialect: Dialect, privileged: bool
) -> list[Entry]:
    data = _s2b(text)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(_s2b(line)) + 1)
    by_line: dict[int, list[_Item]] = {}
    read, _failure = _cronie_load_user(data, system, users, dialect, privileged)
    for offset, item in read:
        by_line.setdefault(bisect.bisect_right(starts, offset) - 1, []).append(item)
    entries: list[Entry] = []
    for index, line in enumerate(lines):
        stripped = line.lstrip(" \t")
        if index in by_line:
            entry = _entry_of(by_line[index], line, system, dialect)
        elif not stripped:
            entry = Entry("blank", line)
        elif stripped.startswith("#"):
            entry = Entry("comment", line)
        else:
            # Reading the line before ran on into this one (a '~' range at the end of a refused
            # line, say): cronie never reads it as a line of its own.
            entry = parse_line(line, system, users=users, dialect=dialect, privileged=privileged)
            entry.notes.append(
                "cronie does not read this line: its reading of the line before ran on into it"
            )
        entry.lineno = index + 1
        _note_missing_newline(entry, line, system, users, dialect, privileged)
        entries.append(entry)
    return entries
