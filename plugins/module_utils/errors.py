# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error of lifeline: every failure a module reports derives from it.

Each package raises its own subclass (a root that cannot be read, a tool that failed, a disk that
cannot be attached, a switch that cannot go on...), always with a message that says what is wrong,
where, and what to do next. A module catches ``LifelineError`` once and turns it into one
``fail_json``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LifelineError(Exception):
    """A recovery step cannot go on; the message says what is wrong, where, and what to do next."""


# What a module reports as one fail_json: every LifelineError, and the system's own errors (a disk
# full, a permission refused), whose message already names the path. Anything else is a bug.
FAILURES = (LifelineError, OSError)
