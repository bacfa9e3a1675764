# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the scripts run-parts runs from /etc/cron.{hourly,daily,weekly,monthly,yearly}."""

from __future__ import annotations

import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

CRON_SCRIPT_DIRS = tuple(f"/etc/cron.{p}" for p in ("hourly", "daily", "weekly", "monthly", "yearly"))
_RUN_PARTS_NAME = re.compile(r"[A-Za-z0-9_-]+")


def collect(reader: RootReader) -> None:
    for directory in CRON_SCRIPT_DIRS:
        for path, _is_link in reader.entries("cron_script", directory):
            # run-parts runs only names made of letters, digits, '_' and '-'.
            reader.script("cron_script", path, runs=bool(_RUN_PARTS_NAME.fullmatch(posixpath.basename(path))))
