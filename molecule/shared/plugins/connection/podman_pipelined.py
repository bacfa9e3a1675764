# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""containers.podman.podman with pipelining, for the molecule scenarios that run many modules.

The collection's plugin runs ``podman exec`` without ``--interactive``, so a module cannot be sent
on stdin and every module costs five ``podman exec`` (temporary directory, chmod, run, remove) plus
a copy; on a small machine that is most of a scenario's time. With ``--interactive`` when there is
input, Ansible pipelines: one ``podman exec`` a module. Everything else is the collection's plugin.
"""

from __future__ import annotations

import shlex

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
    name: podman_pipelined
    short_description: containers.podman.podman, with pipelining (the module on podman exec's stdin)
    description:
      - The collection's podman connection, whose C(podman exec) gets C(--interactive) when Ansible
        sends input, so that modules are pipelined instead of copied to a temporary directory.
    author: lifeline contributors
    extends_documentation_fragment:
      - connection_pipelining
    options:
      remote_addr:
        description: The name or ID of the container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: The user commands run as inside the container.
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to pass to the podman command line.
        default: ''
        vars:
          - name: ansible_podman_extra_args
      podman_executable:
        description: Executable for podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
"""


class Connection(PodmanConnection):
    transport = "podman_pipelined"
    has_pipelining = True

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        if in_data is None:
            return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec", "--interactive"] + (["--user", self.user] if self.user else [])
        return self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)
