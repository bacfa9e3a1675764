# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How Debian's cron (Vixie cron 3.0pl1 with Debian's patches) reads an entry: load_entry with
get_list, get_range and get_number (entry.c), over the stream of reading.py. One refused line makes
cron ignore the whole file; crontab.py reads a file line by line with it and is what callers use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

from ansible_collections.lifeline.rescue.plugins.module_utils.cron.grammar import (
    BAD_COMMAND,
    BAD_COMMAND_LEN,
    BAD_TIMESPEC,
    BAD_USERNAME,
    FIELDS,
    MAX_COMMAND,
    MAX_TAB_LINES,
    MAX_TEMPSTR,
    SPECIALS,
    Field,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.reading import (
    _ALNUM_RUN,
    _AT,
    _EOF,
    _NONBLANK_RUN,
    _NUL,
    _STAR,
    INT_MAX,
    _atoi,
    _b2s,
    _Bad,
    _Item,
    _Stream,
)

# load_user stops once its line counter reaches this (MAX_TAB_LINES + NHEADER_LINES + 2).
_LINE_LIMIT = MAX_TAB_LINES + 3 + 2


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
