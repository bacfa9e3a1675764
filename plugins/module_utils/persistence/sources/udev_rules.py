# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: udev rules; each RUN, PROGRAM or IMPORT{program} of a rule is an item run as root.

A rule line is read the way systemd-udevd reads it: lines ending in a backslash continue on the
next, each key is ``KEY{attribute}OPERATOR"value"``, and a value runs to the first double quote
not escaped by a backslash (``\\"`` is a quote inside it); ``e"..."`` is a value in C escapes
(``\\n``, ``\\x41``, ...). A line udevd refuses is read as far as udevd reads it. udev's own
substitutions (``$kernel``, ``%k``, ``$env{NAME}``, ...) are replaced by what they stand for where
that is fixed (``$sys`` is /sys, ``$root`` /dev) and by a plain word elsewhere, so that a program
path holding one is still a path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

UDEV_DIRS = (
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/usr/local/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
    "/lib/udev/rules.d",
)
# udev looks a program named without a path up in its own directories, not in PATH.
UDEV_PATH = ("/usr/lib/udev", "/lib/udev")
_KEY = re.compile(r"[ \t,]*([A-Za-z_][A-Za-z0-9_]*)(?:\{([^}]*)\})?[ \t]*(==|!=|\+=|-=|:=|=)[ \t]*")
_PROGRAM_KEYS = frozenset({"RUN", "PROGRAM", "IMPORT"})
# udev's substitutions: long names ($kernel), one-letter ones (%k), some with {argument}.
_SUBSTITUTION = re.compile(
    r"\$(?P<long>devnode|tempnode|attr|sysfs|env|kernel|number|devpath|id|driver|major|minor|result|"
    r"parent|name|links|root|sys|\$)(?:\{(?P<long_arg>[^}]*)\})?"
    r"|%(?P<short>[NsEknpbdMmcPDrS%])(?:\{(?P<short_arg>[^}]*)\})?"
)
# Substitutions whose value is fixed; every other one stands for a word of the device's.
_FIXED = {"root": "/dev", "r": "/dev", "sys": "/sys", "S": "/sys", "$": "$", "%": "%"}
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "s": " "}


def rule_lines(text_lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """(number of the first line, text) of each rule, backslash-continued lines joined."""
    pending: tuple[int, str] | None = None
    for number, text in text_lines:
        if pending is not None:
            number, text = pending[0], pending[1] + text.lstrip()
            pending = None
        if text.rstrip().endswith("\\") and not text.lstrip().startswith("#"):
            pending = (number, text.rstrip()[:-1])
            continue
        yield number, text
    if pending is not None:
        yield pending


def parse_value(text: str, start: int) -> tuple[str, int] | None:
    """The value at ``text[start:]`` and where it ends, as udevd reads it; None when it is not a
    quoted value or its closing quote is missing (udevd refuses the rest of the line)."""
    escaped = text.startswith("e", start)
    i = start + escaped
    if not text.startswith('"', i):
        return None
    i += 1
    out: list[str] = []
    while i < len(text):
        char = text[i]
        if char == '"':
            value = "".join(out)
            return (_c_unescape(value) if escaped else value), i + 1
        if char == "\\" and i + 1 < len(text):
            if escaped:
                out.append(text[i : i + 2])  # kept for the C unescaping
                i += 2
                continue
            if text[i + 1] == '"':
                out.append('"')
                i += 2
                continue
        out.append(char)
        i += 1
    return None


def _c_unescape(value: str) -> str:
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code[0] in _C_ESCAPES:
            return _C_ESCAPES[code[0]]
        if code[0] == "x":
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8) & 0xFF)
        return code  # \\ \" \' and any other character stand for themselves

    return re.sub(r"\\(x[0-9a-fA-F]{2}|[0-7]{3}|.)", one, value, flags=re.DOTALL)


def keys(text: str) -> Iterator[tuple[str, str, str, str]]:
    """(key, attribute, operator, value) of each key of a rule line, up to the first one udevd
    cannot read."""
    position = 0
    while position < len(text):
        m = _KEY.match(text, position)
        if m is None:
            return
        parsed = parse_value(text, m.end())
        if parsed is None:
            return
        value, position = parsed
        yield m.group(1), m.group(2) or "", m.group(3), value
        if not text[position:].strip(" \t,"):
            return


def substituted(value: str) -> str:
    """A RUN or PROGRAM value with udev's substitutions replaced: fixed ones by their value, the
    others by a plain word."""

    def one(m: re.Match[str]) -> str:
        name = m.group("long") or m.group("short")
        return _FIXED.get(name, "udev-" + name.lower() if name.isalpha() else "udev")

    return _SUBSTITUTION.sub(one, value)


def collect(reader: RootReader) -> None:
    for directory in UDEV_DIRS:
        for path, _is_link in reader.entries("udev", directory):
            if not path.endswith(".rules"):
                continue
            facts = reader.file("udev", path)
            if facts is None:
                continue
            reader.file_item(facts)
            for number, text in rule_lines(reader.text_lines(facts)):
                if text.lstrip().startswith("#"):
                    continue
                for key, option, operator, value in keys(text):
                    # PROGRAM and IMPORT run as matches (==, !=); RUN runs when assigned.
                    if (
                        key not in _PROGRAM_KEYS
                        or operator == "-="
                        or (key == "RUN" and operator in ("==", "!="))
                    ):
                        continue
                    if (key == "IMPORT" and option != "program") or option == "builtin":
                        continue
                    command = substituted(value)
                    reader.command_item(facts, number, text, command, user="root", search=UDEV_PATH)
