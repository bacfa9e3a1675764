"""rescue_mount through real playbook runs on real Debian roots and on hostile ones."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from support.roots import mounts_under

STATE_DIR = Path("/run/lifeline/attachments")


def _hostile_root(tmp_path: Path) -> Path:
    """A root whose etc/os-release climbs out of it, and whose usr/lib/os-release does not exist."""
    root = tmp_path / "hostile"
    (root / "etc").mkdir(parents=True)
    (root / "usr" / "lib").mkdir(parents=True)
    os.symlink("../../../../../../../../etc/os-release", root / "etc" / "os-release")
    (root / "etc" / "fstab").write_text("")
    return root


def test_inspect_a_real_debian_root(run_playbook, debian_tree):
    run = run_playbook("playbooks/inspect-target.yml", target_root=str(debian_tree))
    assert run.status == "successful", run.failures()
    [attached] = run.results("Attach the broken system and find its root")
    # The oracle: the tree's own os-release, parsed by a shell.
    version = os.popen(f". {debian_tree}/etc/os-release; echo $VERSION_CODENAME").read().strip()
    assert attached["os_release"]["VERSION_CODENAME"] == version == debian_tree.name
    assert attached["kind"] == "root"
    assert attached["steps"] == []
    assert mounts_under(debian_tree) == []


def test_chroot_step_gets_api_filesystems_and_they_go_away(run_playbook, debian_tree):
    run = run_playbook("chroot-in-target.yml", target_root=str(debian_tree))
    assert run.status == "successful", run.failures()
    [chrooted] = run.results("Run the target's own shell in a chroot (it needs the target's libc and /proc)")
    assert chrooted["stdout"].strip() == (debian_tree / "etc" / "debian_version").read_text().strip()
    [seen] = run.results("Read the mounts while attached")
    points = {line.split()[4] for line in base64.b64decode(seen["content"]).decode().splitlines()}
    for inside in ("dev", "dev/pts", "proc", "sys", "run"):
        assert f"{debian_tree}/{inside}" in points
    assert mounts_under(debian_tree) == []
    assert not (STATE_DIR / (str(debian_tree).strip("/").replace("/", "-") + ".json")).exists()


def test_a_failed_step_between_attach_and_detach_still_detaches(run_playbook, debian_tree):
    run = run_playbook("chroot-in-target.yml", target_root=str(debian_tree), fail_on_purpose=True)
    assert run.status == "failed"
    assert run.failures() == ["failed on purpose"]
    [detached] = run.results("Detach the broken system, newest step first")
    assert len(detached["undone"]) == 5
    assert mounts_under(debian_tree) == []


def test_hostile_os_release_is_never_read_from_the_rescuer(run_playbook, tmp_path):
    root = _hostile_root(tmp_path)
    run = run_playbook("playbooks/inspect-target.yml", target_root=str(root))
    assert run.status == "successful", run.failures()
    [attached] = run.results("Attach the broken system and find its root")
    assert attached["os_release"] == {}


def test_refuses_the_rescuers_own_root(run_playbook):
    run = run_playbook("playbooks/inspect-target.yml", target_root="/")
    assert run.status == "failed"
    assert any("this rescuer's own running root" in msg for msg in run.failures())


def test_refuses_a_directory_that_is_not_a_linux_root(run_playbook, tmp_path):
    (tmp_path / "empty").mkdir()
    run = run_playbook("playbooks/inspect-target.yml", target_root=str(tmp_path / "empty"))
    assert run.status == "failed"
    assert any(
        "does not look like a Linux root" in msg and "no /etc directory" in msg for msg in run.failures()
    )


def test_refuses_conflicting_targets(run_playbook, tmp_path):
    run = run_playbook("playbooks/inspect-target.yml", target_root=str(tmp_path), target_image="/x.img")
    assert run.status == "failed"
    assert any("target_root and target_image" in msg for msg in run.failures())


def test_live_mode_attaches_nothing(run_playbook):
    run = run_playbook("playbooks/inspect-target.yml")
    assert run.status == "successful", run.failures()
    [attached] = run.results("Attach the broken system and find its root")
    assert attached["live"] is True
    assert attached["root"] == "/"
    assert attached["steps"] == []
