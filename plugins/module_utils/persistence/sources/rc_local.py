# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: rc.local, the script the boot runs last."""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader


def collect(reader: RootReader) -> None:
    for path in ("/etc/rc.local", "/etc/rc.d/rc.local"):
        reader.script("rc_local", path, runs=True)
