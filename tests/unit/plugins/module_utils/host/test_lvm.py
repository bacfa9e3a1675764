"""lvm.plan_volume against the real LVM tools on loop devices.

This machine's kernel has no device-mapper, so nothing is activated here: pvcreate and vgcreate
run for real (they only write metadata), lvcreate only in the VM lane. The tools see only the
test's loop devices (a --config filter), never a volume group of the machine's.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host import lvm
from ansible_collections.lifeline.rescue.plugins.module_utils.host.disks import DiskError
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner, ToolError

from support.runners import sh, tool_runner

LVM_TOOLS = {"pvs", "vgs", "lvs", "pvcreate", "vgcreate", "lvcreate", "vgremove", "pvremove"}


@pytest.fixture
def loops(tmp_path):
    """Blank loop devices, and a runner whose LVM tools see only them."""
    made: list[str] = []

    def make(count: int = 1) -> list[str]:
        for index in range(count):
            image = tmp_path / f"disk{len(made)}-{index}.img"
            with open(image, "wb") as handle:
                handle.truncate(64 << 20)
            made.append(sh("losetup", "--find", "--show", str(image)).stdout.strip())
        return made[-count:]

    yield make
    config = only(made) if made else ""
    for vg in sh("vgs", "--noheadings", "-o", "vg_name", "--config", config, check=False).stdout.split():
        sh("vgremove", "--force", "--config", config, vg, check=False)
    for device in made:
        sh("pvremove", "--force", "--force", "--yes", "--config", config, device, check=False)
        sh("losetup", "--detach", device, check=False)


def only(devices: list[str]) -> str:
    return lvm.only_devices_config(devices) + " activation { udev_sync = 0 udev_rules = 0 }"


def runner(devices: list[str]) -> Runner:
    """The real tools; the LVM ones see only ``devices``."""
    return tool_runner(extra=lambda argv: ["--config", only(devices)] if argv[0] in LVM_TOOLS else [])


VG = f"lifeline_test_{os.getpid()}"


def test_a_blank_device_is_planned_as_pv_vg_and_lv_and_the_plan_runs(loops):
    (disk,) = loops()
    run = runner([disk])
    plan = lvm.plan_volume(run, VG, "root", [disk])
    assert not plan.exists and plan.device == f"/dev/{VG}/root"
    assert plan.commands == [
        ["pvcreate", "--yes", disk],
        ["vgcreate", "--yes", VG, disk],
        ["lvcreate", "--yes", "--wipesignatures", "y", "--name", "root", "--extents", "100%FREE", VG],
    ]
    for argv in plan.commands[:2]:  # lvcreate would activate the volume: no device-mapper here
        run(argv)
    again = lvm.plan_volume(run, VG, "root", [disk], "1G")
    assert again.commands == [
        ["lvcreate", "--yes", "--wipesignatures", "y", "--name", "root", "--size", "1G", VG]
    ]
    assert again.notes == [f"volume group {VG} exists: the volume is made in its free space"]


def test_a_group_is_renamed_back_while_the_host_has_one_of_that_name(loops):
    """The rescuer's own vg0 has /dev/vg0, which stops a plain vgrename of its patient's group back."""
    (disk,) = loops()
    run = runner([disk])
    run(["pvcreate", "--yes", disk])
    run(["vgcreate", "--yes", f"{VG}_lifeline", disk])
    uuid = lvm.report(run, ["vgs", "-o", "vg_name,vg_uuid"], "vg")[0]["vg_uuid"]
    host_group = Path("/dev") / VG
    host_group.mkdir()
    try:
        with pytest.raises(ToolError, match="already exists in filesystem"):
            run(["vgrename", uuid, VG])
        lvm.rename_vg(run, lvm.only_devices_config([disk]), uuid, VG)
    finally:
        host_group.rmdir()
    assert [row["vg_name"] for row in lvm.report(run, ["vgs", "-o", "vg_name"], "vg")] == [VG]


def test_a_device_holding_a_filesystem_is_refused_and_left_as_it_was(loops):
    (disk,) = loops()
    sh("mkfs.ext4", "-q", "-F", "-L", "data", disk)
    uuid = sh("blkid", "-s", "UUID", "-o", "value", disk).stdout.strip()
    refused = rf"Nothing was changed: {disk} holds ext4 \(UUID={uuid} LABEL=data\)"
    with pytest.raises(DiskError, match=refused):
        lvm.plan_volume(runner([disk]), VG, "root", [disk])
    assert sh("blkid", "-s", "UUID", "-o", "value", disk).stdout.strip() == uuid


def test_a_device_with_a_partition_table_is_refused(loops):
    (disk,) = loops()
    subprocess.run(["sfdisk", "-q", disk], input="label: gpt\n,,L\n", text=True, check=True)
    with pytest.raises(DiskError, match="holds a gpt partition table"):
        lvm.plan_volume(runner([disk]), VG, "root", [disk])


def test_a_physical_volume_of_another_group_is_refused(loops):
    (disk,) = loops()
    run = runner([disk])
    run(["pvcreate", "--yes", disk])
    run(["vgcreate", "--yes", f"{VG}_other", disk])
    with pytest.raises(DiskError, match=rf"{disk} belongs to volume group {VG}_other already"):
        lvm.plan_volume(run, VG, "root", [disk])


def test_an_existing_group_without_the_named_device_is_refused(loops):
    first, second = loops(2)
    run = runner([first, second])
    run(["pvcreate", "--yes", first])
    run(["vgcreate", "--yes", VG, first])
    with pytest.raises(DiskError, match=rf"volume group {VG} exists and {second} is not in it"):
        lvm.plan_volume(run, VG, "root", [second])


def test_a_missing_group_needs_devices(loops):
    (disk,) = loops()
    with pytest.raises(DiskError, match=f"volume group {VG} does not exist: name the devices"):
        lvm.plan_volume(runner([disk]), VG, "root", [])


def test_a_path_that_is_no_block_device_is_refused(loops, tmp_path):
    (disk,) = loops()
    plain = tmp_path / "plain-file"
    plain.write_bytes(b"\0" * 4096)
    with pytest.raises(DiskError, match=f"{plain} is not a block device"):
        lvm.plan_volume(runner([disk]), VG, "root", [str(plain)])


@pytest.mark.parametrize(
    ("vg", "lv", "size", "message"),
    [
        ("vg 1", "root", "100%FREE", "vg='vg 1' is not a name LVM accepts"),
        ("vg1", "-root", "100%FREE", "lv='-root' is not a name LVM accepts"),
        ("vg1", "root", "lots", "size='lots': give 100%FREE"),
        ("vg1", "..", "10G", "lv='..' is not a name"),
    ],
)
def test_bad_names_and_sizes_are_refused_before_any_tool_runs(vg, lv, size, message):
    def run(argv):
        raise AssertionError(f"ran {argv}")

    with pytest.raises(DiskError, match=message.replace("(", r"\(").replace("'", "'")):
        lvm.plan_volume(run, vg, lv, ["/dev/null"], size)


def test_rename_vg_removes_what_device_mapper_made_in_its_device_directory():
    """A physical volume that is a LUKS mapping makes device-mapper create mapper/control in the
    device directory vgrename is given; the rename must still end cleanly, leaving nothing."""
    seen: list[Path] = []

    def vgrename(argv: list[str]) -> str:
        directory = Path(argv[2].rsplit('dir = "', 1)[1].rstrip('" }'))
        (directory / "mapper").mkdir()
        (directory / "mapper" / "control").write_text("")
        seen.append(directory)
        return ""

    lvm.rename_vg(vgrename, lvm.only_devices_config(["/dev/mapper/lifeline-mnt-1"]), "Xy12-ab", "vg0")

    assert len(seen) == 1 and seen[0].name.startswith("lifeline-lvm-dev-")
    assert not seen[0].exists()


@pytest.mark.parametrize(
    ("listing", "on", "active"),
    [
        pytest.param("LVM-{vg}{lv} 253:1\n", {"253:1"}, set(), id="built on the target's own mapping"),
        pytest.param("LVM-{vg}{lv} 8:2\n", {"253:1"}, {"{uuid}"}, id="built on another disk"),
        pytest.param("LVM-{vg}{lv} 253:1,8:2\n", {"253:1"}, {"{uuid}"}, id="partly on another disk"),
        pytest.param("LVM-{vg}{lv}\n", {"253:1"}, {"{uuid}"}, id="what it is built on unknown"),
        pytest.param("CRYPT-LUKS2-abc 8:2\n", set(), set(), id="not LVM"),
    ],
)
def test_active_here_leaves_out_volumes_on_the_targets_own_devices(listing, on, active):
    """The rescuer's udev activates a volume group the moment the LUKS mapping holding it opens: that
    group is the target's, not a copy of one of the rescuer's."""
    uuid = "pTnt01-aaaa-bbbb-cccc-dddd-eeee-ffffff"
    text = listing.format(vg=uuid.replace("-", ""), lv="L" * 32)
    calls = []

    def run(argv):
        calls.append(argv)
        return text

    found = lvm.active_here(run, [uuid], frozenset(on))

    assert found == {a.format(uuid=uuid) for a in active}
    assert calls[0][-1] == "uuid,devnos_used"
