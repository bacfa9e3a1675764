# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How anacron reads /etc/anacrontab, line by line: Debian's anacron 2.3 (readtab.c), and Red Hat's
(cronie's anacron) where ``cronie`` is given. Its entries are crontab's ``Entry``, so a report and a
repair treat every kind of crontab alike.
"""

from __future__ import annotations

import re

from ansible_collections.lifeline.rescue.plugins.module_utils.cron.grammar import Entry
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.reading import INT_MAX

# anacron's complaints (readtab.c), as its log lines hold them.
INVALID = "Invalid syntax"
RANGE = "number out of range"
PERIOD = "Unknown named period"
# Debian's anacron 2.3 compares the first 7 characters only; cronie's knows more names (with its
# own misspelling "@annualy") and compares each name's length.
_PERIODS_DEBIAN = (("@monthly", 7), ("@yearly", 7))
_PERIODS_CRONIE = (("@monthly", 8), ("@yearly", 7), ("@annualy", 8), ("@daily", 6), ("@weekly", 7))
_BLANK = re.compile(r"[ \t]*(?:#.*)?", re.DOTALL)
_ENV = re.compile(r"[ \t]*([^ \t=]+)[ \t]*=(.*)", re.DOTALL)
_JOB = re.compile(r"[ \t]*([0-9]+)[ \t]+([0-9]+)[ \t]+([^ \t/]+)[ \t]+([^ \t].*)", re.DOTALL)
_PERIOD_JOB = re.compile(r"[ \t]*(@[^ \t]+)[ \t]+([0-9]+)[ \t]+([^ \t/]+)[ \t]+([^ \t].*)", re.DOTALL)


def line_text(raw: str) -> str:
    """What anacron's read_tab_line keeps of a line: it drops every NUL and every backslash (the
    one before a newline joins the next line, with a blank); a backslash ending the file stays."""
    out: list[str] = []
    prev = ""
    for ch in raw:
        if prev == "\n":
            out.append(" ")
        elif prev not in ("", "\\", "\0"):
            out.append(prev)
        prev = ch
    if prev not in ("", "\0"):
        out.append(prev)
    return "".join(out)


def parse_line(line: str, *, cronie: bool = False) -> Entry:
    """One anacrontab line as anacron reads it (parse_tab_line of Debian's anacron 2.3).

    Kinds: "blank", "comment", "env" (any NAME=value; START_HOURS_RANGE and RANDOM_DELAY are plain
    assignments to Debian's anacron, passed to the jobs), "job" (``period_days`` or a named period
    in ``special``, ``delay_minutes``, ``ident``, ``command``) and "error" (anacron skips the line;
    ``error`` holds its words). A named period other than @monthly and @yearly makes Debian's
    anacron complain ("Unknown named period") and still run the job: it stays a "job" with that
    ``error``. ``cronie`` reads Red Hat's anacron instead (@daily, @weekly, @annualy; the
    START_HOURS_RANGE value checked). ``line`` is the line as the file holds it (or a continued
    line, joined with its newlines): what anacron reads of it is ``line_text(line)``.
    """
    raw = line[:-1] if line.endswith("\n") else line
    entry = _entry(line_text(raw), cronie)
    entry.line = raw
    return entry


def _entry(line: str, cronie: bool) -> Entry:
    if _BLANK.fullmatch(line):
        return Entry("comment" if "#" in line else "blank", line)
    m = _ENV.fullmatch(line)
    if m:
        name, value = m.groups()
        if cronie and name.startswith("START_HOURS_RANGE"):
            hours = re.fullmatch(r"([0-9]+)-([0-9]+)", value)
            if hours is None or int(hours.group(2)) < int(hours.group(1)):
                return Entry("error", line, error=INVALID, name=name, value=value)
        entry = Entry("env", line, name=name, value=value)
        if value[:1] in (" ", "\t"):
            entry.notes.append("the value keeps the blanks after '=': anacron does not strip them")
        if not cronie and name in ("START_HOURS_RANGE", "RANDOM_DELAY", "PREFERRED_HOUR"):
            entry.notes.append(f"Debian's anacron does not use {name}: it only passes it to the jobs")
        return entry
    m = _JOB.fullmatch(line)
    if m:
        period, delay, ident, command = m.groups()
        if int(period) > INT_MAX or int(delay) > INT_MAX:
            return Entry("error", line, error=RANGE, ident=ident, command=command)
        return Entry(
            "job", line, ident=ident, command=command, period_days=int(period), delay_minutes=int(delay)
        )
    m = _PERIOD_JOB.fullmatch(line)
    if m:
        period, delay, ident, command = m.groups()
        if int(delay) > INT_MAX:
            return Entry("error", line, error=RANGE, special=period, ident=ident, command=command)
        entry = Entry("job", line, special=period, ident=ident, command=command, delay_minutes=int(delay))
        known = _PERIODS_CRONIE if cronie else _PERIODS_DEBIAN
        if not any(period[:length] == name[:length] for name, length in known):
            entry.error = PERIOD
            entry.period_days = 0
            entry.notes.append(
                "anacron logs 'Unknown named period ... skipping' but still registers the job, "
                "with a period of 0 days: it runs whenever anacron runs"
            )
        return entry
    return Entry("error", line, error=INVALID)


def parse_text(text: str, *, cronie: bool = False) -> list[Entry]:
    """Every line of an anacrontab as anacron numbers them: a line ending in a backslash is joined
    with the next one (and counts as one line)."""
    lines: list[str] = []
    current: list[str] = []
    for piece in text.split("\n"):
        current.append(piece)
        if piece.endswith("\\"):
            continue
        lines.append("\n".join(current))
        current = []
    if current:
        lines.append("\n".join(current))
    if lines and lines[-1] == "":
        lines.pop()
    entries = []
    for number, raw in enumerate(lines, start=1):
        entry = parse_line(raw, cronie=cronie)
        entry.lineno = number
        entries.append(entry)
    return entries


def complaint(entry: Entry, path: str = "/etc/anacrontab", lineno: int | None = None) -> str:
    """The line anacron logs about an entry ('' when it logs nothing)."""
    number = entry.lineno if lineno is None else lineno
    if entry.error == INVALID:
        return f"Invalid syntax in {path} on line {number} - skipping this line"
    if entry.error in (RANGE, PERIOD):
        return f"{path}: {entry.error} on line {number}, skipping"
    return ""
