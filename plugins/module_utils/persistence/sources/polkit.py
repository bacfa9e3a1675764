# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: polkit's authorization rules (JavaScript .rules files) and its old local authority (.pkla
files). Each file is an item; one that hands out an authorization without asking anyone to
authenticate, to everyone or to a user who is not an administrator, has the trait "grants-yes".
"""

from __future__ import annotations

import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, lines

RULES_DIRS = ("/etc/polkit-1/rules.d", "/usr/share/polkit-1/rules.d", "/usr/local/share/polkit-1/rules.d")
AUTHORITY_DIRS = ("/etc/polkit-1/localauthority", "/var/lib/polkit-1/localauthority")
_YES = re.compile(r"\breturn\s+polkit\.Result\.YES\b")
# A condition that limits a rule to administrators (or to root itself).
_ADMIN_ONLY = re.compile(r"""isInGroup\(\s*["'](sudo|wheel|admin|root)["']\s*\)|\.user\s*==\s*["']root["']""")
_RESULT_YES = re.compile(r"^\s*Result(Any|Inactive|Active)\s*=\s*yes\s*$", re.I)
_ADMIN_IDENTITY = re.compile(r"^unix-(group:(sudo|wheel|admin|root)|user:root)$")


def collect(reader: RootReader) -> None:
    for directory in RULES_DIRS:
        for path, _is_link in reader.entries("polkit", directory):
            if path.endswith(".rules"):
                facts = reader.file("polkit", path)
                if facts is not None:
                    _item(reader, facts, _javascript_grant(facts.data or b""))
    for directory in AUTHORITY_DIRS:
        for path, _is_link in reader.entries("polkit", directory, recursive=True):
            if path.endswith(".pkla"):
                facts = reader.file("polkit", path)
                if facts is not None:
                    _item(reader, facts, _pkla_grant(facts.data or b""))


def _item(reader: RootReader, facts: FileFacts, grant: str) -> None:
    traits = frozenset({"grants-yes"}) if grant else frozenset()
    reader.items.append(Item("polkit", facts, text=grant, command=grant, user="root", traits=traits))


def _javascript_grant(data: bytes) -> str:
    """The line returning polkit.Result.YES that no administrator condition guards; '' when none.

    A rule is read as text, statement by statement: the conditions in force at a return are those of
    the lines since the function began (addRule's callback), which is how these short rules are
    written. Anything cleverer still returns YES and so is still reported: unowned rules are rare.
    """
    text = data.decode("utf-8", "replace")
    for block in re.split(r"polkit\.addRule\s*\(", text)[1:]:
        for m in _YES.finditer(block):
            guard = block[: m.start()]
            if not _ADMIN_ONLY.search(guard):
                line = text[: text.find(block) + m.start()].count("\n") + 1
                return f"line {line}: {m.group(0)}"
    return ""


def _pkla_grant(data: bytes) -> str:
    """The first Result*=yes of a section whose identities are not all administrators; '' when none."""
    identities: list[str] = []
    for number, text in lines(data):
        stripped = text.strip()
        if stripped.startswith("["):
            identities = []
        elif stripped.lower().startswith("identity="):
            identities = [i.strip() for i in stripped.split("=", 1)[1].split(";") if i.strip()]
        elif _RESULT_YES.match(stripped) and not all(_ADMIN_IDENTITY.match(i) for i in identities or ["*"]):
            return f"line {number}: {stripped}"
    return ""
