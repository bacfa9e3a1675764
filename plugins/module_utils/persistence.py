# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find what makes a root run code by itself besides what its packages installed, and quarantine it.

Every place a Linux system starts programs from unasked (cron and anacron, at jobs, systemd units,
timers and generators, rc.local and init scripts, udev rules, login shells' files, the loader's
preload list, desktop autostart, ssh forced commands) is read as data inside the root: nothing of
the root runs, no link leads out of it, every read is bounded. Each line or file that starts
something is an item; rules (a data file users extend) decide which items are findings.

Quarantine never deletes: a job line is commented out with a marker, a startup file is moved into
a quarantine directory inside the root with a JSON record beside it that says how to put it back.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import posixpath
import re
import shlex
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils import crontab, packages, rootfs, safewrite

SEVERITIES = ("info", "low", "medium", "high", "critical")
LOCATIONS = (
    "cron",  # /etc/crontab, /etc/cron.d/*, the user crontabs of the spool
    "cron_script",  # /etc/cron.{hourly,daily,weekly,monthly,yearly}/*
    "anacron",  # /etc/anacrontab
    "at",  # queued at jobs
    "systemd_unit",  # system and user units and their drop-ins
    "systemd_timer",
    "systemd_generator",  # generators and the shutdown/sleep hooks: programs systemd runs itself
    "rc_local",
    "init_script",
    "udev",
    "shell_rc",  # /etc/profile, profile.d, bash.bashrc, users' shell start files
    "ld_preload",
    "xdg_autostart",
    "authorized_keys",
    "indicator_path",  # a file or directory at a known indicator path
)
# Kinds whose flagged lines are commented out in place; files of the other kinds are moved.
LINE_KINDS = frozenset({"cron", "anacron", "rc_local", "shell_rc", "ld_preload", "authorized_keys"})
SCOPES = ("any", "file", "line")

MARKER = "#lifeline-quarantine"
METADATA_SUFFIX = ".lifeline.json"
DEFAULT_QUARANTINE_DIR = "/var/lib/lifeline/quarantine"

# Startup files are small; one larger than this is reported, not read (a hostile root's 50 GB file).
MAX_TEXT = 16 << 20
# Payloads are hashed up to this size (miners are a few MB); beyond it the evidence says so.
MAX_HASH = 256 << 20
MAX_ENTRIES = 20000
MAX_DEPTH = 4
SHOWN = 300

_RULE_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_RULE_KEYS = ("id", "description", "severity", "locations", "scope", "quarantine", "enabled", "match")
_MATCH_KEYS = (
    "command",
    "executes",
    "references",
    "indicator_paths",
    "every_minutes",
    "payload_unowned",
    "location_unowned",
    "foreign_owner",
    "rules",
)
_MARKED = re.compile(re.escape(MARKER) + r"\(([a-z0-9_.,-]*)\) ?")


class PersistenceError(Exception):
    """Rules, a root or a quarantine step cannot be used; the message says what and where."""


# ---- rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rule: every condition given must hold for an item of one of ``locations`` to be a finding."""

    id: str
    description: str
    severity: str
    locations: frozenset[str]
    scope: str = "any"
    quarantine: bool = True
    command: tuple[re.Pattern[str], ...] = ()
    executes: tuple[re.Pattern[str], ...] = ()
    references: tuple[re.Pattern[str], ...] = ()
    indicator_paths: tuple[str, ...] = ()
    every_minutes: int | None = None
    payload_unowned: bool = False
    location_unowned: bool = False
    foreign_owner: bool = False
    rules: tuple[str, ...] = ()


def load_rules(raw: object) -> list[Rule]:
    """Validate rules given as data (the YAML list) and compile them.

    A later rule with the id of an earlier one replaces it, and ``enabled: false`` drops it, so a
    user's list appended to the shipped one adjusts or switches off a shipped rule.
    Raises PersistenceError naming every problem found.
    """
    if not isinstance(raw, list):
        raise PersistenceError(f"rules must be a list of mappings, not {type(raw).__name__}")
    errors: list[str] = []
    chosen: dict[str, Rule | None] = {}
    for index, entry in enumerate(raw, start=1):
        parsed = _parse_rule(entry, index, errors)
        if parsed is not None:
            rule_id, rule = parsed
            chosen[rule_id] = rule
    rules = [rule for rule in chosen.values() if rule is not None]
    known = {rule.id: rule for rule in rules}
    for rule in rules:
        for other in rule.rules:
            if other not in known:
                errors.append(f"rule {rule.id}: match.rules names {other!r}, which is not an enabled rule")
            elif known[other].rules:
                errors.append(f"rule {rule.id}: match.rules names {other!r}, which itself depends on rules")
    if errors:
        raise PersistenceError("invalid persistence rules: " + "; ".join(errors))
    return rules


def _parse_rule(entry: object, index: int, errors: list[str]) -> tuple[str, Rule | None] | None:
    """(id, rule) for one entry, rule None when it is disabled; None (and errors) when it is invalid."""
    where = f"rule {index}"
    if not isinstance(entry, dict):
        errors.append(f"{where}: must be a mapping, not {type(entry).__name__}")
        return None
    before = len(errors)
    rule_id = entry.get("id")
    if isinstance(rule_id, str) and _RULE_ID.fullmatch(rule_id):
        where = f"rule {index} ({rule_id})"
    else:
        errors.append(f"{where}: id must be lowercase letters, digits, '.', '_' or '-' (got {rule_id!r})")
    unknown = sorted(set(entry) - set(_RULE_KEYS))
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_RULE_KEYS)}")
    if not _flag(entry, "enabled", where, errors, default=True):
        # Switching a rule off needs its id only.
        return None if len(errors) > before or not isinstance(rule_id, str) else (rule_id, None)
    description = entry.get("description")
    if not isinstance(description, str) or not description.strip():
        errors.append(f"{where}: description must be a non-empty string")
    severity = entry.get("severity")
    if severity not in SEVERITIES:
        errors.append(f"{where}: severity must be one of {', '.join(SEVERITIES)} (got {severity!r})")
    scope = entry.get("scope", "any")
    if scope not in SCOPES:
        errors.append(f"{where}: scope must be one of {', '.join(SCOPES)} (got {scope!r})")
    locations = frozenset(LOCATIONS)
    if "locations" in entry:
        names = _strings(entry["locations"], "locations", where, errors)
        bad = sorted(set(names) - set(LOCATIONS))
        if bad:
            errors.append(
                f"{where}: unknown location kind(s) {', '.join(bad)}; known: {', '.join(LOCATIONS)}"
            )
        locations = frozenset(names)
    quarantine = _flag(entry, "quarantine", where, errors, default=True)
    match = entry.get("match", {})
    if not isinstance(match, dict):
        errors.append(f"{where}: match must be a mapping, not {type(match).__name__}")
        match = {}
    conditions = _parse_match(match, where, errors)
    if not match and "locations" not in entry:
        errors.append(f"{where}: no match conditions and no locations: it would flag every item")
    if len(errors) > before or not isinstance(rule_id, str):
        return None
    return rule_id, Rule(
        id=rule_id,
        description=" ".join(str(description).split()),
        severity=str(severity),
        locations=locations,
        scope=str(scope),
        quarantine=quarantine,
        **conditions,
    )


def _parse_match(match: dict, where: str, errors: list[str]) -> dict:
    unknown = sorted(set(match) - set(_MATCH_KEYS))
    if unknown:
        errors.append(f"{where}: unknown match key(s) {', '.join(unknown)}; known: {', '.join(_MATCH_KEYS)}")
    found: dict = {}
    for key in ("command", "executes", "references"):
        if key in match:
            found[key] = tuple(
                _pattern(p, key, where, errors) for p in _strings(match[key], key, where, errors)
            )
    if "indicator_paths" in match:
        paths = _strings(match["indicator_paths"], "indicator_paths", where, errors)
        for path in paths:
            if not (path.startswith("/") or path.startswith("~/")):
                errors.append(f"{where}: indicator path {path!r} must be absolute or start with ~/")
        found["indicator_paths"] = tuple(_normal(p) if p.startswith("/") else p for p in paths)
    if "every_minutes" in match:
        minutes = match["every_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
            errors.append(f"{where}: every_minutes must be a whole number of minutes, at least 1")
        else:
            found["every_minutes"] = minutes
    for key in ("payload_unowned", "location_unowned", "foreign_owner"):
        if key in match:
            found[key] = _flag(match, key, where, errors, default=False)
    if "rules" in match:
        found["rules"] = tuple(_strings(match["rules"], "rules", where, errors))
    return found


def _strings(value: object, key: str, where: str, errors: list[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    errors.append(f"{where}: {key} must be a string or a non-empty list of strings")
    return []


def _pattern(text: str, key: str, where: str, errors: list[str]) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        errors.append(f"{where}: {key} pattern {text!r} is not a valid regular expression: {exc}")
        return re.compile(r"(?!)")


def _flag(mapping: dict, key: str, where: str, errors: list[str], *, default: bool) -> bool:
    value = mapping.get(key, default)
    if not isinstance(value, bool):
        errors.append(f"{where}: {key} must be true or false (got {value!r})")
        return default
    return value


# ---- what a shell line runs ------------------------------------------------------------------------

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
PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
UDEV_PATH = ("/usr/lib/udev", "/lib/udev")


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


def _normal(path: str) -> str:
    """An absolute path with '//', '.' and '..' folded ("//tmp/./x" -> "/tmp/x")."""
    return "/" + posixpath.normpath(path).lstrip("/") if path != "/" else "/"


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
            start, _, step = part.partition("/")
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


# ---- the scan --------------------------------------------------------------------------------------


@dataclass
class Account:
    name: str
    uid: int
    gid: int
    home: str


@dataclass
class FileFacts:
    """One file at a persistence location as it was read.

    ``path`` is where it was found, ``resolved`` where its links lead inside the root, ``st`` the
    lstat of ``resolved``; ``data`` is None when it was not read. ``account`` is the user it belongs
    to (a user crontab, a file of a home directory), None for system files.
    """

    path: str
    kind: str
    resolved: str
    st: os.stat_result
    data: bytes | None = None
    account: Account | None = None
    notes: list[str] = field(default_factory=list)
    jobs: int = 0


@dataclass
class Item:
    """One thing a location starts: a line (``line`` counts from 1) or the file itself (``line`` None)."""

    kind: str
    file: FileFacts
    line: int | None = None
    text: str = ""
    command: str = ""
    user: str = ""
    interval: int | None = None
    executes: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    payload: str | None = None


@dataclass
class Finding:
    rule: Rule
    item: Item
    matched: list[str]


@dataclass
class Scan:
    """What one scan found; ``findings`` in the order items were met, rules in their order."""

    root: str
    findings: list[Finding]
    notes: list[dict]
    already_quarantined: list[dict]
    files: int
    items: int
    package_database: bool
    seconds: float
    scanner: _Scanner

    def finding_dicts(self) -> list[dict]:
        return [self.scanner.finding_dict(f) for f in self.findings]

    def summary(self) -> dict:
        by_severity = dict.fromkeys(SEVERITIES, 0)
        by_location: dict[str, int] = {}
        by_rule: dict[str, int] = {}
        for finding in self.findings:
            by_severity[finding.rule.severity] += 1
            by_location[finding.item.kind] = by_location.get(finding.item.kind, 0) + 1
            by_rule[finding.rule.id] = by_rule.get(finding.rule.id, 0) + 1
        return {
            "findings": len(self.findings),
            "by_severity": by_severity,
            "by_location": by_location,
            "by_rule": by_rule,
            "files": self.files,
            "items": self.items,
            "notes": len(self.notes),
            "already_quarantined": len(self.already_quarantined),
            "package_database": self.package_database,
            "seconds": round(self.seconds, 3),
        }


def scan(root: str, rules: list[Rule], quarantine_dir: str = DEFAULT_QUARANTINE_DIR) -> Scan:
    """Read every persistence location of ``root`` and apply ``rules`` (see load_rules)."""
    started = time.monotonic()
    scanner = _Scanner(root, rules)
    scanner.read_all()
    findings = scanner.evaluate()
    held = scanner.quarantined_files(quarantine_dir)
    return Scan(
        root=scanner.root,
        findings=findings,
        notes=scanner.notes,
        already_quarantined=scanner.marked_lines + held,
        files=len(scanner.files),
        items=len(scanner.items),
        package_database=scanner.package_database,
        seconds=time.monotonic() - started,
        scanner=scanner,
    )


SYSTEM_UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/run/systemd/generator",
    "/run/systemd/generator.late",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
USER_UNIT_DIRS = (
    "/etc/systemd/user",
    "/run/systemd/user",
    "/usr/local/lib/systemd/user",
    "/usr/lib/systemd/user",
    "/lib/systemd/user",
)
HOME_UNIT_DIRS = (".config/systemd/user", ".local/share/systemd/user")
GENERATOR_DIRS = tuple(
    f"{base}/{name}"
    for base in ("/etc/systemd", "/run/systemd", "/usr/local/lib/systemd", "/usr/lib/systemd", "/lib/systemd")
    for name in (
        "system-generators",
        "user-generators",
        "system-environment-generators",
        "user-environment-generators",
        "system-shutdown",
        "system-sleep",
    )
)
UDEV_DIRS = (
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/usr/local/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
    "/lib/udev/rules.d",
)
SHELL_FILES = (
    "/etc/profile",
    "/etc/bash.bashrc",
    "/etc/bashrc",
    "/etc/zsh/zshenv",
    "/etc/zsh/zprofile",
    "/etc/zsh/zshrc",
    "/etc/zsh/zlogin",
)
HOME_SHELL_FILES = (".bashrc", ".profile", ".bash_profile", ".bash_login", ".zshrc")
CRON_SCRIPT_DIRS = tuple(f"/etc/cron.{p}" for p in ("hourly", "daily", "weekly", "monthly", "yearly"))
RC_DIRS = tuple(f"/etc/rc{level}.d" for level in "0123456S")
_UNIT_SUFFIX = re.compile(r"\.(?:service|socket|timer|path|mount|automount|swap|target|slice|scope|device)$")
_EXEC_KEYS = frozenset(
    {"ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost", "ExecCondition"}
)
_RUN_PARTS_NAME = re.compile(r"[A-Za-z0-9_-]+")
_UDEV_PROGRAM = re.compile(r"""\b(RUN|PROGRAM|IMPORT)(\{([^}]*)\})?\s*(?:\+=|:=|==|=)\s*"([^"]*)\"""")
_KEY_TYPE = re.compile(r"(?:ssh-|ecdsa-|sk-)\S+")
_AT_UID = re.compile(r"#\s*atrun uid=(\d+)")
_ANACRON_PERIODS = {"@monthl": 30, "@yearly": 365}  # anacron compares 7 characters
_MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _lines(data: bytes) -> Iterator[tuple[int, str]]:
    """(number, text) of each line holding something; NUL bytes a runaway writer left are dropped,
    so a job they polluted is still seen."""
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.strip(b" \t\r\0"):
            yield number, raw.replace(b"\0", b"").decode("utf-8", "replace").rstrip("\r")


def _binary(data: bytes) -> bool:
    return data.startswith(b"\x7fELF") or b"\0" in data[:4096]


def shown(text: str, limit: int = SHOWN) -> str:
    """Text as a report shows it: control characters visible, long text cut."""
    cut = text[:limit]
    visible = "".join(ch if ch >= " " or ch == "\t" else f"\\x{ord(ch):02x}" for ch in cut)
    return visible if len(text) <= limit else f"{visible}... ({len(text)} characters)"


def iso(timestamp: float) -> str:
    """A time as ISO 8601 in UTC: "2024-05-01T12:00:00Z"."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def _type_of(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "other"


class _Scanner:
    """Reads the locations of one root into items and evaluates the rules on them."""

    def __init__(self, root: str, rules: list[Rule]) -> None:
        self.root = os.path.abspath(root)
        self.rules = rules
        self.notes: list[dict] = []
        self.items: list[Item] = []
        self.files: dict[str, FileFacts] = {}
        self.marked_lines: list[dict] = []
        self.unit_links: list[tuple[str, str]] = []
        self._scanned: set[str] = set()
        self._listed: set[str] = set()
        self._which: dict[tuple[str, tuple[str, ...]], str | None] = {}
        self._kinds: dict[str, str] = {}
        self._resolved: dict[str, str | None] = {}
        self._packages: dict[str, str | None] = {}
        self._evidence: dict[str, dict] = {}
        self._home_list: list[Account] | None = None
        self._indicators_of: dict[str, list[str]] = {}
        self.accounts = self._read_accounts()
        self.users = {a.name: a for a in self.accounts}
        self.uid_names = {a.uid: a.name for a in reversed(self.accounts)}
        self.gid_names = self._read_groups()
        try:
            self.owners = packages.owners(self.root)
            self.package_database = True
        except packages.PackageError as exc:
            self.owners, self.package_database = {}, False
            self._note("", "/var/lib/dpkg/status", f"{exc}: no file counts as owned or as unowned")
        self.merged = {d for d in _MERGED if self.resolved_path(f"/{d}") == f"/usr/{d}"}

    # -- reading ---------------------------------------------------------------------------------

    def _note(self, kind: str, path: str, problem: str) -> None:
        self.notes.append({"location": kind, "path": path, "problem": problem})

    def _is_link(self, path: str) -> bool:
        try:
            return os.path.islink(rootfs.resolve(self.root, path, follow_last=False).host)
        except rootfs.RootError:
            return False

    def resolved_path(self, path: str) -> str | None:
        """Where ``path`` leads inside the root; None for a link loop. Cached: commands name the same
        programs over and over."""
        if path not in self._resolved:
            try:
                self._resolved[path] = rootfs.resolve(self.root, path).inside
            except rootfs.RootError:
                self._resolved[path] = None
        return self._resolved[path]

    def _read_small(self, path: str) -> str:
        try:
            data = rootfs.read_bytes(self.root, path, 16 << 20, missing_ok=True)
        except rootfs.RootError as exc:
            self._note("", path, str(exc))
            return ""
        return (data or b"").decode("utf-8", "replace")

    def _read_accounts(self) -> list[Account]:
        accounts = []
        for line in self._read_small("/etc/passwd").splitlines():
            fields = line.split(":")
            if len(fields) >= 7 and fields[2].isdigit() and fields[3].isdigit():
                accounts.append(Account(fields[0], int(fields[2]), int(fields[3]), fields[5]))
        if not any(a.name == "root" for a in accounts):
            accounts.insert(0, Account("root", 0, 0, "/root"))
        return accounts

    def _read_groups(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for line in self._read_small("/etc/group").splitlines():
            fields = line.split(":")
            if len(fields) >= 3 and fields[2].isdigit():
                names.setdefault(int(fields[2]), fields[0])
        return names

    def _homes(self) -> list[Account]:
        """Accounts with a home directory in the root, each directory once (root's first)."""
        if self._home_list is not None:
            return self._home_list
        found, seen = [], set()
        for account in sorted(self.accounts, key=lambda a: a.uid != 0):
            if not account.home.startswith("/"):
                continue
            try:
                where = rootfs.resolve(self.root, account.home)
            except rootfs.RootError as exc:
                self._note("", account.home, f"home of {account.name}: {exc}")
                continue
            if where.inside in seen or where.escaped or not os.path.isdir(where.host):
                continue
            seen.add(where.inside)
            found.append(account)
        self._home_list = found
        return found

    def entries(
        self, kind: str, directory: str, *, recursive: bool = False, once: bool = True
    ) -> list[tuple[str, bool]]:
        """(path, is a symbolic link) of every entry of a directory of the root, sorted, each directory
        read once (on a merged-/usr root /lib/x and /usr/lib/x are one); subdirectories are descended
        into only when ``recursive`` and never through a link."""
        try:
            where = rootfs.resolve(self.root, directory)
        except rootfs.RootError as exc:
            self._note(kind, directory, str(exc))
            return []
        if once and where.inside in self._listed:
            return []
        self._listed.add(where.inside)
        found: list[tuple[str, bool]] = []
        pending = [(where.inside, 0)]
        while pending:
            inside, depth = pending.pop(0)
            try:
                with os.scandir(rootfs.join(self.root, inside)) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno != errno.ENOTDIR:
                    self._note(kind, inside, f"cannot be listed: {exc.strerror}")
                elif inside == where.inside:
                    self._note(kind, directory, "is not a directory")
                continue
            for entry in entries:
                if len(found) >= MAX_ENTRIES:
                    self._note(
                        kind, directory, f"holds more than {MAX_ENTRIES} entries; the rest is not read"
                    )
                    return found
                path = posixpath.join(inside, entry.name)
                if entry.is_dir(follow_symlinks=False):
                    if recursive and depth < MAX_DEPTH:
                        pending.append((path, depth + 1))
                    elif not recursive:
                        found.append((path, False))
                    continue
                found.append((path, entry.is_symlink()))
        return found

    def _file(
        self, kind: str, path: str, account: Account | None = None, *, read: bool = True
    ) -> FileFacts | None:
        """Facts and content of a file at a location; None (with a note when it matters) when it is
        missing, not a regular file, a link loop or a link above the root, or was already read."""
        try:
            where = rootfs.resolve(self.root, path)
        except rootfs.RootError as exc:
            self._note(kind, path, str(exc))
            return None
        if where.escaped:
            self._note(
                kind, path, f"a symbolic link leads above the root ({'; '.join(where.links)}): not read"
            )
            return None
        try:
            st = os.lstat(where.host)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and self._is_link(path):
                self._note(kind, path, f"a dangling symbolic link ({'; '.join(where.links)})")
            elif not isinstance(exc, FileNotFoundError):
                self._note(kind, path, exc.strerror or str(exc))
            return None
        if where.inside in self._scanned:
            return None
        if not stat.S_ISREG(st.st_mode):
            self._note(kind, path, f"is a {_type_of(st.st_mode)}, not a regular file: not read")
            return None
        self._scanned.add(where.inside)
        facts = FileFacts(path=path, kind=kind, resolved=where.inside, st=st, account=account)
        if read:
            try:
                facts.data = rootfs.read_bytes(self.root, where.inside, MAX_TEXT)
            except rootfs.RootError as exc:
                self._note(kind, path, str(exc))
        self.files[path] = facts
        return facts

    def _text_lines(self, facts: FileFacts) -> Iterator[tuple[int, str]]:
        """The lines of a file that are not quarantine comments (those are recorded instead)."""
        for number, text in _lines(facts.data or b""):
            marked = _MARKED.match(text.lstrip())
            if marked:
                self.marked_lines.append(
                    {
                        "kind": "line",
                        "path": facts.path,
                        "line": number,
                        "rules": [r for r in marked.group(1).split(",") if r],
                        "text": shown(text),
                        "quarantined_path": None,
                        "quarantined_at": None,
                        "present": True,
                        "restore": _uncomment_command(facts.resolved, number),
                    }
                )
                continue
            yield number, text

    def read_all(self) -> None:
        self._cron()
        self._anacron()
        self._cron_scripts()
        self._at_jobs()
        self._systemd()
        self._generators()
        self._rc_local()
        self._init_scripts()
        self._udev()
        self._shell_files()
        self._ld_preload()
        self._autostart()
        self._authorized_keys()
        self._indicators()

    # -- items -----------------------------------------------------------------------------------

    def _file_item(self, facts: FileFacts, *, runs: bool = False) -> None:
        executes = self._resolved_too([facts.path]) if runs else ()
        user = facts.account.name if facts.account else ""
        self.items.append(Item(facts.kind, facts, user=user, executes=executes, references=executes))

    def _command_item(
        self,
        facts: FileFacts,
        number: int,
        text: str,
        command: str,
        *,
        shell_command: str | None = None,
        user: str = "",
        interval: int | None = None,
        search: tuple[str, ...] = PATH,
    ) -> Item:
        executes, references = self._analyse(command if shell_command is None else shell_command, search)
        item = Item(
            facts.kind,
            facts,
            number,
            text,
            command,
            user or (facts.account.name if facts.account else ""),
            interval,
            executes,
            references,
            self._payload(executes),
        )
        self.items.append(item)
        return item

    def _analyse(self, command: str, search: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(paths the command runs, every absolute path it names), resolved inside the root too."""
        commands, targets = simple_commands(command)
        executed: list[str] = []
        for words in commands:
            for word in executed_words(words):
                if word.startswith("/"):
                    executed.append(_normal(word))
                elif _COMMAND_NAME.fullmatch(word) and word not in _BUILTINS:
                    found = self._lookup(word, search)
                    if found:
                        executed.append(found)
        named = [_normal(p) for p in _ABSOLUTE.findall(command) if not p.startswith("//")]
        named += [_normal(t) for t in targets if t.startswith("/")]
        runs = self._resolved_too(executed)
        return runs, tuple(dict.fromkeys([*runs, *named]))

    def _lookup(self, name: str, search: tuple[str, ...]) -> str | None:
        key = (name, search)
        if key not in self._which:
            self._which[key] = next(
                (
                    f"{d}/{name}"
                    for d in search
                    if self._kind_of(f"{d}/{name}") not in ("missing", "directory")
                ),
                None,
            )
        return self._which[key]

    def _resolved_too(self, paths: list[str]) -> tuple[str, ...]:
        """The paths and, for those reached through links, where the links lead inside the root."""
        out: list[str] = []
        for path in paths:
            out.append(path)
            resolved = self.resolved_path(path)
            if resolved and resolved != path:
                out.append(resolved)
        return tuple(dict.fromkeys(out))

    def _kind_of(self, path: str) -> str:
        """The type of what ``path`` leads to inside the root ("missing" for nothing or a loop)."""
        if path not in self._kinds:
            resolved = self.resolved_path(path)
            kind = "missing"
            if resolved is not None:
                with contextlib.suppress(OSError):
                    kind = _type_of(os.lstat(rootfs.join(self.root, resolved)).st_mode)
            self._kinds[path] = kind
        return self._kinds[path]

    def _payload(self, executes: tuple[str, ...]) -> str | None:
        """The file a command runs: the first existing one no package owns, else the first existing."""
        first = None
        for path in executes:
            if self._kind_of(path) in ("missing", "directory"):
                continue
            if self.unowned(path):
                return path
            first = first or path
        return first

    # -- ownership -------------------------------------------------------------------------------

    def _aliases(self, path: str) -> list[str]:
        """``path`` and its other spelling on a merged-/usr root (dpkg lists /lib/x for /usr/lib/x)."""
        top = path.split("/", 3)
        if len(top) > 2 and top[1] in self.merged:
            return [path, "/usr" + path]
        if len(top) > 3 and top[1] == "usr" and top[2] in self.merged:
            return [path, path[4:]]
        return [path]

    def package_of(self, path: str) -> str | None:
        """The packages listing ``path`` or the file its links lead to, comma-separated; None if none."""
        if path not in self._packages:
            candidates = self._aliases(path)
            resolved = self.resolved_path(path)
            if resolved and resolved != path:
                candidates += self._aliases(resolved)
            names: list[str] = []
            for candidate in candidates:
                names += self.owners.get(candidate, [])
            self._packages[path] = ", ".join(dict.fromkeys(names)) or None
        return self._packages[path]

    def unowned(self, path: str) -> bool:
        """True only when the package database was read and no package lists the file."""
        return self.package_database and self.package_of(path) is None

    # -- locations -------------------------------------------------------------------------------

    def _cron(self) -> None:
        self._crontab("/etc/crontab", system=True)
        for path, _ in self.entries("cron", "/etc/cron.d"):
            self._crontab(path, system=True)
        for path, _ in self.entries("cron", "/var/spool/cron/crontabs"):
            self._crontab(path, system=False)
        # Red Hat keeps user crontabs right in /var/spool/cron; Debian keeps only directories there.
        for path, is_link in self.entries("cron", "/var/spool/cron"):
            if is_link or self._kind_of(path) == "file":
                self._crontab(path, system=False)

    def _crontab(self, path: str, *, system: bool) -> None:
        owner = None if system else self.users.get(posixpath.basename(path))
        facts = self._file("cron", path, owner)
        if facts is None:
            return
        if path.startswith("/etc/cron.d/") and "." in posixpath.basename(path):
            facts.notes.append("Debian's cron ignores a file of /etc/cron.d whose name holds a dot")
        self._file_item(facts)
        user = "" if system else posixpath.basename(path)
        for number, text in self._text_lines(facts):
            entry = crontab.parse_line(text, system)
            if entry.kind != "job":
                continue
            facts.jobs += 1
            self._command_item(
                facts,
                number,
                text,
                entry.command,
                shell_command=entry.shell_command,
                user=entry.user or user,
                interval=cron_interval(entry),
            )

    def _anacron(self) -> None:
        facts = self._file("anacron", "/etc/anacrontab")
        if facts is None:
            return
        self._file_item(facts)
        for number, text in self._text_lines(facts):
            entry = crontab.parse_anacrontab_line(crontab.anacron_line_text(text))
            if entry.kind != "job":
                continue
            days = entry.period_days or _ANACRON_PERIODS.get(entry.special[:7])
            facts.jobs += 1
            self._command_item(
                facts, number, text, entry.command, user="root", interval=days * 1440 if days else None
            )

    def _scripts(self, kind: str, path: str, *, runs: bool, account: Account | None = None) -> None:
        """A program a location runs: the file itself, and each line when it is a text script."""
        facts = self._file(kind, path, account)
        if facts is None:
            return
        self._file_item(facts, runs=runs)
        if facts.data is None or _binary(facts.data):
            return
        for number, text in self._text_lines(facts):
            stripped = text.lstrip()
            if not stripped.startswith("#"):
                self._command_item(facts, number, text, stripped)

    def _cron_scripts(self) -> None:
        for directory in CRON_SCRIPT_DIRS:
            for path, _ in self.entries("cron_script", directory):
                # run-parts runs only names made of letters, digits, '_' and '-'.
                self._scripts(
                    "cron_script", path, runs=bool(_RUN_PARTS_NAME.fullmatch(posixpath.basename(path)))
                )

    def _at_jobs(self) -> None:
        for directory in ("/var/spool/cron/atjobs", "/var/spool/at"):
            for path, _ in self.entries("at", directory):
                if posixpath.basename(path) == ".SEQ" or self._kind_of(path) == "directory":
                    continue
                facts = self._file("at", path)
                if facts is None:
                    continue
                head = _AT_UID.search((facts.data or b"")[:4096].decode("utf-8", "replace"))
                name = self.uid_names.get(int(head.group(1)), head.group(1)) if head else ""
                self._file_item(facts, runs=True)
                for number, text in self._text_lines(facts):
                    stripped = text.lstrip()
                    if not stripped.startswith("#"):
                        self._command_item(facts, number, text, stripped, user=name)

    def _systemd(self) -> None:
        places: list[tuple[str, Account | None]] = [(d, None) for d in (*SYSTEM_UNIT_DIRS, *USER_UNIT_DIRS)]
        places += [(posixpath.join(a.home, d), a) for a in self._homes() for d in HOME_UNIT_DIRS]
        unit_dirs = {r for r in (self.resolved_path(d) for d, _ in places) if r}
        services: dict[tuple[str, str], list[Item]] = {}
        timers: list[tuple[FileFacts, str]] = []
        for directory, account in places:
            scope = account.name if account else ("user" if "/user" in directory else "system")
            for path, is_link in self.entries("systemd_unit", directory, recursive=True):
                name = posixpath.basename(path)
                drop_in = posixpath.dirname(path).endswith(".d") and name.endswith(".conf")
                if not (_UNIT_SUFFIX.search(name) or drop_in):
                    continue
                if is_link:
                    target = self.resolved_path(path)
                    if target is None or target == "/dev/null":
                        continue  # a loop is noted when read; /dev/null masks the unit
                    self.unit_links.append((path, target))
                    if posixpath.dirname(target) in unit_dirs:
                        continue  # an enablement link or alias: the unit is read where it lies
                kind = "systemd_timer" if name.endswith(".timer") else "systemd_unit"
                facts = self._file(kind, path, account)
                if facts is None:
                    continue
                if kind == "systemd_timer":
                    timers.append((facts, scope))
                    continue
                items = self._unit(facts)
                if not drop_in:
                    services.setdefault((scope, name), items)
        for facts, scope in timers:
            self._timer(facts, services.get((scope, self._timer_unit(facts)), []))

    @staticmethod
    def _unit_lines(facts: FileFacts) -> Iterator[tuple[int, str, str, str]]:
        """(line, text, key, value) of a unit file's settings, continuation lines joined."""
        pending: tuple[int, str] | None = None
        for number, text in _lines(facts.data or b""):
            if pending:
                number, text = pending[0], pending[1] + " " + text
                pending = None
            stripped = text.strip()
            if stripped[:1] in ("#", ";", "["):
                continue
            if stripped.endswith("\\"):
                pending = (number, text.rstrip()[:-1])
                continue
            key, sep, value = stripped.partition("=")
            if sep:
                yield number, text, key.strip(), value.strip()

    def _unit(self, facts: FileFacts) -> list[Item]:
        self._file_item(facts)
        settings = list(self._unit_lines(facts))
        user = next((v for _, _, k, v in settings if k == "User"), "")
        if not user:
            user = facts.account.name if facts.account else "root"
        items = []
        for number, text, key, value in settings:
            if key in _EXEC_KEYS and value:
                # Prefixes @ - : + ! | change how systemd runs the command, not which one.
                items.append(self._command_item(facts, number, text, value.lstrip("@-:+!|"), user=user))
        return items

    def _timer_unit(self, facts: FileFacts) -> str:
        unit = next((v for _, _, k, v in self._unit_lines(facts) if k == "Unit"), "")
        return unit or re.sub(r"\.timer$", ".service", posixpath.basename(facts.path))

    def _timer(self, facts: FileFacts, service: list[Item]) -> None:
        """A timer is one item: its schedule, and what its service runs."""
        intervals = []
        for _, _, key, value in self._unit_lines(facts):
            if key == "OnCalendar":
                intervals.append(calendar_minutes(value))
            elif key in ("OnUnitActiveSec", "OnUnitInactiveSec"):
                intervals.append(timespan_minutes(value))
        known = [i for i in intervals if i is not None]
        executes = tuple(dict.fromkeys(p for i in service for p in i.executes))
        self.items.append(
            Item(
                "systemd_timer",
                facts,
                user=service[0].user if service else "",
                command="; ".join(i.command for i in service),
                interval=min(known) if known else None,
                executes=executes,
                references=tuple(dict.fromkeys(p for i in service for p in i.references)),
                payload=self._payload(executes),
            )
        )

    def _generators(self) -> None:
        for directory in GENERATOR_DIRS:
            for path, _ in self.entries("systemd_generator", directory):
                # systemd skips hidden files in these directories.
                runs = not posixpath.basename(path).startswith(".")
                self._scripts("systemd_generator", path, runs=runs)

    def _rc_local(self) -> None:
        for path in ("/etc/rc.local", "/etc/rc.d/rc.local"):
            self._scripts("rc_local", path, runs=True)

    def _init_scripts(self) -> None:
        for path, _ in self.entries("init_script", "/etc/init.d"):
            self._scripts("init_script", path, runs=not posixpath.basename(path).startswith("."))

    def _udev(self) -> None:
        for directory in UDEV_DIRS:
            for path, _ in self.entries("udev", directory):
                if not path.endswith(".rules"):
                    continue
                facts = self._file("udev", path)
                if facts is None:
                    continue
                self._file_item(facts)
                for number, text in self._text_lines(facts):
                    if text.lstrip().startswith("#"):
                        continue
                    for m in _UDEV_PROGRAM.finditer(text):
                        option = m.group(3) or ""
                        if m.group(1) == "IMPORT" and option != "program":
                            continue
                        if option == "builtin":
                            continue
                        self._command_item(facts, number, text, m.group(4), user="root", search=UDEV_PATH)

    def _shell_files(self) -> None:
        for path in SHELL_FILES:
            self._shell_file(path)
        for path, _ in self.entries("shell_rc", "/etc/profile.d"):
            self._shell_file(path)
        for account in self._homes():
            for name in HOME_SHELL_FILES:
                self._shell_file(posixpath.join(account.home, name), account)

    def _shell_file(self, path: str, account: Account | None = None) -> None:
        facts = self._file("shell_rc", path, account)
        if facts is None:
            return
        self._file_item(facts)
        for number, text in self._text_lines(facts):
            stripped = text.lstrip()
            if not stripped.startswith("#"):
                self._command_item(facts, number, text, stripped)

    def _ld_preload(self) -> None:
        facts = self._file("ld_preload", "/etc/ld.so.preload")
        if facts is None:
            return
        self._file_item(facts)
        # The loader splits the file at blanks and ':' and reads '#' to the end of a line as a comment.
        for number, text in self._text_lines(facts):
            entries = [e for e in re.split(r"[\s:]+", text.split("#", 1)[0]) if e]
            if not entries:
                continue
            executes = self._resolved_too([_normal(e) if e.startswith("/") else e for e in entries])
            item = Item(
                "ld_preload", facts, number, text, text.strip(), executes=executes, references=executes
            )
            item.payload = self._payload(executes)
            self.items.append(item)

    def _autostart(self) -> None:
        places = [("/etc/xdg/autostart", None)]
        places += [(posixpath.join(a.home, ".config/autostart"), a) for a in self._homes()]
        for directory, account in places:
            for path, _ in self.entries("xdg_autostart", directory):
                if not path.endswith(".desktop"):
                    continue
                facts = self._file("xdg_autostart", path, account)
                if facts is None:
                    continue
                self._file_item(facts)
                for number, text in self._text_lines(facts):
                    key, sep, value = text.partition("=")
                    if sep and key.strip() == "Exec" and value.strip():
                        self._command_item(facts, number, text, value.strip())

    def _authorized_keys(self) -> None:
        for account in self._homes():
            for name in ("authorized_keys", "authorized_keys2"):
                facts = self._file("authorized_keys", posixpath.join(account.home, ".ssh", name), account)
                if facts is None:
                    continue
                self._file_item(facts)
                for number, text in self._text_lines(facts):
                    stripped = text.strip()
                    if stripped and not stripped.startswith("#"):
                        self._command_item(facts, number, text, forced_command(stripped))

    def _indicators(self) -> None:
        homes = self._homes()
        paths: list[str] = []
        for rule in self.rules:
            for path in rule.indicator_paths:
                if path.startswith("~/"):
                    paths += [_normal(posixpath.join(a.home, path[2:])) for a in homes]
                else:
                    paths.append(path)
        for path in dict.fromkeys(paths):
            if path in self.files or not rootfs.lexists(self.root, path):
                continue
            try:
                where = rootfs.resolve(self.root, path, follow_last=False)
                st = os.lstat(where.host)
            except (OSError, rootfs.RootError):
                continue
            if where.inside in self._scanned:
                continue
            self._scanned.add(where.inside)
            facts = FileFacts(path=path, kind="indicator_path", resolved=where.inside, st=st)
            self.files[path] = facts
            self._file_item(facts)

    # -- rules -----------------------------------------------------------------------------------

    def evaluate(self) -> list[Finding]:
        plain = [r for r in self.rules if not r.rules]
        dependent = [r for r in self.rules if r.rules]
        findings: list[Finding] = []
        for item in self.items:
            fired: dict[str, Finding] = {}
            for rule in plain:
                matched = self._match(rule, item, fired)
                if matched is not None:
                    fired[rule.id] = Finding(rule, item, matched)
            for rule in dependent:
                matched = self._match(rule, item, fired)
                if matched is not None:
                    fired[rule.id] = Finding(rule, item, matched)
            findings += fired.values()
        return findings

    def _match(self, rule: Rule, item: Item, fired: dict[str, Finding]) -> list[str] | None:
        """Why ``rule`` fires on ``item`` (one reason a condition), None when it does not."""
        if item.kind not in rule.locations:
            return None
        if (rule.scope == "file" and item.line is not None) or (rule.scope == "line" and item.line is None):
            return None
        reasons: list[str] = []
        for patterns, values, label in (
            (rule.command, (item.command,), "command"),
            (rule.executes, item.executes, "runs"),
            (rule.references, item.references, "names"),
        ):
            if patterns:
                hit = next((m for p in patterns for v in values if (m := p.search(v))), None)
                if hit is None:
                    return None
                reasons.append(f"{label}: {shown(hit.string if label != 'command' else hit.group(), 160)}")
        if rule.indicator_paths:
            hit_path = self._indicator_hit(rule, item)
            if hit_path is None:
                return None
            reasons.append(f"indicator path: {hit_path}")
        if rule.every_minutes is not None:
            if item.interval is None or item.interval > rule.every_minutes:
                return None
            reasons.append(f"runs every {item.interval} minutes or more often")
        if rule.payload_unowned:
            if item.payload is None or not self.unowned(item.payload):
                return None
            reasons.append(f"runs {item.payload}, which no package owns")
        if rule.location_unowned:
            if not self.unowned(item.file.path):
                return None
            reasons.append(f"{item.file.path} is owned by no package")
        if rule.foreign_owner:
            account, uid = item.file.account, item.file.st.st_uid
            if account is None or uid in (account.uid, 0):
                return None
            reasons.append(
                f"{item.file.path} belongs to {self.uid_names.get(uid, uid)}, not to {account.name}"
            )
        if rule.rules:
            also = [r for r in rule.rules if r in fired]
            if not also:
                return None
            reasons.append(f"also matched: {', '.join(also)}")
        return reasons

    def _indicator_hit(self, rule: Rule, item: Item) -> str | None:
        """The indicator path the item's file is (a file item) or a path it names is, or lies below."""
        if rule.id not in self._indicators_of:
            expanded: list[str] = []
            for indicator in rule.indicator_paths:
                if indicator.startswith("~/"):
                    expanded += [_normal(posixpath.join(a.home, indicator[2:])) for a in self._homes()]
                else:
                    expanded.append(indicator)
            self._indicators_of[rule.id] = expanded
        candidates = (item.file.path, item.file.resolved) if item.line is None else ()
        for path in (*candidates, *item.references):
            for indicator in self._indicators_of[rule.id]:
                if path == indicator or path.startswith(indicator.rstrip("/") + "/"):
                    return indicator
        return None

    # -- evidence --------------------------------------------------------------------------------

    def evidence(self, path: str, data: bytes | None = None) -> dict:
        """What a responder needs about a file: where it leads, type, owner, mode, times, sha256, package."""
        if path in self._evidence:
            return self._evidence[path]
        info: dict = {
            "path": path,
            "resolved": path,
            "links": [],
            "type": "missing",
            "owner": None,
            "uid": None,
            "gid": None,
            "mode": None,
            "size": None,
            "mtime": None,
            "ctime": None,
            "sha256": None,
            "package": None,
            "problem": "",
        }
        self._evidence[path] = info
        try:
            where = rootfs.resolve(self.root, path)
        except rootfs.RootError as exc:
            info["problem"] = str(exc)
            return info
        info["resolved"], info["links"] = where.inside, where.links
        info["package"] = self.package_of(path)
        try:
            st = os.lstat(where.host)
        except OSError as exc:
            info["problem"] = exc.strerror or str(exc)
            return info
        info.update(
            type=_type_of(st.st_mode),
            owner=f"{self.uid_names.get(st.st_uid, st.st_uid)}:{self.gid_names.get(st.st_gid, st.st_gid)}",
            uid=st.st_uid,
            gid=st.st_gid,
            mode=f"{stat.S_IMODE(st.st_mode):04o}",
            size=st.st_size,
            mtime=iso(st.st_mtime),
            ctime=iso(st.st_ctime),
        )
        if stat.S_ISREG(st.st_mode):
            if data is None:
                try:
                    data = rootfs.read_bytes(self.root, where.inside, MAX_HASH)
                except rootfs.RootError as exc:
                    info["problem"] = str(exc)
            if data is not None:
                info["sha256"] = hashlib.sha256(data).hexdigest()
        return info

    def finding_dict(self, finding: Finding) -> dict:
        item = finding.item
        return {
            "rule": finding.rule.id,
            "description": finding.rule.description,
            "severity": finding.rule.severity,
            "location": item.kind,
            "path": item.file.path,
            "line": item.line,
            "text": shown(item.text),
            "command": shown(item.command),
            "user": item.user,
            "matched": finding.matched,
            "notes": item.file.notes,
            "file": self.evidence(item.file.path, item.file.data),
            "payload": self.evidence(item.payload) if item.payload else None,
        }

    # -- what the quarantine directory holds ---------------------------------------------------------

    def quarantined_files(self, quarantine_dir: str) -> list[dict]:
        """The records of files quarantined earlier (every *.lifeline.json under the directory)."""
        held: list[dict] = []
        try:
            where = rootfs.resolve(self.root, quarantine_dir)
        except rootfs.RootError as exc:
            self._note("", quarantine_dir, str(exc))
            return held
        if where.escaped or not os.path.isdir(where.host):
            return held
        count = 0
        for top, dirs, names in os.walk(where.host):
            dirs.sort()
            for name in sorted(names):
                count += 1
                if count > MAX_ENTRIES or not name.endswith(METADATA_SUFFIX):
                    continue
                inside = "/" + os.path.relpath(os.path.join(top, name), self.root).lstrip("/")
                try:
                    record = json.loads(rootfs.read_bytes(self.root, inside, 1 << 20) or b"{}")
                except (rootfs.RootError, ValueError) as exc:
                    self._note("", inside, f"unreadable quarantine record: {exc}")
                    continue
                if not isinstance(record, dict):
                    continue
                moved = str(record.get("quarantined_path", ""))
                held.append(
                    {
                        "kind": "file",
                        "path": record.get("original_path"),
                        "line": None,
                        "rules": [r.get("id") for r in record.get("rules", []) if isinstance(r, dict)],
                        "text": "",
                        "quarantined_path": moved,
                        "quarantined_at": record.get("quarantined_at"),
                        "present": bool(moved) and rootfs.lexists(self.root, moved),
                        "restore": record.get("restore", ""),
                    }
                )
        return held


def forced_command(key_line: str) -> str:
    """The command="..." option of an authorized_keys line ('' when it has none)."""
    if _KEY_TYPE.match(key_line):
        return ""
    options, i, quoted = [], 0, False
    while i < len(key_line):
        char = key_line[i]
        if char == "\\" and quoted and i + 1 < len(key_line):
            options.append(key_line[i : i + 2])
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            break
        options.append(char)
        i += 1
    m = re.search(r'(?:^|,)command="((?:[^"\\]|\\.)*)"', "".join(options))
    return m.group(1).replace('\\"', '"') if m else ""


# ---- quarantine ------------------------------------------------------------------------------------


@dataclass
class Action:
    """One quarantine step: ``action`` is "comment" (a line, in place), "move" (a file into the
    quarantine directory) or "manual" (not done: ``reason`` says why and what to do)."""

    action: str
    path: str
    rules: list[str]
    reason: str
    line: int | None = None
    before: str = ""
    after: str = ""
    destination: str = ""
    metadata: str = ""
    backup: str = ""
    restore: str = ""
    restore_host: str = ""
    applied: bool = False
    error: str = ""
    facts: FileFacts | None = None
    record: dict = field(default_factory=dict)
    snapshot: tuple[int, int, int, int] | None = None

    def as_dict(self) -> dict:
        return {
            "action": self.action,
            "path": self.path,
            "line": self.line,
            "rules": self.rules,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
            "destination": self.destination,
            "metadata": self.metadata,
            "backup": self.backup,
            "restore": self.restore,
            "restore_host": self.restore_host,
            "applied": self.applied,
            "error": self.error,
        }


def run_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _marker(rules: list[str]) -> str:
    return f"{MARKER}({','.join(rules)}) "


def _uncomment_command(path: str, line: int) -> str:
    return f"sed -i '{line}s/^{MARKER}([^)]*) //' {shlex.quote(path)}"


def _snapshot(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)


def plan(
    result: Scan, quarantine_dir: str = DEFAULT_QUARANTINE_DIR, stamp: str | None = None
) -> list[Action]:
    """The quarantine of every finding whose rule allows it: comments first, then moves."""
    return _Planner(result, quarantine_dir, stamp or run_stamp()).actions()


class _Planner:
    def __init__(self, result: Scan, quarantine_dir: str, stamp: str) -> None:
        self.scan = result
        self.scanner = result.scanner
        self.root = result.root
        self.base = _normal(posixpath.join(quarantine_dir, stamp))
        self.comments: dict[tuple[str, int], Action] = {}
        self.moves: dict[str, Action] = {}
        self.rc_links: list[tuple[str, str]] | None = None

    def actions(self) -> list[Action]:
        flagged: dict[int, tuple[Item, list[Rule]]] = {}
        for finding in self.scan.findings:
            if finding.rule.quarantine:
                flagged.setdefault(id(finding.item), (finding.item, []))[1].append(finding.rule)
        whole_files = self._cron_d_files_all_flagged(flagged.values())
        for item, rules in flagged.values():
            ids = [r.id for r in rules]
            if item.kind in LINE_KINDS and item.file.path not in whole_files:
                if item.line is None:
                    self._manual(item.file.path, ids, "the whole file matched a rule: review it by hand")
                else:
                    self._comment(item, ids)
            else:
                self._move(item.file.path, ids, rules, f"{item.kind.replace('_', ' ')} that matched a rule")
                self._links_of(item, ids, rules)
            if self._payload_movable(item):
                self._move(
                    item.payload, ids, rules, f"the program {item.file.path} runs, owned by no package"
                )
        self._inside_moved_directories()
        return [*self.comments.values(), *self.moves.values()]

    def _inside_moved_directories(self) -> None:
        """A file inside a directory that moves goes with it, not on its own."""
        directories = [a.path for a in self.moves.values() if a.record.get("type") == "directory"]
        for key, action in list(self.moves.items()):
            if action.action == "move" and any(action.path.startswith(d + "/") for d in directories):
                del self.moves[key]

    def _payload_movable(self, item: Item) -> bool:
        """A payload is moved when no package owns it, the line names it by its absolute path, and it
        is not a shell, interpreter or wrapper (a locally built python3 is not the malware)."""
        payload = item.payload
        if not payload or payload == item.file.path or not self.scanner.unowned(payload):
            return False
        name = posixpath.basename(payload)
        if _SHELLS.fullmatch(name) or _INTERPRETERS.fullmatch(name) or name in _WRAPPERS:
            return False
        return payload in item.command

    def _cron_d_files_all_flagged(self, flagged) -> set[str]:
        """cron.d files no package owns whose every job is flagged: moved whole, not commented."""
        jobs: dict[str, int] = {}
        for item, _ in flagged:
            if item.kind == "cron" and item.line is not None and item.file.path.startswith("/etc/cron.d/"):
                jobs[item.file.path] = jobs.get(item.file.path, 0) + 1
        return {
            path
            for path, count in jobs.items()
            if count == self.scanner.files[path].jobs and self.scanner.unowned(path)
        }

    def _manual(self, path: str, ids: list[str], reason: str, line: int | None = None) -> None:
        key = f"manual:{path}:{line}"
        if key not in self.moves:
            self.moves[key] = Action("manual", path, ids, reason, line=line)

    def _comment(self, item: Item, ids: list[str]) -> None:
        key = (item.file.resolved, item.line or 0)
        if key in self.comments:
            self.comments[key].rules += [i for i in ids if i not in self.comments[key].rules]
            self.comments[key].after = _marker(self.comments[key].rules) + self.comments[key].before
            return
        if item.file.data is None:
            return
        before = shown(item.text)
        self.comments[key] = Action(
            "comment",
            item.file.path,
            list(ids),
            f"{item.kind.replace('_', ' ')} line that matched a rule",
            line=item.line,
            before=before,
            after=_marker(ids) + before,
            restore=_uncomment_command(item.file.resolved, item.line or 0),
            restore_host=_uncomment_command(rootfs.join(self.root, item.file.resolved), item.line or 0),
            facts=item.file,
        )

    def _move(self, path: str, ids: list[str], rules: list[Rule], reason: str) -> None:
        if path in self.moves:
            known = self.moves[path]
            known.rules += [i for i in ids if i not in known.rules]
            known.record["rules"] += [
                _rule_record(r) for r in rules if r.id not in {x["id"] for x in known.record["rules"]}
            ]
            return
        package = self.scanner.package_of(path)
        if package:
            self._manual(
                path,
                ids,
                f"owned by package {package}: reinstall it (apt-get install --reinstall "
                f"{package.split(', ')[0]}) or edit the file; it was not moved",
            )
            return
        if not self.scanner.package_database:
            self._manual(
                path,
                ids,
                "the package database could not be read, so the file may belong to a "
                "package: not moved; check it and move it by hand",
            )
            return
        try:
            host = safewrite.host_path(self.root, path)
            st = os.lstat(host)
        except (safewrite.WriteError, rootfs.RootError, OSError) as exc:
            self._manual(path, ids, f"cannot be moved: {exc}")
            return
        kind = _type_of(st.st_mode)
        if kind not in ("file", "symlink", "directory"):
            self._manual(path, ids, f"a {kind} is never moved; remove it by hand if it is not needed")
            return
        if kind == "directory" and self._too_big_to_move(path, host, st):
            self._manual(
                path,
                ids,
                "a top-level directory, a mount point or one holding the quarantine is never "
                "moved: review what it holds and move that by hand",
            )
            return
        destination = self.base + _normal(path)
        evidence = dict(self.scanner.evidence(path)) if kind != "symlink" else {}
        record = {
            "original_path": path,
            "quarantined_path": destination,
            "quarantined_at": "",
            "type": kind,
            "link_target": os.readlink(host) if kind == "symlink" else "",
            "owner": f"{self.scanner.uid_names.get(st.st_uid, st.st_uid)}:"
            f"{self.scanner.gid_names.get(st.st_gid, st.st_gid)}",
            "uid": st.st_uid,
            "gid": st.st_gid,
            "mode": f"{stat.S_IMODE(st.st_mode):04o}",
            "size": st.st_size,
            "mtime": iso(st.st_mtime),
            "ctime": iso(st.st_ctime),
            "mtime_ns": st.st_mtime_ns,
            "sha256": evidence.get("sha256"),
            "package": None,
            "reason": reason,
            "rules": [_rule_record(r) for r in rules],
        }
        restore = _restore_command(path, destination, st, kind)
        restore_host = _restore_command(
            rootfs.join(self.root, path), rootfs.join(self.root, destination), st, kind
        )
        record.update(restore=restore, restore_host=restore_host)
        shown_type = f"{kind}, {record['mode']} {record['owner']}"
        if record["sha256"]:
            shown_type += f", sha256 {record['sha256']}"
        self.moves[path] = Action(
            "move",
            path,
            list(ids),
            reason,
            before=f"{path} ({shown_type})",
            after=destination,
            destination=destination,
            metadata=destination + METADATA_SUFFIX,
            restore=restore,
            restore_host=restore_host,
            record=record,
            snapshot=_snapshot(st),
        )

    def _rc_links(self) -> list[tuple[str, str]]:
        """(link, where it leads) in the /etc/rc?.d directories, read once."""
        if self.rc_links is None:
            self.rc_links = []
            for directory in RC_DIRS:
                for link, is_link in self.scanner.entries("init_script", directory, once=False):
                    target = self.scanner.resolved_path(link) if is_link else None
                    if target:
                        self.rc_links.append((link, target))
        return self.rc_links

    def _too_big_to_move(self, path: str, host: str, st: os.stat_result) -> bool:
        """An indicator rule naming /tmp or /var must not move the whole of it."""
        if path.count("/") < 2 or self.base.startswith(path.rstrip("/") + "/"):
            return True
        return os.lstat(os.path.dirname(host)).st_dev != st.st_dev

    def _links_of(self, item: Item, ids: list[str], rules: list[Rule]) -> None:
        """The links that enable a moved unit or init script go with it (*.wants, rc?.d)."""
        target = item.file.resolved
        links = [link for link, to in self.scanner.unit_links if to == target and link != item.file.path]
        if item.kind == "init_script":
            links += [link for link, to in self._rc_links() if to == target]
        for link in links:
            self._move(link, ids, rules, f"a link that enables {item.file.path}")


def _rule_record(rule: Rule) -> dict:
    return {"id": rule.id, "description": rule.description, "severity": rule.severity}


def _restore_command(path: str, destination: str, st: os.stat_result, kind: str) -> str:
    """A shell command that puts a quarantined file back with its owner and mode."""
    # Never over whatever is at the path now: the tests refuse, so nothing is replaced.
    parts = [
        f"test ! -e {shlex.quote(path)}",
        f"test ! -L {shlex.quote(path)}",
        f"mkdir -p -- {shlex.quote(posixpath.dirname(path) or '/')}",
        f"mv -- {shlex.quote(destination)} {shlex.quote(path)}",
        f"chown -h {st.st_uid}:{st.st_gid} {shlex.quote(path)}",
    ]
    if kind != "symlink":
        parts.append(f"chmod {stat.S_IMODE(st.st_mode):04o} {shlex.quote(path)}")
    return " && ".join(parts)


def apply(result: Scan, actions: list[Action], backup_dir: str, stamp: str | None = None) -> None:
    """Carry out the planned actions; each failure is kept in its action's ``error`` (the others still
    run), nothing is deleted: a comment keeps the line, a move keeps the file."""
    stamp = stamp or run_stamp()
    root = result.root
    run_dir: list[str] = []
    by_file: dict[str, list[Action]] = {}
    for action in actions:
        if action.action == "comment":
            by_file.setdefault(action.facts.resolved, []).append(action)
    for group in by_file.values():
        try:
            if not run_dir:
                run_dir.append(safewrite.backup_dir_for(root, backup_dir, stamp))
            _comment_lines(root, group, run_dir[0])
        except (safewrite.WriteError, rootfs.RootError, OSError) as exc:
            for action in group:
                action.error = str(exc)
    for action in actions:
        if action.action == "move":
            try:
                _move_file(root, action)
            except (safewrite.WriteError, rootfs.RootError, OSError) as exc:
                action.error = str(exc)


def _comment_lines(root: str, group: list[Action], run_dir: str) -> None:
    facts = group[0].facts
    expected = facts.data or b""
    lines = expected.split(b"\n")
    for action in group:
        marker = _marker(action.rules).encode()
        lines[action.line - 1] = marker + lines[action.line - 1]
    host = safewrite.host_path(root, facts.resolved)
    st = os.lstat(host)
    backup = safewrite.backup(root, facts.resolved, run_dir)
    safewrite.replace_if_unchanged(host, expected, b"\n".join(lines), st.st_mode, st.st_uid, st.st_gid)
    for action in group:
        action.applied, action.backup = True, backup


def _move_file(root: str, action: Action) -> None:
    source = safewrite.host_path(root, action.path)
    st = os.lstat(source)
    if _snapshot(st) != action.snapshot:
        raise safewrite.WriteError(f"{action.path} changed since it was scanned; not moved: run again")
    parent = rootfs.resolve(root, posixpath.dirname(action.destination))
    if parent.escaped:
        raise safewrite.WriteError(f"the quarantine directory {action.destination} leads out of {root}")
    os.makedirs(parent.host, mode=0o700, exist_ok=True)
    destination = os.path.join(parent.host, posixpath.basename(action.destination))
    metadata = destination + METADATA_SUFFIX
    if os.path.lexists(destination) or os.path.lexists(metadata):
        raise safewrite.WriteError(f"{action.destination} already exists in the quarantine; not moved")
    record = {**action.record, "quarantined_at": iso(time.time())}
    data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    safewrite.write_file(metadata, data, 0o600, os.getuid(), os.getgid())
    try:
        try:
            os.rename(source, destination)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _move_across(source, destination, st, action)
    except BaseException:
        os.unlink(metadata)  # our own record of a move that did not happen
        raise
    for directory in {os.path.dirname(source), os.path.dirname(destination)}:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    action.applied = True


def _move_across(source: str, destination: str, st: os.stat_result, action: Action) -> None:
    """rename(2) across filesystems (/tmp or /dev/shm on tmpfs): copy, verify, then unlink the source."""
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), destination)
        os.lchown(destination, st.st_uid, st.st_gid)
    elif stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            dst = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                while chunk := os.read(src, 1 << 20):
                    digest.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(dst, view) :]
                os.fchown(dst, st.st_uid, st.st_gid)
                os.fchmod(dst, stat.S_IMODE(st.st_mode))
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
                os.fsync(dst)
            finally:
                os.close(dst)
        finally:
            os.close(src)
        expected = action.record.get("sha256")
        if expected and digest.hexdigest() != expected:
            os.unlink(destination)  # our partial copy; the original stays
            raise safewrite.WriteError(f"{action.path} changed while it was copied into the quarantine")
    else:
        raise safewrite.WriteError(
            f"{action.path} is a directory on another filesystem than the quarantine directory: "
            f"move it by hand (mv -- {shlex.quote(source)} {shlex.quote(destination)})"
        )
    os.unlink(source)
