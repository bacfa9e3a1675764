# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: /etc/ld.so.preload, the libraries the loader puts into every program."""

from __future__ import annotations

import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader


def collect(reader: RootReader) -> None:
    facts = reader.file("ld_preload", "/etc/ld.so.preload")
    if facts is None:
        return
    reader.file_item(facts)
    # The loader splits the file at blanks and ':' and reads '#' to the end of a line as a comment.
    for number, text in reader.text_lines(facts):
        entries = [e for e in re.split(r"[\s:]+", text.split("#", 1)[0]) if e]
        if not entries:
            continue
        executes = reader.resolved_too(
            [shell_commands.normal_path(e) if e.startswith("/") else e for e in entries]
        )
        item = Item("ld_preload", facts, number, text, text.strip(), executes=executes, references=executes)
        item.payload = reader.payload(executes)
        reader.items.append(item)
