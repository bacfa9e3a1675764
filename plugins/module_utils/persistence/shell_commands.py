# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a shell line runs and how often a schedule runs it: pure functions over text, no file read.

A shell line is read well enough to name the programs and scripts it starts (through wrappers such
as nohup, env or sudo, a shell's -c string, an interpreter's script, a sourced file) and every
absolute path it names. A cron schedule, a systemd OnCalendar= expression or time span becomes the
longest wait in minutes between two runs.
"""

from __future__ import annotations

import math
import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab

_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\f\v]+)
      | (?P<redirect>[0-9]*(?:&>>|&>|>>|>&|<&|>\||<<<|<<-|<<|<>|>|<))
      | (?P<op>&&|\|\||;;|\|&|\$\(|[;&|()`\n])
      | (?P<word>(?:[^\s;&|()<>`"'\\]|\\.|"(?:[^"\\]|\\.)*"?|'[^']*'?)+)""",
    re.VERBOSE | re.DOTALL,
)
_QUOTED = re.compile(r"""'([^']*)'?|"((?:[^"\\]|\\.)*)"?|\\(.)""", re.DOTALL)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_KEYWORDS = frozenset(
    {"!", "{", "}", "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "time"}
)
_LISTS = frozenset({"for", "case", "select"})  # their words up to the next operator run nothing
_SHELLS = re.compile(r"(?:ba|da|z|k|a|mk|tc|c)?sh")
_INTERPRETERS = re.compile(r"(?:python|perl|ruby|php|lua|node|nodejs)[0-9.]*")
_INLINE_CODE = frozenset({"-c", "-e", "-E", "-r", "-m", "-M"})
# Wrappers that run the command after them; the number of words each takes before that command.
_WRAPPERS = {
    "busybox": 0,
    "nohup": 0,
    "exec": 0,
    "setsid": 0,
    "stdbuf": 0,
    "command": 0,
    "xargs": 0,
    "env": 0,
    "sudo": 0,
    "doas": 0,
    "nice": 0,
    "ionice": 0,
    "timeout": 1,
    "chrt": 1,
    "taskset": 1,
    "flock": 1,
}
_OPTION_VALUES = {"sudo": {"-u", "-g", "-C", "-h", "-p", "-U"}, "nice": {"-n"}, "ionice": {"-c", "-n"}}
_BUILTINS = frozenset(
    {
        *("cd", "echo", "printf", "test", "[", "[[", "export", "unset", "set", "read", "exit", "return"),
        *("true", "false", ":", "eval", "trap", "shift", "local", "umask", "ulimit", "wait", "kill"),
        *("alias", "type", "hash", "let", "declare", "typeset", "readonly", "break", "continue", "pwd"),
    }
)
_ABSOLUTE = re.compile(r"""(?:^|(?<=[\s=:'"(<>|;&`,]))(/[^\s'"<>|;&`(),$*?\[\]{}]+)""")
# Names looked up in PATH: what a program can be called (garbage words are not looked up).
_COMMAND_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}")


def _unquote(word: str) -> str:
    def plain(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return m.group(1)
        if m.group(2) is not None:
            return re.sub(r"\\(.)", r"\1", m.group(2), flags=re.DOTALL)
        return m.group(3)

    return _QUOTED.sub(plain, word)


def simple_commands(text: str) -> tuple[list[list[str]], list[str]]:
    """The simple commands of a shell line (their words, quotes removed) and its redirection targets.

    A reading good enough to say what a line runs, not a shell: quoting, operators, redirections,
    assignments and reserved words are understood; expansions are left as they are.
    """
    commands: list[list[str]] = []
    targets: list[str] = []
    current: list[str] | None = None
    expect_command, redirect = True, False
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind == "space":
            continue
        if kind == "redirect":
            redirect = True
            continue
        if kind == "op":
            current, expect_command, redirect = None, True, False
            continue
        word = _unquote(m.group())
        if redirect:
            targets.append(word)
            redirect = False
        elif current is not None:
            current.append(word)
        elif not expect_command or word in _KEYWORDS:
            continue
        elif word in _LISTS:
            expect_command = False
        elif not _ASSIGNMENT.match(word):
            current = [word]
            commands.append(current)
    return commands, targets


def executed_words(words: list[str], depth: int = 0) -> list[str]:
    """The programs and scripts one simple command runs: through wrappers (nohup, env, sudo...),
    a shell's or interpreter's script, a shell's -c string, a sourced file."""
    words = _unwrap(words)
    if not words:
        return []
    first, rest = words[0], words[1:]
    if first in (".", "source"):
        return rest[:1]
    name = posixpath.basename(first)
    found = [first]
    if _SHELLS.fullmatch(name) or name in ("su", "runuser"):
        for i, word in enumerate(rest):
            if word == "-c" and i + 1 < len(rest):
                if depth < 4:
                    for command in simple_commands(rest[i + 1])[0]:
                        found += executed_words(command, depth + 1)
                break
            if not word.startswith("-") and _SHELLS.fullmatch(name):
                found.append(word)  # a script the shell reads
                break
    elif _INTERPRETERS.fullmatch(name):
        for word in rest:
            if word in _INLINE_CODE:
                break
            if not word.startswith("-"):
                found.append(word)
                break
    return found


def _unwrap(words: list[str]) -> list[str]:
    while words:
        name = posixpath.basename(words[0])
        if name not in _WRAPPERS or len(words) == 1:
            return words
        rest, takes = words[1:], _WRAPPERS[name]
        while rest and (rest[0].startswith("-") or (name == "env" and _ASSIGNMENT.match(rest[0]))):
            option = rest.pop(0)
            if option in _OPTION_VALUES.get(name, ()) and rest:
                rest.pop(0)
        words = rest[takes:]
    return words


def is_runner(name: str) -> bool:
    """True for the name of a shell, an interpreter or a wrapper (nohup, env, sudo...): a program that
    runs what it is given, not the program a line is about."""
    return bool(_SHELLS.fullmatch(name) or _INTERPRETERS.fullmatch(name)) or name in _WRAPPERS


def normal_path(path: str) -> str:
    """An absolute path with '//', '.' and '..' folded ("//tmp/./x" -> "/tmp/x")."""
    return "/" + posixpath.normpath(path).lstrip("/") if path != "/" else "/"


def programs_and_paths(command: str) -> tuple[list[str], list[str]]:
    """What a shell line runs, in order, and every absolute path it names (redirections too), folded.

    A program named without a path stays a bare name, to be looked up in a PATH; builtins and words
    no program can be called are left out.
    """
    commands, targets = simple_commands(command)
    runs: list[str] = []
    for words in commands:
        for word in executed_words(words):
            if word.startswith("/"):
                runs.append(normal_path(word))
            elif _COMMAND_NAME.fullmatch(word) and word not in _BUILTINS:
                runs.append(word)
    named = [normal_path(p) for p in _ABSOLUTE.findall(command) if not p.startswith("//")]
    named += [normal_path(t) for t in targets if t.startswith("/")]
    return runs, named


def _widest_gap(values: list[int], cycle: int) -> int:
    ordered = sorted(values)
    gaps = [ordered[i + 1] - ordered[i] for i in range(len(ordered) - 1)]
    return max([*gaps, ordered[0] + cycle - ordered[-1]])


_SPECIAL_MINUTES = {"@hourly": 60, "@daily": 1440, "@midnight": 1440, "@weekly": 10080}


def cron_interval(entry: crontab.Entry) -> int | None:
    """The longest wait in minutes between two runs of a cron job (within the hours it runs); None
    for @reboot. "*/3 * * * *" is 3, "17 * * * *" 60, "0 3 * * *" 1440."""
    if entry.special:
        return _SPECIAL_MINUTES.get(entry.special, 43200 if entry.special != "@reboot" else None)
    minutes, hours = entry.schedule[0], entry.schedule[1]
    if not minutes or not hours:
        return None
    if len(minutes) > 1:
        return _widest_gap(list(minutes), 60)
    return 60 * _widest_gap(list(hours), 24)


_CALENDAR_SHORTHANDS = {"minutely": 1, "hourly": 60, "daily": 1440, "weekly": 10080}
_SPAN_UNITS = {
    "": 1,
    "us": 1e-6,
    "usec": 1e-6,
    "ms": 1e-3,
    "msec": 1e-3,
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)")


def timespan_minutes(value: str) -> int | None:
    """A systemd time span ("3min", "90", "1h 30m") in whole minutes (at least 1); None if unreadable."""
    total, end = 0.0, 0
    for m in _SPAN.finditer(value):
        if value[end : m.start()].strip() or m.group(2) not in _SPAN_UNITS:
            return None
        total += float(m.group(1)) * _SPAN_UNITS[m.group(2)]
        end = m.end()
    if end == 0 or value[end:].strip():
        return None
    return max(1, math.ceil(total / 60))


def calendar_minutes(value: str) -> int | None:
    """The longest wait in minutes between two elapses of a systemd OnCalendar= expression (the
    hour and minute fields only); None when it cannot be read."""
    spec = value.strip().lower()
    if spec in _CALENDAR_SHORTHANDS:
        return _CALENDAR_SHORTHANDS[spec]
    clock = next((part for part in spec.split() if ":" in part), None)
    if clock is None:
        return 1440
    fields = clock.split(":")
    hours, minutes = _calendar_values(fields[0], 24), _calendar_values(fields[1], 60)
    if not hours or not minutes:
        return None
    if len(minutes) > 1:
        return _widest_gap(minutes, 60)
    return 60 * _widest_gap(hours, 24)


def _calendar_values(spec: str, cycle: int) -> list[int] | None:
    values: set[int] = set()
    try:
        for part in spec.split(","):
            start, _slash, step = part.partition("/")
            if start == "*":
                low, high = 0, cycle - 1
            elif ".." in start:
                low, high = (int(x) for x in start.split("..", 1))
            else:
                low = int(start)
                high = cycle - 1 if step else low
            values.update(range(low, high + 1, int(step) if step else 1))
    except ValueError:
        return None
    return sorted(v for v in values if 0 <= v < cycle) or None
