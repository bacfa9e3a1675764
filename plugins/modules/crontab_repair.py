#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repair the crontabs of a root without losing a valid line."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crontab_repair
short_description: Repair corrupted crontabs so that cron reads them whole, losing no valid line
version_added: "0.1.0"
description:
  - Repairs every crontab of a Linux root that cron refuses in part or whole (the files
    M(lifeline.rescue.crontab_audit) checks). Every line cron accepts is kept byte for byte and in
    order. NUL runs and other stray bytes are removed, so that a job whose line was only polluted
    comes back whole, and two lines glued together where the garbage overwrote a newline come back
    as two lines. A line that stays invalid is commented out with a C(# lifeline-invalid (ERROR))
    marker, never dropped. Each verdict is the installed cron's, Debian's cron or cronie (the Red
    Hat family's), so on a cronie root a line only Debian's cron would refuse is kept.
  - Fixes what makes cron refuse a whole file, the owner, group- or other-writable modes, a missing
    last newline. A cron.d file cron ignores because its name holds a dot is reported with the name
    cron would read; O(rename_cron_d) renames it (names that switch a file off, such as
    C(.dpkg-old) or C(.disabled), are never renamed).
  - With O(system_crontab), C(/etc/crontab) becomes exactly that text (the declared jobs win over a
    salvage); the lines of the old file that it leaves out are listed.
  - Each changed file is copied into O(backup_dir) first, then replaced atomically under its lock, and
    only if it is still the file that was read and holds what was read; a concurrent writer stops the
    repair of that file with an error instead of interleaving with it.
  - Nothing is ever written through a symbolic link. A link in a cron location that leads to
    another crontab location is left as it is (that crontab is repaired at its own path); a link to
    a file that is not a crontab (such as C(/etc/shadow)), a dangling link, a loop or a link out of
    the root is reported in RV(remaining) as what it is, with the step to take, and left alone.
options:
  system_crontab:
    description:
      - The whole content C(/etc/crontab) must have; every line must be one cron accepts. Omit it
        to salvage the file instead.
    type: str
  rename_cron_d:
    description:
      - Rename cron.d files cron ignores because of their name to a name cron reads.
    type: bool
    default: false
extends_documentation_fragment:
  - lifeline.rescue.attributes
  - lifeline.rescue.target_root
  - lifeline.rescue.target_root.backup
attributes:
  check_mode:
    support: full
    details: Plans the repair and returns it, with a diff, and changes nothing.
  diff_mode:
    support: full
seealso:
  - module: lifeline.rescue.crontab_audit
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Repair the crontabs of a root mounted on a rescue system
  lifeline.rescue.crontab_repair:
    root: /mnt/sysimage
  register: repaired

- name: Put back the declared system crontab and make ignored cron.d files readable again
  lifeline.rescue.crontab_repair:
    root: /
    system_crontab: |
      SHELL=/bin/sh
      17 * * * * root cd / && run-parts --report /etc/cron.hourly
    rename_cron_d: true
"""

RETURN = r"""
files:
  description:
    - One entry per crontab that needed (or needs, in check mode) a change or has a rename to offer.
      mode and owner are [before, after]; lines are the line actions (cleaned, split, commented,
      removed, newline, replaced, dropped) with the line as it was and as it is now.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /etc/crontab
      kind: crontab
      changed: true
      content_changed: true
      mode: ["0664", "0644"]
      owner: ["0:0", "0:0"]
      lines:
        - line: 12
          action: cleaned
          reason: garbage bytes removed
          before: "*/5 * * * * root /usr/local/bin/ba\\x00\\x00ckup"
          after: "*/5 * * * * root /usr/local/bin/backup"
      rename_offered: ""
      renamed_to: ""
      backup: /var/backups/lifeline/20261122T031500/etc/crontab
remaining:
  description: The crontabs cron still does not read whole after the repair (paths and why).
  returned: always
  type: list
  elements: str
  sample:
    - "/etc/cron.d/backup.sh: ignored by Debian cron: a file name in /etc/cron.d holding a dot is skipped"
seconds:
  description: Wall time of the plan and the repair.
  returned: always
  type: float
  sample: 0.03
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import files as cron_files
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import repair as crontab_repair
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.target import report_text, rootfs


def argument_spec() -> dict:
    return {
        "root": {"type": "path", "required": True},
        "backup_dir": {"type": "str", "default": "/var/backups/lifeline"},
        "system_crontab": {"type": "str"},
        "rename_cron_d": {"type": "bool", "default": False},
    }


def _shown(data: bytes) -> str:
    return "".join(
        report_text.shown(line) + "\n" for line in data.decode("utf-8", "surrogateescape").splitlines()
    )


def diff_of(plans: list[crontab_repair.FilePlan]) -> list[dict]:
    return [
        {
            "before_header": f"{p.path} (mode {p.mode & 0o7777:04o}, owner {p.uid}:{p.gid})",
            "after_header": f"{p.rename_to if p.rename else p.path} "
            f"(mode {p.new_mode:04o}, owner {p.new_uid}:{p.new_gid})",
            "before": _shown(p.before),
            "after": _shown(p.after),
        }
        for p in plans
        if p.changed
    ]


def remaining_of(checked: list[cron_files.CronFile]) -> list[str]:
    left = []
    for one in checked:
        if one.healthy:
            continue
        # A link is reported as the link it is (where it leads, what cron does, what to do).
        reasons = [one.link.finding(one.path)] if one.link is not None else []
        reasons += [one.unreadable] if one.unreadable and one.link is None else []
        reasons += one.rules + [f"line {f.line}: {f.error}" for f in one.lines]
        reasons += [f"{b.kind} bytes at line {b.line}" for b in one.bytes if b.kind != "utf8"]
        left.append(
            "; ".join(r if r.startswith(one.path + ":") else f"{one.path}: {r}" for r in reasons if r)
        )
    return left


def repair(module: AnsibleModule, root: str, result: dict) -> None:
    params = module.params
    reader = cron_files.reader_of(root)
    plans = []
    for checked in cron_files.audit(root):
        one = crontab_repair.plan(
            root, checked, reader, baseline=params["system_crontab"], rename_cron_d=params["rename_cron_d"]
        )
        if one is not None:
            plans.append(one)
    result["files"] = [p.as_dict() for p in plans]
    result["changed"] = any(p.changed for p in plans)
    if module._diff:
        result["diff"] = diff_of(plans)
    if module.check_mode:
        result["remaining"] = remaining_of(cron_files.audit(root))
        return
    try:
        crontab_repair.apply(root, plans, params["backup_dir"])
    finally:
        result["files"] = [p.as_dict() for p in plans]
    result["remaining"] = remaining_of(cron_files.audit(root))


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    root = os.path.realpath(module.params["root"])
    result: dict = {"changed": False, "files": [], "remaining": [], "seconds": 0.0}
    if refusal := rootfs.not_a_linux_root("root", module.params["root"], root):
        module.fail_json(msg=refusal)
    start = time.monotonic()
    error = ""
    try:
        repair(module, root, result)
    except FAILURES as exc:
        error = str(exc)
    result["seconds"] = round(time.monotonic() - start, 3)
    if error:
        module.fail_json(msg=error, **result)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
