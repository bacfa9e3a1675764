"""repair-crontab on a copy of a real Debian root where /etc/cron.d holds a link to /etc/shadow.

The shadow file is checked byte for byte and by inode against what it was before the run, and the
link against os.readlink: never through the code under test.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from support.playbooks import report_of
from support.trees import TREES

PLAYBOOK = "playbooks/repair-crontab.yml"


def facts_of(path: Path) -> tuple[str, int, int, int, int, int]:
    """sha256, inode, mode, owner, group and mtime (ns) of a file, as the kernel shows them."""
    st = path.lstat()
    return (
        hashlib.sha256(path.read_bytes()).hexdigest(),
        st.st_ino,
        st.st_mode,
        st.st_uid,
        st.st_gid,
        st.st_mtime_ns,
    )


@pytest.mark.parametrize("target", ["/etc/shadow", "../shadow"], ids=["absolute", "relative"])
def test_a_cron_d_link_to_shadow_is_reported_as_a_link_and_never_written(run_playbook, tmp_path, target):
    root = tmp_path / "bookworm"
    subprocess.run(["cp", "-a", str(TREES / "bookworm"), str(root)], check=True)
    shadow = root / "etc/shadow"
    before = facts_of(shadow)
    os.symlink(target, root / "etc/cron.d/evil")

    run = run_playbook(PLAYBOOK, target_root=str(root), lifeline_report_dir=str(tmp_path / "r"))

    # The link needs a hand: the run says so, as what it is, and claims no other writer.
    assert run.status == "failed"
    failures = " ".join(run.failures())
    assert "another writer" not in failures, failures
    assert "/etc/cron.d/evil: a link to /etc/shadow, which is not a crontab" in failures, failures
    assert "rm /etc/cron.d/evil" in failures, failures
    # Nothing was written: shadow is the same file with the same bytes, the link is still the link.
    assert facts_of(shadow) == before
    assert os.readlink(root / "etc/cron.d/evil") == target
    assert not list((root / "var/backups").glob("lifeline*/**/shadow"))

    report = report_of(tmp_path / "r", "repair-crontab")
    assert report["result"].startswith("failed: ") and "another writer" not in report["result"]
    (evil,) = [f for f in report["found"]["crontabs"] if f["path"] == "/etc/cron.d/evil"]
    assert evil["link"]["leads_to"] == "/etc/shadow"
    assert evil["link"]["not_a_crontab"] is True
    assert evil["link"]["owners"] == []  # dpkg-query -S /etc/shadow: no package owns it
    assert evil["lines"] == [] and evil["size"] is None  # shadow's lines never reach the report
    assert report["actions"]["crontabs"] == []
    # No line of shadow (its password hashes) anywhere in the report.
    [written] = (tmp_path / "r").glob("repair-crontab-*.json")
    text = written.read_text()
    assert not [line for line in shadow.read_text().splitlines() if line in text]
