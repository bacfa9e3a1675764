"""attachment: state files, undo in reverse, and what counts as a root, with a recording fake runner."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.attach import attachment
from ansible_collections.lifeline.rescue.plugins.module_utils.attach.attachment import (
    STATE_DIR,
    AttachError,
    Attachment,
    NoRootFound,
    UndoError,
    state_file_for,
    undo,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.host import lvm
from ansible_collections.lifeline.rescue.plugins.module_utils.host.disks import Volume, file_id
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import ToolError

from support.runners import FakeRunner


def mounted_point() -> str:
    """A directory that is a mount point right now, for steps whose target must look mounted."""
    points = {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()}
    assert "/proc" in points
    return "/proc"


# ---- state files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mount_point", "name"),
    [
        ("/mnt/lifeline", "mnt-lifeline"),
        ("/", "root"),
        ("/mnt/my disk", "mnt-my-disk"),
        ("/srv/vm.108/root", "srv-vm-108-root"),
        ("/mnt/../../etc/passwd", "mnt-etc-passwd"),
        ("/mnt/\n\t", "mnt"),
    ],
    ids=repr,
)
def test_state_file_for(mount_point, name):
    """A readable name, inside the state directory, made unique by a digest of the path."""
    assert re.fullmatch(
        rf"{re.escape(STATE_DIR)}/{re.escape(name)}-[0-9a-f]{{12}}\.json", state_file_for(mount_point)
    )


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("/mnt/vm_108", "/mnt/vm-108"),
        ("/mnt/a/b", "/mnt/a-b"),
    ],
    ids=lambda v: v,
)
def test_state_file_for_tells_mount_points_apart(one, other):
    """Each attachment has its own record: rescue_detach for one mount point must not undo another's."""
    assert state_file_for(one) != state_file_for(other)


def test_steps_are_saved_as_they_happen(tmp_path):
    state = tmp_path / "state" / "mnt-x.json"
    job = Attachment(run=FakeRunner(), mount_point=str(tmp_path / "mnt" / "x"), state_file=str(state))

    job.prepare_mount_point()

    assert json.loads(state.read_text()) == {
        "mount_point": job.mount_point,
        "readonly": False,
        "steps": job.steps,
    }
    assert [s["path"] for s in job.steps] == [str(tmp_path / "mnt"), str(tmp_path / "mnt" / "x")]
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    assert [p.name for p in state.parent.iterdir()] == ["mnt-x.json"], "no temporary file left behind"


# ---- the mount point ----------------------------------------------------------------------------


def test_prepare_mount_point_then_undo_removes_exactly_what_it_made(tmp_path):
    (tmp_path / "keep").mkdir()
    job = Attachment(run=FakeRunner(), mount_point=str(tmp_path / "keep" / "a" / "b"))

    job.prepare_mount_point()
    assert (tmp_path / "keep" / "a" / "b").is_dir()
    done, left = undo(job.run, job.steps)

    assert (done, left) == ([f"removed {tmp_path}/keep/a/b", f"removed {tmp_path}/keep/a"], [])
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]
    assert list((tmp_path / "keep").iterdir()) == []


@pytest.mark.parametrize(
    ("make", "why"),
    [
        pytest.param(lambda p: (p.mkdir(), (p / "precious").write_text("x")), "is not empty", id="not empty"),
        pytest.param(lambda p: p.write_text("x"), "is not a directory", id="a file"),
        pytest.param(
            lambda p: (p.parent.joinpath("real").mkdir(), p.symlink_to("real")),
            "is not a directory",
            id="a link to a directory",
        ),
        pytest.param(lambda p: p.symlink_to("nowhere"), "is not a directory", id="a dangling link"),
    ],
)
def test_prepare_mount_point_refuses(tmp_path, make, why):
    point = tmp_path / "mnt"
    make(point)
    job = Attachment(run=FakeRunner(), mount_point=str(point))

    with pytest.raises(AttachError, match=why):
        job.prepare_mount_point()
    assert job.steps == []


def test_prepare_mount_point_refuses_a_mount_point():
    job = Attachment(run=FakeRunner(), mount_point=mounted_point(), readonly=True)

    with pytest.raises(AttachError, match="already a mount point"):
        job.prepare_mount_point()


# ---- undo ---------------------------------------------------------------------------------------


def test_undo_goes_newest_first(tmp_path):
    image = tmp_path / "vm.raw"
    image.write_bytes(b"")
    st = image.stat()
    losetup = json.dumps(
        {
            "loopdevices": [
                {
                    "name": "/dev/loop7",
                    "back-ino": st.st_ino,
                    "back-maj:min": f"  {os.major(st.st_dev)}:{os.minor(st.st_dev)} ",
                }
            ]
        }
    )
    run = FakeRunner({("losetup", "--list"): losetup})
    created = tmp_path / "mnt"
    created.mkdir()
    target = mounted_point()
    config = 'devices { filter = [ "a|^/dev/loop7p2$|", "r|.*|" ] }'
    steps = [
        {"action": "mkdir", "path": str(created)},
        {"action": "loop", "device": "/dev/loop7", "backing": str(image), "backing_id": file_id(str(image))},
        {"action": "partitions", "device": "/dev/loop7"},
        {"action": "vg_rename", "uuid": "Xy12-ab", "from": "vg0", "to": "vg0_lifeline", "config": config},
        {"action": "vg_activate", "vg": "vg0_lifeline", "config": config},
        {"action": "mount", "target": target},
    ]

    done, left = undo(run, steps)

    # The rename back looks at an empty device directory (the rescuer may have a /dev/vg0 of its own).
    rename = run.calls[2]
    assert rename[:2] == ["vgrename", "--config"] and rename[3:] == ["Xy12-ab", "vg0"]
    assert re.fullmatch(
        re.escape(config) + r' devices \{ dir = "/[^"]+/lifeline-lvm-dev-[^"]+" \}', rename[2]
    )
    assert run.calls[:2] + run.calls[3:] == [
        ["umount", target],
        ["vgchange", "--config", config, "--activate", "n", "vg0_lifeline"],
        ["partx", "--delete", "/dev/loop7"],
        ["losetup", "--list", "--json", "--output", "NAME,BACK-INO,BACK-MAJ:MIN"],
        ["losetup", "--detach", "/dev/loop7"],
    ]
    assert done == [
        f"unmounted {target}",
        "deactivated volume group vg0_lifeline",
        "renamed volume group vg0_lifeline back to vg0",
        "removed partition mappings of /dev/loop7",
        f"detached /dev/loop7 ({image})",
        f"removed {created}",
    ]
    assert left == []
    assert not created.exists()
    assert len(steps) == 6, "the caller's list is left as it was"


def test_undo_skips_what_is_already_undone(tmp_path):
    image = tmp_path / "vm.raw"
    image.write_bytes(b"")
    run = FakeRunner({("losetup", "--list"): '{"loopdevices": []}'})
    steps = [
        {"action": "mkdir", "path": str(tmp_path / "gone")},
        {"action": "loop", "device": "/dev/loop7", "backing": str(image), "backing_id": file_id(str(image))},
        {"action": "node", "path": str(tmp_path / "loop7p1")},
        {"action": "mount", "target": str(tmp_path / "not-mounted")},
    ]

    assert undo(run, steps) == ([], [])
    assert ["umount", str(tmp_path / "not-mounted")] not in run.calls
    assert [c[:2] for c in run.calls] == [["losetup", "--list"]], "a loop already detached is only looked up"


def _losetup_json(rows: dict[str, tuple[str, int]]) -> str:
    return json.dumps(
        {
            "loopdevices": [
                {"name": n, "back-maj:min": f" {mm} ", "back-ino": ino} for n, (mm, ino) in rows.items()
            ]
        }
    )


def test_undo_detaches_a_loop_whose_image_was_deleted_and_spares_a_reused_one(tmp_path):
    """The loop is recognised by its backing file's identity, not by its name or its existence."""
    steps = [
        {
            "action": "loop",
            "device": "/dev/loop6",
            "backing": "/gone/deleted.raw",
            "backing_id": "254:0 1234",
        },
        {"action": "loop", "device": "/dev/loop7", "backing": "/srv/vm.raw", "backing_id": "254:0 5678"},
    ]
    # loop6 still holds the deleted image; loop7 was detached and reused for another file since.
    run = FakeRunner(
        {("losetup", "--list"): _losetup_json({"/dev/loop6": ("254:0", 1234), "/dev/loop7": ("254:0", 9)})}
    )

    done, left = undo(run, steps)

    assert done == ["detached /dev/loop6 (/gone/deleted.raw)"]
    assert left == []
    assert ["losetup", "--detach", "/dev/loop7"] not in run.calls


def test_undo_removes_a_device_node_it_made_and_nothing_else(tmp_path):
    node, impostor = tmp_path / "loop7p1", tmp_path / "loop7p2"
    os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(7, 1))
    impostor.write_text("a regular file where a node was recorded\n")
    steps = [{"action": "node", "path": str(impostor)}, {"action": "node", "path": str(node)}]

    assert undo(FakeRunner(), steps) == ([f"removed device node {node}"], [])
    assert not node.exists()
    assert impostor.read_text().startswith("a regular file")


@pytest.mark.parametrize("left", [None, (7, 1), (259, 3)], ids=["missing", "current", "stale"])
def test_a_partition_node_is_made_when_missing_or_stale_and_recorded_only_then(tmp_path, monkeypatch, left):
    monkeypatch.setattr(attachment, "DEV", str(tmp_path))
    node = tmp_path / "loop7p1"
    if left:
        os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(*left))
    job = Attachment(run=FakeRunner(), mount_point=str(tmp_path / "mnt"))

    assert job._device_node("loop7p1", "7:1") == str(node)

    assert node.lstat().st_rdev == os.makedev(7, 1)
    assert stat.S_ISBLK(node.lstat().st_mode)
    recorded = [s for s in job.steps if s["action"] == "node"]
    assert recorded == ([] if left == (7, 1) else [{"action": "node", "path": str(node), "rdev": "7:1"}])


def test_a_file_where_a_partition_node_belongs_is_refused_and_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(attachment, "DEV", str(tmp_path))
    (tmp_path / "loop7p1").write_text("not a device\n")
    job = Attachment(run=FakeRunner(), mount_point=str(tmp_path / "mnt"))

    with pytest.raises(AttachError, match="not a block device"):
        job._device_node("loop7p1", "7:1")

    assert (tmp_path / "loop7p1").read_text() == "not a device\n"
    assert job.steps == []


def test_undo_stops_at_a_directory_that_is_not_empty(tmp_path):
    kept = tmp_path / "mnt"
    kept.mkdir()
    (kept / "precious").write_text("data the target wrote\n")
    node = tmp_path / "loop7p1"
    os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(7, 1))
    config = "devices { }"
    steps = [
        {"action": "partitions", "device": "/dev/loop7"},
        {"action": "mkdir", "path": str(kept)},
        {"action": "node", "path": str(node)},
        {"action": "vg_activate", "vg": "vg0", "config": config},
        {"action": "mount", "target": str(tmp_path / "not-mounted")},
    ]
    run = FakeRunner()

    with pytest.raises(UndoError) as raised:
        undo(run, steps)

    assert raised.value.done == ["deactivated volume group vg0", f"removed device node {node}"]
    assert raised.value.left == steps[:2]
    assert str(kept) in str(raised.value)
    assert (kept / "precious").read_text() == "data the target wrote\n"
    assert run.calls == [["vgchange", "--config", config, "--activate", "n", "vg0"]], (
        "nothing after the failure"
    )


def test_undo_names_who_holds_a_busy_mount():
    target = mounted_point()
    run = FakeRunner({("umount",): ToolError(f"umount {target} failed (exit 32): target is busy")})
    steps = [{"action": "mkdir", "path": "/nonexistent-lifeline-test"}, {"action": "mount", "target": target}]

    with pytest.raises(
        UndoError, match=r"cannot be unmounted \(.*target is busy\); it is held by: "
    ) as raised:
        undo(run, steps)

    assert (raised.value.done, raised.value.left) == ([], steps)


@pytest.mark.parametrize("step", [{"action": "format"}, {"action": ""}], ids=["format", "empty"])
def test_undo_refuses_an_unknown_step(tmp_path, step):
    steps = [{"action": "mkdir", "path": str(tmp_path / "gone")}, step]

    with pytest.raises(UndoError, match="unknown step") as raised:
        undo(FakeRunner(), steps)

    assert (raised.value.done, raised.value.left) == ([], steps)


def test_undo_of_nothing():
    assert undo(FakeRunner(), []) == ([], [])


# ---- what counts as a root ----------------------------------------------------------------------

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
FSTAB = "UUID=1f0b2c3d / ext4 errors=remount-ro 0 1\n"


def tree(top: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        path = top / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content.startswith("->"):
            path.symlink_to(content[2:])
        else:
            path.write_text(content)
    top.mkdir(exist_ok=True)
    return top


@pytest.mark.parametrize(
    ("files", "fstype", "expected"),
    [
        pytest.param(
            {"etc/os-release": DEBIAN, "etc/fstab": FSTAB},
            "ext4",
            {"root": True, "os": "Debian GNU/Linux 12 (bookworm)"},
            id="root at the top",
        ),
        pytest.param(
            {"etc/os-release": "->../usr/lib/os-release", "usr/lib/os-release": DEBIAN, "etc/fstab": FSTAB},
            "xfs",
            {"root": True, "os": "Debian GNU/Linux 12 (bookworm)"},
            id="os-release linked to usr/lib",
        ),
        pytest.param(
            {"etc/redhat-release": "CentOS release 6.10 (Final)\n", "etc/fstab": FSTAB},
            "ext4",
            {"root": True, "os": "CentOS release 6.10 (Final)"},
            id="redhat-release",
        ),
        pytest.param(
            {"etc/os-release": "->/usr/lib/os-release", "etc/fstab": FSTAB},
            "ext4",
            {"root": True, "os": ""},
            id="dangling os-release link: a broken root is still a root",
        ),
    ],
)
def test_root_evidence_finds(tmp_path, files, fstype, expected):
    assert attachment._root_evidence(str(tree(tmp_path / "top", files)), fstype) == expected


@pytest.mark.parametrize(
    ("files", "fstype", "held"),
    [
        pytest.param({"etc/os-release": DEBIAN}, "ext4", "etc", id="missing fstab"),
        pytest.param({"etc/fstab": FSTAB}, "ext4", "etc", id="missing os-release"),
        pytest.param(
            {"@/etc/os-release": DEBIAN, "@/etc/fstab": FSTAB},
            "btrfs",
            "@",
            id="root in a directory that is not a btrfs subvolume",
        ),
        pytest.param(
            {"@/etc/os-release": DEBIAN, "@/etc/fstab": FSTAB}, "ext4", "@", id="root in a directory of ext4"
        ),
        pytest.param(
            {"grub/grub.cfg": "", "vmlinuz": "", "initrd.img": ""},
            "ext4",
            "grub, initrd.img, vmlinuz",
            id="a /boot filesystem",
        ),
        pytest.param({}, "xfs", "nothing", id="an empty filesystem"),
    ],
)
def test_root_evidence_rejects(tmp_path, files, fstype, held):
    found = attachment._root_evidence(str(tree(tmp_path / "top", files)), fstype)

    assert found == {"root": False, "why": f"no etc/os-release with etc/fstab (top level holds: {held})"}


def test_root_evidence_ignores_a_link_to_a_root_elsewhere(tmp_path):
    """A btrfs entry that is a link to a real root outside the filesystem is not a subvolume of it."""
    elsewhere = tree(tmp_path / "elsewhere", {"etc/os-release": DEBIAN, "etc/fstab": FSTAB})
    top = tree(tmp_path / "top", {"@": f"->{elsewhere}"})

    assert attachment._root_evidence(str(top), "btrfs")["root"] is False


def test_root_evidence_of_a_filesystem_whose_etc_links_to_etc(tmp_path):
    """A filesystem whose etc is a link loop is no root, and saying so must not end the search.

    choose_root probes every filesystem on the disk; an exception from one hostile or broken data
    filesystem would stop it before it reaches the real root on the next partition.
    """
    top = tree(tmp_path / "top", {"etc": "->/etc", "data/file": "x"})

    assert attachment._root_evidence(str(top), "ext4")["root"] is False


# ---- choosing among volumes (no mount needed to refuse) -----------------------------------------

VOLUMES = [
    Volume(fstype="vfat", uuid="B69D-7B89", label="EFI", number=1, device="/dev/loop3p1"),
    Volume(fstype="ext4", uuid="1f0b2c3d", label="dup", number=2, device="/dev/loop3p2"),
    Volume(fstype="swap", uuid="5c808aa9", label="dup", number=3, device="/dev/loop3p3"),
    Volume(fstype="LVM2_member", number=4, device="/dev/loop3p4"),
]


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        pytest.param(
            "9", "target_partition=9 names no volume on the target; it has: partition 1 vfat", id="none"
        ),
        pytest.param("LABEL=dup", "names more than one volume", id="two"),
        pytest.param(
            "3",
            "target_partition=3 is partition 3 swap UUID=5c808aa9 LABEL=dup /dev/loop3p3: not a root",
            id="swap",
        ),
        pytest.param("UUID=B69D-7B89", "is partition 1 vfat", id="vfat"),
        pytest.param(
            "4", "is partition 4 LVM2_member /dev/loop3p4: not a root filesystem", id="an LVM physical volume"
        ),
    ],
)
def test_choose_root_refuses_a_target_partition(spec, why):
    run = FakeRunner()
    job = Attachment(run=run, mount_point="/mnt/lifeline", volumes=list(VOLUMES))

    with pytest.raises(AttachError) as raised:
        job.choose_root(spec)

    assert why in str(raised.value)
    assert run.calls == [], "nothing mounted to refuse it"


@pytest.mark.parametrize(
    ("volume", "probe", "subvolume", "expected"),
    [
        (Volume(fstype="ext4"), True, "", ["ro", "noload"]),
        (Volume(fstype="ext3"), True, "", ["ro", "noload"]),
        (Volume(fstype="xfs", uuid="518b4516"), True, "", ["ro", "norecovery"]),
        (Volume(fstype="btrfs"), True, "@", ["ro", "subvol=@"]),
        (Volume(fstype="btrfs"), False, "@rootfs", ["rw", "subvol=@rootfs"]),
        (Volume(fstype="ext4"), False, "", ["rw"]),
    ],
    ids=["ext4 probe", "ext3 probe", "xfs probe", "btrfs subvolume probe", "btrfs subvolume", "ext4"],
)
def test_mount_options(volume, probe, subvolume, expected):
    # No xfs filesystem of this machine is mounted from a /dev node with this UUID, so no nouuid.
    job = Attachment(run=FakeRunner(), mount_point="/mnt/lifeline")

    assert job.options(volume, probe=probe, subvolume=subvolume) == expected


def test_lvm_config_accepts_only_the_targets_devices():
    config = lvm.only_devices_config(["/dev/loop3p2", "/dev/loop3p3"])

    assert config == (
        'devices { filter = [ "a|^/dev/loop3p2$|", "a|^/dev/loop3p3$|", "r|.*|" ] '
        'global_filter = [ "a|^/dev/loop3p2$|", "a|^/dev/loop3p3$|", "r|.*|" ] use_devicesfile = 0 }'
    )


def _chooser(monkeypatch, roots: set[int]) -> Attachment:
    """An attachment whose partitions 1-3 are ext4 and whose probe finds a root on ``roots``."""
    job = Attachment(run=FakeRunner(), mount_point="/mnt/x")
    job.volumes = [Volume(fstype="ext4", number=n, device=f"/dev/loop7p{n}") for n in (1, 2, 3)]
    job.volumes.append(Volume(fstype="LVM2_member", number=4, device="/dev/loop7p4"))
    monkeypatch.setattr(job, "_probe_root", lambda v: {"root": v.number in roots, "why": "no etc/fstab"})
    return job


def test_several_roots_is_not_a_reason_to_look_inside_lvm(monkeypatch):
    """Only "no root found" sends the search into LVM; several roots must stay that error."""
    job = _chooser(monkeypatch, roots={1, 2})
    with pytest.raises(AttachError, match="several filesystems") as raised:
        job.choose_root("")
    assert not isinstance(raised.value, NoRootFound)


@pytest.mark.parametrize(
    ("roots", "wanted"), [(set(), ""), ({1}, "vg0/root")], ids=["no root", "names an LV"]
)
def test_no_root_among_the_partitions_asks_for_lvm(monkeypatch, roots, wanted):
    with pytest.raises(NoRootFound):
        _chooser(monkeypatch, roots=roots).choose_root(wanted)


# ---- LVM activation -------------------------------------------------------------------------------


def vgs_json(*rows: tuple[str, str]) -> str:
    return json.dumps({"report": [{"vg": [{"vg_name": n, "vg_uuid": u} for n, u in rows]}]})


PATIENT_UUID = "pTnt01-aaaa-bbbb-cccc-dddd-eeee-ffffff"
RESCUER_UUID = "Rscu01-aaaa-bbbb-cccc-dddd-eeee-ffffff"


def lvm_runner(theirs: str, dm_uuids: list[str]) -> FakeRunner:
    return FakeRunner(
        {
            ("vgs", "-o", "vg_name,vg_uuid", "--config"): vgs_json(("vg0", theirs)),
            ("vgs", "-o", "vg_name,vg_uuid", "--reportformat"): vgs_json(("vg0", RESCUER_UUID)),
            ("dmsetup", "info"): "\n".join(dm_uuids) or "No devices found",
            ("lvs",): json.dumps({"report": [{"lv": []}]}),
        }
    )


def test_a_group_named_like_the_rescuers_is_renamed_then_activated(monkeypatch, tmp_path):
    monkeypatch.setattr(attachment.disks, "has_device_mapper", lambda: True)
    rescuer_root = "LVM-" + RESCUER_UUID.replace("-", "") + "L" * 32
    run = lvm_runner(PATIENT_UUID, [rescuer_root])
    job = Attachment(run=run, mount_point=str(tmp_path / "mnt"))

    job.activate_lvm([Volume(fstype="LVM2_member", number=1, device="/dev/vdb1")])

    renames = [c for c in run.calls if c[0] == "vgrename"]
    assert [c[-2:] for c in renames] == [[PATIENT_UUID, "vg0_lifeline"]]
    assert next(c for c in run.calls if c[0] == "vgchange")[:2] == ["vgchange", "--config"]
    assert [s["action"] for s in job.steps] == ["vg_rename", "vg_activate"]


def test_a_copy_of_the_rescuers_own_disk_is_refused_and_nothing_is_activated(monkeypatch, tmp_path):
    """Same UUIDs as the rescuer's active vg0: activating would give back the rescuer's own root."""
    monkeypatch.setattr(attachment.disks, "has_device_mapper", lambda: True)
    rescuer_root = "LVM-" + RESCUER_UUID.replace("-", "") + "L" * 32
    run = lvm_runner(RESCUER_UUID, [rescuer_root])
    job = Attachment(run=run, mount_point=str(tmp_path / "mnt"))

    with pytest.raises(
        attachment.AttachError, match=rf"vg0 \({RESCUER_UUID}\) has the UUID of a volume group active"
    ):
        job.activate_lvm([Volume(fstype="LVM2_member", number=1, device="/dev/vdb1")])

    assert [c[0] for c in run.calls if c[0] in ("vgchange", "vgrename", "lvchange")] == []
    assert job.steps == []
