# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repair crontabs without losing a valid line: plan what each file becomes, then write it safely.

A line cron accepts and that holds no stray bytes is kept byte for byte, in order. A line polluted
by NUL runs or other garbage (what a concurrent writer leaves behind) is cleaned; when the garbage
stood where a newline was, the two lines it glued together come back as two lines. A line that
stays invalid is commented out with a marker, never dropped. Then what makes cron refuse a whole
file (owner, mode, a missing last newline) is fixed, and a cron.d name cron ignores is reported
with the rename that would make cron read it.

Every verdict is the installed cron's (``files.installed_cron``): on a cronie root a line is
commented out when cronie refuses it (cronie's grammar, its own limits), a line only Debian's cron
would refuse is kept, and the owner and mode are made what cronie accepts (no execute bit).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.cron import anacrontab, crontab
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import files as cron_files
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError
from ansible_collections.lifeline.rescue.plugins.module_utils.target import (
    accounts,
    report_text,
    rootfs,
    safewrite,
)

MARK_INVALID = "# lifeline-invalid"

# Bytes that are never part of a good crontab line (tab is a blank, newline ends the line).
_GARBAGE = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]+")
# cron.d names an admin or a package manager gave to switch a file off: never renamed into use.
# (cronie also skips names starting with '#', an editor's autosave files.)
_SWITCHED_OFF = re.compile(
    r"^[.#]|(\.(dpkg|ucf)-[a-z]+|\.rpm(save|new|orig)|\.(bak|old|orig|save|disabled|swp|tmp)|~)$",
    re.IGNORECASE,
)


class RepairError(LifelineError):
    """A crontab cannot be repaired as asked; the message says which and what to do."""


@dataclass
class LineAction:
    """What happened to one line of the original file (``line`` counts from 1)."""

    line: int
    action: str  # cleaned, split, commented, removed, newline, replaced
    reason: str
    before: str
    after: str

    def as_dict(self) -> dict[str, object]:
        return {
            "line": self.line,
            "action": self.action,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
        }


@dataclass
class Salvage:
    data: bytes
    actions: list[LineAction] = field(default_factory=list)


@dataclass
class FilePlan:
    """One crontab's repair: new content, owner and mode, and an offered or planned rename."""

    path: str
    kind: str
    before: bytes
    after: bytes
    mode: int
    uid: int
    gid: int
    new_mode: int
    new_uid: int
    new_gid: int
    actions: list[LineAction] = field(default_factory=list)
    rename_to: str = ""
    rename: bool = False
    unlink_others: bool = False  # hard links: cron refuses the file until it has one name only
    backup: str = ""
    read_from: safewrite.ReadFrom | None = None  # the file ``before`` came from (compare-and-swap)

    @property
    def changed(self) -> bool:
        return (
            self.after != self.before
            or (self.new_mode, self.new_uid, self.new_gid) != (stat.S_IMODE(self.mode), self.uid, self.gid)
            or self.rename
            or self.unlink_others
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "kind": self.kind,
            "changed": self.changed,
            "content_changed": self.after != self.before,
            "mode": [f"{stat.S_IMODE(self.mode):04o}", f"{self.new_mode:04o}"],
            "owner": [f"{self.uid}:{self.gid}", f"{self.new_uid}:{self.new_gid}"],
            "lines": [a.as_dict() for a in self.actions],
            "rename_offered": self.rename_to if not self.rename else "",
            "renamed_to": self.rename_to if self.rename else "",
            "backup": self.backup,
        }


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _error(raw: bytes, kind: str, reader: cron_files.Reader, privileged: bool = False) -> str:
    """cron's error for one line on its own; '' when cron accepts it."""
    if kind == cron_files.ANACRONTAB:
        entry = anacrontab.parse_line(_text(raw), cronie=reader.dialect.cronie)
        # anacron runs a job with an unknown named period; only lines it skips are errors.
        return entry.error if entry.kind == "error" else ""
    entry = crontab.parse_line(
        _text(raw),
        kind != cron_files.USER,
        users=reader.users,
        dialect=reader.dialect,
        privileged=privileged,
    )
    return entry.error if entry.kind == "error" else ""


def _valid(raw: bytes, kind: str, reader: cron_files.Reader, privileged: bool = False) -> bool:
    return not _error(raw, kind, reader, privileged)


def _pieces(raw: bytes, kind: str, reader: cron_files.Reader, privileged: bool = False) -> list[bytes]:
    """The parts of a polluted line between its garbage runs, glued back where they belong together.

    A part that is a whole valid line on its own, after a part that is too, starts a new line: the
    garbage overwrote the newline between them. Any other part continues the line before it: the
    garbage was only inserted into it.
    """
    parts = [p for p in _GARBAGE.split(raw) if p.strip(b" \t")]
    pieces: list[bytes] = []
    for part in parts:
        if pieces and not (
            _valid(pieces[-1], kind, reader, privileged)
            and _valid(part.lstrip(b" \t"), kind, reader, privileged)
        ):
            pieces[-1] += part
        else:
            pieces.append(part if not pieces else part.lstrip(b" \t"))
    return pieces


def _comment(raw: bytes, reason: str) -> bytes:
    return f"{MARK_INVALID} ({reason}): ".encode() + raw


def salvage(data: bytes, kind: str, reader: cron_files.Reader, *, privileged: bool = False) -> Salvage:
    """What a crontab's bytes become: every valid line kept, polluted ones cleaned, the rest commented.

    ``privileged``: a user crontab of uid 0 (cronie lets only root start a line with '-').
    """
    lines = data.split(b"\n")
    last_has_newline = lines[-1] == b""
    if last_has_newline:
        lines.pop()
    result = Salvage(b"")
    out: list[bytes] = []

    def record(number: int, action: str, reason: str, raw: bytes, new: bytes | None) -> None:
        if new is not None:
            out.append(new)
        after = report_text.shown(_text(new)) if new is not None else ""
        result.actions.append(LineAction(number, action, reason, report_text.shown(_text(raw)), after))

    for number, raw in enumerate(lines, start=1):
        polluted = bool(_GARBAGE.search(raw))
        pieces = _pieces(raw, kind, reader, privileged) if polluted else [raw]
        if not pieces:
            record(number, "removed", "only garbage bytes and blanks", raw, None)
        for piece in pieces:
            if not _valid(piece, kind, reader, privileged):
                error = _error(piece, kind, reader, privileged)
                reason = f"{error} (garbage bytes removed)" if polluted else error
                record(number, "commented", reason, raw, _comment(piece, error))
            elif polluted:
                record(number, "split" if len(pieces) > 1 else "cleaned", "garbage bytes removed", raw, piece)
            else:
                out.append(piece)
    last_removed = (
        bool(result.actions)
        and result.actions[-1].action == "removed"
        and result.actions[-1].line == len(lines)
    )
    if lines and not last_has_newline and not last_removed:
        result.actions.append(
            LineAction(len(lines), "newline", "the last line had no newline: cron did not run it", "", "")
        )
    result.data = b"".join(line + b"\n" for line in out)
    return result


def inode_wanted(
    root: str, cron_file: cron_files.CronFile, dialect: crontab.Dialect = crontab.CLASSIC
) -> tuple[int, int, int]:
    """The mode, uid and gid cron accepts for this file, as close to the current ones as possible.

    System crontabs: owned by root, not writable by group or others; for cronie also readable by
    its owner, with no execute, set-id or sticky bit. Debian user crontabs
    (/var/spool/cron/crontabs): owned by their user, group crontab, mode 0600, as crontab(1) makes
    them; Red Hat's (/var/spool/cron): owned by root, mode 0600. cronie accepts more (mode 0644,
    a user crontab owned by its user): a user crontab it accepts keeps its inode as it is.
    """
    mode, uid, gid = stat.S_IMODE(cron_file.mode), cron_file.uid, cron_file.gid
    if cron_file.kind != cron_files.USER:
        mode &= ~0o022
        if dialect.cronie:
            mode = (mode & 0o644) | 0o400  # cronie: mode & 07533 must be 0400
        return mode, 0, gid if uid == 0 else 0
    account = accounts.ids_by_name(accounts.read_passwd(root) or []).get(cron_file.user)
    if dialect.cronie and mode & 0o7533 == 0o400 and uid in (0, account[0] if account else 0):
        return mode, uid, gid
    if cron_file.path.startswith("/var/spool/cron/crontabs/"):
        crontab_gid = accounts.group_id(root, "crontab")
        return 0o600, account[0] if account else uid, crontab_gid if crontab_gid is not None else gid
    return 0o600, 0, 0


def _rename_target(root: str, cron_file: cron_files.CronFile) -> str:
    """The name cron would read for an ignored cron.d file; '' when it must stay switched off."""
    name = os.path.basename(cron_file.path)
    if not cron_file.ignored or _SWITCHED_OFF.search(name):
        return ""
    wanted = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    path = f"{os.path.dirname(cron_file.path)}/{wanted}"
    return "" if rootfs.lexists(root, path) else path


def baseline_problems(text: str, dialect: crontab.Dialect = crontab.CLASSIC) -> list[str]:
    """Lines of a declared /etc/crontab that cron would refuse; the baseline must be valid itself."""
    return [
        f"line {number}: {entry.error}: {report_text.shown(entry.line)}"
        for number, entry in enumerate(crontab.parse_text(text, True, dialect=dialect), start=1)
        if entry.kind == "error"
    ]


def plan(
    root: str,
    cron_file: cron_files.CronFile,
    reader: cron_files.Reader,
    *,
    baseline: str | None = None,
    rename_cron_d: bool = False,
) -> FilePlan | None:
    """The repair of one crontab that was read and checked; None when there is nothing to plan.

    ``baseline`` (for /etc/crontab) is the declared content: it replaces whatever the file holds.
    A cron.d file cron ignores because of its name keeps its content unless it is renamed.
    A path that is a symbolic link is never planned: nothing is written through a link (a crontab
    it leads to in another cron location is repaired at its own path; anything else is a finding).
    """
    if cron_file.data is None or cron_file.link is not None:
        return None
    rename_to = _rename_target(root, cron_file)
    if cron_file.ignored and not (rename_to and rename_cron_d):
        # cron skips this file whatever it holds: offer the rename, change nothing.
        new_mode, new_uid, new_gid = stat.S_IMODE(cron_file.mode), cron_file.uid, cron_file.gid
    else:
        new_mode, new_uid, new_gid = inode_wanted(root, cron_file, reader.dialect)
    result = FilePlan(
        path=cron_file.path,
        kind=cron_file.kind,
        before=cron_file.data,
        after=cron_file.data,
        mode=cron_file.mode,
        uid=cron_file.uid,
        gid=cron_file.gid,
        new_mode=new_mode,
        new_uid=new_uid,
        new_gid=new_gid,
        read_from=cron_file.read_from,
    )
    # cronie refuses hard links of user crontabs only; Debian's cron of every crontab.
    refuses_links = not reader.dialect.cronie or cron_file.kind == cron_files.USER
    result.unlink_others = cron_file.nlink > 1 and cron_file.link_uid is None and refuses_links
    result.rename_to = rename_to
    result.rename = bool(result.rename_to) and rename_cron_d
    if baseline is not None and cron_file.kind == cron_files.SYSTEM:
        problems = baseline_problems(baseline, reader.dialect)
        if problems:
            raise RepairError(
                "the declared system crontab (crontab_repair_system_jobs) has lines cron would refuse: "
                + "; ".join(problems)
            )
        result.after = baseline.encode()
        if result.after != result.before:
            kept = salvage(
                cron_file.data, cron_file.kind, reader, privileged=cron_files.is_privileged(cron_file, reader)
            ).data.decode("utf-8", "surrogateescape")
            dropped = [
                line for line in kept.splitlines() if line.strip() and line not in baseline.splitlines()
            ]
            result.actions.append(
                LineAction(
                    0,
                    "replaced",
                    "the declared jobs win over a salvage",
                    f"{len(dropped)} lines not in the declaration",
                    "",
                )
            )
            result.actions += [
                LineAction(
                    0, "dropped", "not in the declared jobs (kept in the backup)", report_text.shown(line), ""
                )
                for line in dropped
            ]
    elif not cron_file.ignored or result.rename:
        fixed = salvage(
            cron_file.data, cron_file.kind, reader, privileged=cron_files.is_privileged(cron_file, reader)
        )
        result.after, result.actions = fixed.data, fixed.actions
    return result if result.changed or result.rename_to else None


def apply(root: str, plans: list[FilePlan], backup_dir: str) -> None:
    """Carry out the plans: back up each file, then replace it under its lock only if it still holds
    what was read, fix owner and mode, rename. A file another writer changed meanwhile stops the run;
    so does a path that is not the file read (a link), saying so."""
    todo = [p for p in plans if p.changed]
    if not todo:
        return
    run_dir = safewrite.backup_dir_for(root, backup_dir)
    for one in todo:
        host = safewrite.host_path(root, one.path)
        safewrite.refuse_read_only(os.path.dirname(host))
        one.backup = safewrite.backup(root, one.path, run_dir)
        if one.after != one.before:
            safewrite.replace_if_unchanged(
                host, one.before, one.after, one.new_mode, one.new_uid, one.new_gid, read_from=one.read_from
            )
        else:
            with safewrite.locked(host):
                safewrite.refuse_another_file(host, one.read_from)
                os.chown(host, one.new_uid, one.new_gid, follow_symlinks=False)
                os.chmod(host, one.new_mode)
        if one.rename:
            os.rename(host, safewrite.host_path(root, one.rename_to))
