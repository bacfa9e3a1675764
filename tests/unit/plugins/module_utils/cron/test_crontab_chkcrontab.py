"""The cron grammar against a corpus of lines and against chkcrontab, a lint with its own opinions.

Every row of tests/unit/data/cron/corpus.txt (read by support/cron_corpus.py) says what Debian's cron
makes of the line (the oracle lane proves that against the real daemons) and what chkcrontab's checker
says. parse_line must give cron's verdict on every row; chkcrontab must give the recorded verdict, and
every row where it disagrees with cron carries the reason.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab

from support.cron_corpus import DEBIAN_DIALECTS, DIALECTS, USERS, Row, load_corpus

ACCEPTED = ("job", "env", "comment", "blank")
# chkcrontab's field names, as cron's words.
_FIELDS = {
    "minute": crontab.BAD_MINUTE,
    "hour": crontab.BAD_HOUR,
    "day of month": crontab.BAD_DOM,
    "month": crontab.BAD_MONTH,
    "day of week": crontab.BAD_DOW,
}
_KINDS = {
    "INVALID_AT": crontab.BAD_TIMESPEC,
    "INVALID_USER": crontab.BAD_USERNAME,
    "LINE_ERROR": "unparsed",
    "QUOTE_VALUES": "empty value",
}


def verdict(entry: crontab.Entry) -> str:
    return entry.error or entry.kind


def chkcrontab_verdict(line: str) -> str:
    """What chkcrontab's checker says of one system-crontab line, in the corpus's words."""
    try:
        import chkcrontab_lib
    except ImportError:
        pytest.fail("chkcrontab_lib is not in .venv: run `make venv` (tools/setup/venv.sh installs it)")
    log = chkcrontab_lib.LogCounter()
    try:
        chkcrontab_lib.CronLineFactory().ParseLine(line.strip()).ValidateAndLog(log)
    except ValueError:
        return "crash"
    # The queued errors of the line (warnings do not make chkcrontab refuse anything).
    errors = log._line_errors
    if not errors:
        return "ok"
    kind, _, message = errors[0].partition(": ")
    if kind in ("FIELD_PARSE_ERROR", "FIELD_VALUE_ERROR"):
        m = re.search(r'field "([a-z ]+)"|"([a-z ]+)" field', message)
        return _FIELDS[m.group(1) or m.group(2)]
    return _KINDS[kind]


def agrees(cron_verdict: str, chk: str) -> bool:
    """chkcrontab agrees with cron: both accept, or both refuse and chkcrontab names no other field."""
    if chk == "crash":
        return False
    if (cron_verdict in ACCEPTED) != (chk == "ok"):
        return False
    return chk not in _FIELDS.values() or chk == cron_verdict


ROWS = load_corpus()


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_parse_line_gives_crons_verdict(row: Row):
    for name, dialect in DIALECTS.items():
        entry = crontab.parse_line(row.line, row.system, users=USERS, dialect=dialect)
        assert verdict(entry) == row.cron[name], (name, entry)


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_chkcrontab_verdict_and_every_disagreement_explained(row: Row):
    if not row.system:
        assert row.chkcrontab == "n/a" and not row.why, "chkcrontab does not read user crontabs"
        return
    assert chkcrontab_verdict(row.line) == row.chkcrontab
    disagrees = not all(agrees(row.cron[name], row.chkcrontab) for name in DEBIAN_DIALECTS)
    if disagrees:
        assert row.why, f"chkcrontab says {row.chkcrontab!r}, cron {row.cron}: the corpus must say why"
    else:
        assert not row.why, "a reason on a row where chkcrontab agrees with cron"


def test_corpus_covers_the_grammar():
    verdicts = Counter(v for row in ROWS for v in row.cron.values())
    for word in (*ACCEPTED, *(f.error for f in crontab.FIELDS)):
        assert verdicts[word] >= 2, word
    for word in (crontab.BAD_COMMAND, crontab.BAD_TIMESPEC, crontab.BAD_USERNAME, crontab.BAD_COMMAND_LEN):
        assert verdicts[word] >= 1, word
    assert {row.scope for row in ROWS} == {"system", "user"}
    lines = {row.line for row in ROWS}
    for special in crontab.SPECIALS:
        assert any(line.startswith(f"@{special}") for line in lines), special
    assert any(row.cron["classic"] != row.cron["trixie"] for row in ROWS)
    assert sum(1 for row in ROWS if row.why) >= 20
    assert len(ROWS) >= 150


def test_the_disagreements_go_both_ways():
    """chkcrontab refuses lines cron runs, and passes lines cron refuses: neither is a subset."""
    refused_by_lint = [r for r in ROWS if r.system and r.chkcrontab != "ok" and r.cron["classic"] in ACCEPTED]
    passed_by_lint = [
        r for r in ROWS if r.system and r.chkcrontab == "ok" and r.cron["classic"] not in ACCEPTED
    ]
    assert len(refused_by_lint) >= 10 and len(passed_by_lint) >= 8
