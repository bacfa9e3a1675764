# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a report shows what it read from a target: times in one form, hostile text made visible and cut."""

from __future__ import annotations

import time

# Lines a report shows are cut here unless the caller says otherwise.
SHOWN = 200


def iso(timestamp: float) -> str:
    """A file time as ISO 8601 UTC, the form every report uses."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def shown(text: str, limit: int = SHOWN) -> str:
    """A line as a report shows it: control bytes and non-ASCII characters visible as escapes, long
    lines cut at ``limit`` characters (before escaping: a 50 MB line of NULs must not be escaped whole)."""
    length = len(text)
    visible = text[:limit].encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
    visible = "".join(ch if ch >= " " or ch == "\t" else f"\\x{ord(ch):02x}" for ch in visible)
    return visible if length <= limit else visible + f"... ({length} characters)"
