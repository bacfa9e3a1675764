"""The cron grammar corpus (tests/unit/data/cron/corpus.txt): one line a row, with what Debian's cron
and cronie make of it and what chkcrontab says. The unit lane checks parse_line and chkcrontab against it, the
oracle lane the real cron daemons."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab

from support.paths import DATA

CORPUS = DATA / "cron" / "corpus.txt"
# The accounts of the images the oracle lane runs cron in.
USERS = frozenset({"root", "daemon", "www-data", "nobody"})
DIALECTS = {"classic": crontab.CLASSIC, "trixie": crontab.TRIXIE, "cronie": crontab.CRONIE}
# The Debian dialects, the ones chkcrontab (a lint written for Vixie cron) is compared with.
DEBIAN_DIALECTS = ("classic", "trixie")


@dataclass(frozen=True)
class Row:
    number: int
    scope: str
    cron: dict[str, str]  # dialect name -> verdict
    chkcrontab: str
    line: str
    why: str

    @property
    def system(self) -> bool:
        return self.scope == "system"

    def __str__(self) -> str:
        return f"corpus line {self.number}: {self.line[:60]!r}"


def load_corpus(path: Path = CORPUS) -> list[Row]:
    """The rows of the corpus file (its format is described at its top)."""
    rows = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip() or text.startswith("#"):
            continue
        scope, cron, chk, rest = (part.strip() for part in text.split("|", 3))
        line, end = json.JSONDecoder().raw_decode(rest)
        why = rest[end:].strip().removeprefix("|").strip()
        # "X", "X; trixie: Y", "X; cronie: Z" or "X; trixie: Y; cronie: Z": trixie's reading
        # differs from X where given; cronie's is trixie's unless given.
        first, *others = cron.split("; ")
        verdicts = dict.fromkeys(DIALECTS, first)
        for other in others:
            name, _, verdict = other.partition(": ")
            if name not in DIALECTS or not verdict:
                raise ValueError(f"{path}:{number}: unknown verdict {other!r}")
            verdicts[name] = verdict
            if name == "trixie" and "cronie: " not in cron:
                verdicts["cronie"] = verdict
        rows.append(Row(number, scope, verdicts, chk, line, why))
    return rows


@dataclass(frozen=True)
class CronieLine:
    """A line that shows cronie's own reading: what cronie makes of it, and whether Debian's cron
    (trixie's) reads it otherwise."""

    scope: str
    line: str
    cronie: str  # job, env, or the words cronie logs about the line
    debian_differs: bool

    @property
    def system(self) -> bool:
        return self.scope == "system"

    def __str__(self) -> str:
        return f"cronie line {self.line[:60]!r} ({self.scope})"


# Written from cronie 1.7's entry.c and env.c; the unit lane checks crontab.parse_line against them,
# the oracle lane cronie's daemon.
CRONIE_LINES = (
    CronieLine("system", "~ * * * * root true", "job", True),
    CronieLine("system", "10~20 * * * * root true", "job", False),
    CronieLine("system", "~30 * * * * root true", "job", True),
    CronieLine("system", "70~ * * * * root true", "bad minute", False),
    CronieLine("system", "20~10 * * * * root true", "bad minute", True),
    CronieLine("system", "0-64/65 * * * * root true", "job", True),
    CronieLine("system", "0-64/60 * * * * root true", "bad minute", False),
    CronieLine("system", "59-0 * * * * root true", "job", False),
    CronieLine("system", "99-5 * * * * root true", "job", True),
    CronieLine("system", "0-70/30 * * * * root true", "bad minute", False),
    CronieLine("system", "5/10 * * * * root true", "bad minute", False),
    CronieLine("system", "*/0 * * * * root true", "bad minute", False),
    CronieLine("system", "1;2 * * * * root true", "bad minute", True),
    CronieLine("system", "0 0 * JAN SUN root true", "job", False),
    CronieLine("system", "0 0 0 * * root true", "bad day-of-month", False),
    CronieLine("system", "0 0 1-31/40 * * root true", "job", False),
    CronieLine("system", "0 0 * 13-15/20 * root true", "bad month", False),
    CronieLine("system", "0 0 * * 8-7 root true", "job", True),
    CronieLine("system", "-*/5 * * * * root true", "job", True),
    CronieLine("system", "-@reboot root true", "job", True),
    CronieLine("system", "- * * * * root true", "bad minute", False),
    CronieLine("system", "0 0 * * * root -n true", "job", False),
    CronieLine("system", "0 0 * * * root -n -n true", "bad option", True),
    CronieLine("system", "0 0 * * * root -x true", "bad option", True),
    CronieLine("system", "0 0 * * * root -ntrue", "bad option", True),
    CronieLine("system", "0 0 * * * root -n", "bad option", True),
    CronieLine("system", "0 0 * * * root", "bad command", False),
    CronieLine("system", "0 0 * * * root\t ", "bad command", True),
    CronieLine("system", "@daily root", "bad command", False),
    CronieLine("system", "0 0 * * * *root true", "bad command", True),
    CronieLine("system", "CRON_TZ=Europe/Riga", "env", False),
    CronieLine("system", "RANDOM_DELAY=30", "env", False),
    CronieLine("system", "MAILFROM=cron@example.com", "env", False),
    CronieLine("system", 'PADDED=" x "', "env", False),
    CronieLine("system", "TWICE=\"'x'\"", "env", False),
    CronieLine("user", "-0 0 * * * true", "bad option", True),
    CronieLine("user", "0 0 * * * -n true", "job", False),
    CronieLine("user", "0 0 * * * -y true", "bad option", True),
    CronieLine("user", "*/5 * * * *", "bad command", True),
)
