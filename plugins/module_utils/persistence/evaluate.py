# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules evaluated on the items a scan collected: which items are findings, and why.

A rule fires on an item when every condition it gives holds; each condition that holds adds one
reason to the finding. Rules that name other rules (``rules:``) are evaluated after all the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import (
    Finding,
    Item,
    PayloadLine,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.rules import Rule
from ansible_collections.lifeline.rescue.plugins.module_utils.target import report_text


def evaluate(reader: RootReader, rules: list[Rule]) -> list[Finding]:
    """The findings on ``reader.items``: in the order the items were met, for each item its rules in
    their order (the plain ones, then those that depend on others)."""
    # A dependent rule asks which rules already fired on the item: those must all have been tried.
    ordered = [r for r in rules if not r.rules] + [r for r in rules if r.rules]
    # Each item is tried only against the rules of its location kind.
    by_kind: dict[str, list[Rule]] = {}
    for rule in ordered:
        for kind in rule.locations:
            by_kind.setdefault(kind, []).append(rule)
    indicators = {rule.id: _Indicators(reader, rule) for rule in rules if rule.indicator_paths}
    findings: list[Finding] = []
    for item in reader.items:
        fired: dict[str, Finding] = {}
        for rule in by_kind.get(item.kind, ()):
            matched = _match(reader, rule, item, fired, indicators)
            if matched is not None:
                fired[rule.id] = Finding(rule, item, *matched)
        findings += fired.values()
    return findings


def _candidates(item: Item, label: str) -> Iterator[tuple[str, PayloadLine | None]]:
    """(text, the payload line it comes from or None) a pattern of ``label`` is matched against:
    the item's own, then those of the scripts it runs."""
    if label == "command":
        yield item.command, None
        for line in item.payload_lines:
            yield line.text, line
        return
    yield from ((v, None) for v in (item.executes if label == "runs" else item.references))
    for line in item.payload_lines:
        yield from ((v, line) for v in (line.runs if label == "runs" else line.names))


def _pattern_hit(
    patterns: tuple[re.Pattern[str], ...], item: Item, label: str
) -> tuple[str, list[str]] | None:
    """The reason the first pattern that matches gives, and the payload files it matched in (the
    script whose line matched and, for a program it runs, that program)."""
    candidates = list(_candidates(item, label))
    for pattern in patterns:
        for value, line in candidates:
            hit = pattern.search(value)
            if hit is None:
                continue
            shown = report_text.shown(hit.group() if label == "command" else value, 160)
            if line is None:
                return f"{label}: {shown}", []
            if label == "command":
                return f"{line.where()}: {report_text.shown(line.text, 160)}", [line.path]
            return f"{line.where()} {label}: {shown}", [line.path, value] if label == "runs" else [line.path]
    return None


def _match(
    reader: RootReader, rule: Rule, item: Item, fired: dict[str, Finding], indicators: dict[str, _Indicators]
) -> tuple[list[str], list[str]] | None:
    """Why ``rule`` fires on ``item`` (one reason a condition) and the payload files that made it
    fire; None when it does not."""
    if item.kind not in rule.locations:
        return None
    if (rule.scope == "file" and item.line is not None) or (rule.scope == "line" and item.line is None):
        return None
    # The conditions that cost nothing first: most items fail one, before any pattern is tried.
    if rule.traits and not item.traits.issuperset(rule.traits):
        return None
    if rule.every_minutes is not None and (item.interval is None or item.interval > rule.every_minutes):
        return None
    if rule.rules and not any(r in fired for r in rule.rules):
        return None
    reasons: list[str] = []
    files: list[str] = []
    for patterns, label in ((rule.command, "command"), (rule.executes, "runs"), (rule.references, "names")):
        if patterns:
            hit = _pattern_hit(patterns, item, label)
            if hit is None:
                return None
            reasons.append(hit[0])
            files += [f for f in hit[1] if f not in files]
    if rule.indicator_paths:
        hit_path = _indicator_hit(indicators[rule.id], item)
        if hit_path is None:
            return None
        reasons.append(f"indicator path: {hit_path}")
    if rule.every_minutes is not None:
        if item.interval is None or item.interval > rule.every_minutes:
            return None
        reasons.append(f"runs every {item.interval} minutes or more often")
    if rule.payload_unowned:
        if item.payload is None or not reader.unowned(item.payload):
            return None
        reasons.append(f"runs {item.payload}, which no package owns")
    if rule.location_unowned:
        if not reader.unowned(item.file.path):
            return None
        reasons.append(f"{item.file.path} is owned by no package")
    if rule.foreign_owner:
        account, uid = item.file.account, item.file.st.st_uid
        if account is None or uid in (account.uid, 0):
            return None
        reasons.append(f"{item.file.path} belongs to {reader.uid_names.get(uid, uid)}, not to {account.name}")
    if rule.traits:
        if not set(rule.traits) <= item.traits:
            return None
        reasons.append(f"{', '.join(rule.traits)}")
    if rule.rules:
        also = [r for r in rule.rules if r in fired]
        if not also:
            return None
        reasons.append(f"also matched: {', '.join(also)}")
    return reasons, files


class _Indicators:
    """A rule's indicator paths with every home's spelling of ``~/``, asked of many paths."""

    def __init__(self, reader: RootReader, rule: Rule) -> None:
        self.paths = [path for indicator in rule.indicator_paths for path in reader.in_homes(indicator)]
        self._exact = set(self.paths)
        self._below = tuple(path.rstrip("/") + "/" for path in self.paths)

    def hit(self, path: str) -> str | None:
        """The first indicator ``path`` is or lies below."""
        if path not in self._exact and not path.startswith(self._below):
            return None
        return next(i for i in self.paths if path == i or path.startswith(i.rstrip("/") + "/"))


def _indicator_hit(indicators: _Indicators, item: Item) -> str | None:
    """The indicator path the item's file is (a file item) or a path it names is, or lies below."""
    candidates = (item.file.path, item.file.resolved) if item.line is None else ()
    named = [n for line in item.payload_lines for n in line.names]
    for path in (*candidates, *item.references, *named):
        hit = indicators.hit(path)
        if hit is not None:
            return hit
    return None
