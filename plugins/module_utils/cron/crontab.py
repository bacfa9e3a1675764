# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crontab grammar Debian's cron (Vixie cron 3.0pl1 with Debian's patches) accepts, as pure functions.

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

The rules cron applies to a whole file (owners, modes, names, bytes) are file_rules.py's; the
anacrontab grammar is anacrontab.py's.
"""

from __future__ import annotations

import functools
import re
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
BAD_COMMAND_LEN = "command too long"
# What cron logs about a whole file when it ignores it (user.c), lower-cased as the words above.
MISSING_NEWLINE = "missing newline before EOF"
TOO_MANY_LINES = "crontab must not be longer than 10000 lines"
# cron.h as Debian builds it: get_number gives up at MAX_TEMPSTR characters, a command keeps at most
# MAX_COMMAND - 1 bytes (and one that long is "command too long"), an environment line MAX_ENVSTR - 2.
MAX_TEMPSTR = 1000
MAX_COMMAND = 1000
MAX_ENVSTR = 1000
MAX_TAB_LINES = 10000
# load_user stops once its line counter reaches this (MAX_TAB_LINES + NHEADER_LINES + 2).
_LINE_LIMIT = MAX_TAB_LINES + 3 + 2

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Index 7 is Sunday again, as in cron's DowNames (the first match wins, so "sun" is 0).
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
class Dialect:
    """Where Debian's cron releases read differently.

    ``empty_env`` (3.0pl1-187, trixie): "NAME=" with nothing but blanks after the '=' sets an empty
    value; older releases read such a line as a job and refuse it ("bad minute").
    """

    name: str
    empty_env: bool


# The default is the stricter reading: a crontab it accepts loads on every Debian release.
CLASSIC = Dialect("3.0pl1 before -187 (bullseye, bookworm)", empty_env=False)
TRIXIE = Dialect("3.0pl1-187 and later (trixie)", empty_env=True)


def dialect_for(version: str) -> Dialect:
    """The dialect of an installed Debian cron package version ("3.0pl1-162"); CLASSIC if unknown."""
    m = re.fullmatch(r"(?:\d+:)?3\.0pl1-(\d+)(?:[.+~].*)?", version.strip())
    if m and int(m.group(1)) >= 187:
        return TRIXIE
    return CLASSIC


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
    ``shell_command`` exactly what cron hands to ``$SHELL -c`` (up to the first unescaped ``%``,
    ``\\%`` and ``\\\\`` unescaped, cut at a NUL) and ``stdin`` exactly what the job reads on its
    standard input (the rest, ``%`` turned into newlines, ``\\%`` into ``%``, a final newline added;
    None when the command holds no ``%``). ``notes`` are things cron accepts silently but a reader
    should know. ``lineno`` counts from 1 in ``parse_text`` and ``first_error`` (0 from parse_line).

    From ``anacrontab.parse_line``: ``special`` is a named period ("@monthly"), ``period_days`` and
    ``delay_minutes`` the numbers, ``ident`` the job identifier; ``error`` holds anacron's words,
    also for a job that anacron complains about but still runs (an unknown named period).
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
    lineno: int = 0
    ident: str = ""
    period_days: int | None = None
    delay_minutes: int | None = None


def _b2s(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _s2b(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# ---- cron's stdio reading, over bytes --------------------------------------------------------

_EOF = -1
INT_MAX = 0x7FFFFFFF
_NL, _SP, _TAB, _NUL = 0x0A, 0x20, 0x09, 0x00
_HASH, _AT, _STAR, _COMMA, _DASH, _SLASH = 0x23, 0x40, 0x2A, 0x2C, 0x2D, 0x2F
_DQUOTE, _SQUOTE, _EQUALS = 0x22, 0x27, 0x3D
_ISSPACE = frozenset(b" \t\n\v\f\r")  # isspace() in the C locale
_BLANK_RUN = re.compile(rb"[ \t]*")
_NONBLANK_RUN = re.compile(rb"[^ \t\n]*")
_ALNUM_RUN = re.compile(rb"[A-Za-z0-9]*")  # isalnum() in the C locale: ASCII only
# get_string stops at any of its terminators or at a NUL: strchr(terms, 0) finds the terminator.
_TERMS = {terms: re.compile(b"[" + re.escape(terms) + rb"\x00]") for terms in (b"\n", b" \t", b" \t\n")}


class _Bad(Exception):
    """A field cron rejects; carries nothing, the caller knows which field it was reading."""


class _Stream:
    """A FILE* as cron reads it: get_char, unget_char, skip_comments and get_string."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def getc(self) -> int:
        if self.pos >= len(self.data):
            return _EOF
        self.pos += 1
        return self.data[self.pos - 1]

    def ungetc(self, ch: int) -> None:
        if ch != _EOF:
            self.pos -= 1

    def skip_blanks(self, ch: int) -> int:
        """Skip_Blanks: ``ch`` is the current character; returns the first one that is not a blank."""
        if ch not in (_SP, _TAB):
            return ch
        self.pos = _BLANK_RUN.match(self.data, self.pos).end()
        return self.getc()

    def skip_comments(self) -> None:
        """Past blank lines and comment lines; leading blanks of the next useful line are consumed."""
        data = self.data
        while True:
            self.pos = _BLANK_RUN.match(data, self.pos).end()
            if self.pos >= len(data):
                return
            ch = data[self.pos]
            if ch not in (_NL, _HASH):
                return
            end = data.find(b"\n", self.pos)
            if end < 0:
                self.pos = len(data)
                return
            self.pos = end + 1

    def get_string(self, size: int, terms: bytes) -> tuple[bytes, int]:
        """What get_string stores (at most ``size - 1`` bytes) and the character that ended it."""
        m = _TERMS[terms].search(self.data, self.pos)
        if m is None:
            text, self.pos, ch = self.data[self.pos :], len(self.data), _EOF
        else:
            text, ch = self.data[self.pos : m.start()], self.data[m.start()]
            self.pos = m.start() + 1
        return text[: size - 1], ch


def _atoi(digits: bytes) -> int:
    """glibc's atoi: strtol saturates at LONG_MAX, then the long is cut to a 32-bit int."""
    value = min(int(digits), (1 << 63) - 1) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


# load_env's states (env.c, backported from Vixie cron 4.1).
_NAMEI, _NAME, _EQ1, _EQ2, _VALUEI, _VALUE, _FINI, _ERROR = range(8)


def _env_machine(envstr: bytes, dialect: Dialect) -> tuple[bytes, bytes] | None:
    """load_env's reading of one line: (name, value), or None when it is not an assignment."""
    state, quote = _NAMEI, 0
    name, value = bytearray(), bytearray()
    out = name
    i, n = 0, len(envstr)
    while state != _ERROR and i < n:
        c = envstr[i]
        if state in (_NAMEI, _VALUEI):
            if c in (_SQUOTE, _DQUOTE):
                quote = c
                i += 1
                if i == n:
                    # cron reads past the end of its buffer here, into what earlier lines left in
                    # it; taken as what it nearly always is: an unclosed quote.
                    break
                c = envstr[i]
            state += 1
        if state in (_NAME, _VALUE):
            if quote:
                if c == quote:
                    state += 1
                    i += 1
                    continue
                if state == _NAME and c == _EQUALS:
                    state = _ERROR
                    continue
            elif state == _NAME:
                if c in _ISSPACE:
                    i += 1
                    state += 1
                    continue
                if c == _EQUALS:
                    state += 1
                    continue
            out.append(c)
            i += 1
        elif state == _EQ1:
            if c == _EQUALS:
                state += 1
                out = value
                quote = 0
            elif c not in _ISSPACE:
                state = _ERROR
            i += 1
        else:  # _EQ2, _FINI
            if c in _ISSPACE:
                i += 1
            else:
                state += 1
    if state == _FINI or (state == _VALUE and not quote) or (dialect.empty_env and state == _EQ2):
        val = bytes(value)
        if state == _VALUE:
            val = val.rstrip(bytes(_ISSPACE))
        val = val.rstrip(bytes(_ISSPACE))  # strdtb
        # A value that still looks quoted loses one more pair of quotes: A="'x'" sets A=x.
        if len(val) >= 2 and val[0] in (_SQUOTE, _DQUOTE) and val[-1] == val[0]:
            val = val[1:-1]
        return bytes(name), val
    return None


@dataclass
class _Item:
    """What one load_env + load_entry round made of the stream."""

    kind: str  # "env", "job", "error", "eof"
    error: str = ""
    name: bytes = b""
    value: bytes = b""
    special: str = ""
    fields: tuple[str, ...] = ()
    schedule: tuple[frozenset[int], ...] = ()
    user: bytes = b""
    command: bytes = b""
    notes: list[str] = field(default_factory=list)


def _load_env(stream: _Stream, dialect: Dialect) -> _Item | None:
    """load_env: an assignment (the stream moves past it), "eof", or None (stream left as it was)."""
    start = stream.pos
    stream.skip_comments()
    envstr, ch = stream.get_string(MAX_ENVSTR - 1, b"\n")
    if ch == _EOF:
        if envstr:
            return _Item("error", error=MISSING_NEWLINE)
        return _Item("eof")
    pair = _env_machine(envstr, dialect)
    if pair is None:
        stream.pos = start
        return None
    item = _Item("env", name=pair[0], value=pair[1])
    if ch == _NUL:
        item.notes.append("a NUL byte ends this assignment: cron reads what follows it as a new line")
    return item


def _load_entry(stream: _Stream, system: bool, users: Collection[str] | None) -> _Item:
    """load_entry: a job or cron's error words for the line at the stream."""
    notes: list[str] = []
    stream.skip_comments()
    ch = stream.getc()
    if ch == _EOF:
        return _Item("eof")
    special = ""
    raw: list[str] = []
    schedule: list[frozenset[int]] = []
    if ch == _AT:
        word, ch = stream.get_string(MAX_COMMAND, b" \t\n")
        if _b2s(word) not in SPECIALS:
            return _Item("error", error=BAD_TIMESPEC)
        special = "@" + _b2s(word)
    else:
        data = stream.data
        for index, fld in enumerate(FIELDS):
            parsed = None
            if ch != _EOF:
                start = stream.pos - 1
                stream.pos = _NONBLANK_RUN.match(data, start).end()
                token = data[start : stream.pos]
                parsed = _get_list(index, token)
                # A field the file ends in is refused: cron meets EOF where it wants a blank.
                ch = stream.skip_blanks(stream.getc())
            if parsed is None or ch == _EOF:
                return _Item("error", error=fld.error, fields=tuple(raw), notes=notes)
            raw.append(_b2s(token))
            notes.extend(parsed[1])
            schedule.append(parsed[0])
    ch = stream.skip_blanks(ch)
    stream.ungetc(ch)
    user = b""
    if system:
        user, ch = stream.get_string(MAX_COMMAND, b" \t")
        if ch == _EOF:
            return _Item(
                "error", error=BAD_COMMAND, special=special, fields=tuple(raw), user=user, notes=notes
            )
        # getpwnam: a name read across a newline or cut by a NUL is nobody's.
        if not user or b"\n" in user or (users is not None and _b2s(user) not in users):
            if b"\n" in user:
                notes.append("no user field on this line: cron reads the user name on into the next line")
            return _Item(
                "error", error=BAD_USERNAME, special=special, fields=tuple(raw), user=user, notes=notes
            )
    elif ch == _STAR:
        # A sixth time field in a user crontab (or a command starting with '*').
        return _Item("error", error=BAD_COMMAND, special=special, fields=tuple(raw), notes=notes)
    command, ch = stream.get_string(MAX_COMMAND, b"\n")
    if len(command) == MAX_COMMAND - 1:
        return _Item(
            "error", error=BAD_COMMAND_LEN, special=special, fields=tuple(raw), user=user, notes=notes
        )
    if ch == _EOF:
        return _Item("error", error=BAD_COMMAND, special=special, fields=tuple(raw), user=user, notes=notes)
    if ch == _NUL:
        notes.append("a NUL byte ends this command: cron reads what follows it as a new line")
    return _Item(
        "job",
        special=special,
        fields=tuple(raw),
        schedule=tuple(schedule),
        user=user,
        command=command,
        notes=notes,
    )


def _get_list(index: int, token: bytes) -> tuple[frozenset[int], tuple[str, ...]] | None:
    """get_list over one field: the values, or None when cron refuses the field.

    A field is what runs up to the next blank or newline: get_range never reads past one (it fails
    there), and get_list skips any junk left before it. Fields repeat from line to line, so short
    ones are read once.
    """
    if len(token) <= 64:
        return _get_list_cached(index, token)
    if b"," in token and _WELL_FORMED_LIST.fullmatch(token):
        # A long list of plain ranges: get_list reads each range alone, so each distinct one is
        # read once (a hostile megabyte of "0,0,0,..." stays fast).
        values: set[int] = set()
        notes: dict[str, None] = {}
        for item in dict.fromkeys(token.split(b",")):
            parsed = _get_list_cached(index, item) if len(item) <= 64 else _get_list_uncached(index, item)
            if parsed is None:
                return None
            values |= parsed[0]
            notes.update(dict.fromkeys(parsed[1]))
        return frozenset(values), tuple(notes)
    return _get_list_uncached(index, token)


_LIST_ITEM = rb"(?:\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/[A-Za-z0-9]+)?"
_WELL_FORMED_LIST = re.compile(_LIST_ITEM + rb"(?:," + _LIST_ITEM + rb")*")


def _get_list_uncached(index: int, token: bytes) -> tuple[frozenset[int], tuple[str, ...]] | None:
    fld = FIELDS[index]
    values: set[int] = set()
    notes: list[str] = []
    pos = 0
    try:
        while True:
            pos = _get_range(fld, token, pos, values, notes)
            if token[pos : pos + 1] != b",":
                break
            pos += 1
    except _Bad:
        return None
    if pos < len(token):
        notes.append(f"cron ignores {_b2s(token[pos:])!r} at the end of the {fld.name} field")
    if fld.name == "day-of-week" and (0 in values or 7 in values):
        values |= {0, 7}  # cron makes both Sundays equal
    return frozenset(values), tuple(dict.fromkeys(notes))


_get_list_cached = functools.lru_cache(maxsize=4096)(_get_list_uncached)


def _get_range(fld: Field, token: bytes, pos: int, values: set[int], notes: list[str]) -> int:
    """get_range at ``pos``: adds the values, returns where it stopped; the field ends in a blank."""
    if token[pos : pos + 1] == b"*":
        first, last = fld.low, fld.high
        pos += 1
    else:
        first, pos = _get_number(token, pos, fld.names, fld.low, notes)
        if token[pos : pos + 1] != b"-":
            # Debian refuses a step after a single value ("5/10"): it is not a range.
            if token[pos : pos + 1] == b"/" or not fld.low <= first <= fld.high:
                raise _Bad
            values.add(first)
            return pos
        last, pos = _get_number(token, pos + 1, fld.names, fld.low, notes)
    step = 1
    if token[pos : pos + 1] == b"/":
        step, pos = _get_number(token, pos + 1, (), 0, notes)
        if step <= 0:
            raise _Bad
    # Debian's range check: both ends in bounds, also for a stepped range ("5-64/30" is refused).
    if not (fld.low <= first <= fld.high and fld.low <= last <= fld.high):
        raise _Bad
    if first > last:
        notes.append(f"range {first}-{last} in the {fld.name} field selects nothing")
        return pos
    # cron's int loop counter wraps past INT_MAX to a negative value, which it then refuses.
    if first + (last - first) // step * step + step > INT_MAX:
        raise _Bad
    values.update(range(first, last + 1, step))
    return pos


def _get_number(
    token: bytes, pos: int, names: tuple[str, ...], low: int, notes: list[str]
) -> tuple[int, int]:
    word = _ALNUM_RUN.match(token, pos).group()
    if not word or len(word) >= MAX_TEMPSTR:
        raise _Bad
    lowered = word.lower().decode("ascii")
    if lowered in names:
        return names.index(lowered) + low, pos + len(word)
    if word.isdigit():
        value = _atoi(word)
        if value != int(word):
            notes.append(f"{_b2s(word)} does not fit cron's int: it reads {value}")
        return value, pos + len(word)
    raise _Bad


def _read(stream: _Stream, system: bool, users: Collection[str] | None, dialect: Dialect) -> _Item:
    """One round of load_user's loop: an assignment, a job, an error, or "eof"."""
    env = _load_env(stream, dialect)
    if env is not None:
        return env
    return _load_entry(stream, system, users)


# ---- lines ----------------------------------------------------------------------------------


def parse_line(
    line: str, system: bool, *, users: Collection[str] | None = None, dialect: Dialect = CLASSIC
) -> Entry:
    """Read one line (without its newline) the way cron reads a file holding only that line.

    ``system`` is the /etc/crontab and /etc/cron.d format, with a user field. With ``users`` (the
    target's account names) an unknown user is "bad username", as getpwnam makes it for cron;
    without it any user name is accepted. ``dialect`` picks the Debian release's reading.
    """
    line = line[:-1] if line.endswith("\n") else line
    data = _s2b(line) + b"\n"
    return _line_entry(data, 0, len(data) - 1, system, users, dialect, line)


def _line_entry(
    data: bytes,
    start: int,
    end: int,
    system: bool,
    users: Collection[str] | None,
    dialect: Dialect,
    line: str,
) -> Entry:
    """The verdict on the line data[start:end] (``end`` at its newline or at the end of the data)."""
    stripped = data[start:end].lstrip(b" \t")
    if not stripped:
        return Entry("blank", line)
    if stripped[:1] == b"#":
        return Entry("comment", line)
    stream = _Stream(data, start)
    items: list[_Item] = []
    while True:
        item = _read(stream, system, users, dialect)
        if item.kind == "eof":
            break
        items.append(item)
        if item.kind == "error" or stream.pos > end:
            break
        # A NUL ended what was read; cron goes on with the rest of this line as a line of its own.
        rest = data[stream.pos : end].lstrip(b" \t")
        if not rest or rest[:1] == b"#":
            break
    if not items:
        return Entry("blank", line)
    first = items[0]
    notes = [note for item in items for note in item.notes]
    error = next((item for item in items if item.kind == "error"), None)
    if error is not None:
        if error is not first:
            notes.append(f"the part after a NUL byte is refused by cron: {error.error}")
        if error.error == MISSING_NEWLINE:
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
        return Entry("env", line, name=_b2s(first.name), value=_b2s(first.value), notes=notes)
    command = _b2s(first.command)
    shell_command, stdin = split_percent(command)
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


def split_percent(command: str) -> tuple[str, str | None]:
    """What cron gives the shell and the job's standard input (do_command.c).

    The first unescaped % ends the shell command; there ``\\%`` becomes % and ``\\\\`` one
    backslash. The rest is the job's input: % becomes a newline, ``\\%`` a %, every other
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
            if ch in "%\\":
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
    text: str, system: bool, *, users: Collection[str] | None = None, dialect: Dialect = CLASSIC
) -> list[Entry]:
    """Every line of a crontab, each as cron reads it when every line before it was accepted.

    A last line without its newline is "missing newline before EOF" unless it is blank or a
    comment (cron then ignores the whole file). ``first_error`` says which line makes cron ignore
    the file.
    """
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
        if entry.error == MISSING_NEWLINE:
            alone = parse_line(line, system, users=users, dialect=dialect)
            if alone.kind in ("job", "env"):
                entry.notes.append(f"the line itself is a valid {alone.kind} once it ends with a newline")
        entries.append(entry)
        start = end + 1
    return entries


def first_error(
    text: str, system: bool, *, users: Collection[str] | None = None, dialect: Dialect = CLASSIC
) -> Entry | None:
    """The line that makes cron ignore the whole file (what it logs, in ``error``), or None."""
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
