# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the System V init scripts (/etc/init.d; /etc/rc.d/init.d on Red Hat, where /etc/init.d is a
link to it) and the runlevel directories' start and kill links that run them.

A script is read once however many paths reach it; the links that start it are named with its item
(``references``) and in its notes. An entry of a runlevel directory that leads anywhere but into
init.d (a link to a script elsewhere, or a script lying in rc?.d itself) is an item of its own,
kind ``rc_link``: packages never install that, intrusions do.
"""

from __future__ import annotations

import posixpath

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, binary
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources.rc_local import (
    RC_LOCAL_PATHS,
)

INIT_DIRS = ("/etc/rc.d/init.d", "/etc/init.d")
# Red Hat's real runlevel directories first (/etc/rc3.d links to rc.d/rc3.d there); Debian's after.
RC_DIRS = tuple(f"/etc/rc.d/rc{level}.d" for level in "0123456") + tuple(
    f"/etc/rc{level}.d" for level in "0123456S"
)


def collect(reader: RootReader) -> None:
    init_dirs = {r for r in (reader.resolved_path(d) for d in INIT_DIRS) if r}
    links = _runlevel_entries(reader)
    started_by: dict[str, list[str]] = {}
    for path, target in links:
        if target:
            started_by.setdefault(target, []).append(path)
    for directory in INIT_DIRS:
        for path, _is_link in reader.entries("init_script", directory):
            facts = reader.file("init_script", path)
            if facts is None:
                continue
            by = started_by.get(facts.resolved, [])
            if by:
                facts.notes.append(f"run in a runlevel by {', '.join(by)}")
            _script(reader, facts, runs=not posixpath.basename(path).startswith("."), also_names=tuple(by))
    rc_local = {reader.resolved_path(p) for p in RC_LOCAL_PATHS}
    for path, target in links:
        if target and (posixpath.dirname(target) in init_dirs or target in rc_local):
            continue  # read as the init script or the rc.local it is
        facts = reader.file("rc_link", path)
        if facts is not None:
            facts.notes.append(f"the runlevel directory runs {facts.resolved}, which is not in init.d")
            _script(reader, facts, runs=True)
        elif reader.kind_of(path) == "file":
            # What it leads to was read as another location: the link itself is the item.
            link = reader.any_file("rc_link", path)
            if link is not None:
                link.notes.append(f"the runlevel directory runs {target}, which is not in init.d")
                reader.file_item(link, runs=True)


def _runlevel_entries(reader: RootReader) -> list[tuple[str, str | None]]:
    """(path, where it leads inside the root) of each start (S*) and kill (K*) entry of the runlevel
    directories: rc runs both, the K ones with "stop" when it enters the runlevel."""
    found = []
    for directory in RC_DIRS:
        for path, _is_link in reader.entries("init_script", directory):
            if posixpath.basename(path)[:1] in ("S", "K"):
                found.append((path, reader.resolved_path(path)))
    return found


def _script(reader: RootReader, facts: FileFacts, *, runs: bool, also_names: tuple[str, ...] = ()) -> None:
    reader.file_item(facts, runs=runs, also_names=also_names)
    if facts.data is not None and not binary(facts.data):
        reader.command_lines(facts)
