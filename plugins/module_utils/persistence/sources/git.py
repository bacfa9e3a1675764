# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: what git runs by itself. The hooks of every repository found in the homes, /srv, /opt,
/var/www and /usr/local/src (a bounded walk, never through a link), and the config keys that name a
program (core.pager, core.editor, core.sshCommand, core.fsmonitor, aliases starting with '!', ...) in
/etc/gitconfig, each home's ~/.gitconfig and ~/.config/git/config, and each repository's config.

A hook is a file item (git runs it when the user commits, merges, pushes or a server receives a
push) with each line a command; a config key is a command item; core.hooksPath is an item too, and
the hooks in the directory it names are read like a repository's.
"""

from __future__ import annotations

import collections
import os
import posixpath
import re
from collections.abc import Iterator

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, binary
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account

KIND = "git"
SYSTEM_CONFIG = "/etc/gitconfig"
HOME_CONFIGS = (".gitconfig", ".config/git/config")
REPOSITORY_DIRS = ("/root", "/srv", "/opt", "/var/www", "/usr/local/src")
# A repository's .git lies at most this deep below where the walk starts.
MAX_WALK_DEPTH = 4
# Directories the whole walk looks into; a root with more is noted, not walked further.
MAX_WALK_DIRS = 20000
# Keys whose value is a command git runs (section.name; "*" stands for any subsection).
_COMMAND_KEYS = frozenset(
    {
        "core.pager",
        "core.editor",
        "core.sshcommand",
        "core.fsmonitor",
        "core.askpass",
        "core.gitproxy",
        "sequence.editor",
        "diff.external",
        "gpg.program",
        "filter.*.clean",
        "filter.*.smudge",
        "filter.*.process",
        "diff.*.textconv",
        "diff.*.command",
        "merge.*.driver",
    }
)
# Values of core.fsmonitor that select git's own monitor, not a program.
_BOOLEANS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0", ""})


def config_entries(data: bytes) -> Iterator[tuple[int, str, str, str]]:
    """(line, text, key, value) of each setting of a git config file; the key is "section.name" or
    "section.subsection.name" with section and name lowercased as git compares them. A value that
    ends in a backslash goes on on the next line (``text`` then holds both)."""
    section = ""
    raw_lines = data.replace(b"\0", b"").decode("utf-8", "replace").split("\n")
    index = 0
    while index < len(raw_lines):
        number, text = index + 1, raw_lines[index].rstrip("\r")
        index += 1
        stripped = text.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            header = re.match(r'\[\s*([A-Za-z0-9.-]+)\s*(?:"((?:[^"\\]|\\.)*)")?\s*\]', stripped)
            if header is None:
                section = ""
                continue
            name, sub = header.group(1), header.group(2)
            # [section.subsection], the old spelling, lowercases the subsection too.
            section = name.lower() if sub is None else name.lower() + "." + re.sub(r"\\(.)", r"\1", sub)
            stripped = stripped[header.end() :].strip()
            if not stripped or stripped[0] in "#;":
                continue
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", key) or not section:
            continue
        while sep and _continued(value) and index < len(raw_lines):
            value, text = value[:-1] + raw_lines[index].rstrip("\r"), text + "\n" + raw_lines[index]
            index += 1
        yield number, text, f"{section}.{key.lower()}", _value(value) if sep else "true"


def _continued(value: str) -> bool:
    """A value line ending in a backslash that escapes nothing else, outside quotes and comments."""
    quoted, i = False, 0
    while i < len(value):
        char = value[i]
        if char == "\\":
            if i + 1 == len(value):
                return True
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in "#;" and not quoted:
            return False
        i += 1
    return False


def _value(raw: str) -> str:
    """A value as git reads it: comments outside quotes dropped, quotes removed, escapes applied,
    each blank outside quotes a space, the blanks at either end dropped."""
    out, quoted, i = [], False, 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw):
            out.append({"n": "\n", "t": "\t", "b": "\b"}.get(raw[i + 1], raw[i + 1]))
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in "#;" and not quoted:
            break
        else:
            out.append(" " if char in " \t" and not quoted else char)
        i += 1
    return "".join(out).strip(" ")


def command_of(key: str, value: str) -> str | None:
    """The command a config key runs, None when the key runs nothing."""
    section, _dot, name = key.partition(".")
    pattern = f"{section}.*.{key.rsplit('.', 1)[1]}" if key.count(".") >= 2 else key
    if key.startswith("alias.") or (section == "credential" and name.endswith("helper")):
        # An alias or a helper starting with '!' is a shell command; others are git's own.
        return value[1:].strip() if value.startswith("!") else None
    if key.startswith("pager.") and value.lower() not in _BOOLEANS:
        return value
    if key == "core.fsmonitor" and value.lower() in _BOOLEANS:
        return None
    if pattern in _COMMAND_KEYS or key in _COMMAND_KEYS:
        return value or None
    return None


def collect(reader: RootReader) -> None:
    homes = {a.home: a for a in reader.homes()}
    _config(reader, SYSTEM_CONFIG, None, None)
    for account in homes.values():
        for name in HOME_CONFIGS:
            _config(reader, posixpath.join(account.home, name), account, account.home)
    for gitdir, worktree, account in _repositories(reader, homes):
        _config(reader, posixpath.join(gitdir, "config"), account, worktree)
        _hooks(reader, posixpath.join(gitdir, "hooks"), account)


def _config(reader: RootReader, path: str, account: Account | None, base: str | None) -> None:
    facts = reader.file(KIND, path, account)
    if facts is None or facts.data is None:
        return
    reader.file_item(facts)
    for _line in reader.text_lines(facts):
        pass  # records the lines an earlier quarantine commented out (git reads them as comments)
    for number, text, key, value in config_entries(facts.data):
        if key == "core.hookspath":
            _hooks_path(reader, facts, number, text, value, account, base)
            continue
        command = command_of(key, value)
        if command:
            item = reader.command_item(facts, number, text, command)
            item.traits = frozenset({"git-config", f"git-key:{key}"})


def _hooks_path(
    reader: RootReader,
    facts: FileFacts,
    number: int,
    text: str,
    value: str,
    account: Account | None,
    base: str | None,
) -> None:
    """core.hooksPath: where git looks for hooks instead of .git/hooks (~ is the user's home, a
    relative path is taken from the repository)."""
    directory = value
    if directory.startswith("~/") and account is not None:
        directory = posixpath.join(account.home, directory[2:])
    elif not directory.startswith("/") and base is not None:
        directory = posixpath.join(base, directory)
    user = account.name if account else ""
    item = Item(KIND, facts, number, text, value, user, traits=frozenset({"git-config"}))
    reader.items.append(item)
    if directory.startswith("/") and _hooks(reader, shell_commands.normal_path(directory), account):
        item.traits = frozenset({"git-config", "hooks-path-with-hooks"})
        item.references = (shell_commands.normal_path(directory),)


def _hooks(reader: RootReader, directory: str, account: Account | None) -> bool:
    """Each executable file of a hooks directory that is no .sample is a hook; True when one is."""
    found = False
    for path, _is_link in reader.entries(KIND, directory, once=False):
        if path.endswith(".sample"):
            continue
        facts = reader.file(KIND, path, account)
        if facts is None or not facts.st.st_mode & 0o111:
            if facts is not None:
                reader.files.pop(path, None)  # git runs only executable hooks: not an item
            continue
        found = True
        # Not as a program it runs: every hook lies below a .git directory, which is no hidden payload.
        reader.file_item(facts)
        reader.items[-1].traits = frozenset({"git-hook"})
        if facts.data is not None and not binary(facts.data):
            reader.command_lines(facts, user=account.name if account else "")
    return found


def _repositories(reader: RootReader, homes: dict[str, Account]) -> list[tuple[str, str, Account | None]]:
    """(git directory, work tree, account whose home holds it) of every repository found."""
    starts = list(REPOSITORY_DIRS)
    # A home that a package owns is a system directory (/bin, /usr/sbin, /dev): no repositories there.
    starts += [h for h in homes if h not in ("/", *REPOSITORY_DIRS) and reader.package_of(h) is None]
    found: list[tuple[str, str, Account | None]] = []
    seen: set[str] = set()
    budget = [MAX_WALK_DIRS]
    for start in starts:
        resolved = reader.resolved_path(start)
        if resolved is None or resolved in seen or reader.kind_of(start) != "directory":
            continue
        seen.add(resolved)
        account = next((a for h, a in homes.items() if start == h or start.startswith(h + "/")), None)
        for gitdir, worktree in _walk(reader, resolved, budget):
            owner = account or next(
                (a for h, a in homes.items() if gitdir.startswith(h.rstrip("/") + "/")), None
            )
            found.append((gitdir, worktree, owner))
    if budget[0] <= 0:
        reader.note(KIND, "/", f"the search for git repositories stopped after {MAX_WALK_DIRS} directories")
    return found


def _walk(reader: RootReader, start: str, budget: list[int]) -> Iterator[tuple[str, str]]:
    """(git directory, work tree) of each repository at most MAX_WALK_DEPTH below ``start``,
    breadth first, never through a link; ``budget`` counts the directories still to be listed."""
    pending = collections.deque([(start, 0)])
    while pending and budget[0] > 0:
        directory, depth = pending.popleft()
        budget[0] -= 1
        try:
            with os.scandir(rootfs.join(reader.root, directory)) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            continue
        names = {e.name for e in entries}
        if directory.endswith(".git") and {"HEAD", "objects", "hooks"} <= names:
            yield directory, directory  # a bare repository (a server's, run on every push)
            continue
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if not is_dir:
                continue
            path = posixpath.join(directory, entry.name)
            if entry.name == ".git":
                yield path, directory
            elif depth + 1 < MAX_WALK_DEPTH:
                pending.append((path, depth + 1))
