#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Diagnose a root's glibc and restore its broken links and files from a verified good copy."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: glibc_restore
short_description: Diagnose and repair the glibc links and files of a Linux root
version_added: "0.1.0"
description:
  - Identifies the glibc a root runs (release, architecture, layout) from its programs' interpreter,
    its package database and the loader and libc files themselves.
  - Checks every member of the glibc family (the loader, libc, libm, libpthread, libdl, librt,
    libresolv, libnss_*, ...) as the loader would meet it, all inside the root; reports a missing
    member, a dangling link, a link out of the root, a file of another class or machine, a file of
    another glibc release (a libc copied from elsewhere under C(/opt)), a file that differs from
    the package's recorded checksum, and loader configuration (C(ld.so.conf), C(ld.so.preload),
    system-wide C(LD_LIBRARY_PATH)) that brings in another glibc.
  - Identifies the package from the root's own database, dpkg's or rpm's (Berkeley DB, sqlite or ndb),
    read offline; on RPM roots also the link targets the database records. Without a database the
    family is found by its names in the loader's directories.
  - Repairs each broken member from the first good source, in this order, the root's own file a
    link should lead to, a copy renamed away beside it (C(libc.so.6.bak)), the root's package caches
    (C(/var/cache/apt/archives/libc6_*.deb); yum's C(/var/cache/yum/**/packages), dnf's
    C(/var/cache/dnf/*/packages), zypper's C(/var/cache/zypp/packages)) holding the installed version,
    the package file given in O(source). A restored file must match the digest its package database
    records (md5 for dpkg, the package's own algorithm, usually sha256, for rpm).
  - Every replaced file or link is first copied under O(backup_dir) inside the root; writes are
    atomic (temporary file in the same directory, fsync, rename) and keep the owner and mode of
    the file they replace. Offending configuration lines are commented out, never deleted.
  - It never runs a program of the root; rebuild the loader cache and run a smoke test afterwards
    (the glibc_restore role does both).
options:
  source:
    description:
      - A package file of the root's glibc (C(libc6_VERSION_ARCH.deb) or C(glibc-VERSION-RELEASE.ARCH.rpm))
        or a directory holding one, on the host running the module, used when the root has no good
        copy of a broken member. It must be the root's own glibc package, version and architecture;
        any other is refused. The file's own bytes say which kind it is, never its name.
    type: path
    default: ""
  repair:
    description: Repair what is found. When false the module only diagnoses and plans.
    type: bool
    default: true
extends_documentation_fragment:
  - lifeline.rescue.attributes
  - lifeline.rescue.target_root
  - lifeline.rescue.target_root.backup
attributes:
  check_mode:
    support: full
    details: Diagnoses and plans; changes nothing.
  diff_mode:
    support: full
    details: Each member to be changed, before and after.
seealso:
  - module: lifeline.rescue.glibc_audit
  - module: lifeline.rescue.rescue_attach
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Restore the glibc of a root mounted on a rescue system
  lifeline.rescue.glibc_restore:
    root: /mnt/sysimage
  register: restored

- name: Restore from a package file when the root has no good copy left
  lifeline.rescue.glibc_restore:
    root: /mnt/sysimage
    source: /srv/debs/libc6_2.36-9+deb12u4_amd64.deb
"""

RETURN = r"""
glibc:
  description: The glibc the root runs and how its files are laid out.
  returned: success and most failures
  type: dict
  sample:
    version: "2.36"
    machine: x86_64
    bits: 64
    interpreter: /lib64/ld-linux-x86-64.so.2
    libdir: /lib/x86_64-linux-gnu
    layout: soname files
    merged_usr: true
    package: libc6 2.36-9+deb12u4 amd64
    database: dpkg dpkg status /var/lib/dpkg/status
    digest: md5
    evidence: [12 of 12 system programs ask for /lib64/ld-linux-x86-64.so.2 (64-bit x86_64)]
members:
  description: How many members of the glibc family were checked.
  returned: success and most failures
  type: int
  sample: 23
findings:
  description: What was broken before the repair; each with path, problem, detail, line, renamed_away.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /lib/x86_64-linux-gnu/libc.so.6
      problem: missing
      detail: /lib/x86_64-linux-gnu/libc.so.6 is missing
      line: 0
      renamed_away: [/usr/lib/x86_64-linux-gnu/libc.so.6.bak]
actions:
  description:
    - The repair, one entry a changed path; action is relink, restore or disable (a configuration
      line commented out); source and origin say where the good content came from; digest is the
      recorded digest the restored file matched, algorithm its algorithm; backup is where the old one went.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /lib/x86_64-linux-gnu/libc.so.6
      action: restore
      source: renamed-away copy
      origin: /usr/lib/x86_64-linux-gnu/libc.so.6.bak
      before: missing
      after: file, md5 5f0c... (matches the package's record)
      digest: 5f0c...
      algorithm: md5
      backup: ""
      line: 0
seconds:
  description: Wall time of the diagnosis and the repair.
  returned: always
  type: float
  sample: 0.41
remaining:
  description: Findings left after the repair (empty when it worked; the same as findings in check mode).
  returned: always
  type: list
  elements: dict
  sample: []
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import diagnosis as glibc
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import repair as glibc_repair
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs


def argument_spec() -> dict:
    return {
        "root": {"type": "path", "required": True},
        "source": {"type": "path", "default": ""},
        "backup_dir": {"type": "str", "default": "/var/backups/lifeline"},
        "repair": {"type": "bool", "default": True},
    }


def diff_of(actions: list[glibc_repair.Action]) -> dict:
    return {
        "before_header": "glibc members before",
        "after_header": "glibc members after",
        "before": "".join(f"{a.path}: {a.before}\n" for a in actions),
        "after": "".join(f"{a.path}: {a.after or 'restored from ' + a.source}\n" for a in actions),
    }


def restore(module: AnsibleModule, root: str, result: dict) -> None:
    """Diagnose, plan and (unless checking) repair, filling ``result`` as it goes; raises FAILURES."""
    params = module.params
    diagnosis = glibc.diagnose(root)
    result.update(glibc=diagnosis.as_dict()["glibc"], members=len(diagnosis.members))
    result["findings"] = result["remaining"] = diagnosis.as_dict()["findings"]
    if not params["repair"] or not diagnosis.findings:
        return
    actions = glibc_repair.plan(root, diagnosis, params["source"])
    result["actions"] = [a.as_dict() for a in actions]
    result["changed"] = bool(actions)
    if module._diff:
        result["diff"] = diff_of(actions)
    if module.check_mode:
        return
    try:
        glibc_repair.apply(root, actions, params["backup_dir"])
    finally:
        result["actions"] = [a.as_dict() for a in actions]
    result["remaining"] = glibc.diagnose(root).as_dict()["findings"]


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    root = os.path.realpath(module.params["root"])
    result: dict = {"changed": False, "findings": [], "actions": [], "remaining": [], "seconds": 0.0}
    if refusal := rootfs.not_a_linux_root("root", module.params["root"], root):
        module.fail_json(msg=refusal, **result)
    start = time.monotonic()
    error = ""
    try:
        restore(module, root, result)
    except FAILURES as exc:
        error = str(exc)
    result["seconds"] = round(time.monotonic() - start, 3)
    if error:
        module.fail_json(msg=error, **result)
    if result["remaining"] and not module.check_mode and module.params["repair"]:
        module.fail_json(
            msg="the repair left findings: " + "; ".join(f["detail"] for f in result["remaining"]), **result
        )
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
