# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""APT's configuration syntax read the way libapt-pkg reads it (ReadConfigFile), as pure functions.

A file is a sequence of statements ended by ``;``, ``{`` or ``}`` outside double quotes, and a
statement may run over several lines. Comments are ``//`` and ``#`` to the end of the line (outside
quotes; ``#clear``, ``#include`` and ``#x-apt-configure-index`` are directives, not comments) and
``/* ... */`` over any number of lines. A tag is one word: ``"`` only groups, ``%2d`` stands for the
character of that hexadecimal code (so ``DPkg::Post%2dInvoke`` is ``DPkg::Post-Invoke``); a value is
one or more adjacent quoted strings taken as written, or else one such word. Blocks nest
(``DPkg { Post-Invoke { "cmd"; }; };`` sets ``DPkg::Post-Invoke::``, a list element) and tags compare
without regard to case. A syntax error makes apt refuse the whole configuration; what was read up
to it is still returned, with the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What apt runs itself, as lists of shell commands or as one command (the names as apt spells them).
COMMAND_LISTS = (
    "DPkg::Pre-Invoke",
    "DPkg::Post-Invoke",
    "DPkg::Pre-Install-Pkgs",
    "APT::Update::Pre-Invoke",
    "APT::Update::Post-Invoke",
    "APT::Update::Post-Invoke-Success",
    "APT::Update::Post-Invoke-Stats",
    "APT::Install::Pre-Invoke",
    "APT::Install::Post-Invoke-Success",
)
# Single programs apt runs: the proxy detector of each access method, and dpkg itself.
_PROGRAM_KEY = re.compile(r"acquire::[^:]+::(proxy-auto-detect|proxyautodetect)|dir::bin::dpkg")
_LIST_KEYS = {name.lower(): name for name in COMMAND_LISTS}
_MAGIC_COMMENTS = ("clear", "include", "x-apt-configure-index")
_QUOTE_OR_SLASHES = re.compile(r'"|//')
_QUOTE_OR_HASH = re.compile(r'"|#')
_QUOTE_OR_OPENING = re.compile(r'"|/\*')
_STATEMENT_MARK = re.compile(r'["{;}]')
# apt's ParseQuoteWord: up to a blank, a "..." or [...] group taken whole whatever it holds.
_QUOTE_WORD = re.compile(r'(?:"[^"]*"|\[[^\]]*\]|[^\s"\[])*')
_HEX = re.compile(r"%([0-9A-Fa-f]{2})")
# apt's ParseCWord refuses a value this long and falls back to reading one word.
_CWORD_LIMIT = 1024


@dataclass
class Setting:
    """One statement that sets a value (``key`` as apt composes it: "DPkg::Post-Invoke::" for a
    list element) or a directive (``directive`` "clear" or "include", the value its argument).

    ``first_line`` and ``line`` are where the statement starts and where its ``;`` or brace is;
    ``whole_line`` is true when that one line holds only whole statements and closes every block it
    opens, so that commenting the line out leaves a file apt still reads.
    """

    key: str
    value: str
    first_line: int
    line: int
    whole_line: bool = False
    directive: str = ""


def hook_of(key: str) -> str | None:
    """The hook a key sets (its name as apt documents it), None for every other key."""
    lowered = key.lower().rstrip(":")
    if lowered in _LIST_KEYS:
        return _LIST_KEYS[lowered]
    head, sep, _rest = lowered.rpartition("::")
    if sep and head in _LIST_KEYS:
        return _LIST_KEYS[head]
    if _PROGRAM_KEY.fullmatch(lowered):
        return key.rstrip(":")
    return None


def parse(text: str) -> tuple[list[Setting], str | None]:
    """The statements of one configuration file, and the syntax error apt would stop at (or None)."""
    settings: list[Setting] = []
    parser = _Parser(settings)
    problem = None
    in_comment = False
    number = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.replace("\t", " " * 8).strip(" \t\r\n\f\v")
        clean_start = not parser.buffer and not in_comment
        fragment, in_comment = _without_comments(line, in_comment)
        problem = parser.feed(fragment, number)
        if problem:
            return settings, f"line {number}: {problem}"
        if clean_start and not parser.buffer and not in_comment and parser.balanced:
            for setting in parser.on_line:
                setting.whole_line = setting.first_line == number
    if parser.buffer:
        problem = f"line {number}: extra junk at end of file"
    return settings, problem


def _without_comments(line: str, in_comment: bool) -> tuple[str, bool]:
    """The line without its comments, and whether a /* comment is still open at its end. The order
    is apt's: // first, then #, then /* */ in what is left. Only quotes and comment marks are
    visited, so a long line costs a few regular expression scans."""
    if in_comment:
        end = line.find("*/")
        if end < 0:
            return "", True
        line = line[end + 2 :]
    line = _cut(_cut(line, _QUOTE_OR_SLASHES), _QUOTE_OR_HASH)
    kept: list[str] = []
    start = scan = 0
    quoted = False
    while True:
        mark = _QUOTE_OR_OPENING.search(line, scan)
        if mark is None:
            break
        if mark.group() == '"':
            quoted, scan = not quoted, mark.end()
            continue
        if quoted:
            scan = mark.start() + 1
            continue
        kept.append(line[start : mark.start()])
        end = line.find("*/", mark.end())
        if end < 0:
            return "".join(kept), True
        start = scan = end + 2
        quoted = False
    kept.append(line[start:])
    return "".join(kept), False


def _cut(line: str, marks: re.Pattern[str]) -> str:
    """``line`` up to the first comment mark outside quotes (a '#' directive is no comment)."""
    quoted = False
    for mark in marks.finditer(line):
        if mark.group() == '"':
            quoted = not quoted
        elif not quoted and not (mark.group() == "#" and line.startswith(_MAGIC_COMMENTS, mark.end())):
            return line[: mark.start()]
    return line


class _Parser:
    def __init__(self, settings: list[Setting]) -> None:
        self.settings = settings
        self.parts: list[str] = []  # the statement read so far (joined only when it ends: linear)
        self.buffer_line = 0
        self.stack: list[str] = []
        self.parent = ""
        self.on_line: list[Setting] = []
        self.balanced = True

    @property
    def buffer(self) -> bool:
        """Whether a statement is open (text read that no ';' or brace ended yet)."""
        return bool(self.parts)

    def _append(self, piece: str, number: int) -> None:
        piece = piece.strip()
        if not piece:
            return
        if not self.parts:
            self.buffer_line = number
        self.parts.append(piece)

    def feed(self, fragment: str, number: int) -> str | None:
        """Read one line (its comments removed); the syntax error it holds, or None."""
        self.on_line, self.balanced = [], True
        depth = 0
        quoted = False
        start = 0
        for mark in _STATEMENT_MARK.finditer(fragment):
            char, i = mark.group(), mark.start()
            if char == '"':
                quoted = not quoted
            if quoted or char == '"':
                continue
            self._append(fragment[start:i], number)
            start = i + 1
            depth += {"{": 1, "}": -1}.get(char, 0)
            self.balanced = self.balanced and depth >= 0
            problem = self._statement(char, number)
            if problem:
                return problem
        self._append(fragment[start:], number)
        self.balanced = self.balanced and depth == 0
        return None

    def _statement(self, end: str, number: int) -> str | None:
        if end == "{" and not self.parts:
            return "block starts with no name"
        if not self.parts:
            if end == "}":
                self._leave()
            return None
        statement = " ".join(self.parts)
        tag_read = _quote_word(statement)
        if tag_read is None:
            return "malformed tag"
        tag, rest = tag_read
        value_read = _c_word(rest) or _quote_word(rest)
        no_value = False
        if value_read is None:
            value = ""
            if end != "{":
                value, tag = tag, ""
            else:
                no_value = True
        else:
            value, rest = value_read
        if rest.strip():
            return "extra junk after value"
        if end == "{":
            self.stack.append(self.parent)
            self.parent = f"{self.parent}::{tag}" if self.parent else tag
            tag = ""
        if not self.parent:
            key = tag
        elif end != "{" or tag:
            key = f"{self.parent}::{tag}"
        else:
            key = self.parent
        setting = None
        if tag.startswith("#"):
            if self.parent:
                return "directives can only be done at the top level"
            if tag[1:] not in ("clear", "include", "x-apt-configure-index"):
                return f"unsupported directive {tag!r}"
            setting = Setting("", value, self.buffer_line, number, directive=tag[1:])
        elif not tag and not no_value and value == "#clear":
            return "clear directive requires an option tree as argument"
        elif not no_value:
            setting = Setting(key, value, self.buffer_line, number)
        if setting is not None:
            self.settings.append(setting)
            self.on_line.append(setting)
        self.parts = []
        if end == "}":
            self._leave()
        return None

    def _leave(self) -> None:
        self.parent = self.stack.pop() if self.stack else ""


def _quote_word(text: str) -> tuple[str, str] | None:
    """apt's ParseQuoteWord: one word up to a blank, "..." and [...] kept whole, quotes dropped and
    %xx decoded; None when there is none or a quote is not closed."""
    text = text.lstrip(" ")
    if not text:
        return None
    i = _QUOTE_WORD.match(text).end()
    if i < len(text) and text[i] in '"[':
        return None  # a quote or bracket never closed
    word = _HEX.sub(lambda m: chr(int(m.group(1), 16)), text[:i].replace('"', ""))
    return word, text[i:].lstrip()


def _c_word(text: str) -> tuple[str, str] | None:
    """apt's ParseCWord: adjacent quoted strings taken as written, blanks between them one space;
    None when anything stands outside quotes."""
    text = text.lstrip(" ")
    if not text or len(text) >= _CWORD_LIMIT:
        return None
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == '"':
            end = text.find('"', i + 1)
            if end < 0:
                return None
            out.append(text[i + 1 : end])
            i = end + 1
            continue
        if not char.isspace():
            return None
        if not (out and out[-1] == " "):
            out.append(" ")
        i += 1
    return "".join(out), ""
