# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: /etc/anacrontab; each job line is an item, run as root every period."""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.module_utils.cron import anacrontab
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

# Named periods in days; anacron compares only their first 7 characters.
_ANACRON_PERIODS = {"@monthl": 30, "@yearly": 365}


def collect(reader: RootReader) -> None:
    facts = reader.file("anacron", "/etc/anacrontab")
    if facts is None:
        return
    reader.file_item(facts)
    for number, text in reader.text_lines(facts):
        entry = anacrontab.parse_line(anacrontab.line_text(text))
        if entry.kind != "job":
            continue
        days = entry.period_days or _ANACRON_PERIODS.get(entry.special[:7])
        facts.jobs += 1
        reader.command_item(
            facts, number, text, entry.command, user="root", interval=days * 1440 if days else None
        )
