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
