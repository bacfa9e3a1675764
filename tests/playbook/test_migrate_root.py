"""migrate-root through real playbook runs on this machine, where only the preflight may run.

The migration itself is proven on disposable containers (molecule/migrate_root); here the playbook
must report the blockers of a live system and change nothing: the target's bytes, the mount table
and the process holding a deleted file are compared before and after, by other means than the role.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

PLAYBOOK = "playbooks/migrate-root.yml"
MIB = 1 << 20


@pytest.fixture
def target(tmp_path):
    """A 64 MiB loop device backed by a file on /dev/shm (off /), detached at the end."""
    image = Path("/dev/shm") / f"lifeline-migrate-target-{tmp_path.name}.img"
    image.write_bytes(b"lifeline" * (8 * MIB // 8))
    with image.open("r+b") as handle:
        handle.truncate(64 * MIB)
    device = subprocess.run(
        ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)
        image.unlink()


@pytest.fixture
def deleted_but_open(tmp_path):
    """A process holding a file on / that was deleted: the preflight's first blocker."""
    held = tmp_path / "held.log"
    held.write_text("still open\n")
    holder = subprocess.Popen(
        ["sh", "-c", 'exec 3<"$1"; rm "$1"; echo ready; exec sleep 60', "sh", str(held)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "ready"
    yield holder.pid, str(held)
    holder.kill()
    holder.wait()


def digest(device: str) -> str:
    with open(device, "rb") as handle:
        return hashlib.sha256(handle.read(64 * MIB)).hexdigest()


def root_mount() -> list[str]:
    """The root's line of this process's mount table, without the mount id (fields 3 on)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[2:]
    raise AssertionError("no / in /proc/self/mountinfo")


def the_report(report_dir: Path) -> dict:
    [report] = report_dir.glob("migrate-root-*.json")
    return json.loads(report.read_text())


@pytest.mark.parametrize(
    ("cmdline", "allow", "result"),
    [
        pytest.param(
            "", False, "preflight only (root_migrate_allow_disruption is false)", marks=pytest.mark.smoke
        ),
        pytest.param("--check", True, "preflight only (check mode)", marks=pytest.mark.smoke),
    ],
    ids=["without the allow flag", "check mode with the allow flag"],
)
def test_the_preflight_reports_the_blockers_and_changes_nothing(
    run_playbook, tmp_path, target, deleted_but_open, cmdline, allow, result
):
    pid, held = deleted_but_open
    before = (digest(target), root_mount(), Path(f"/proc/{pid}/fd/3").readlink())

    run = run_playbook(
        PLAYBOOK,
        cmdline=cmdline,
        root_migrate_device=target,
        root_migrate_allow_disruption=allow,
        lifeline_report_dir=str(tmp_path / "reports"),
    )

    assert run.status == "successful", run.failures()
    assert run.changed() == []
    assert (digest(target), root_mount(), Path(f"/proc/{pid}/fd/3").readlink()) == before
    report = the_report(tmp_path / "reports")
    assert (report["result"], report["device"], report["steps"]) == (result, target, [])
    assert report["preflight"]["ready"] is False
    deleted = [
        b for b in report["preflight"]["blockers"] if b["kind"] == "deleted_open" and b["path"] == held
    ]
    assert [p["pid"] for p in deleted[0]["processes"]] == [pid], report["preflight"]["blockers"]
    assert report["preflight"]["facts"]["target"]["size_bytes"] == 64 * MIB
    assert report["copy"]["bytes_done"] == 0 and report["switch"]["steps"] == []


@pytest.mark.parametrize(
    ("device", "says"),
    [
        (None, "missing required arguments: root_migrate_device"),
        ("", 'root_migrate_device="": give the block device'),
        pytest.param(
            "vg0/root", 'root_migrate_device="vg0/root": give the block device', marks=pytest.mark.smoke
        ),
    ],
    ids=["no device", "an empty device", "a relative path"],
)
def test_a_wrong_device_is_refused_before_anything_runs(run_playbook, tmp_path, device, says):
    given = {} if device is None else {"root_migrate_device": device}
    run = run_playbook(
        PLAYBOOK, root_migrate_allow_disruption=True, lifeline_report_dir=str(tmp_path / "r"), **given
    )

    assert run.status == "failed"
    assert [m for m in run.failures() if says in m], run.failures()
    assert run.results("Check what keeps / from moving to " + (device or "")) == [], "the preflight ran"
    assert not (tmp_path / "r").exists()


VG = "lifeline_playbook_vg"


def test_preflight_only_with_a_volume_to_make_says_how_and_makes_nothing(run_playbook, tmp_path, target):
    before = digest(target)

    run = run_playbook(
        PLAYBOOK,
        root_migrate_device=f"/dev/{VG}/root",
        root_migrate_lvm={"vg": VG, "pvs": [target]},
        lifeline_report_dir=str(tmp_path / "reports"),
    )

    assert run.status == "successful", run.failures()
    assert run.changed() == []
    assert digest(target) == before
    lvm_sees = subprocess.run(["pvs", "--noheadings", target], capture_output=True, text=True)
    assert lvm_sees.returncode != 0, f"{target} became a physical volume: {lvm_sees.stdout}"
    report = the_report(tmp_path / "reports")
    assert report["volume"]["commands"] == [
        ["pvcreate", "--yes", target],
        ["vgcreate", "--yes", VG, target],
        ["lvcreate", "--yes", "--wipesignatures", "y", "--name", "root", "--extents", "100%FREE", VG],
    ]
    assert report["result"] == "preflight only (root_migrate_allow_disruption is false)"


def test_a_volume_on_a_device_holding_a_filesystem_is_refused_and_nothing_is_written(
    run_playbook, tmp_path, target
):
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "keepme", target], check=True)
    before = digest(target)

    run = run_playbook(
        PLAYBOOK,
        root_migrate_device=f"/dev/{VG}/root",
        root_migrate_lvm={"vg": VG, "pvs": [target]},
        root_migrate_allow_disruption=True,
        lifeline_report_dir=str(tmp_path / "reports"),
    )

    assert run.status == "failed"
    assert [m for m in run.failures() if f"Nothing was changed: {target} holds ext4" in m], run.failures()
    assert digest(target) == before
    assert run.results("Check what keeps / from moving to " + f"/dev/{VG}/root") == [], "the preflight ran"
    assert the_report(tmp_path / "reports")["result"].startswith("failed: Nothing was changed")


def test_a_volume_that_is_not_the_device_is_refused_before_anything_runs(run_playbook, tmp_path, target):
    run = run_playbook(
        PLAYBOOK,
        root_migrate_device=target,
        root_migrate_lvm={"vg": VG, "pvs": [target]},
        root_migrate_allow_disruption=True,
        lifeline_report_dir=str(tmp_path / "reports"),
    )

    assert run.status == "failed"
    says = f"root_migrate_device as the volume it makes (/dev/{VG}/root)"
    assert [m for m in run.failures() if says in m], run.failures()
    assert run.results(f"Make the logical volume {target}") == []
