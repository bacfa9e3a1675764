#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check every crontab of a root the way cron reads it, and collect the cron errors already logged."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: crontab_audit
short_description: Find the crontab lines and files cron refuses, and the cron errors already logged
version_added: "0.1.0"
description:
  - Reads every crontab of a Linux root, C(/etc/crontab), C(/etc/cron.d/*), the users' crontabs
    (C(/var/spool/cron/crontabs/USER) on Debian, C(/var/spool/cron/USER) on Red Hat) and
    C(/etc/anacrontab), inside the root (links are never followed out of it), and checks each the
    way cron does, with cron's own error words (C(bad minute), C(bad hour), C(bad day-of-month),
    C(bad month), C(bad day-of-week), C(bad username), C(bad command)).
  - The cron is the one the root has, Debian's cron (each release's reading) or cronie, the cron of
    the Red Hat family (found by its package, its daemon C(/usr/sbin/crond) or its spool); its own
    rules decide every verdict (cronie skips a refused line and reads the rest of the file, skips
    C(.rpmnew), C(.rpmsave) and C(.rpmorig) files in cron.d and reads names holding a dot).
  - Reports, per file, what makes cron refuse or ignore the whole file (owner, mode, a cron.d name
    holding a dot, a last line without a newline), the stray bytes (NUL runs, CR, other control
    bytes, invalid UTF-8, each with line and byte offset) and every line cron refuses.
  - With O(read_logs), also collects the errors cron has already logged in the root's syslog and cron
    logs, rotated and gzipped ones included, and in its systemd journal (read with the rescuer's
    C(journalctl); a host without rsyslog keeps them there only).
  - A crontab location that is a symbolic link is reported as a link (C(link)), with where it leads inside
    the root, its state (file, dangling, loop, out of the root), the packages that own what it leads
    to, whether that is a crontab location, and whether the installed cron opens a crontab through
    such a link. A link to a file that is not a crontab is a finding of its own (C(not_a_crontab)),
    and that file is not read.
  - Reads only; it never changes anything.
options:
  read_logs:
    description:
      - Collect the cron errors from C(/var/log/syslog*), C(/var/log/cron*), C(/var/log/messages*),
        C(/var/log/daemon.log*) and the journal in C(/var/log/journal).
    type: bool
    default: true
extends_documentation_fragment:
  - lifeline.rescue.command_timeout
  - lifeline.rescue.attributes
  - lifeline.rescue.target_root
  - lifeline.rescue.attributes.read_only
seealso:
  - module: lifeline.rescue.crontab_repair
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Check the crontabs of a root mounted on a rescue system
  lifeline.rescue.crontab_audit:
    root: /mnt/sysimage
  register: crontabs

- name: Check the running host's crontabs without reading its logs
  lifeline.rescue.crontab_audit:
    root: /
    read_logs: false
"""

RETURN = r"""
healthy:
  description: True when cron reads every crontab whole, without a refused line or a stray byte.
  returned: always
  type: bool
  sample: false
files:
  description:
    - One entry per crontab; rules are whole-file problems, bytes the stray bytes, lines the lines
      cron refuses (line number, cron's error, the line shown with control bytes escaped).
    - link is null unless the path is a symbolic link; then it holds target (as written), leads_to
      (inside the root, empty when it leads nowhere), state (file, dangling, loop, out of the root,
      not a regular file), link_uid, owners (the packages listing what it leads to), crontab
      (whether that is a crontab location), not_a_crontab and cron_follows (whether the installed
      cron opens a crontab through such a link). not_a_crontab is the finding in words.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /etc/crontab
      kind: crontab
      user: ""
      size: 1290
      mode: "0644"
      uid: 0
      gid: 0
      sha256: 3f1c...
      unreadable: ""
      link: null
      not_a_crontab: ""
      rules: []
      bytes: [{kind: nul, line: 12, offset: 733, column: 0, length: 512}]
      lines: [{line: 12, error: bad minute, text: "\\x00\\x00...", notes: []}]
      jobs: 4
      healthy: false
logged_errors:
  description:
    - The cron errors found in the root's logs, oldest log file first, then the journal's (log
      C(journal:/var/log/journal), line the entry's place among cron's entries read, timestamp in
      UTC). since_last_change is false
      for an error logged before its crontab last changed (history, such as the errors a repair
      fixed), true after, null when the time or the crontab is unknown.
  returned: always
  type: list
  elements: dict
  sample:
    - log: /var/log/syslog.1
      line: 2041
      timestamp: "Nov 22 03:12:01"
      kind: bad minute
      crontab: /etc/crontab
      message: "Error: bad minute; while reading /etc/crontab"
      since_last_change: false
summary:
  description: Counts over every file.
  returned: always
  type: dict
  sample:
    files: 5
    jobs: 9
    refused_lines: 2
    stray_bytes: 3
    file_problems: 1
    unreadable: 0
    not_crontabs: 0
    logged_errors: 14
    logged_since_last_change: 0
seconds:
  description: Wall time of the check.
  returned: always
  type: float
  sample: 0.02
"""

import dataclasses
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import files as cron_files
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import logs as cron_logs
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import (
    TIME_LIMIT_OPTION,
    module_runner,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs


def argument_spec() -> dict:
    return {
        "root": {"type": "path", "required": True},
        "read_logs": {"type": "bool", "default": True},
        **TIME_LIMIT_OPTION,
    }


def logged_dicts(checked: list[cron_files.CronFile], logged: list[cron_logs.LoggedError]) -> list[dict]:
    """The logged errors, each saying whether it came after its crontab last changed (None: unknown);
    an error from before a repair is history, not a sign that the repair failed."""
    changed = {f.path: f.mtime for f in checked if f.mtime}
    now = time.time()
    found = []
    for error in logged:
        when = cron_logs.seconds_of(error.timestamp, time.localtime(now).tm_year)
        if when is not None and when > now + 86400:  # a traditional timestamp from last December
            when = cron_logs.seconds_of(error.timestamp, time.localtime(now).tm_year - 1)
        mtime = changed.get(error.crontab)
        since = None if when is None or mtime is None else when >= mtime
        found.append({**dataclasses.asdict(error), "since_last_change": since})
    return found


def summary_of(checked: list[cron_files.CronFile], logged: list[dict]) -> dict:
    return {
        "files": len(checked),
        "jobs": sum(f.jobs for f in checked),
        "refused_lines": sum(len(f.lines) for f in checked),
        "stray_bytes": sum(len(f.bytes) for f in checked),
        "file_problems": sum(len(f.rules) for f in checked),
        "unreadable": sum(1 for f in checked if f.unreadable),
        "not_crontabs": sum(1 for f in checked if f.link is not None and f.link.not_a_crontab),
        "logged_errors": len(logged),
        "logged_since_last_change": sum(1 for e in logged if e["since_last_change"] is not False),
    }


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    root = os.path.realpath(module.params["root"])
    if refusal := rootfs.not_a_linux_root("root", module.params["root"], root):
        module.fail_json(msg=refusal)
    start = time.monotonic()
    checked = cron_files.audit(root)
    found = []
    if module.params["read_logs"]:
        found = cron_logs.scan_logs(root) + cron_logs.scan_journal(
            root, module_runner(module, module.params["command_timeout"])
        )
    logged = logged_dicts(checked, found)
    module.exit_json(
        changed=False,
        healthy=all(f.healthy for f in checked),
        files=[f.as_dict() for f in checked],
        logged_errors=logged,
        summary=summary_of(checked, logged),
        seconds=round(time.monotonic() - start, 3),
    )


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
