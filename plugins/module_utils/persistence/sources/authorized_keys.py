# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the keys that let someone log in by ssh, and the sshd settings that say where they are.

sshd reads the files AuthorizedKeysFile names (``%h``, ``%u``, ``%U`` expanded; ``.ssh/authorized_keys``
and ``.ssh/authorized_keys2`` of each home by default) and asks AuthorizedKeysCommand's program. Every
key line is an item whose traits say whose account it opens (``root-account``, ``system-account``,
``user-account``), its key type and options; a forced command (command="...") is what a login with
that key runs, and environment="LD_PRELOAD=..." puts a library into that login. The sshd_config
lines that move the keys somewhere odd or run a program for them are items too.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account

KIND = "authorized_keys"
SSHD_CONFIG = "/etc/ssh/sshd_config"
DEFAULT_KEY_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")
# Includes deeper than this are not followed (a config that includes itself).
MAX_INCLUDE_DEPTH = 4
# Where sshd finds keys on systems that keep them out of homes: nothing odd about these.
_USUAL_KEY_DIRS = ("/etc/ssh/", "/var/lib/")
_KEY_TYPE = re.compile(r"(?:ssh-|ecdsa-|sk-)\S+$")
# What environment= must never set: the loader's preload and audit lists and its search path.
_LOADER_VARIABLES = frozenset({"LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH"})
# Shells a system account is given so that nobody logs in as it.
_NO_LOGIN_SHELLS = frozenset({"nologin", "false"})


@dataclass(frozen=True)
class KeyLine:
    """One key of an authorized_keys file: its options (name, value or None), type, key and comment."""

    options: tuple[tuple[str, str | None], ...]
    key_type: str
    key: str
    comment: str

    def option(self, name: str) -> list[str]:
        return [value or "" for key, value in self.options if key == name]


def parse_key_line(text: str) -> KeyLine | None:
    """A key line split as sshd splits it; None when no key type is found in its first two fields."""
    stripped = text.strip()
    options_text = ""
    if not _KEY_TYPE.match(stripped.split(None, 1)[0] if stripped else ""):
        # sshd takes a first field that is no key type for the options, as here.
        options_text, stripped = _split_options(stripped)
    fields = stripped.split(None, 2)
    if len(fields) < 2 or not _KEY_TYPE.match(fields[0]):
        return None
    return KeyLine(
        _parse_options(options_text), fields[0], fields[1], fields[2].strip() if len(fields) > 2 else ""
    )


def _split_options(text: str) -> tuple[str, str]:
    """(the options field, the rest): the options end at the first blank outside double quotes."""
    quoted, i = False, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and quoted:
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            return text[:i], text[i:].lstrip()
        i += 1
    return text, ""


def _parse_options(text: str) -> tuple[tuple[str, str | None], ...]:
    found: list[tuple[str, str | None]] = []
    for match in re.finditer(r'([A-Za-z0-9-]+)(?:="((?:[^"\\]|\\.)*)"?)?(?:,|$)', text):
        if match.group(0):
            value = match.group(2)
            found.append((match.group(1).lower(), None if value is None else value.replace('\\"', '"')))
    return tuple(found)


def forced_command(key_line: str) -> str:
    """The command="..." option of an authorized_keys line ('' when it has none)."""
    parsed = parse_key_line(key_line)
    return next(iter(parsed.option("command")), "") if parsed else ""


def account_class(account: Account) -> str:
    """ "root-account", "system-account" (uid 1 to 999, or a shell meant to refuse logins) or
    "user-account"."""
    if account.uid == 0:
        return "root-account"
    shell = posixpath.basename(account.shell.strip())
    if 0 < account.uid < 1000 or shell in _NO_LOGIN_SHELLS:
        return "system-account"
    return "user-account"


def collect(reader: RootReader) -> None:
    settings = SshdKeySettings()
    _read_config(reader, SSHD_CONFIG, settings, 0)
    for facts, number, text, keyword, value in settings.lines:
        if keyword == "authorizedkeysfile":
            item = Item(KIND, facts, number, text, user="root", traits=frozenset({"sshd-setting"}))
            reader.items.append(item)
            if any(_odd_key_file(p) for p in value.split()):
                item.traits = item.traits | {"odd-authorized-keys-file"}
        elif value.lower() != "none":
            item = reader.command_item(facts, number, text, value)
            item.traits = frozenset({"sshd-setting", "authorized-keys-command"})
    for account in _accounts_with_keys(reader):
        for pattern in settings.key_files():
            path = expand(pattern, account)
            if path is not None:
                _key_file(reader, path, account)


@dataclass
class SshdKeySettings:
    """The lines of sshd's configuration that say where keys come from: (file facts, line, text,
    keyword lowercased, value) of every AuthorizedKeysFile and AuthorizedKeysCommand, Match blocks
    included; ``global_files`` is the AuthorizedKeysFile sshd uses outside Match blocks (its first)."""

    lines: list[tuple[FileFacts, int, str, str, str]] = field(default_factory=list)
    global_files: str | None = None

    def key_files(self) -> list[str]:
        """Every key file pattern sshd may read for someone: the global one (the default when none is
        set) and those of Match blocks."""
        patterns = (self.global_files or " ".join(DEFAULT_KEY_FILES)).split()
        patterns += [
            p for *_where, key, value in self.lines if key == "authorizedkeysfile" for p in value.split()
        ]
        return [p for p in dict.fromkeys(patterns) if p.lower() != "none"]


def _accounts_with_keys(reader: RootReader) -> list[Account]:
    """Accounts with a home in the root first (root's first), then the others, each name once."""
    found = {a.name: a for a in reader.homes()}
    for account in reader.accounts:
        found.setdefault(account.name, account)
    return list(found.values())


def expand(pattern: str, account: Account) -> str | None:
    """The path sshd reads for ``account``: %h, %u, %U and %% expanded, a relative path taken from the
    home; None when a token is unknown or the home is needed and missing."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "%" and i + 1 < len(pattern):
            token = pattern[i + 1]
            value = {"h": account.home, "u": account.name, "U": str(account.uid), "%": "%"}.get(token)
            if value is None:
                return None
            out.append(value)
            i += 2
            continue
        out.append(char)
        i += 1
    path = "".join(out)
    if not path.startswith("/"):
        if not account.home.startswith("/"):
            return None
        path = posixpath.join(account.home, path)
    return shell_commands.normal_path(path)


def _odd_key_file(pattern: str) -> bool:
    """A key file outside the home and the usual key directories, or behind a hidden path component."""
    if pattern.lower() == "none":
        return False
    if re.search(r"(^|/)\.(?!ssh/)(?!\.?(/|$))", pattern):
        return True
    if not pattern.startswith("/") or pattern.startswith("%h/"):
        return False
    return not pattern.startswith(_USUAL_KEY_DIRS)


def _read_config(reader: RootReader, path: str, settings: SshdKeySettings, depth: int) -> None:
    facts = reader.file(KIND, path)
    if facts is None or facts.data is None:
        return
    in_match = False
    for number, text in reader.text_lines(facts):
        fields = text.strip().split(None, 1)
        if not fields or fields[0].startswith("#"):
            continue
        keyword, _sep, glued = fields[0].partition("=")
        keyword = keyword.lower()
        value = (fields[1] if len(fields) > 1 else glued).lstrip("=").strip()
        if keyword == "match":
            in_match = True
        elif keyword == "include" and depth < MAX_INCLUDE_DEPTH:
            for pattern in value.split():
                for included in _glob(reader, pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"):
                    _read_config(reader, included, settings, depth + 1)
        elif keyword in ("authorizedkeysfile", "authorizedkeyscommand"):
            settings.lines.append((facts, number, text, keyword, value))
            if keyword == "authorizedkeysfile" and not in_match and settings.global_files is None:
                settings.global_files = value


def _glob(reader: RootReader, pattern: str) -> list[str]:
    """The files an Include pattern names; only a * in the last component is expanded (what sshd's
    own configs use)."""
    directory, name = posixpath.split(pattern)
    if "*" not in name and "?" not in name:
        return [pattern]
    regex = re.compile(re.escape(name).replace(r"\*", "[^/]*").replace(r"\?", "[^/]"))
    listed = reader.entries(KIND, directory, once=False)
    return [p for p, _link in listed if regex.fullmatch(posixpath.basename(p))]


def _key_file(reader: RootReader, path: str, account: Account) -> None:
    facts = reader.file(KIND, path, account)
    if facts is None:
        return
    reader.file_item(facts)
    whose = account_class(account)
    for number, text in reader.text_lines(facts):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        _key_item(reader, facts, number, text, whose)


def _key_item(reader: RootReader, facts: FileFacts, number: int, text: str, whose: str) -> None:
    parsed = parse_key_line(text)
    if parsed is None:
        facts.notes.append(f"line {number} is not a key sshd reads")
        return
    command = next(iter(parsed.option("command")), "")
    item = reader.command_item(facts, number, text, command)
    traits = {"authorized-key", whose, f"key-type:{parsed.key_type}"}
    traits.update(f"option:{name}" for name, _value in parsed.options)
    preloaded = []
    for setting in parsed.option("environment"):
        name, _sep, value = setting.partition("=")
        if name in _LOADER_VARIABLES:
            traits.add("environment-loader")
            preloaded += [p for p in re.split(r"[:\s]+", value) if p.startswith("/")]
    if preloaded:
        # The libraries are loaded into the login's programs: they run as surely as a command.
        item.executes = tuple(dict.fromkeys([*item.executes, *reader.resolved_too(preloaded)]))
        item.references = tuple(dict.fromkeys([*item.references, *item.executes]))
        item.payload = reader.payload(item.executes)
    if not command or _opens_shell(reader, item):
        traits.add("shell-login")
    item.traits = frozenset(traits)


def _opens_shell(reader: RootReader, item: Item) -> bool:
    """A forced command that is a shell or interpreter, or a program no package owns, gives as much
    as a shell; a packaged tool (gitolite's, rsync's wrapper) restricts the key to that tool."""
    if not item.executes:
        return True
    return any(shell_commands.is_runner(posixpath.basename(p)) or reader.unowned(p) for p in item.executes)
