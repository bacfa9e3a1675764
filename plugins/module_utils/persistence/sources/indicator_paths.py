# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the paths the rules name as signs of a compromise (indicator_paths), each one present in
the root an item, whatever it is; a file another source read is not met again."""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader


def collect(reader: RootReader) -> None:
    paths = [path for indicator in reader.indicators for path in reader.in_homes(indicator)]
    for path in dict.fromkeys(paths):
        facts = reader.any_file("indicator_path", path)
        if facts is not None:
            reader.file_item(facts)
