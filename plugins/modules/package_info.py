#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The installed packages of a root, read offline from its own package database."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: package_info
short_description: List the packages installed in a root from its own dpkg or rpm database, offline
version_added: "0.1.0"
description:
  - Like M(ansible.builtin.package_facts), but for a root mounted on a rescue system (or C(/) in live
    mode), read by lifeline's own readers and never by the rescuer's C(dpkg) or C(rpm).
  - The package manager is found from what the root holds, the dpkg status database, or the rpm
    database in any of its three backends, Berkeley DB (C(Packages), RHEL and CentOS 5 to 8), sqlite
    (C(rpmdb.sqlite), RHEL 9 and later, Fedora 33 and later) and ndb (C(Packages.db), SUSE), at
    C(/var/lib/rpm) or C(/usr/lib/sysimage/rpm).
  - Nothing is written into the root; a database that cannot be read fails with the reason, it is
    never reported as an empty one.
options:
  names:
    description: Only these packages (by name). All packages when empty.
    type: list
    elements: str
    default: []
  files:
    description: Also list each package's files with their recorded digest, mode, size and link target.
    type: bool
    default: false
extends_documentation_fragment:
  - lifeline.rescue.attributes
  - lifeline.rescue.target_root
  - lifeline.rescue.attributes.read_only
seealso:
  - module: ansible.builtin.package_facts
  - module: lifeline.rescue.glibc_restore
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Which glibc does the broken root have
  lifeline.rescue.package_info:
    root: /mnt/sysimage
    names: [glibc, libc6]
    files: true
  register: target_packages

- name: List every package of a disk attached on a rescue instance
  lifeline.rescue.package_info:
    root: /mnt/sysimage
"""

RETURN = r"""
manager:
  description: The root's package manager, C(dpkg) or C(rpm); empty when the root has no package database.
  returned: always
  type: str
  sample: rpm
backend:
  description: How the database is stored, C(dpkg status), C(bdb), C(sqlite) or C(ndb).
  returned: always
  type: str
  sample: bdb
path:
  description: The database's path inside the root.
  returned: always
  type: str
  sample: /var/lib/rpm/Packages
packages:
  description:
    - One entry per installed package (per name and architecture); label is how the manager's own
      tools print it. With O(files), each has its files.
  returned: always
  type: list
  elements: dict
  sample:
    - name: glibc
      version: "2.28"
      release: 42.el8_0.1
      epoch: ""
      arch: x86_64
      vendor: Red Hat, Inc.
      manager: rpm
      label: glibc-2.28-42.el8_0.1.x86_64
      files:
        - {path: /lib64/libc-2.28.so, digest: 15b8f8..., algorithm: sha256, mode: "0100755",
           size: 3201344, link: "", user: root, group: root, config: false, ghost: false}
skipped:
  description: Database records that could not be read (each with why); the rest is still listed.
  returned: always
  type: list
  elements: str
  sample: []
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import installed
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageFile
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs


def argument_spec() -> dict:
    return {
        "root": {"type": "path", "required": True},
        "names": {"type": "list", "elements": "str", "default": []},
        "files": {"type": "bool", "default": False},
    }


def file_dict(entry: PackageFile) -> dict:
    return {
        "path": entry.path,
        "digest": entry.digest,
        "algorithm": entry.algorithm,
        "mode": f"{entry.mode:07o}" if entry.mode else "",
        "size": entry.size,
        "link": entry.link,
        "user": entry.user,
        "group": entry.group,
        "config": entry.config,
        "ghost": entry.ghost,
    }


def listing(root: str, names: list[str], with_files: bool) -> dict:
    database = installed.database_of(root)
    if database is None:
        return {"manager": "", "backend": "", "path": "", "packages": [], "skipped": []}
    packages = []
    for package in sorted(database.packages(), key=lambda p: (p.name, p.arch, p.label)):
        if names and package.name not in names:
            continue
        shown = {**package.as_dict(), "label": package.label}
        if with_files:
            shown["files"] = [file_dict(f) for f in database.files(package)]
        packages.append(shown)
    return {**database.describe(), "packages": packages, "skipped": list(getattr(database, "skipped", []))}


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    root = os.path.realpath(module.params["root"])
    refusal = rootfs.not_a_linux_root("root", module.params["root"], root)
    if refusal:
        module.fail_json(msg=refusal)
    try:
        found = listing(root, module.params["names"], module.params["files"])
    except FAILURES as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **found)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
