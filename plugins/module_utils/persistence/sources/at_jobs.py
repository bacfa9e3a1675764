# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the queued at jobs; each job is a script run as the user its header names.

at writes a job as a shell script: "#!/bin/sh", "# atrun uid=N gid=N", "# mail USER N", a umask,
the submitting shell's environment ("NAME=value; export NAME"), then a "cd DIR || { ... exit 1 }"
block; what follows it are the commands (typed, or the content of ``at -f FILE``). Red Hat's at
then hands them to ``${SHELL:-/bin/sh} << 'marcinDELIMITER...'`` up to the delimiter line. Only
those commands are items; a script they run is followed as a payload. A job in neither shape is
read whole.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

AT_SPOOLS = ("/var/spool/cron/atjobs", "/var/spool/at")
_AT_UID = re.compile(r"#\s*atrun uid=(\d+)")
_CD_BLOCK_END = re.compile(r"\s*}\s*")
_HEREDOC = re.compile(r"""\$\{SHELL:-/bin/sh\}\s*<<\s*'?(marcinDELIMITER[0-9a-fA-F]+)'?\s*""")


def command_lines(numbered: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The lines of a job that are its commands (see the module's docstring)."""
    start = None
    for index, (_number, text) in enumerate(numbered):
        if "Execution directory inaccessible" in text:
            start = next(
                (j + 1 for j in range(index, len(numbered)) if _CD_BLOCK_END.fullmatch(numbered[j][1])), None
            )
            break
    if start is None:
        return numbered
    body = numbered[start:]
    if body and (heredoc := _HEREDOC.fullmatch(body[0][1])):
        delimiter = heredoc.group(1)
        end = next((i for i, (_n, text) in enumerate(body) if text == delimiter), len(body))
        body = body[1:end]
    return body


def _jobs(reader: RootReader) -> Iterator[FileFacts]:
    for directory in AT_SPOOLS:
        for path, _is_link in reader.entries("at", directory):
            if posixpath.basename(path) == ".SEQ" or reader.kind_of(path) == "directory":
                continue
            facts = reader.file("at", path)
            if facts is not None:
                yield facts


def collect(reader: RootReader) -> None:
    for facts in _jobs(reader):
        head = _AT_UID.search((facts.data or b"")[:4096].decode("utf-8", "replace"))
        name = reader.uid_names.get(int(head.group(1)), head.group(1)) if head else ""
        reader.file_item(facts, runs=True)
        for number, text in command_lines(list(reader.text_lines(facts))):
            stripped = text.lstrip()
            if not stripped.startswith("#"):
                reader.command_item(facts, number, text, stripped, user=name)
