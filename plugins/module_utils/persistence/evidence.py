# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The evidence a scan reports: the facts of a file a responder needs (where its links lead, type,
owner, mode, times, sha256, package), the report of a finding, and what earlier runs quarantined."""

from __future__ import annotations

import hashlib
import os
import stat

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    records as quarantine_records,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import (
    MAX_ENTRIES,
    MAX_HASH,
    SHOWN,
    Finding,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, file_type
from ansible_collections.lifeline.rescue.plugins.module_utils.target import report_text, rootfs


class Evidence:
    """The evidence of the files of one scanned root, each file's gathered once (many findings name
    the same program), so every report shows a file as it was when first looked at."""

    def __init__(self, reader: RootReader) -> None:
        self.reader = reader
        self._of: dict[str, dict] = {}

    def of(self, path: str, data: bytes | None = None) -> dict:
        """What a responder needs about a file: where it leads, type, owner, mode, times, sha256, package.
        ``data`` is its content when the scan already read it."""
        if path in self._of:
            return self._of[path]
        info: dict = {
            "path": path,
            "resolved": path,
            "links": [],
            "type": "missing",
            "owner": None,
            "uid": None,
            "gid": None,
            "mode": None,
            "size": None,
            "mtime": None,
            "ctime": None,
            "sha256": None,
            "package": None,
            "problem": "",
        }
        self._of[path] = info
        try:
            where = rootfs.resolve(self.reader.root, path)
        except rootfs.RootError as exc:
            info["problem"] = str(exc)
            return info
        info["resolved"], info["links"] = where.inside, where.links
        info["package"] = self.reader.package_of(path)
        try:
            st = os.lstat(where.host)
        except OSError as exc:
            info["problem"] = exc.strerror or str(exc)
            return info
        info.update(self.stat_facts(st))
        if stat.S_ISREG(st.st_mode):
            if data is None:
                try:
                    data = rootfs.read_bytes(self.reader.root, where.inside, MAX_HASH)
                except rootfs.RootError as exc:
                    info["problem"] = str(exc)
            if data is not None:
                info["sha256"] = hashlib.sha256(data).hexdigest()
        return info

    def stat_facts(self, st: os.stat_result) -> dict:
        """Type, owner (names and ids), mode, size and times of a file, as reports and records show them."""
        uid_names, gid_names = self.reader.uid_names, self.reader.gid_names
        return {
            "type": file_type(st.st_mode),
            "owner": f"{uid_names.get(st.st_uid, st.st_uid)}:{gid_names.get(st.st_gid, st.st_gid)}",
            "uid": st.st_uid,
            "gid": st.st_gid,
            "mode": f"{stat.S_IMODE(st.st_mode):04o}",
            "size": st.st_size,
            "mtime": report_text.iso(st.st_mtime),
            "ctime": report_text.iso(st.st_ctime),
        }

    def finding_dict(self, finding: Finding) -> dict:
        """A finding as the report shows it: the rule, the item, why it matched, and the evidence."""
        item = finding.item
        return {
            "rule": finding.rule.id,
            "description": finding.rule.description,
            "severity": finding.rule.severity,
            # Whether a quarantine acts on it (the rule's own flag): the rest is listed for review.
            "quarantine": finding.rule.quarantine,
            "location": item.kind,
            "path": item.file.path,
            "line": item.line,
            "text": report_text.shown(item.text, SHOWN),
            "command": report_text.shown(item.command, SHOWN),
            "user": item.user,
            "matched": finding.matched,
            "notes": item.file.notes,
            # How a unit is switched on at boot: the links that make a target want it.
            "enabled_by": sorted(
                link
                for link, to in self.reader.unit_links
                if to == item.file.resolved and link != item.file.path
            ),
            "file": self.of(item.file.path, item.file.data),
            "payload": self.of(item.payload) if item.payload else None,
        }


def quarantined_files(reader: RootReader, quarantine_dir: str) -> list[dict]:
    """The reports of files quarantined earlier; a record that cannot be read is a note."""
    held, problems = quarantine_records.held_files(reader.root, quarantine_dir, MAX_ENTRIES)
    for path, problem in problems:
        reader.note("", path, problem)
    return held
