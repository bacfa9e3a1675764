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

Red Hat's cronie (RHEL, CentOS, Rocky, Alma, Fedora, SUSE; 1.7.2 in Debian trixie's ``cronie``
package) is the ``CRONIE`` dialect: the same stdio reading (skip_comments, load_env, get_string, the
NUL rule), a different load_entry. Where the two differ (each checked against cronie 1.7.2's own
daemon by the oracle lane):

- A refused line costs that line only: cronie logs ``(CRON) bad minute (/etc/cron.d/x)``, skips to
  the end of the line (at most MAX_COMMAND bytes) and reads on. A last line without its newline is
  lost alone (``(CRON) missing newline before EOF (FILE)``), the lines before it still run.
- A whole file is refused only by limits of user crontabs: more than 10,000 job lines (bad ones
  count), more than 1,000 assignments, or more than 32,768 bytes of comments and blank lines in a
  row (``(CRON) too many entries (FILE)`` ... then ``(USER) FAILED (loading cron table)``). In a
  system crontab that run of comments makes cronie read on from the middle of the comment line.
- The field grammar (get_range is a state machine): after a value only a blank, a newline or a comma
  may follow (Debian ignores junk after a field); a range's ends are not checked, only the values
  the range sets (``0-64/60`` sets 0 and is accepted, ``59-0`` sets nothing and is accepted, Debian
  refuses both); a step needs a range or ``*``; ``~`` picks a random value (``~``, ``10~20``,
  ``~30``), once, when the file is read; names are compared ignoring case ("JAN", "sun").
- A leading ``-`` (``-*/5 * * * * root job``) switches off the ``CMD`` log line of the job; in a user
  crontab only root may use it (anyone else: ``(CRON) ERROR (Only privileged user can disable
  logging)`` and ``bad option``). A command starting with ``-n`` followed by a blank mails only when
  the job fails; any other ``-`` at the start of the command is ``bad option``.
- The user field of /etc/crontab and /etc/cron.d ends at a blank or a newline (never read on into
  the next line); a user without an account is not refused when the file is read: when the job is
  due cronie logs ``(USER) ERROR (getpwnam() failed - user unknown)`` and runs nothing.
- ``@reboot``... are compared exactly like Debian's; ``@daily`` without a command is "bad command".
- A ``*`` where the command (or the user) should start is "bad command" in every crontab.
- Lengths: MAX_COMMAND, MAX_ENVSTR and MAX_TEMPSTR are 131072; a longer command is cut silently
  (no "command too long"); there is no 10,000-line limit on system crontabs.
- Assignments: no second strip of the value and no second pair of quotes taken off (``A=" x "``
  keeps its blanks); ``NAME=`` sets an empty value (like trixie's). Variables cronie itself uses:
  CRON_TZ (the job's time zone), RANDOM_DELAY (minutes, 0-1440, scaled by a factor chosen at
  start-up; another value logs ``(CRON) ERROR (bad value of RANDOM_DELAY)`` for each job line after
  it, which still loads), MAILTO, MAILFROM (expanded, checked by safe_p), CONTENT_TYPE,
  CONTENT_TRANSFER_ENCODING, SHELL (default /bin/sh), HOME (the account's), PATH
  (/usr/bin:/bin:/usr/sbin:/sbin), LOGNAME and USER (always set to the account). The daemon's own
  LANG, LC_*, RANDOM_DELAY and MAILFROM are inherited by every crontab. CRON_CORRECT_MAIL_HEADER
  is no word of cronie 1.7's source: to it that is an ordinary variable. cronie changes into HOME
  before it runs a job and runs nothing when it cannot (``(CRON) ERROR chdir failed (/srv/app): No
  such file or directory``); Debian's cron runs the job anyway.
- do_command.c: in the command only ``\\%`` is unescaped (Debian's cron also makes ``\\\\`` one
  backslash); the job's standard input is made alike. cronie logs each job it starts as ``CROND[pid]:
  (root) CMD (command)`` unless the line starts with '-'.

The rules cron applies to a whole file (owners, modes, names, bytes) are file_rules.py's; the
anacrontab grammar is anacrontab.py's.
"""

from __future__ import annotations

import bisect
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
# cronie's macros.h: its buffers are far larger, and it limits user crontabs instead (user.c).
CRONIE_MAX = 131072
CRONIE_MAX_GARBAGE = 32768
CRONIE_MAX_USER_ENTRIES = 10000
CRONIE_MAX_USER_ENVS = 1000
# cronie's own words (entry.c ecodes, user.c), for a line and for a whole user crontab.
BAD_OPTION = "bad option"
TOO_MANY_ENTRIES = "too many entries"
TOO_MANY_ENVS = "too many environment variables"
TOO_MUCH_GARBAGE = "too many garbage characters"
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
    """Which cron reads the crontabs, and where Debian's cron releases read differently.

    ``empty_env`` (3.0pl1-187, trixie, and cronie): "NAME=" with nothing but blanks after the '='
    sets an empty value; older releases read such a line as a job and refuse it ("bad minute").
    ``cronie``: Red Hat's cronie reads the lines (see the module's docstring for every difference).
    """

    name: str
    empty_env: bool
    cronie: bool = False

    @property
    def skips_bad_lines(self) -> bool:
        """Whether a refused line costs only itself (cronie) rather than the whole file (Debian)."""
        return self.cronie


# The default is the stricter reading: a crontab it accepts loads on every Debian release.
CLASSIC = Dialect("3.0pl1 before -187 (bullseye, bookworm)", empty_env=False)
TRIXIE = Dialect("3.0pl1-187 and later (trixie)", empty_env=True)
CRONIE = Dialect("cronie 1.7 (Red Hat family)", empty_env=True, cronie=True)


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
        stop = len(self.data) if m is None else m.start()
        text = self.data[self.pos : min(stop, self.pos + size - 1)]
        if m is None:
            self.pos, ch = len(self.data), _EOF
        else:
            self.pos, ch = stop + 1, self.data[stop]
        return text, ch


def _atoi(digits: bytes) -> int:
    """glibc's atoi: strtol saturates at LONG_MAX, then the long is cut to a 32-bit int."""
    value = min(int(digits), (1 << 63) - 1) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


# load_env's states (env.c, backported from Vixie cron 4.1).
_NAMEI, _NAME, _EQ1, _EQ2, _VALUEI, _VALUE, _FINI, _ERROR = range(8)


def _env_machine(envstr: bytes, dialect: Dialect) -> tuple[bytes, bytes] | None:
    """load_env's reading of one line: (name, value), or None when it is not an assignment."""
    if _EQUALS not in envstr:
        return None  # every state that makes an assignment comes after an '='
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
        if dialect.cronie:  # no strdtb, no second unquoting: the value is what the machine kept
            return bytes(name), val
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
    envstr, ch = stream.get_string(CRONIE_MAX if dialect.cronie else MAX_ENVSTR - 1, b"\n")
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


# ---- cronie's load_entry (entry.c of cronie 1.7) ---------------------------------------------

_TILDE = 0x7E
_SEPARATORS = frozenset((_TAB, _NL, _SP, _COMMA))


def _load_entry_cronie(
    stream: _Stream,
    system: bool,
    users: Collection[str] | None,
    privileged: bool,
    environment: dict[bytes, bytes],
) -> _Item:
    """cronie's load_entry at the stream (past skip_comments): a job, an error, or "eof".

    On an error the stream is left where cronie leaves it: past the rest of the line (at most
    MAX_COMMAND bytes of it), so that the next round reads the next line.
    """
    notes: list[str] = []
    special = ""
    raw: list[str] = []
    schedule: list[frozenset[int]] = []
    user = b""

    def fail(error: str, ch: int) -> _Item:
        # entry.c's eof: label: skip what is left of the line, newline included, reading at most
        # MAX_COMMAND bytes (the rest of a longer line is read as a line of its own).
        if ch != _NL:
            limit = min(len(stream.data), stream.pos + CRONIE_MAX)
            newline = stream.data.find(b"\n", stream.pos, limit)
            stream.pos = newline + 1 if newline >= 0 else limit
        return _Item("error", error=error, special=special, fields=tuple(raw), user=user, notes=notes)

    # load_user's skip_comments came first: load_env gives the stream back past the blanks.
    stream.skip_comments()
    ch = stream.getc()
    if ch == _EOF:
        return _Item("eof")
    if ch == _DASH:
        if not (system or privileged):
            notes.append("cronie also logs: (CRON) ERROR (Only privileged user can disable logging)")
            return fail(BAD_OPTION, ch)
        notes.append("the leading '-' stops cronie from logging the job's CMD line")
        ch = stream.getc()
        if ch == _EOF:
            return _Item("eof")
    if ch == _AT:
        word, ch = stream.get_string(CRONIE_MAX, b" \t\n")
        if _b2s(word) not in SPECIALS:
            return fail(BAD_TIMESPEC, ch)
        special = "@" + _b2s(word)
        ch = stream.skip_blanks(ch)
        if ch in (_EOF, _NL):
            return fail(BAD_COMMAND, ch)
    else:
        for fld in FIELDS:
            start = stream.pos - 1 if ch != _EOF else stream.pos
            parsed = _get_list_cronie(fld, ch, stream, notes)
            if parsed is None:
                return fail(fld.error, _EOF)
            values, ch, end = parsed
            raw.append(_b2s(stream.data[start:end]))
            schedule.append(values)
    if ch in (_NL, _STAR):
        return fail(BAD_COMMAND, ch)
    stream.ungetc(ch)
    if system:
        user, ch = stream.get_string(CRONIE_MAX, b" \t\n")
        if ch in (_EOF, _NL):
            return fail(BAD_COMMAND, ch)
        if users is not None and _b2s(user) not in users:
            notes.append(
                f"cronie loads the line, but {_b2s(user)!r} has no account: when the job is due it logs "
                f"({_b2s(user)}) ERROR (getpwnam() failed - user unknown) and runs nothing"
            )
        ch = stream.skip_blanks(ch)
        if ch in (_EOF, _NL):
            return fail(BAD_COMMAND, ch)
        stream.ungetc(ch)
    delay = environment.get(b"RANDOM_DELAY")
    if delay is not None and not _random_delay_ok(delay):
        notes.append(
            "cronie logs (CRON) ERROR (bad value of RANDOM_DELAY) for this job and runs it undelayed"
        )
    # The command may start with cronie's options: "-n" (mail only when the job fails).
    mail_on_error = False
    ch = stream.getc()
    while ch == _DASH:
        ch = stream.getc()
        if ch != ord("n") or mail_on_error:
            return fail(BAD_OPTION, ch)
        mail_on_error = True
        ch = stream.getc()
        if ch not in (_TAB, _SP):
            return fail(BAD_OPTION, ch)
        ch = stream.skip_blanks(ch)
        if ch in (_EOF, _NL):
            return fail(BAD_COMMAND, ch)
    if mail_on_error:
        notes.append("'-n': cronie mails the job's output only when it fails")
    stream.ungetc(ch)
    command, ch = stream.get_string(CRONIE_MAX, b"\n")
    if ch == _EOF:
        return fail(BAD_COMMAND, ch)
    if len(command) == CRONIE_MAX - 1:
        notes.append(f"cronie keeps the first {CRONIE_MAX - 1} bytes of this command and drops the rest")
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


def _random_delay_ok(value: bytes) -> bool:
    """strtol(value) as entry.c checks RANDOM_DELAY: a number of minutes from 0 to 24*60."""
    m = re.match(rb"[ \t\n\v\f\r]*([+-]?\d+)", value)
    return m is None or 0 <= int(m.group(1)) <= 24 * 60  # no digits: strtol reads 0


def _get_list_cronie(
    fld: Field, ch: int, stream: _Stream, notes: list[str]
) -> tuple[frozenset[int], int, int] | None:
    """cronie's get_list: the values, the first character after the field and its blanks, and
    where the field ends."""
    values: set[int] = set()
    stream.ungetc(ch)
    while True:
        ch = _get_range_cronie(fld, stream, values, notes)
        if ch == _EOF:
            return None
        if ch != _COMMA:
            break
    end = stream.pos - 1  # at the blank or newline that ended the field
    # get_range ended at a separator, so Skip_Nonblanks has nothing to do.
    ch = stream.skip_blanks(ch)
    if fld.name == "day-of-week" and (0 in values or 7 in values):
        values |= {0, 7}
    return frozenset(values), ch, end


def _get_number_cronie(stream: _Stream, low: int, names: tuple[str, ...]) -> int | None:
    """cronie's get_number: alphanumerics read as a number (strtol, cut to an int) or a name."""
    data = stream.data
    # Never look further than cronie reads: a megabyte of letters is refused after MAX_TEMPSTR.
    end = _ALNUM_RUN.match(data, stream.pos, stream.pos + CRONIE_MAX).end()
    word = data[stream.pos : end]
    if not word or len(word) >= CRONIE_MAX:
        # The character that stopped it is given back; alphanumerics read before are not.
        stream.pos = min(end, stream.pos + CRONIE_MAX - 1)
        return None
    stream.pos = end
    if word.isdigit():
        return _atoi(word)
    lowered = word.lower().decode("ascii")
    if lowered in names:
        return names.index(lowered) + low
    return None


def _get_range_cronie(fld: Field, stream: _Stream, values: set[int], notes: list[str]) -> int:
    """cronie's get_range: adds the values, returns the separator that ended it, or _EOF (refused).

    The state machine of entry.c, which checks only the values it sets: a range's ends may lie out
    of bounds as long as no value of the range does.
    """
    names = fld.names
    step = 1
    first = last = 0
    picked = False
    state = "start"
    ch = _EOF
    while state != "finish":
        ch = stream.getc()
        if ch == _EOF:
            return _EOF
        if state == "start":
            if ch == _STAR:
                first, last, state = fld.low, fld.high, "star"
                continue
            if ch == _TILDE:
                first, state = fld.low, "random"
                continue
            stream.ungetc(ch)
            number = _get_number_cronie(stream, fld.low, names)
            if number is None:
                return _EOF
            first, state = number, "num1"
        elif state in ("star", "range_num2"):
            if ch == _SLASH:
                state = "step"
            elif ch in _SEPARATORS:
                state = "finish"
            else:
                return _EOF
        elif state == "step":
            stream.ungetc(ch)
            number = _get_number_cronie(stream, 0, ())
            if number is None or number == 0:
                return _EOF
            step, state = number, "terms"
        elif state == "terms":
            if ch not in _SEPARATORS:
                return _EOF
            state = "finish"
        elif state == "num1":
            if ch == _DASH:
                state = "range"
            elif ch == _TILDE:
                state = "random"
            elif ch in _SEPARATORS:
                last, state = first, "finish"
            else:
                return _EOF
        elif state == "range":
            stream.ungetc(ch)
            number = _get_number_cronie(stream, fld.low, names)
            if number is None:
                return _EOF
            last, state = number, "range_num2"
        elif state == "random":
            if ch in _SEPARATORS:
                last, state = fld.high, "finish"
            else:
                stream.ungetc(ch)
                number = _get_number_cronie(stream, fld.low, names)
                if number is None:
                    return _EOF
                last, state = number, "terms"
            if first > last:
                return _EOF
            low, high = max(first, fld.low), min(last, fld.high)
            if low > high:
                return _EOF  # whichever value it picks, set_element refuses it
            if (low, high) != (first, last):
                notes.append(
                    f"'~' in the {fld.name} field picks from {first}-{last}, partly out of bounds: "
                    "cronie refuses the line whenever it picks such a value"
                )
            notes.append(f"cronie picks one {fld.name} in {low}-{high} at random when it reads the file")
            values.update(range(low, high + 1))
            picked = True  # the pick is made: nothing more to set below
    if picked:
        return ch
    if step > 1 and step > last - first:
        notes.append(f"step {step} is larger than the {fld.name} range: cronie sets its first value only")
    if first > last:
        if state == "finish":
            notes.append(f"range {first}-{last} in the {fld.name} field selects nothing")
        return ch
    if step < 0:
        return _EOF  # the second value steps below the first: set_element refuses it
    if not fld.low <= first <= fld.high:
        return _EOF
    # The first value past the field's end that the loop would reach, if the range reaches it.
    beyond = first + ((fld.high - first) // step + 1) * step
    if beyond <= last or beyond > INT_MAX:
        return _EOF
    if last > fld.high:
        notes.append(
            f"range {first}-{last} reaches past the end of the {fld.name} field: no value lands there"
        )
    values.update(range(first, min(last, fld.high) + 1, step))
    return ch


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


# ---- cronie's load_user (user.c of cronie 1.7) -------------------------------------------------


def _skip_comments_cronie(stream: _Stream) -> bool:
    """cronie's skip_comments: False when more than MAX_GARBAGE bytes of blanks and comments came in
    a row (the stream then stands where cronie stopped, possibly inside a comment)."""
    data, size = stream.data, len(stream.data)
    pos, count = stream.pos, 0
    while pos < size:
        first = _BLANK_RUN.match(data, pos).end()  # the line's first non-blank
        if first >= size:
            stream.pos = size
            return True
        reads = first - pos + 1
        if count + reads > CRONIE_MAX_GARBAGE:
            stream.pos = pos + CRONIE_MAX_GARBAGE - count + 1
            return False
        count += reads
        ch = data[first]
        if ch not in (_NL, _HASH):
            stream.pos = first
            return True
        if ch == _NL:
            pos = first + 1
            continue
        newline = data.find(b"\n", first)
        end = size if newline < 0 else newline
        if count + (end - first) > CRONIE_MAX_GARBAGE:
            stream.pos = first + 1 + CRONIE_MAX_GARBAGE - count + 1
            return False
        count += end - first
        pos = end + 1
    stream.pos = size
    return True


def _cronie_load_user(
    data: bytes,
    system: bool,
    users: Collection[str] | None,
    dialect: Dialect,
    privileged: bool,
) -> tuple[list[tuple[int, _Item]], Entry | None]:
    """cronie's reading of a whole file: every item with the offset it starts at, and what made it
    give up on the whole file (a user crontab's limits), or None."""
    stream = _Stream(data)
    environment: dict[bytes, bytes] = {}
    found: list[tuple[int, _Item]] = []
    entries = envs = 0

    def failure(error: str, offset: int, why: str) -> Entry:
        lineno = data.count(b"\n", 0, offset) + 1
        return Entry("error", "", error=error, lineno=lineno, notes=[why])

    while True:
        if not _skip_comments_cronie(stream) and not system:
            why = f"more than {CRONIE_MAX_GARBAGE} bytes of comments and blank lines in a row"
            return found, failure(TOO_MUCH_GARBAGE, stream.pos, why)
        start = stream.pos
        item = _load_env(stream, dialect)
        if item is not None:
            if item.kind == "eof":
                break
            found.append((start, item))
            if item.kind == "error":  # a last line without its newline ends the reading
                break
            envs += 1
            if not system and envs > CRONIE_MAX_USER_ENVS:
                why = f"more than {CRONIE_MAX_USER_ENVS} assignments in a user crontab"
                return found, failure(TOO_MANY_ENVS, start, why)
            environment[item.name] = item.value
            continue
        entries += 1
        if not system and entries > CRONIE_MAX_USER_ENTRIES:
            why = f"more than {CRONIE_MAX_USER_ENTRIES} job lines (refused ones count) in a user crontab"
            return found, failure(TOO_MANY_ENTRIES, start, why)
        item = _load_entry_cronie(stream, system, users, privileged, environment)
        if item.kind != "eof":
            found.append((start, item))
    return found, None


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
