# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What cron does about a whole crontab before it reads a line (Debian's cron, database.c): the
names it skips in /etc/cron.d, the owners, modes, links and hard links it refuses, a last line
without its newline; and the bytes a reader trips on (NUL and CR runs, control bytes, invalid
UTF-8), with their lines and offsets. The grammar of the lines is crontab.py's.

cronie (``cronie=True``; database.c of cronie 1.7: not_a_crontab, check_open, process_crontab)
differs in every rule:

- Names, in /etc/cron.d and in its spool alike: it skips a name starting with '.' or '#', ending in
  '~', ``.rpmsave``, ``.rpmorig`` or ``.rpmnew``, the cluster file ``.cron.hostname``, and a name
  too long for its 256-byte path buffer; every other name is read (dots, ``.dpkg-old`` included).
- It opens every crontab following links (a symlink's owner is never looked at), O_NONBLOCK, then
  judges the file opened: ``NOT REGULAR``; ``BAD FILE MODE`` unless ``mode & 07533 == 0400`` (owner
  read, no execute bits, no group or other write, no set-id or sticky bit: 0600, 0644, 0400 pass,
  for system and user crontabs alike); ``WRONG FILE OWNER`` unless owned by root (or, for a user
  crontab, by that user); ``BAD LINK COUNT`` for a user crontab with more than one name (system
  crontabs may have hard links). A user crontab of a name without an account is an ``ORPHAN``,
  read again once the account exists.
- It logs ``(root) BAD FILE MODE (/etc/cron.d/x)`` for a system crontab and ``(alice) ...
  (/var/spool/cron/alice)`` for a user's. A last line without its newline is no file rule for it:
  that line alone is lost (crontab.py).
- cron.allow and cron.deny are read by crontab(1) only, never by the daemon: a crontab already in
  the spool runs whatever they say (PAM's account rules still apply to its jobs).
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass

# What cron logs about a file it refuses before reading a line of it (database.c), in its words.
WRONG_SYMLINK_OWNER = "WRONG SYMLINK OWNER"
WRONG_FILE_OWNER = "WRONG FILE OWNER"
NOT_REGULAR = "NOT A REGULAR FILE"
INSECURE_MODE = "INSECURE MODE (group/other writable)"
INSECURE_USER_MODE = "INSECURE MODE (mode 0600 expected)"
HARD_LINKS = "NUMBER OF HARD LINKS > 1"
CANT_OPEN = "CAN'T OPEN"
ORPHAN = "ORPHAN"
# cronie's words for the same refusals (database.c check_open).
CRONIE_NOT_REGULAR = "NOT REGULAR"
CRONIE_BAD_MODE = "BAD FILE MODE"
CRONIE_LINK_COUNT = "BAD LINK COUNT"
FILE_RULE_WORDS = (
    WRONG_SYMLINK_OWNER,
    WRONG_FILE_OWNER,
    NOT_REGULAR,
    INSECURE_MODE,
    INSECURE_USER_MODE,
    HARD_LINKS,
    CRONIE_NOT_REGULAR,
    CRONIE_BAD_MODE,
    CRONIE_LINK_COUNT,
)
# Directories cronie reads crontabs from and the length of its path buffer (NAME_MAX + 1).
CRONIE_CROND_DIR = "/etc/cron.d"
CRONIE_SPOOL_DIR = "/var/spool/cron"
_CRONIE_PATH_BUFFER = 256


@dataclass(frozen=True)
class ByteFinding:
    """A run of bytes cron or a reader would trip on: ``kind`` is "nul", "cr", "control" or "utf8".

    ``line`` counts from 1, ``offset`` is the byte offset in the file, ``column`` the byte offset
    within the line (from 0), ``length`` the run's length in bytes.
    """

    kind: str
    line: int
    offset: int
    column: int
    length: int


# ---- files ----------------------------------------------------------------------------------

# Debian's cron reads /etc/cron.d files whose names are made of these only (run-parts' classic names;
# the LSB names of `cron -l` are not the default).
_CRON_D_NAME = re.compile(r"[A-Za-z0-9_-]+")


def check_file_rules(
    name: str,
    mode: int,
    uid: int,
    data: bytes,
    kind: str,
    *,
    nlink: int = 1,
    user_uid: int | None = None,
    link_uid: int | None = None,
    known_user: bool = True,
    cronie: bool = False,
    directory: str = "",
) -> list[str]:
    """What cron does about a whole file before reading its lines, in cron's order (database.c).

    ``kind`` is "crontab" (/etc/crontab), "cron.d" (a file in /etc/cron.d) or "user" (a spool file
    named after its user). ``mode``, ``uid`` and ``nlink`` describe the file itself, links followed
    (the file type bits of ``mode`` are optional). ``user_uid`` is the uid of the user a spool file
    belongs to (None: unknown, not checked); ``known_user`` is False when the target has no account
    of that name (cron then puts the file aside as an orphan). ``link_uid`` is the owner of the
    symlink when the path is one: system crontabs may be links owned by root; cron opens user
    crontabs without following links. An empty list means cron reads the file; otherwise cron logs
    the first problem only (each names cron's words in capitals) and checks nothing further.
    ``cronie`` applies cronie's rules instead (``directory``: where the file is, for its path
    length limit; cron.d or the spool when not given).
    """
    if cronie:
        return _cronie_file_rules(name, mode, uid, kind, nlink, user_uid, known_user, directory)
    problems: list[str] = []
    if kind == "cron.d":
        if name.startswith("."):
            problems.append(
                f"{name}: ignored by Debian cron: a name in /etc/cron.d starting with a dot is skipped"
            )
        elif "." in name:
            problems.append(
                f"{name}: ignored by Debian cron: a file name in /etc/cron.d holding a dot is skipped "
                "(like dpkg's .dpkg-old leftovers)"
            )
        elif not _CRON_D_NAME.fullmatch(name):
            problems.append(f"{name}: ignored by Debian cron: the name is not made of [A-Za-z0-9_-] only")
    regular = not stat.S_IFMT(mode) or stat.S_ISREG(mode)
    if kind == "user":
        if not known_user:
            problems.append(f"{name}: refused: no account of that name owns this crontab ({ORPHAN})")
        if link_uid is not None:
            problems.append(
                f"{name}: refused: a symlink, which cron does not follow for a user ({CANT_OPEN})"
            )
        if user_uid is not None and uid not in (user_uid, 0):
            problems.append(
                f"{name}: refused: owned by uid {uid}, not the user ({user_uid}) or root ({WRONG_FILE_OWNER})"
            )
        if not regular:
            problems.append(f"{name}: refused: not a regular file ({NOT_REGULAR})")
        if stat.S_IMODE(mode) != 0o600:
            problems.append(
                f"{name}: refused: mode {stat.S_IMODE(mode):04o}, not exactly 0600 ({INSECURE_USER_MODE})"
            )
    else:
        if link_uid not in (None, 0):
            problems.append(
                f"{name}: refused: a symlink owned by uid {link_uid}, not root ({WRONG_SYMLINK_OWNER})"
            )
        if uid != 0:
            problems.append(f"{name}: refused: owned by uid {uid}, not root ({WRONG_FILE_OWNER})")
        if not regular:
            problems.append(f"{name}: refused: not a regular file ({NOT_REGULAR})")
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            problems.append(
                f"{name}: refused: mode {stat.S_IMODE(mode):04o} is writable by group or others "
                f"({INSECURE_MODE})"
            )
    if nlink != 1:
        problems.append(f"{name}: refused: {nlink} hard links to it ({HARD_LINKS})")
    if _missing_newline(data):
        problems.append(
            f"{name}: last line has no newline: cron ignores the whole file "
            "(Missing newline before EOF, this crontab file will be ignored)"
        )
    return problems


def cronie_skips_name(name: str, directory: str) -> str:
    """Why cronie's not_a_crontab (or its path buffer) skips this name in ``directory``; '' if read."""
    if name.startswith("."):
        return "a name starting with a dot is skipped"
    if name.startswith("#"):
        return "a name starting with '#' is skipped"
    if name.endswith("~"):
        return "a name ending in '~' is skipped"
    for suffix in (".rpmsave", ".rpmorig", ".rpmnew"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"a name ending in {suffix} (a package manager's leftover) is skipped"
    size = len(name.encode("utf-8", "surrogateescape"))
    if size >= 255 or len(directory) + size + 2 > _CRONIE_PATH_BUFFER:
        return "the name is too long for cronie's path buffer"
    return ""


def _cronie_file_rules(
    name: str,
    mode: int,
    uid: int,
    kind: str,
    nlink: int,
    user_uid: int | None,
    known_user: bool,
    directory: str,
) -> list[str]:
    problems: list[str] = []
    if kind != "crontab":
        where = directory or (CRONIE_SPOOL_DIR if kind == "user" else CRONIE_CROND_DIR)
        skipped = cronie_skips_name(name, where)
        if skipped:
            return [f"{name}: ignored by cronie: {skipped}"]
    if kind == "user" and not known_user:
        return [f"{name}: put aside: no account of that name owns this crontab ({ORPHAN})"]
    if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
        problems.append(f"{name}: refused: not a regular file ({CRONIE_NOT_REGULAR})")
    if mode & 0o7533 != 0o400:
        problems.append(
            f"{name}: refused: mode {stat.S_IMODE(mode):04o} is not readable by its owner only with "
            f"no execute, group or other write, set-id or sticky bit ({CRONIE_BAD_MODE})"
        )
    # A user crontab whose user's uid is not known (None) is not judged by its owner.
    if uid != 0 and (kind != "user" or (user_uid is not None and uid != user_uid)):
        owner = "root" if kind != "user" else f"the user ({user_uid}) or root"
        problems.append(f"{name}: refused: owned by uid {uid}, not {owner} ({WRONG_FILE_OWNER})")
    if kind == "user" and nlink != 1:
        problems.append(f"{name}: refused: {nlink} hard links to it ({CRONIE_LINK_COUNT})")
    return problems


def _missing_newline(data: bytes) -> bool:
    """load_env at the last line: only a blank or comment line may end the file without a newline."""
    last = data[data.rfind(b"\n") + 1 :]
    stripped = last.lstrip(b" \t")
    # A NUL ends get_string before the end of the file: cron trips on something else there.
    return bool(stripped) and stripped[:1] != b"#" and b"\0" not in stripped


# ---- bytes ----------------------------------------------------------------------------------

_BAD_BYTES = re.compile(rb"\x00+|\r+|[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_BYTE_KIND = {0: "nul", 0x0D: "cr"}
# Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF); the gaps
# between matches are the invalid runs. ASCII runs match in one step, so a NUL flood stays fast.
_UTF8 = re.compile(
    rb"(?:[\x00-\x7f]+|[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2})+"
)


def byte_findings(data: bytes) -> list[ByteFinding]:
    """NUL runs, CR runs, other control bytes (not tab, not newline) and invalid UTF-8, in file order."""
    spans: list[tuple[int, int, str]] = []
    for m in _BAD_BYTES.finditer(data):
        spans.append((m.start(), m.end() - m.start(), _BYTE_KIND.get(data[m.start()], "control")))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        good_end = 0
        for m in _UTF8.finditer(data):
            if m.start() > good_end:
                spans.append((good_end, m.start() - good_end, "utf8"))
            good_end = m.end()
        if good_end < len(data):
            spans.append((good_end, len(data) - good_end, "utf8"))
    spans.sort()
    findings: list[ByteFinding] = []
    # Count newlines between consecutive findings only, so the whole pass stays linear.
    line, line_start, previous = 1, 0, 0
    for offset, length, kind in spans:
        newlines = data.count(b"\n", previous, offset)
        if newlines:
            line += newlines
            line_start = data.rfind(b"\n", previous, offset) + 1
        previous = offset
        findings.append(ByteFinding(kind, line, offset, offset - line_start, length))
    return findings
