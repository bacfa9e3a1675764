# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules evaluated on the items a scan collected: which items are findings, and why.

A rule fires on an item when every condition it gives holds; each condition that holds adds one
reason to the finding. Rules that name other rules (``rules:``) are evaluated after all the others.
"""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import Finding, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.rules import Rule
from ansible_collections.lifeline.rescue.plugins.module_utils.target import report_text


def evaluate(reader: RootReader, rules: list[Rule]) -> list[Finding]:
    """The findings on ``reader.items``: in the order the items were met, for each item its rules in
    their order (the plain ones, then those that depend on others)."""
    # A dependent rule asks which rules already fired on the item: those must all have been tried.
    ordered = [r for r in rules if not r.rules] + [r for r in rules if r.rules]
    findings: list[Finding] = []
    for item in reader.items:
        fired: dict[str, Finding] = {}
        for rule in ordered:
            matched = _match(reader, rule, item, fired)
            if matched is not None:
                fired[rule.id] = Finding(rule, item, matched)
        findings += fired.values()
    return findings


def _match(reader: RootReader, rule: Rule, item: Item, fired: dict[str, Finding]) -> list[str] | None:
    """Why ``rule`` fires on ``item`` (one reason a condition), None when it does not."""
    if item.kind not in rule.locations:
        return None
    if (rule.scope == "file" and item.line is not None) or (rule.scope == "line" and item.line is None):
        return None
    reasons: list[str] = []
    for patterns, values, label in (
        (rule.command, (item.command,), "command"),
        (rule.executes, item.executes, "runs"),
        (rule.references, item.references, "names"),
    ):
        if patterns:
            hit = next((m for p in patterns for v in values if (m := p.search(v))), None)
            if hit is None:
                return None
            reasons.append(
                f"{label}: {report_text.shown(hit.string if label != 'command' else hit.group(), 160)}"
            )
    if rule.indicator_paths:
        hit_path = _indicator_hit(reader, rule, item)
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
    return reasons


def _indicator_hit(reader: RootReader, rule: Rule, item: Item) -> str | None:
    """The indicator path the item's file is (a file item) or a path it names is, or lies below."""
    candidates = (item.file.path, item.file.resolved) if item.line is None else ()
    indicators = [path for indicator in rule.indicator_paths for path in reader.in_homes(indicator)]
    for path in (*candidates, *item.references):
        for indicator in indicators:
            if path == indicator or path.startswith(indicator.rstrip("/") + "/"):
                return indicator
    return None
