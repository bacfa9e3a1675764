# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How Red Hat's cronie (RHEL, CentOS, Rocky, Alma, Fedora, SUSE; 1.7.2 in Debian trixie's
``cronie`` package) reads an entry and a file: its load_entry with get_list, get_range and
get_number (entry.c of cronie 1.7) and its load_user (user.c). It is the ``CRONIE`` dialect of
crontab.py, which is what callers use. cronie shares the stdio reading of reading.py with Debian's
cron (skip_comments, load_env, get_string, the NUL rule); Debian's load_entry is vixie.py's. Where
the two differ (each checked against cronie 1.7.2's own daemon by the oracle lane):

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
"""

from __future__ import annotations

import re
from collections.abc import Collection

from ansible_collections.lifeline.rescue.plugins.module_utils.cron.grammar import (
    BAD_COMMAND,
    BAD_OPTION,
    BAD_TIMESPEC,
    CRONIE_MAX,
    CRONIE_MAX_GARBAGE,
    CRONIE_MAX_USER_ENTRIES,
    CRONIE_MAX_USER_ENVS,
    FIELDS,
    SPECIALS,
    TOO_MANY_ENTRIES,
    TOO_MANY_ENVS,
    TOO_MUCH_GARBAGE,
    Dialect,
    Entry,
    Field,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.reading import (
    _ALNUM_RUN,
    _AT,
    _BLANK_RUN,
    _COMMA,
    _DASH,
    _EOF,
    _HASH,
    _NL,
    _NUL,
    _SLASH,
    _SP,
    _STAR,
    _TAB,
    INT_MAX,
    _atoi,
    _b2s,
    _Item,
    _load_env,
    _Stream,
)

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
