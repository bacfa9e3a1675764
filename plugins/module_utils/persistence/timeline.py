# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The timeline of a scan: every startup file it read and every flagged file and unowned payload,
ordered by change time, with what changed within an hour of a flagged file marked (how responders
find the rest of an intrusion: what the intruder touched in the same session).

A file's ctime is when its inode last changed (written, moved, chmod), which a copy tool cannot set
back; its mtime is when its content last changed, which ``touch -d`` can. Both are shown, and
either lying within NEAR seconds of either time of a flagged file marks an entry.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import Scan
from ansible_collections.lifeline.rescue.plugins.module_utils.target import report_text, rootfs

NEAR = 3600
LIMIT = 500


@dataclass
class Moment:
    """One file on the timeline: ``rules`` fired on it (or on what runs it, for a payload); it is
    ``flagged`` when one of them is an alarm (severity above info)."""

    path: str
    kind: str
    ctime: float
    mtime: float
    rules: list[str] = field(default_factory=list)
    flagged: bool = False


def of_scan(result: Scan, limit: int = LIMIT) -> dict:
    """The timeline of a scan (see ``ordered``)."""
    reader = result.scanner
    moments: dict[str, Moment] = {}
    for path, facts in reader.files.items():
        moments[path] = Moment(path, facts.kind, facts.st.st_ctime, facts.st.st_mtime)
    for finding in result.findings:
        item = finding.item
        paths = [item.file.path]
        paths += [p for p in (item.payload, *finding.payload_files) if p and reader.unowned(p)]
        for path in dict.fromkeys(paths):
            moment = moments.get(path) or _payload_moment(reader.root, path)
            if moment is None:
                continue
            moments[path] = moment
            if finding.rule.id not in moment.rules:
                moment.rules.append(finding.rule.id)
            moment.flagged = moment.flagged or finding.rule.severity != "info"
    return ordered(list(moments.values()), limit)


def _payload_moment(root: str, path: str) -> Moment | None:
    try:
        st = os.lstat(rootfs.resolve(root, path).host)
    except (OSError, rootfs.RootError):
        return None
    return Moment(path, "payload", st.st_ctime, st.st_mtime)


def ordered(moments: list[Moment], limit: int = LIMIT) -> dict:
    """``entries`` by ctime (then path), each with its times, rules, ``flagged`` and
    ``near_flagged``; at most ``limit`` of them, the flagged and the near ones kept first, then the
    most recently changed; ``total`` and ``omitted`` count what there was and what was left out."""
    flagged_times = sorted(t for m in moments if m.flagged for t in (m.ctime, m.mtime))
    near = {id(m) for m in moments if not m.flagged and _near(m, flagged_times)}
    important = [m for m in moments if m.flagged or id(m) in near]
    rest = sorted((m for m in moments if not (m.flagged or id(m) in near)), key=lambda m: -m.ctime)
    kept = (important + rest)[: max(limit, 0)]
    kept.sort(key=lambda m: (m.ctime, m.path))
    return {
        "entries": [
            {
                "path": m.path,
                "kind": m.kind,
                "ctime": report_text.iso(m.ctime),
                "mtime": report_text.iso(m.mtime),
                "rules": m.rules,
                "flagged": m.flagged,
                "near_flagged": id(m) in near,
            }
            for m in kept
        ],
        "total": len(moments),
        "omitted": len(moments) - len(kept),
    }


def _near(moment: Moment, flagged_times: list[float]) -> bool:
    for when in (moment.ctime, moment.mtime):
        index = bisect.bisect_left(flagged_times, when - NEAR)
        if index < len(flagged_times) and flagged_times[index] <= when + NEAR:
            return True
    return False
