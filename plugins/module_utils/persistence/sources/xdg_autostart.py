# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: desktop autostart entries (/etc/xdg/autostart, ~/.config/autostart); each Exec= is an item."""

from __future__ import annotations

import posixpath

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account


def collect(reader: RootReader) -> None:
    places: list[tuple[str, Account | None]] = [("/etc/xdg/autostart", None)]
    places += [(posixpath.join(a.home, ".config/autostart"), a) for a in reader.homes()]
    for directory, account in places:
        for path, _is_link in reader.entries("xdg_autostart", directory):
            if not path.endswith(".desktop"):
                continue
            facts = reader.file("xdg_autostart", path, account)
            if facts is None:
                continue
            reader.file_item(facts)
            for number, text in reader.text_lines(facts):
                key, sep, value = text.partition("=")
                if sep and key.strip() == "Exec" and value.strip():
                    reader.command_item(facts, number, text, value.strip())
