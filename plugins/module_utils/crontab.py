# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crontab grammar Debian's cron (Vixie cron 3.0pl1 with Debian's patches) accepts, as pure functions.

The parser follows cron's own reading of a line (load_env, then load_entry with get_list, get_range
and get_number) rather than a tidier grammar, because the point is to predict what the daemon does:
which lines it rejects, with which words, and which odd lines it quietly accepts.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Collection
from dataclasses import dataclass, field

# cron's own error words (entry.c ecodes), so a finding can be matched against the cron log.
BAD_MINUTE = "bad minute"
BAD_HOUR = "bad hour"
BAD_DOM = "bad day-of-month"
BAD_MONTH = "bad month"
BAD_DOW = "bad day-of-week"
BAD_COMMAND = "bad command"
BAD_TIMESPEC = "bad time specifier"
BAD_USERNAME = "bad username"

# get_number gives up at MAX_TEMPSTR (100) characters; get_string keeps MAX_COMMAND - 1 of a command.
MAX_TEMPSTR = 100
MAX_COMMAND = 1000

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Index 7 is Sunday again, as in cron's DowNames.
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")

# The @ forms are compared with strcmp: "@Daily" is not "@daily".
SPECIALS = {
    "reboot": "@reboot",
    "yearly": "0 0 1 1 *",
    "annually": "0 0 1 1 *",
    "monthly": "0 0 1 * *",
    "weekly": "0 0 * * 0",
    "daily": "0 0 * * *",
    "midnight": "0 0 * * *",
    "hourly": "0 * * * *",
}


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...]
    error: str


FIELDS = (
    Field("minute", 0, 59, (), BAD_MINUTE),
    Field("hour", 0, 23, (), BAD_HOUR),
    Field("day-of-month", 1, 31, (), BAD_DOM),
    Field("month", 1, 12, MONTHS, BAD_MONTH),
    Field("day-of-week", 0, 7, DAYS, BAD_DOW),
)


@dataclass
class Entry:
    """One crontab line as cron reads it.

    ``kind`` is "blank", "comment", "env", "job" or "error" (then ``error`` holds cron's words).
    For a job, ``command`` is the text after the time fields (and user) as the file holds it,
    ``shell_command`` what cron hands to the shell (up to the first unescaped ``%``) and ``stdin``
    the rest with every ``%`` turned into a newline (None when the command holds no ``%``).
    ``notes`` are things cron accepts silently but a reader should know.
    """

    kind: str
    line: str
    error: str = ""
    name: str = ""
    value: str = ""
    special: str = ""
    fields: tuple[str, ...] = ()
    schedule: tuple[frozenset[int], ...] = ()
    user: str = ""
    command: str = ""
    shell_command: str = ""
    stdin: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ByteFinding:
    """A run of bytes cron or a reader would trip on: ``kind`` is "nul", "cr", "control" or "utf8".

    ``line`` counts from 1, ``offset`` is the byte offset in the file, ``column`` the byte offset
    within the line (from 0), ``length`` the run's length in bytes.
    """

    kind: str
    line: int
    offset: int
    column: int
    length: int


class _Bad(Exception):
    """A field cron rejects; carries nothing, the caller knows which field it was reading."""


_BLANKS = " \t"
_ALNUM = re.compile(r"[A-Za-z0-9]*")  # isalnum() in the C locale: ASCII only
_NONBLANKS = re.compile(r"[^ \t]*")
_SPACES = re.compile(r"[ \t]*")
# Debian's load_env: a name (quoted or not), blanks, '=', blanks, a value (quoted or not).
_ENV = re.compile(
    r"""[ \t]*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<name>[^ \t=]+))[ \t]*=[ \t]*(?P<value>.*)\Z""",
    re.DOTALL,
)


def parse_line(line: str, system: bool, *, users: Collection[str] | None = None) -> Entry:
    """Read one line (without its newline) the way cron does.

    ``system`` is the /etc/crontab and /etc/cron.d format, with a user field. With ``users`` (the
    target's account names) an unknown user is "bad username", as getpwnam makes it for cron;
    without it any user name is accepted.
    """
    line = line.removesuffix("\n")
    stripped = line.lstrip(_BLANKS)
    if not stripped:
        return Entry("blank", line)
    # skip_comments: '#' only counts as the first non-blank character of a line.
    if stripped.startswith("#"):
        return Entry("comment", line)
    env = _parse_env(line)
    if env is not None:
        return env
    return _parse_entry(line, system, users)


def _parse_env(line: str) -> Entry | None:
    m = _ENV.match(line)
    if m is None:
        return None
    name = m.group("dq") if m.group("dq") is not None else m.group("sq")
    if name is None:
        name = m.group("name")
    if not name:
        return None
    value = m.group("value").rstrip(_BLANKS)
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        # A quoted value must close, and nothing but blanks may follow it; else cron tries a job.
        if end < 0 or value[end + 1 :].strip(_BLANKS):
            return None
        value = value[1:end]
    return Entry("env", line, name=name, value=value)


def _parse_entry(line: str, system: bool, users: Collection[str] | None) -> Entry:
    notes: list[str] = []
    pos = _SPACES.match(line).end()
    special = ""
    raw: list[str] = []
    schedule: list[frozenset[int]] = []
    if line.startswith("@", pos):
        word = _NONBLANKS.match(line, pos + 1).group()
        if word not in SPECIALS:
            return Entry("error", line, error=BAD_TIMESPEC)
        special = "@" + word
        pos = _SPACES.match(line, pos + 1 + len(word)).end()
    else:
        for fld in FIELDS:
            start = pos
            try:
                values, pos = _get_list(line, pos, fld, notes)
            except _Bad:
                return Entry("error", line, error=fld.error, fields=tuple(raw))
            raw.append(line[start:pos].rstrip(_BLANKS))
            if fld.name == "day-of-week" and (0 in values or 7 in values):
                values = values | {0, 7}  # cron makes both Sundays equal
            schedule.append(frozenset(values))
    user = ""
    if system:
        user = _NONBLANKS.match(line, pos).group()
        if not user:
            # cron's get_string would run on into the next line looking for a name; nothing runs.
            return Entry("error", line, error=BAD_USERNAME, special=special, fields=tuple(raw))
        if users is not None and user not in users:
            return Entry("error", line, error=BAD_USERNAME, special=special, fields=tuple(raw), user=user)
        pos = _SPACES.match(line, pos + len(user)).end()
    command = line[pos:]
    if not command.strip(_BLANKS):
        return Entry("error", line, error=BAD_COMMAND, special=special, fields=tuple(raw), user=user)
    if len(command.encode("utf-8", "surrogateescape")) >= MAX_COMMAND:
        notes.append(f"command longer than {MAX_COMMAND - 1} bytes: cron cuts it there")
    if "\0" in command:
        notes.append("command holds a NUL byte: cron's C string ends there")
    shell_command, stdin = split_percent(command)
    return Entry(
        "job",
        line,
        special=special,
        fields=tuple(raw),
        schedule=tuple(schedule),
        user=user,
        command=command,
        shell_command=shell_command,
        stdin=stdin,
        notes=notes,
    )


def _get_list(line: str, pos: int, fld: Field, notes: list[str]) -> tuple[set[int], int]:
    """get_list: ranges separated by commas, then cron skips any non-blank rest of the field."""
    values: set[int] = set()
    while True:
        pos = _get_range(line, pos, fld, values, notes)
        if line.startswith(",", pos):
            pos += 1
            continue
        break
    rest = _NONBLANKS.match(line, pos).end()
    if rest > pos:
        notes.append(f"cron ignores {line[pos:rest]!r} at the end of the {fld.name} field")
    return values, _SPACES.match(line, rest).end()


def _get_range(line: str, pos: int, fld: Field, values: set[int], notes: list[str]) -> int:
    if line.startswith("*", pos):
        first, last = fld.low, fld.high
        pos += 1
    else:
        first, pos = _get_number(line, pos, fld.names, fld.low)
        if not line.startswith("-", pos):
            # A single value; a '/' after it is left for get_list to skip (3.0pl1 has no "5/10").
            if not fld.low <= first <= fld.high:
                raise _Bad
            values.add(first)
            return pos
        last, pos = _get_number(line, pos + 1, fld.names, fld.low)
        # Debian's patch: both ends of a range must be in bounds ("5-64/30" is refused).
        if not (fld.low <= first <= fld.high and fld.low <= last <= fld.high):
            raise _Bad
    step = 1
    if line.startswith("/", pos):
        step, pos = _get_number(line, pos + 1, (), 0)
        if step == 0:
            raise _Bad
    if first > last:
        notes.append(f"range {first}-{last} in the {fld.name} field selects nothing")
    values.update(range(first, last + 1, step))
    return pos


def _get_number(line: str, pos: int, names: tuple[str, ...], low: int) -> tuple[int, int]:
    word = _ALNUM.match(line, pos).group()
    if not word or len(word) >= MAX_TEMPSTR:
        raise _Bad
    lowered = word.lower()
    if lowered in names:
        return names.index(lowered) + low, pos + len(word)
    if word.isdigit():
        return int(word), pos + len(word)
    raise _Bad


def split_percent(command: str) -> tuple[str, str | None]:
    """What cron gives the shell and the job's standard input: the first unescaped % ends the command,
    later ones become newlines, and a backslash before a % keeps it a %."""
    out: list[str] = []
    i = 0
    while i < len(command):
        ch = command[i]
        if ch == "\\" and command.startswith("%", i + 1):
            out.append("%")
            i += 2
            continue
        if ch == "%":
            return "".join(out), command[i + 1 :].replace("%", "\n")
        out.append(ch)
        i += 1
    return "".join(out), None


def parse_text(text: str, system: bool, *, users: Collection[str] | None = None) -> list[Entry]:
    """Every line of a crontab; a last line without its newline comes back as cron sees it:
    "bad command" when it would be a job (cron: "missing newline before EOF")."""
    lines = text.split("\n")
    complete, last = lines[:-1], lines[-1]
    entries = [parse_line(one, system, users=users) for one in complete]
    if last:
        entry = parse_line(last, system, users=users)
        if entry.kind == "job":
            entry = Entry("error", last, error=BAD_COMMAND, notes=["missing newline before EOF"])
        entries.append(entry)
    return entries


# Debian's cron reads /etc/cron.d files whose names are made of these only (run-parts' LSB names).
_CRON_D_NAME = re.compile(r"[A-Za-z0-9_-]+")


def check_file_rules(name: str, mode: int, uid: int, data: bytes, kind: str) -> list[str]:
    """What cron would do about a whole file, before reading a line of it.

    ``kind`` is "crontab" (/etc/crontab), "cron.d" (a file in /etc/cron.d) or "user" (a spool file).
    ``mode`` is st_mode (the file type bits are optional). An empty list means cron reads the file.
    """
    problems: list[str] = []
    if kind == "cron.d":
        if "." in name:
            problems.append(
                f"{name}: ignored by Debian cron: a file name in /etc/cron.d holding a dot is skipped "
                "(like dpkg's .dpkg-old leftovers)"
            )
        elif not _CRON_D_NAME.fullmatch(name):
            problems.append(f"{name}: ignored by Debian cron: the name is not made of [A-Za-z0-9_-] only")
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        problems.append(f"{name}: refused: not a regular file")
    if kind in ("crontab", "cron.d") and uid != 0:
        problems.append(f"{name}: refused: owned by uid {uid}, not root (cron logs WRONG FILE OWNER)")
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        problems.append(
            f"{name}: refused: mode {stat.S_IMODE(mode):04o} is writable by group or others "
            "(cron logs WRONG INODE INFO)"
        )
    if data and not data.endswith(b"\n"):
        problems.append(
            f"{name}: last line has no newline: cron does not run it (missing newline before EOF)"
        )
    return problems


_BAD_BYTES = re.compile(rb"\x00+|\r+|[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_BYTE_KIND = {0: "nul", 0x0D: "cr"}
# Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF); the gaps
# between matches are the invalid runs. ASCII runs match in one step, so a NUL flood stays fast.
_UTF8 = re.compile(
    rb"(?:[\x00-\x7f]+|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2})+"
)


def byte_findings(data: bytes) -> list[ByteFinding]:
    """NUL runs, CR runs, other control bytes (not tab, not newline) and invalid UTF-8, in file order."""
    spans: list[tuple[int, int, str]] = []
    for m in _BAD_BYTES.finditer(data):
        spans.append((m.start(), m.end() - m.start(), _BYTE_KIND.get(data[m.start()], "control")))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        good_end = 0
        for m in _UTF8.finditer(data):
            if m.start() > good_end:
                spans.append((good_end, m.start() - good_end, "utf8"))
            good_end = m.end()
        if good_end < len(data):
            spans.append((good_end, len(data) - good_end, "utf8"))
    spans.sort()
    findings: list[ByteFinding] = []
    # Count newlines between consecutive findings only, so the whole pass stays linear.
    line, line_start, previous = 1, 0, 0
    for offset, length, kind in spans:
        newlines = data.count(b"\n", previous, offset)
        if newlines:
            line += newlines
            line_start = data.rfind(b"\n", previous, offset) + 1
        previous = offset
        findings.append(ByteFinding(kind, line, offset, offset - line_start, length))
    return findings
