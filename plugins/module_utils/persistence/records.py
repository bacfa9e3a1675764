# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a quarantine leaves in a root, how each piece is undone, and reading it back.

A commented-out line starts with a marker naming the rules that flagged it; a moved file has a JSON
record beside it in the quarantine directory. Both carry a shell command that puts things back. The
scan reads these marks to report what earlier runs quarantined; the quarantine writes them.
"""

from __future__ import annotations

import hashlib
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


# Writes the lines ``d`` over file ``p`` keeping its owner and mode: a temporary file beside it,
# flushed, renamed over it.
_WRITE_BACK = (
    "s=os.stat(p);t=p+'.lifeline-restore';"
    "f=os.fdopen(os.open(t,os.O_WRONLY|os.O_CREAT|os.O_EXCL,0o600),'wb');f.write(b'\\n'.join(d));"
    "f.flush();os.fsync(f.fileno());os.fchown(f.fileno(),s.st_uid,s.st_gid);"
    "os.fchmod(f.fileno(),s.st_mode&0o7777);f.close();os.rename(t,p)"
)
_CHANGED = "the file changed since: put it back by hand"
# argv FILE CURRENT ORIGINAL: the line CURRENT, there exactly once, becomes ORIGINAL.
_PUT_LINE_BACK = (
    "import os,sys;p,c,o=sys.argv[1:4];c,o=os.fsencode(c),os.fsencode(o);"
    "d=open(p,'rb').read().split(b'\\n');"
    f"d.count(c)==1 or sys.exit(p+': the line to put back is not there exactly once; {_CHANGED}');"
    "d[d.index(c)]=o;" + _WRITE_BACK
)
# argv FILE LOCKED-SHA256 ORIGINAL-SHA256: the one line whose sha256 is LOCKED loses the first
# character of its second field (the '!' of the lock), and must then have the sha256 ORIGINAL. The
# command names no password hash: a report carrying it would spread the hash.
_UNLOCK = (
    "import hashlib,os,sys;p,l,o=sys.argv[1:4];h=lambda x:hashlib.sha256(x).hexdigest();"
    "d=open(p,'rb').read().split(b'\\n');i=[k for k,x in enumerate(d) if h(x)==l];"
    f"len(i)==1 or sys.exit(p+': the locked line is not there exactly once; {_CHANGED}');"
    "f=d[i[0]].split(b':');f[1]=f[1][1:];r=b':'.join(f);"
    f"h(r)==o or sys.exit(p+': the locked line does not unlock to the one locked; {_CHANGED}');"
    "d[i[0]]=r;" + _WRITE_BACK
)


def _python(program: str, *args: str) -> str:
    return " ".join(["python3", "-c", shlex.quote(program), *(shlex.quote(a) for a in args)])


def put_line_back_command(path: str, current: str, original: str) -> str:
    """A shell command that replaces the line ``current`` of ``path`` by ``original``, refusing when
    ``current`` is not there exactly once."""
    return _python(_PUT_LINE_BACK, path, current, original)


def unlock_command(path: str, locked: str, original: str) -> str:
    """A shell command that takes the lock's '!' off the line ``locked`` of ``path``, naming both
    lines by their sha256 only; it refuses unless the result is ``original`` exactly."""

    def digest(line: str) -> str:
        return hashlib.sha256(os.fsencode(line)).hexdigest()

    return _python(_UNLOCK, path, digest(locked), digest(original))


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
