# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cron's stdio reading over a file's bytes, the same in Debian's cron and in cronie: get_char,
skip_comments and get_string (``_Stream``), atoi, and load_env with its state machine. Each cron's
load_entry is vixie.py's or cronie.py's; crontab.py is what callers use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.cron.grammar import (
    CRONIE_MAX,
    MAX_ENVSTR,
    MISSING_NEWLINE,
    Dialect,
)


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
