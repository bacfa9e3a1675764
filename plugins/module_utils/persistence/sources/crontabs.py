# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: cron's crontabs (/etc/crontab, /etc/cron.d, the users' crontabs of the spool); each job
line is an item, read with the grammar of the cron the root has (Debian's cron or cronie: a line
only cronie reads, such as one starting with '-', is a job there)."""

from __future__ import annotations

import posixpath

from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab, file_rules
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import files as cron_files
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader


def collect(reader: RootReader) -> None:
    dialect = cron_files.installed_cron(reader.root).dialect
    _crontab(reader, "/etc/crontab", dialect, system=True)
    for path, _is_link in reader.entries("cron", "/etc/cron.d"):
        _crontab(reader, path, dialect, system=True)
    for path, _is_link in reader.entries("cron", "/var/spool/cron/crontabs"):
        _crontab(reader, path, dialect, system=False)
    # Red Hat keeps user crontabs right in /var/spool/cron; Debian keeps only directories there.
    for path, is_link in reader.entries("cron", "/var/spool/cron"):
        if is_link or reader.kind_of(path) == "file":
            _crontab(reader, path, dialect, system=False)


def _crontab(reader: RootReader, path: str, dialect: crontab.Dialect, *, system: bool) -> None:
    owner = None if system else reader.users.get(posixpath.basename(path))
    facts = reader.file("cron", path, owner)
    if facts is None:
        return
    name = posixpath.basename(path)
    if dialect.cronie and path.startswith("/etc/cron.d/"):
        skipped = file_rules.cronie_skips_name(name, "/etc/cron.d")
        if skipped:
            facts.notes.append(f"cronie ignores this file of /etc/cron.d: {skipped}")
    elif path.startswith("/etc/cron.d/") and "." in name:
        facts.notes.append("Debian's cron ignores a file of /etc/cron.d whose name holds a dot")
    reader.file_item(facts)
    user = "" if system else name
    privileged = owner is not None and owner.uid == 0
    for number, text in reader.text_lines(facts):
        entry = crontab.parse_line(text, system, dialect=dialect, privileged=privileged)
        if entry.kind != "job":
            continue
        facts.jobs += 1
        reader.command_item(
            facts,
            number,
            text,
            entry.command,
            shell_command=entry.shell_command,
            user=entry.user or user,
            interval=shell_commands.cron_interval(entry),
        )
