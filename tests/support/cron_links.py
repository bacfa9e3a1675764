"""What lifeline's audit says about a link an oracle lane planted: the same link, with its target,
laid out in a small root of the same cron, and read by cron/files.py."""

from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.lifeline.rescue.plugins.module_utils.cron import files as cron_files

from support.cron_oracle import Planted


def audited_link(item: Planted, target: Planted, tmp: Path, *, cronie: bool) -> cron_files.LinkFacts:
    """The LinkFacts the audit gives for ``item`` (a planted symlink to ``target``) on a root of
    Debian's cron or cronie, with the Red Hat spool for cronie as the oracle plants it."""
    root = tmp / "root"
    for directory in ("etc/cron.d", "var/spool/cron/crontabs", "usr/sbin"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    user = os.path.basename(item.path)
    (root / "etc/passwd").write_text(
        f"root:x:0:0::/root:/bin/sh\n{user}:x:{item.link_uid or 0}:0::/:/bin/sh\n"
    )
    if cronie:
        (root / "var/spool/cron/crontabs").rmdir()
        (root / "usr/sbin/crond").write_bytes(b"\x7fELF")
        (root / "usr/sbin/crond").chmod(0o755)
    (root / target.path.lstrip("/")).write_bytes(target.data)
    link = root / item.path.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(item.target, link)
    os.lchown(link, item.link_uid or 0, 0)
    (found,) = [f for f in cron_files.audit(str(root)) if f.path == item.path]
    assert found.link is not None, f"{item.path} was not seen as a link"
    return found.link
