# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the queued at jobs; each job is a script run as the user its header names."""

from __future__ import annotations

import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

_AT_UID = re.compile(r"#\s*atrun uid=(\d+)")


def collect(reader: RootReader) -> None:
    for directory in ("/var/spool/cron/atjobs", "/var/spool/at"):
        for path, _is_link in reader.entries("at", directory):
            if posixpath.basename(path) == ".SEQ" or reader.kind_of(path) == "directory":
                continue
            facts = reader.file("at", path)
            if facts is None:
                continue
            head = _AT_UID.search((facts.data or b"")[:4096].decode("utf-8", "replace"))
            name = reader.uid_names.get(int(head.group(1)), head.group(1)) if head else ""
            reader.file_item(facts, runs=True)
            reader.command_lines(facts, user=name)
