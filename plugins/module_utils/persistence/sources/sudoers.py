# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: sudo's policy, /etc/sudoers and the files it includes (#include, @include, and the files
of #includedir/@includedir whose names sudo reads: no '.' and no trailing '~').

Each user specification, Defaults line and Cmnd_Alias is an item. Traits say what a line does that
no pattern reads alone: a grant of every command without a password to someone who is not an
administrator ("grants-all-without-password"), Defaults that stop logging ("disables-logging") or
let a caller's environment reach root ("keeps-loader-environment"). The commands a line names are
what it runs, for the rules that judge programs.
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, lines

SUDOERS = "/etc/sudoers"
# sudo itself gives up at 128 nested includes; a policy deeper than this is a loop or an attack.
MAX_INCLUDE_DEPTH = 16
# Who may hold every command without a password on a stock system: root and the groups distributions
# make their administrators' (Debian's sudo, Red Hat's wheel, Ubuntu's old admin).
ADMINS = frozenset({"root", "%root", "%sudo", "%wheel", "%admin"})
_INCLUDE = re.compile(r"^[#@](include|includedir)\s+(\S.*)$")
_ALIAS = re.compile(r"^(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s+(.*)$")
_DEFAULTS = re.compile(r"^Defaults([:@!>][^\s]+)?\s+(.*)$")
_TAG = re.compile(r"^\s*([A-Z_]+)\s*:(?!=)")
_DIGEST = re.compile(r"^\s*(sha224|sha256|sha384|sha512)\s*:\s*\S+\s*", re.IGNORECASE)
_RUNAS = re.compile(r"^\s*\([^)]*\)")
# Defaults that take logging away: the audit trail a responder reads.
_NO_LOGGING = re.compile(r"^!\s*(syslog|logfile|log_allowed|log_denied|log_subcmds|log_servers)\b")
# Variables that make a program load or run code of the caller's choosing.
_LOADER_VARIABLES = re.compile(
    r"\b(LD_[A-Z_]+|PYTHON(PATH|STARTUP|HOME)|PERL5?(LIB|OPT)|RUBYOPT|RUBYLIB|BASH_ENV|ENV|NODE_OPTIONS)\b"
)


def collect(reader: RootReader) -> None:
    files: list[FileFacts] = []
    _read(reader, SUDOERS, files, 0)
    # Defaults !authenticate for everyone, or per user (Defaults:alice !authenticate).
    no_password_for: set[str] = set()
    logical = [(facts, numbers, text) for facts in files for numbers, text in _logical_lines(reader, facts)]
    for _facts, _number, text in logical:
        m = _DEFAULTS.match(text)
        if m and re.search(r"(^|[,\s])!\s*authenticate\b", m.group(2)):
            scope = m.group(1) or ""
            no_password_for |= {"ALL"} if not scope else set(_split(scope[1:]))
    # Command aliases, so a rule naming one runs what it stands for (and is quarantined with it).
    aliases: dict[str, list[str]] = {}
    for _facts, _number, text in logical:
        m = _ALIAS.match(text)
        if m and m.group(1) in ("Cmnd_Alias", "Cmd_Alias"):
            for definition in re.split(r"(?<!\\):", m.group(2)):
                name, _sep, value = definition.partition("=")
                aliases[name.strip()] = [c for c, _tags in _commands(value)]
    for facts, numbers, text in logical:
        _line(reader, facts, numbers, text, no_password_for, aliases)


def _read(reader: RootReader, path: str, files: list[FileFacts], depth: int) -> None:
    """A sudoers file and, in the order sudo reads them, the files it includes."""
    if depth > MAX_INCLUDE_DEPTH:
        reader.note("sudoers", path, f"included more than {MAX_INCLUDE_DEPTH} levels deep: not read")
        return
    facts = reader.file("sudoers", path)
    if facts is None:
        return  # missing, or already read (an include loop reads each file once)
    files.append(facts)
    reader.file_item(facts)
    for _number, text in lines(facts.data or b""):
        m = _INCLUDE.match(text.strip())
        if not m:
            continue
        target = m.group(2).strip().strip('"')
        if not target.startswith("/"):
            target = posixpath.join(posixpath.dirname(path), target)
        target = shell_commands.normal_path(target)
        if m.group(1) == "include":
            _read(reader, target, files, depth + 1)
            continue
        for entry, _is_link in reader.entries("sudoers", target):
            name = posixpath.basename(entry)
            if "." not in name and not name.endswith("~"):
                _read(reader, entry, files, depth + 1)


def _logical_lines(reader: RootReader, facts: FileFacts) -> list[tuple[tuple[int, ...], str]]:
    """(its lines, text) of each statement: comments dropped, '\\' continuations joined. A statement
    continued over several lines is flagged on each, so a quarantine comments all of them (sudo
    reads a comment to the end of its line: a continuation left behind would not parse)."""
    found: list[tuple[tuple[int, ...], str]] = []
    pending: tuple[tuple[int, ...], str] | None = None
    for number, text in reader.text_lines(facts):
        stripped = text.strip()
        if pending is None and (not stripped or (stripped.startswith("#") and not _INCLUDE.match(stripped))):
            continue
        numbers = (number,)
        if pending is not None:
            numbers, stripped = (*pending[0], number), pending[1] + " " + stripped
            pending = None
        if stripped.endswith("\\"):
            pending = (numbers, stripped[:-1])
            continue
        found.append((numbers, _uncomment(stripped)))
    if pending is not None:
        found.append((pending[0], _uncomment(pending[1])))
    return [(n, t) for n, t in found if t and not _INCLUDE.match(t)]


def _uncomment(text: str) -> str:
    """A statement without its trailing comment ('#' followed by a digit is a uid, not a comment)."""
    m = re.search(r"(?<!\\)#(?![0-9])", text)
    return (text[: m.start()] if m else text).strip()


def _split(text: str) -> list[str]:
    """A comma-separated list, escaped commas kept."""
    return [part.strip() for part in re.split(r"(?<!\\),", text) if part.strip()]


def _line(
    reader: RootReader,
    facts: FileFacts,
    numbers: tuple[int, ...],
    text: str,
    no_password_for: set[str],
    aliases: dict[str, list[str]],
) -> None:
    traits: set[str] = set()
    alias = _ALIAS.match(text)
    defaults = _DEFAULTS.match(text)
    commands: list[str] = []
    if defaults:
        traits |= _defaults_traits(defaults.group(2))
    elif alias:
        if alias.group(1) in ("Cmnd_Alias", "Cmd_Alias"):
            for definition in re.split(r"(?<!\\):", alias.group(2)):
                _name, _sep, value = definition.partition("=")
                commands += [c for c, _tags in _commands(value)]
    else:
        principals, sep, rest = _user_spec(text)
        if not sep:
            return
        grants_all = False
        for spec in re.split(r"(?<!\\):(?=[^:=]*=)", rest):
            _hosts, _eq, value = spec.partition("=")
            for command, tags in _commands(value if _eq else spec):
                commands += aliases.get(command, [command])
                if command == "ALL" and (
                    "NOPASSWD" in tags or "ALL" in no_password_for or set(principals) & no_password_for
                ):
                    grants_all = True
        if grants_all and set(principals) - ADMINS:
            # cloud-init's own grant to the image's default user, under the comment it writes.
            if set(principals) <= _cloud_init_users(facts):
                traits.add("cloud-init-default-user")
            else:
                traits.add("grants-all-without-password")
    programs = [shell_commands.normal_path(c.split()[0]) for c in commands if c.startswith("/")]
    executes = reader.resolved_too(programs)
    for number in numbers:
        reader.items.append(
            Item(
                "sudoers",
                facts,
                number,
                text,
                text,
                "root",
                executes=executes,
                references=executes,
                payload=reader.payload(executes),
                traits=frozenset(traits),
            )
        )


def _cloud_init_users(facts: FileFacts) -> set[str]:
    """The users cloud-init wrote a rule for in its own file ("# User rules for NAME")."""
    data = facts.data or b""
    if posixpath.basename(facts.path) != "90-cloud-init-users" or not data.startswith(
        b"# Created by cloud-init"
    ):
        return set()
    return set(re.findall(r"^# User rules for (\S+)$", data.decode("utf-8", "replace"), re.MULTILINE))


def _user_spec(text: str) -> tuple[list[str], str, str]:
    """(users, '=' or '', the rest after the host list) of a user specification."""
    head, sep, _value = text.partition("=")
    if not sep:
        return [], "", ""
    # "alice, %ops  host1, host2 = ...": the users end where the first blank outside a list is.
    m = re.match(r"^((?:[^\s,]+\s*,\s*)*[^\s,]+)\s+(.*)$", head.strip())
    if not m:
        return [], "", ""
    return _split(m.group(1)), sep, text[len(m.group(1)) :].strip()


def _commands(value: str) -> list[tuple[str, frozenset[str]]]:
    """(command, its tags) of a command list: runas lists, digests and tags stripped; tags carry over
    to the commands after them, as sudo reads them."""
    found: list[tuple[str, frozenset[str]]] = []
    tags: set[str] = set()
    for part in _split(value):
        rest = _RUNAS.sub("", part, count=1)
        while True:
            tag = _TAG.match(rest)
            if tag:
                tags.add(tag.group(1))
                rest = rest[tag.end() :]
                continue
            digest = _DIGEST.match(rest)
            if digest:
                rest = rest[digest.end() :]
                continue
            break
        rest = rest.strip().lstrip("!").strip()
        if rest:
            found.append((rest, frozenset(tags)))
    return found


def _defaults_traits(settings: str) -> set[str]:
    traits: set[str] = set()
    for setting in _split(settings):
        if _NO_LOGGING.match(setting):
            traits.add("disables-logging")
        key = re.split(r"\s*[+-]?=", setting, maxsplit=1)[0].strip()
        opens_environment = (
            key in ("env_file", "restricted_env_file", "setenv")
            or re.fullmatch(r"!\s*env_reset", setting)
            or (key in ("env_keep", "env_check") and _LOADER_VARIABLES.search(setting))
        )
        if opens_environment:
            traits.add("keeps-loader-environment")
    return traits
