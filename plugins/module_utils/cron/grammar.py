# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What both crons' readings share: their error words and limits, the time fields, ``Dialect``
(which cron reads, and how) and ``Entry`` (one line as cron reads it). crontab.py is what callers use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# cron's own error words (entry.c ecodes), so a finding can be matched against the cron log.
BAD_MINUTE = "bad minute"
BAD_HOUR = "bad hour"
BAD_DOM = "bad day-of-month"
BAD_MONTH = "bad month"
BAD_DOW = "bad day-of-week"
BAD_COMMAND = "bad command"
BAD_TIMESPEC = "bad time specifier"
BAD_USERNAME = "bad username"
BAD_COMMAND_LEN = "command too long"
# What cron logs about a whole file when it ignores it (user.c), lower-cased as the words above.
MISSING_NEWLINE = "missing newline before EOF"
TOO_MANY_LINES = "crontab must not be longer than 10000 lines"
# cron.h as Debian builds it: get_number gives up at MAX_TEMPSTR characters, a command keeps at most
# MAX_COMMAND - 1 bytes (and one that long is "command too long"), an environment line MAX_ENVSTR - 2.
MAX_TEMPSTR = 1000
MAX_COMMAND = 1000
MAX_ENVSTR = 1000
MAX_TAB_LINES = 10000
# cronie's macros.h: its buffers are far larger, and it limits user crontabs instead (user.c).
CRONIE_MAX = 131072
CRONIE_MAX_GARBAGE = 32768
CRONIE_MAX_USER_ENTRIES = 10000
CRONIE_MAX_USER_ENVS = 1000
# cronie's own words (entry.c ecodes, user.c), for a line and for a whole user crontab.
BAD_OPTION = "bad option"
TOO_MANY_ENTRIES = "too many entries"
TOO_MANY_ENVS = "too many environment variables"
TOO_MUCH_GARBAGE = "too many garbage characters"
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# Index 7 is Sunday again, as in cron's DowNames (the first match wins, so "sun" is 0).
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")

# The @ forms are compared with strcmp: "@Daily" is not "@daily".
SPECIALS = {
    "reboot": "@reboot",
    "yearly": "0 0 1 1 *",
    "annually": "0 0 1 1 *",
    "monthly": "0 0 1 * *",
    "weekly": "0 0 * * 0",
    "daily": "0 0 * * *",
    "midnight": "0 0 * * *",
    "hourly": "0 * * * *",
}


@dataclass(frozen=True)
class Dialect:
    """Which cron reads the crontabs, and where Debian's cron releases read differently.

    ``empty_env`` (3.0pl1-187, trixie, and cronie): "NAME=" with nothing but blanks after the '='
    sets an empty value; older releases read such a line as a job and refuse it ("bad minute").
    ``cronie``: Red Hat's cronie reads the lines (cronie.py's docstring lists every difference).
    """

    name: str
    empty_env: bool
    cronie: bool = False

    @property
    def skips_bad_lines(self) -> bool:
        """Whether a refused line costs only itself (cronie) rather than the whole file (Debian)."""
        return self.cronie


# The default is the stricter reading: a crontab it accepts loads on every Debian release.
CLASSIC = Dialect("3.0pl1 before -187 (bullseye, bookworm)", empty_env=False)
TRIXIE = Dialect("3.0pl1-187 and later (trixie)", empty_env=True)
CRONIE = Dialect("cronie 1.7 (Red Hat family)", empty_env=True, cronie=True)


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...]
    error: str


FIELDS = (
    Field("minute", 0, 59, (), BAD_MINUTE),
    Field("hour", 0, 23, (), BAD_HOUR),
    Field("day-of-month", 1, 31, (), BAD_DOM),
    Field("month", 1, 12, MONTHS, BAD_MONTH),
    Field("day-of-week", 0, 7, DAYS, BAD_DOW),
)


@dataclass
class Entry:
    """One crontab line as cron reads it.

    ``kind`` is "blank", "comment", "env", "job" or "error" (then ``error`` holds cron's words).
    For a job, ``command`` is the text after the time fields (and user) as the file holds it,
    ``shell_command`` exactly what cron hands to ``$SHELL -c`` (up to the first unescaped ``%``,
    ``\\%`` and ``\\\\`` unescaped, cut at a NUL) and ``stdin`` exactly what the job reads on its
    standard input (the rest, ``%`` turned into newlines, ``\\%`` into ``%``, a final newline added;
    None when the command holds no ``%``). ``notes`` are things cron accepts silently but a reader
    should know. ``lineno`` counts from 1 in ``parse_text`` and ``first_error`` (0 from parse_line).

    From ``anacrontab.parse_line``: ``special`` is a named period ("@monthly"), ``period_days`` and
    ``delay_minutes`` the numbers, ``ident`` the job identifier; ``error`` holds anacron's words,
    also for a job that anacron complains about but still runs (an unknown named period).
    """

    kind: str
    line: str
    error: str = ""
    name: str = ""
    value: str = ""
    special: str = ""
    fields: tuple[str, ...] = ()
    schedule: tuple[frozenset[int], ...] = ()
    user: str = ""
    command: str = ""
    shell_command: str = ""
    stdin: str | None = None
    notes: list[str] = field(default_factory=list)
    lineno: int = 0
    ident: str = ""
    period_days: int | None = None
    delay_minutes: int | None = None
