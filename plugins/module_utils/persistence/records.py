# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a quarantine leaves in a root, how each piece is undone, and reading it back.

A commented-out line starts with a marker naming the rules that flagged it; a moved file has a JSON
record beside it in the quarantine directory. Both carry a shell command that puts things back. The
scan reads these marks to report what earlier runs quarantined; the quarantine writes them.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import stat

from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

MARKER = "#lifeline-quarantine"
METADATA_SUFFIX = ".lifeline.json"
DEFAULT_QUARANTINE_DIR = "/var/lib/lifeline/quarantine"
CAPABILITY_XATTR = "security.capability"

_MARKED = re.compile(re.escape(MARKER) + r"\(([a-z0-9_.,-]*)\) ?")


def marker(rules: list[str]) -> str:
    """What goes before a line the quarantine comments out: "#lifeline-quarantine(rule-a,rule-b) "."""
    return f"{MARKER}({','.join(rules)}) "


def marked_rules(text: str) -> list[str] | None:
    """The ids of the rules a line was commented out for by an earlier quarantine; None for a line
    that carries no marker."""
    marked = _MARKED.match(text.lstrip())
    return None if marked is None else [r for r in marked.group(1).split(",") if r]


def uncomment_command(path: str, line: int, last: int | None = None) -> str:
    """A shell command that takes the marker off line ``line`` of ``path`` (lines ``line`` to
    ``last`` for a setting continued over several lines)."""
    lines = str(line) if not last or last == line else f"{line},{last}"
    return f"sed -i '{lines}s/^{MARKER}([^)]*) //' {shlex.quote(path)}"


def restore_command(path: str, destination: str, st: os.stat_result, kind: str) -> str:
    """A shell command that puts a quarantined file back with its owner and mode."""
    # Never over whatever is at the path now: the tests refuse, so nothing is replaced.
    parts = [
        f"test ! -e {shlex.quote(path)}",
        f"test ! -L {shlex.quote(path)}",
        f"mkdir -p -- {shlex.quote(posixpath.dirname(path) or '/')}",
        f"mv -- {shlex.quote(destination)} {shlex.quote(path)}",
        f"chown -h {st.st_uid}:{st.st_gid} {shlex.quote(path)}",
    ]
    if kind != "symlink":
        parts.append(f"chmod {stat.S_IMODE(st.st_mode):04o} {shlex.quote(path)}")
    return " && ".join(parts)


def unprivilege_restore(action: str, path: str, before: str) -> str:
    """A shell command that puts back what a "chmod" (the mode ``before``, octal) or an "uncap" (the
    capability attribute, ``before`` in hex) took off; python3, as setcap may be missing."""
    if action == "chmod":
        return f"test -f {shlex.quote(path)} && chmod {before} {shlex.quote(path)}"
    program = (
        "import os, sys; os.setxattr(sys.argv[1], "
        f"{CAPABILITY_XATTR!r}, bytes.fromhex(sys.argv[2]), follow_symlinks=False)"
    )
    return f"python3 -c {shlex.quote(program)} {shlex.quote(path)} {before}"


def marked_line(path: str, resolved: str, line: int, text: str, rules: list[str]) -> dict:
    """The report of a line an earlier quarantine commented out (``text`` as the report shows it)."""
    return {
        "kind": "line",
        "path": path,
        "line": line,
        "rules": rules,
        "text": text,
        "quarantined_path": None,
        "quarantined_at": None,
        "present": True,
        "restore": uncomment_command(resolved, line),
    }


def held_files(root: str, quarantine_dir: str, limit: int) -> tuple[list[dict], list[tuple[str, str]]]:
    """The reports of files quarantined earlier (every *.lifeline.json under the directory, among its
    first ``limit`` entries), and (path, problem) for what could not be read."""
    held: list[dict] = []
    problems: list[tuple[str, str]] = []
    try:
        where = rootfs.resolve(root, quarantine_dir)
    except rootfs.RootError as exc:
        return held, [(quarantine_dir, str(exc))]
    if where.escaped or not os.path.isdir(where.host):
        return held, problems
    count = 0
    for top, dirs, names in os.walk(where.host):
        dirs.sort()
        for name in sorted(names):
            count += 1
            if count > limit or not name.endswith(METADATA_SUFFIX):
                continue
            inside = "/" + os.path.relpath(os.path.join(top, name), root).lstrip("/")
            try:
                record = json.loads(rootfs.read_bytes(root, inside, 1 << 20) or b"{}")
            except (rootfs.RootError, ValueError) as exc:
                problems.append((inside, f"unreadable quarantine record: {exc}"))
                continue
            if isinstance(record, dict):
                held.append(_held_file(root, record))
    return held, problems


def _held_file(root: str, record: dict) -> dict:
    moved = str(record.get("quarantined_path", ""))
    return {
        "kind": "file",
        "path": record.get("original_path"),
        "line": None,
        "rules": [r.get("id") for r in record.get("rules", []) if isinstance(r, dict)],
        "text": "",
        "quarantined_path": moved,
        "quarantined_at": record.get("quarantined_at"),
        "present": bool(moved) and rootfs.lexists(root, moved),
        "restore": record.get("restore", ""),
    }
