# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""containers.podman.podman with pipelining, for the molecule scenarios that run many modules.

The collection's plugin runs ``podman exec`` without ``--interactive``, so a module cannot be sent
on stdin and every module costs five ``podman exec`` (temporary directory, chmod, run, remove) plus
a copy; on a small machine that is most of a scenario's time. With ``--interactive`` when there is
input, Ansible pipelines: one ``podman exec`` a module.

Files go in and out through ``podman exec`` too (``cat``), so they land where the container's own
processes see the path, as over ssh. The collection's plugin writes into ``podman mount``'s view of
the container's image filesystem instead: a path on a tmpfs or a volume mounted in the container
(its /run), or on a root the container has moved to (migrate-root's pivot_root), is not that file,
and an image filesystem remounted read-only refuses the write. No ``podman mount`` is needed then.
Everything else is the collection's plugin.
"""

from __future__ import annotations

import shlex

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

DOCUMENTATION = """
    name: podman_pipelined
    short_description: containers.podman.podman, with pipelining (the module on podman exec's stdin)
    description:
      - The collection's podman connection, whose C(podman exec) gets C(--interactive) when Ansible
        sends input, so that modules are pipelined instead of copied to a temporary directory.
      - Files are written and read with C(cat) in C(podman exec), in the container's own mount
        namespace, rather than in C(podman mount)'s view of its image filesystem.
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

    def _connect(self):
        # Files go through podman exec: no `podman mount` of the image filesystem (one podman call less).
        ConnectionBase._connect(self)
        self._connected = True

    def _exec(self, argv: list[str], in_data: bytes | None = None) -> tuple[int, bytes, bytes]:
        args = ["exec"] + (["--interactive"] if in_data is not None else [])
        return self._podman(args + (["--user", self.user] if self.user else []), argv, in_data)

    @ensure_connect
    def put_file(self, in_path, out_path):
        ConnectionBase.put_file(self, in_path, out_path)
        with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as handle:
            data = handle.read()
        rc, _, stderr = self._exec(["/bin/sh", "-c", 'cat > "$1"', "sh", out_path], data)
        if rc != 0:
            raise AnsibleError(f"cannot write {out_path} in {self._container_id}: {to_native(stderr)}")

    @ensure_connect
    def fetch_file(self, in_path, out_path):
        ConnectionBase.fetch_file(self, in_path, out_path)
        rc, stdout, stderr = self._exec(["cat", "--", in_path])
        if rc != 0:
            raise AnsibleError(f"cannot read {in_path} in {self._container_id}: {to_native(stderr)}")
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as handle:
            handle.write(stdout)
