# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the scripts network managers run as root whenever an interface or a lease changes:
NetworkManager's dispatcher directories, ifupdown's if-*.d, pppd's ip-up.d and ip-down.d, and the
hooks dhclient-script sources (sourced, so they run without an executable bit)."""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import hook_scripts
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

NM_DISPATCHER_DIRS = tuple(
    f"{base}/dispatcher.d{sub}"
    for base in ("/etc/NetworkManager", "/usr/lib/NetworkManager")
    for sub in ("", "/pre-up.d", "/pre-down.d", "/no-wait.d")
)
IFUPDOWN_DIRS = tuple(f"/etc/network/if-{phase}.d" for phase in ("pre-up", "up", "down", "post-down"))
PPP_DIRS = tuple(f"/etc/ppp/{phase}.d" for phase in ("ip-up", "ip-down", "ipv6-up", "ipv6-down"))
DHCLIENT_DIRS = ("/etc/dhcp/dhclient-enter-hooks.d", "/etc/dhcp/dhclient-exit-hooks.d")


def collect(reader: RootReader) -> None:
    for directory in NM_DISPATCHER_DIRS:
        hook_scripts.scripts(reader, "network_hook", directory, name_ok=hook_scripts.not_hidden_or_leftover)
    for directory in IFUPDOWN_DIRS + PPP_DIRS:
        hook_scripts.scripts(reader, "network_hook", directory, name_ok=hook_scripts.run_parts_name)
    for directory in DHCLIENT_DIRS:
        hook_scripts.scripts(
            reader, "network_hook", directory, name_ok=hook_scripts.run_parts_name, executable=False
        )
