# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every module documents, and the whole set for a module that only reads."""

from __future__ import annotations


class ModuleDocFragment:
    # What check_mode and diff_mode mean; each module adds its support and details.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return what it would change, changing nothing.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) in diff mode.
"""

    # A module that reads and never writes.
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    details: It only reads, so it runs the same in check mode.
  diff_mode:
    support: none
"""
