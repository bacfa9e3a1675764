# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The persistence scan's data: the files it read, the items they start, the findings, the result,
and the limits every read keeps to."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.rules import SEVERITIES, Rule
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account

if TYPE_CHECKING:
    # Only for the hints of Scan: both modules build on this one.
    from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.evidence import Evidence
    from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

# Startup files are small; one larger than this is reported, not read (a hostile root's 50 GB file).
MAX_TEXT = 16 << 20
# Payloads are hashed up to this size (miners are a few MB); beyond it the evidence says so.
MAX_HASH = 256 << 20
MAX_ENTRIES = 20000
MAX_DEPTH = 4
# A script a startup item runs is read up to this size to judge its lines (scripts are a few KB;
# a larger "script" is a note, not read).
MAX_PAYLOAD = 1 << 20
# How many scripts deep a payload is followed through wrappers (a unit runs x, x execs y, ...).
PAYLOAD_DEPTH = 4
# Lines and commands a report shows are cut here (report_text.shown).
SHOWN = 300


@dataclass
class FileFacts:
    """One file at a persistence location as it was read.

    ``path`` is where it was found, ``resolved`` where its links lead inside the root, ``st`` the
    lstat of ``resolved``; ``data`` is None when it was not read. ``account`` is the user it belongs
    to (a user crontab, a file of a home directory), None for system files.
    """

    path: str
    kind: str
    resolved: str
    st: os.stat_result
    data: bytes | None = None
    account: Account | None = None
    notes: list[str] = field(default_factory=list)
    jobs: int = 0


@dataclass(frozen=True)
class PayloadLine:
    """A line of a script an item runs, directly or through wrappers: the rules judge it as they
    judge the item's own command. ``runs`` and ``names`` are what the line runs and the absolute
    paths it names (empty for a script in a language other than the shell's)."""

    path: str
    line: int
    text: str
    runs: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def where(self) -> str:
        return f"payload {self.path} line {self.line}"


@dataclass
class Item:
    """One thing a location starts: a line (``line`` counts from 1) or the file itself (``line`` None).

    ``traits`` are facts a source established that no pattern can read from the text (an account's
    uid is 0, a packaged file no longer has its package's checksum, ...): rules match them by name.
    ``payload_lines`` are the lines of the scripts it runs that no package vouches for, followed
    through wrappers (reader.RootReader.payload_chain).
    """

    kind: str
    file: FileFacts
    line: int | None = None
    text: str = ""
    command: str = ""
    user: str = ""
    interval: int | None = None
    executes: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    payload: str | None = None
    traits: frozenset[str] = frozenset()
    payload_lines: tuple[PayloadLine, ...] = ()


@dataclass
class Finding:
    """A rule that fired on an item; ``payload_files`` are the scripts the item runs whose lines
    made it fire (the quarantine moves them with the item)."""

    rule: Rule
    item: Item
    matched: list[str]
    payload_files: list[str] = field(default_factory=list)


@dataclass
class Scan:
    """What one scan found; ``findings`` in the order items were met, rules in their order.

    ``scanner`` is the reader that read the root and ``evidence`` the evidence of its files: the
    quarantine plans with what they know (ownership, directory entries, unit links, file facts).
    """

    root: str
    findings: list[Finding]
    notes: list[dict]
    already_quarantined: list[dict]
    files: int
    items: int
    package_database: bool
    seconds: float
    scanner: RootReader
    evidence: Evidence

    def finding_dicts(self) -> list[dict]:
        return [self.evidence.finding_dict(f) for f in self.findings]

    def summary(self) -> dict:
        by_severity = dict.fromkeys(SEVERITIES, 0)
        by_location: dict[str, int] = {}
        by_rule: dict[str, int] = {}
        for finding in self.findings:
            by_severity[finding.rule.severity] += 1
            by_location[finding.item.kind] = by_location.get(finding.item.kind, 0) + 1
            by_rule[finding.rule.id] = by_rule.get(finding.rule.id, 0) + 1
        return {
            "findings": len(self.findings),
            "by_severity": by_severity,
            "by_location": by_location,
            "by_rule": by_rule,
            "files": self.files,
            "items": self.items,
            "notes": len(self.notes),
            "already_quarantined": len(self.already_quarantined),
            "package_database": self.package_database,
            "seconds": round(self.seconds, 3),
        }
