# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: programs systemd runs itself: generators, and the shutdown and sleep hooks."""

from __future__ import annotations

import posixpath

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

GENERATOR_DIRS = tuple(
    f"{base}/{name}"
    for base in ("/etc/systemd", "/run/systemd", "/usr/local/lib/systemd", "/usr/lib/systemd", "/lib/systemd")
    for name in (
        "system-generators",
        "user-generators",
        "system-environment-generators",
        "user-environment-generators",
        "system-shutdown",
        "system-sleep",
    )
)


def collect(reader: RootReader) -> None:
    for directory in GENERATOR_DIRS:
        for path, _is_link in reader.entries("systemd_generator", directory):
            # systemd skips hidden files in these directories.
            runs = not posixpath.basename(path).startswith(".")
            reader.script("systemd_generator", path, runs=runs)
