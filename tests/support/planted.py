"""What the persistence tests plant into a root: plant() for files, links and their owners, the pieces
of incident 4 (a stock crontab, a hidden job and its payload, a unit), and found() to compare what a
scan flagged."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence

SYSUPDATE = b"#!/bin/sh\nwhile :; do sleep 60; done\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
STOCK_CRONTAB = (
    "SHELL=/bin/sh\n"
    "PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
    "17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
    "25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }\n"
)
HIDDEN_JOB = "*/3 * * * * root /usr/bin/.sysupdate\n"
UNIT = "[Unit]\nDescription=System update\n\n[Service]\nExecStart=/usr/bin/.sysupdate\n\n[Install]\n"
UNIT += "WantedBy=multi-user.target\n"
# NUL blocks like those in incident 4's /etc/crontab, and the job line one of them split.
NULS = b"\0" * 2048
MINUTE = b"* * * * * root date >> /var/tmp/lifeline-minute.log\n"


@dataclass(frozen=True)
class Link:
    target: str


def plant(root: Path, path: str, content: str | bytes | Link, mode: int = 0o644, owner: int = 0) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Link):
        os.symlink(content.target, target)
        return
    target.write_bytes(content.encode() if isinstance(content, str) else content)
    os.chown(target, owner, owner)
    os.chmod(target, mode)


def found(result: persistence.Scan) -> set[tuple[str, str, str, int | None]]:
    """The findings, but the accounts listed for review (info): the accounts' own tests check those."""
    return {
        (f.rule.id, f.item.kind, f.item.file.path, f.item.line)
        for f in result.findings
        if not (f.item.kind == "account" and f.rule.severity == "info")
    }
