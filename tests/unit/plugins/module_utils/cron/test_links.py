"""Links in cron locations: reported as links (where they lead, whose file that is, whether cron
opens a crontab through them) and never written through, on Debian's cron and cronie roots."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import files as cron_files
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import repair as crontab_repair
from ansible_collections.lifeline.rescue.plugins.module_utils.target import safewrite
from ansible_collections.lifeline.rescue.plugins.modules import crontab_repair as crontab_repair_module

from support.trees import debian_tree

SHADOW = b"root:$y$j9T$lifelinetestsalt$notarealhashnotarealhashnotarealhash:19700:0:99999:7:::\n"
VALID = b"SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n"
NUL_FILLED = VALID + b"\0" * 512 + b"25 6 * * * root true\n"


def make_root(tmp_path: Path, *, cronie: bool = False) -> Path:
    """A small root with accounts, a shadow file and, for cronie, cronie's daemon and Red Hat spool."""
    root = tmp_path / "root"
    for directory in ("etc/cron.d", "etc/cron.daily", "var/spool/cron/crontabs", "var/log", "usr/sbin"):
        (root / directory).mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n"
    )
    (root / "etc/group").write_text("root:x:0:\ncrontab:x:101:\nshadow:x:42:\nalice:x:1000:\n")
    write(root / "etc/shadow", SHADOW, 0o640, (0, 42))
    write(root / "etc/crontab", VALID)
    if cronie:
        shutil.rmtree(root / "var/spool/cron/crontabs")
        write(root / "usr/sbin/crond", b"\x7fELF", 0o755)
    return root


def write(path: Path, data: bytes, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> Path:
    path.write_bytes(data)
    os.chown(path, *owner)
    os.chmod(path, mode)
    return path


def audited(root: Path) -> dict[str, cron_files.CronFile]:
    return {f.path: f for f in cron_files.audit(str(root))}


def plans_for(root: Path) -> list[crontab_repair.FilePlan]:
    reader = cron_files.reader_of(str(root))
    found = [crontab_repair.plan(str(root), f, reader) for f in cron_files.audit(str(root))]
    return [p for p in found if p is not None]


def kernel_facts(path: Path) -> tuple[bytes, int, int, int, int, int]:
    st = path.lstat()
    return path.read_bytes(), st.st_ino, st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns


@pytest.mark.parametrize("target", ["/etc/shadow", "../shadow"])
def test_a_cron_d_link_to_shadow_is_a_finding_never_read_as_a_crontab(tmp_path, target):
    root = make_root(tmp_path)
    before = kernel_facts(root / "etc/shadow")
    os.symlink(target, root / "etc/cron.d/evil")
    evil = audited(root)["/etc/cron.d/evil"]
    assert evil.link is not None
    assert (evil.link.leads_to, evil.link.state, evil.link.not_a_crontab) == ("/etc/shadow", "file", True)
    assert evil.link.owners == []
    assert evil.link.cron_follows is True  # Debian's cron follows a root-owned link in cron.d
    assert evil.data is None and evil.lines == []  # shadow's lines are never read as crontab lines
    assert not evil.healthy and not evil.cron_reads
    shown = evil.as_dict()
    assert shown["not_a_crontab"].startswith(
        "/etc/cron.d/evil: a link to /etc/shadow, which is not a crontab"
    )
    assert "rm /etc/cron.d/evil" in shown["not_a_crontab"]
    assert b"lifelinetestsalt" not in repr(shown).encode()
    assert plans_for(root) == []
    assert crontab_repair_module.remaining_of(list(audited(root).values())) == [shown["not_a_crontab"]]
    assert kernel_facts(root / "etc/shadow") == before
    assert os.readlink(root / "etc/cron.d/evil") == target


def test_a_link_to_a_package_file_names_its_package_as_dpkg_query_does(tmp_path):
    root = make_root(tmp_path)
    tree = debian_tree("bookworm")
    shutil.copytree(tree / "var/lib/dpkg", root / "var/lib/dpkg", symlinks=True)
    shutil.copy2(tree / "etc/cron.daily/dpkg", root / "etc/cron.daily/dpkg")
    os.symlink("../cron.daily/dpkg", root / "etc/cron.d/dpkg")
    found = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-S", "/etc/cron.daily/dpkg"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    link = audited(root)["/etc/cron.d/dpkg"].link
    assert link is not None and link.not_a_crontab
    assert link.owners == [found.split(":")[0]] == ["dpkg"]
    assert "owned by package dpkg" in link.finding("/etc/cron.d/dpkg")


def test_a_link_to_a_valid_crontab_in_another_cron_location_is_a_crontab_and_left_a_link(tmp_path):
    root = make_root(tmp_path)
    os.symlink("/etc/crontab", root / "etc/cron.d/system")
    checked = audited(root)["/etc/cron.d/system"]
    assert checked.link is not None
    assert (checked.link.leads_to, checked.link.crontab, checked.link.not_a_crontab) == (
        "/etc/crontab",
        True,
        False,
    )
    assert checked.healthy and checked.jobs == 1
    assert plans_for(root) == []


def test_a_damaged_crontab_behind_a_link_is_repaired_at_its_own_path_only(tmp_path):
    root = make_root(tmp_path)
    write(root / "etc/crontab", NUL_FILLED)
    os.symlink("/etc/crontab", root / "etc/cron.d/system")
    plans = plans_for(root)
    assert [p.path for p in plans] == ["/etc/crontab"]
    crontab_repair.apply(str(root), plans, "/var/backups/lifeline")
    assert os.readlink(root / "etc/cron.d/system") == "/etc/crontab"
    assert b"\0" not in (root / "etc/crontab").read_bytes()
    assert all(f.healthy for f in audited(root).values())


def test_a_dangling_link_a_loop_and_a_link_out_of_the_root_say_what_they_are(tmp_path, deadline):
    root = make_root(tmp_path)
    outside = tmp_path / "outside"
    outside.write_bytes(VALID)
    os.symlink("/etc/cron.d/nowhere-at-all", root / "etc/cron.d/dangling")
    os.symlink("loop2", root / "etc/cron.d/loop1")
    os.symlink("loop1", root / "etc/cron.d/loop2")
    os.symlink("../../../outside", root / "etc/cron.d/escape")
    with deadline(5):
        checked = audited(root)
    states = {path: checked[path].link.state for path in checked if checked[path].link is not None}
    assert states == {
        "/etc/cron.d/dangling": "dangling",
        "/etc/cron.d/loop1": "loop",
        "/etc/cron.d/loop2": "loop",
        "/etc/cron.d/escape": "out of the root",
    }
    remaining = crontab_repair_module.remaining_of(list(checked.values()))
    assert any(r.startswith("/etc/cron.d/dangling: a dangling link") for r in remaining), remaining
    assert any(r.startswith("/etc/cron.d/loop1: a link loop") for r in remaining), remaining
    assert any(r.startswith("/etc/cron.d/escape: a link out of the root") for r in remaining), remaining
    assert plans_for(root) == []
    assert outside.read_bytes() == VALID


def test_a_user_crontab_link_is_not_opened_by_debian_cron_and_is_by_cronie(tmp_path):
    debian = make_root(tmp_path / "debian")
    os.symlink("/etc/shadow", debian / "var/spool/cron/crontabs/alice")
    link = audited(debian)["/var/spool/cron/crontabs/alice"].link
    assert link is not None and link.not_a_crontab and link.cron_follows is False
    assert "Debian's cron does not open a crontab through a link here" in link.finding("x")

    cronie = make_root(tmp_path / "cronie", cronie=True)
    os.symlink("/etc/shadow", cronie / "var/spool/cron/alice")
    link = audited(cronie)["/var/spool/cron/alice"].link
    assert link is not None and link.not_a_crontab and link.cron_follows is True
    assert "cronie opens it through the link" in link.finding("x")
    for root in (debian, cronie):
        assert plans_for(root) == []
        assert (root / "etc/shadow").read_bytes() == SHADOW


def test_a_spool_link_to_a_valid_crontab_elsewhere_in_the_spool_is_refused_by_debian_cron(tmp_path):
    root = make_root(tmp_path)
    write(root / "var/spool/cron/crontabs/root", b"0 1 * * * true\n", 0o600)
    os.symlink("root", root / "var/spool/cron/crontabs/alice")
    alice = audited(root)["/var/spool/cron/crontabs/alice"]
    assert alice.link is not None and alice.link.crontab and not alice.link.not_a_crontab
    assert any("CAN'T OPEN" in rule for rule in alice.rules)
    # The link is never rewritten, nor its owner changed (root's own crontab gets its group crontab).
    assert [p.path for p in plans_for(root)] == ["/var/spool/cron/crontabs/root"]


def test_the_incident_never_claims_another_writer_and_changes_nothing(tmp_path):
    """A plan made for the link as the old repair made it: the compare-and-swap says what it is."""
    root = make_root(tmp_path)
    os.symlink("/etc/shadow", root / "etc/cron.d/evil")
    before = kernel_facts(root / "etc/shadow")
    shadow_host = str(root / "etc/shadow")
    stale = crontab_repair.FilePlan(
        path="/etc/cron.d/evil",
        kind=cron_files.CRON_D,
        before=SHADOW,
        after=b"# lifeline-invalid (bad minute): " + SHADOW,
        mode=0o100640,
        uid=0,
        gid=42,
        new_mode=0o640,
        new_uid=0,
        new_gid=42,
        read_from=safewrite.ReadFrom.of(shadow_host),
    )
    with pytest.raises(safewrite.WriteError) as refused:
        crontab_repair.apply(str(root), [stale], "/var/backups/lifeline")
    assert "another writer" not in str(refused.value)
    assert "symbolic link to /etc/shadow" in str(refused.value)
    assert kernel_facts(root / "etc/shadow") == before
    assert os.readlink(root / "etc/cron.d/evil") == "/etc/shadow"
