# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the System V init scripts of /etc/init.d."""

from __future__ import annotations

import posixpath

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader


def collect(reader: RootReader) -> None:
    for path, _is_link in reader.entries("init_script", "/etc/init.d"):
        reader.script("init_script", path, runs=not posixpath.basename(path).startswith("."))
