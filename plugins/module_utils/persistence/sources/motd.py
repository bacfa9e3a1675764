# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the MOTD scripts of /etc/update-motd.d, which pam_motd runs as root (run-parts
--lsbsysinit) at every ssh or console login; each script that runs is a file item, its lines
commands run as root."""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import hook_scripts
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

MOTD_DIRS = ("/etc/update-motd.d",)


def collect(reader: RootReader) -> None:
    for directory in MOTD_DIRS:
        hook_scripts.scripts(reader, "motd", directory, name_ok=hook_scripts.lsb_sysinit_name)
