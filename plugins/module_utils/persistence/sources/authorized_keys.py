# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: ssh's authorized_keys of every home; a key's forced command (command="...") is what a
login with that key runs."""

from __future__ import annotations

import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

_KEY_TYPE = re.compile(r"(?:ssh-|ecdsa-|sk-)\S+")


def collect(reader: RootReader) -> None:
    for account in reader.homes():
        for name in ("authorized_keys", "authorized_keys2"):
            facts = reader.file("authorized_keys", posixpath.join(account.home, ".ssh", name), account)
            if facts is None:
                continue
            reader.file_item(facts)
            for number, text in reader.text_lines(facts):
                stripped = text.strip()
                if stripped and not stripped.startswith("#"):
                    reader.command_item(facts, number, text, forced_command(stripped))


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
