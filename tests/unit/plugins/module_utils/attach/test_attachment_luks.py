"""Attachment and attach.target with LUKS: the steps recorded as each volume opens, the passphrase
kept out of every argv and of the state file, the layer loop (LVM on LUKS, LUKS on LVM) and the
undo order, with a scripted runner (this machine has no device-mapper; the VM lane opens real ones)."""

from __future__ import annotations

import json

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.attach import attachment, target
from ansible_collections.lifeline.rescue.plugins.module_utils.attach.attachment import (
    AttachError,
    Attachment,
    NoRootFound,
    undo,
    undo_plan,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.host import disks, luks, lvm
from ansible_collections.lifeline.rescue.plugins.module_utils.host.disks import Volume

from support.runners import FakeRunner, tool_error

PASSPHRASE = b"open sesame \xe2\x9c\x93"
LUKS_UUID = "1e8282dc-d89d-463a-ad59-b962b66641b9"
LUKS_DUMP = f"LUKS header information\nVersion:       \t2\nEpoch:         \t3\nUUID:          \t{LUKS_UUID}\n"
VG_UUID = "pTnt01-aaaa-bbbb-cccc-dddd-eeee-ffffff"


def udev(fstype: str, uuid: str = "") -> str:
    return f"ID_FS_TYPE={fstype}\nID_FS_UUID_ENC={uuid}\n"


def lvm_replies(lv: str, lv_fstype: str, rescuer_vg: str = "") -> dict:
    """vgs, lvs and blkid answers for a volume group vg0 holding ``lv`` (whose blkid type is
    ``lv_fstype``); the rescuer has a vg0 of its own when ``rescuer_vg`` is "vg0"."""
    ours = [{"vg_name": rescuer_vg, "vg_uuid": "Rscu01"}] if rescuer_vg else []
    name = "vg0_lifeline" if rescuer_vg == "vg0" else "vg0"
    return {
        ("vgs", "-o", "vg_name,vg_uuid", "--config"): json.dumps(
            {"report": [{"vg": [{"vg_name": "vg0", "vg_uuid": VG_UUID}]}]}
        ),
        ("vgs", "-o", "vg_name,vg_uuid", "--reportformat"): json.dumps({"report": [{"vg": ours}]}),
        ("dmsetup", "info"): "",
        ("lvs",): json.dumps(
            {"report": [{"lv": [{"lv_name": lv, "vg_name": name, "lv_path": f"/dev/{name}/{lv}"}]}]}
        ),
        ("blkid", "--probe", "--output", "udev", f"/dev/{name}/{lv}"): udev(lv_fstype, "lv-uuid"),
    }


@pytest.fixture
def device_mapper(monkeypatch):
    monkeypatch.setattr(attachment.disks, "has_device_mapper", lambda: True)


def job_with(tmp_path, monkeypatch, run, volumes, key=None, roots=("vg0/root",), **kwargs) -> Attachment:
    """An attachment of ``volumes`` whose root probe finds a root on the volumes named in ``roots``."""
    job = Attachment(
        run=run,
        mount_point=str(tmp_path / "mnt"),
        state_file=str(tmp_path / "state.json"),
        volumes=list(volumes),
        luks_key=key,
        **kwargs,
    )
    monkeypatch.setattr(job, "_probe_root", lambda v: {"root": v.name in roots, "why": "no etc/fstab"})
    return job


def mapping(tmp_path, n: int = 1) -> str:
    return luks.mapping_name(str(tmp_path / "mnt"), {f"taken-{i}" for i in range(n)})


BOOT = Volume(fstype="ext4", uuid="b00t", number=1, device="/dev/vdb1")
LOCKED = Volume(fstype="crypto_LUKS", uuid=LUKS_UUID, number=2, device="/dev/vdb2")


# ---- unlocking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("readonly", [False, True], ids=["read-write", "read-only"])
def test_open_luks_records_the_step_and_adds_what_the_volume_holds(
    tmp_path, monkeypatch, device_mapper, readonly
):
    name = mapping(tmp_path)
    inside = f"/dev/mapper/{name}"
    run = FakeRunner(
        {
            ("cryptsetup", "luksDump"): LUKS_DUMP,
            ("blkid", "--probe", "--output", "udev", inside): udev("LVM2_member", "pv-uuid"),
        }
    )
    job = job_with(tmp_path, monkeypatch, run, [BOOT, LOCKED], key=luks.Key(key_file="/root/vdb.key"))
    job.readonly = readonly

    job.open_luks(job.locked_luks())

    assert run.calls[1] == [
        "cryptsetup", "open", "--type", "luks", "--key-file=/root/vdb.key",
        *(["--readonly"] if readonly else []), "/dev/vdb2", name,
    ]  # fmt: skip
    assert job.steps == [{"action": "luks_open", "name": name, "device": "/dev/vdb2"}]
    assert json.loads((tmp_path / "state.json").read_text())["steps"] == job.steps, "saved at once"
    added = job.volumes[-1]
    assert (added.fstype, added.uuid, added.device, added.luks) == (
        "LVM2_member",
        "pv-uuid",
        inside,
        "partition 2",
    )
    assert added.describe() == f"inside LUKS partition 2 LVM2_member UUID=pv-uuid {inside}"
    assert job.plan[-1].startswith(f"unlocked partition 2 (LUKS2 UUID={LUKS_UUID}) as {inside}")
    assert job.locked_luks() == [], "an unlocked volume is not unlocked again"


def test_the_passphrase_goes_on_stdin_only_never_into_argv_nor_the_state_file(
    tmp_path, monkeypatch, device_mapper
):
    run = FakeRunner({("cryptsetup", "luksDump"): LUKS_DUMP})
    job = job_with(tmp_path, monkeypatch, run, [LOCKED], key=luks.Key(passphrase=PASSPHRASE))

    job.open_luks(job.locked_luks())

    opened = [i for i, argv in enumerate(run.calls) if argv[:2] == ["cryptsetup", "open"]]
    assert [run.stdin[i] for i in opened] == [PASSPHRASE]
    assert [s for i, s in enumerate(run.stdin) if i not in opened] == [None] * (len(run.calls) - 1)
    text = PASSPHRASE.decode()
    assert not any(text in arg for argv in run.calls for arg in argv)
    state = (tmp_path / "state.json").read_bytes()
    assert PASSPHRASE not in state and text.encode("unicode_escape") not in state
    assert text not in repr(job) and text not in " ".join(job.plan)


def test_no_key_names_the_luks_volumes_and_the_variables(tmp_path, monkeypatch, device_mapper):
    run = FakeRunner()
    job = job_with(tmp_path, monkeypatch, run, [BOOT, LOCKED])

    with pytest.raises(AttachError) as raised:
        job.open_luks(job.locked_luks())

    message = str(raised.value)
    assert f"partition 2 crypto_LUKS UUID={LUKS_UUID} /dev/vdb2" in message
    assert "target_luks_key_file" in message and "target_luks_passphrase" in message
    assert run.calls == [] and job.steps == []


def test_no_device_mapper_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(attachment.disks, "has_device_mapper", lambda: False)
    run = FakeRunner()
    job = job_with(tmp_path, monkeypatch, run, [LOCKED], key=luks.Key(key_file="/k"))

    with pytest.raises(
        AttachError, match=r"inside LUKS \(partition 2 .*\).* no device-mapper .*modprobe dm_mod"
    ):
        job.open_luks(job.locked_luks())
    assert run.calls == [] and job.steps == []


def test_a_wrong_key_on_the_second_volume_keeps_the_first_recorded(tmp_path, monkeypatch, device_mapper):
    second = Volume(fstype="crypto_LUKS", uuid="2222", number=3, device="/dev/vdb3")
    first_name = mapping(tmp_path)

    def run(argv, stdin=None):
        if argv[:2] == ["cryptsetup", "luksDump"]:
            return LUKS_DUMP.replace(LUKS_UUID, "2222") if argv[-1] == "/dev/vdb3" else LUKS_DUMP
        if argv[:2] == ["cryptsetup", "open"] and "/dev/vdb3" in argv:
            raise tool_error(argv, 2, "No key available with this passphrase.")
        return ""

    job = job_with(tmp_path, monkeypatch, run, [LOCKED, second], key=luks.Key(key_file="/root/vdb.key"))

    with pytest.raises(luks.LuksError, match=r"does not open partition 3 \(LUKS2 UUID=2222\)"):
        job.open_luks(job.locked_luks())
    assert job.steps == [{"action": "luks_open", "name": first_name, "device": "/dev/vdb2"}]


# ---- the layer loop ---------------------------------------------------------------------------------


def test_lvm_on_luks_unlocks_then_activates(tmp_path, monkeypatch, device_mapper):
    name = mapping(tmp_path)
    run = FakeRunner(
        {
            ("cryptsetup", "luksDump"): LUKS_DUMP,
            ("blkid", "--probe", "--output", "udev", f"/dev/mapper/{name}"): udev("LVM2_member"),
            **lvm_replies("root", "ext4", rescuer_vg="vg0"),
        }
    )
    job = job_with(
        tmp_path, monkeypatch, run, [BOOT, LOCKED], key=luks.Key(key_file="/k"), roots=("vg0_lifeline/root",)
    )

    volume, subvolume = target.find_root(job, "")

    assert (volume.lv, volume.device, subvolume) == ("vg0_lifeline/root", "/dev/vg0_lifeline/root", "")
    assert [s["action"] for s in job.steps] == ["luks_open", "vg_rename", "vg_activate"]
    # LVM is shown the unlocked mapping, and only it.
    assert job.steps[-1]["config"] == lvm.only_devices_config([f"/dev/mapper/{name}"])

    run.calls.clear()
    run.replies[("cryptsetup", "status")] = "active"
    done, left = undo(run, job.steps)
    assert [c[0] for c in run.calls] == ["vgchange", "vgrename", "cryptsetup", "cryptsetup"]
    assert run.calls[-1] == ["cryptsetup", "close", name]
    assert done == [
        "deactivated volume group vg0_lifeline",
        "renamed volume group vg0_lifeline back to vg0",
        f"closed LUKS mapping {name} (/dev/vdb2)",
    ]
    assert left == []


def test_luks_on_lvm_activates_then_unlocks(tmp_path, monkeypatch, device_mapper):
    name = mapping(tmp_path)
    pv = Volume(fstype="LVM2_member", number=1, device="/dev/vdb1")
    run = FakeRunner(
        {
            ("cryptsetup", "luksDump"): LUKS_DUMP,
            ("blkid", "--probe", "--output", "udev", f"/dev/mapper/{name}"): udev("ext4", "root-uuid"),
            **lvm_replies("secret", "crypto_LUKS"),
        }
    )
    job = job_with(
        tmp_path, monkeypatch, run, [pv], key=luks.Key(key_file="/k"), roots=("inside LUKS vg0/secret",)
    )

    volume, _subvolume = target.find_root(job, "")

    assert (volume.device, volume.luks, volume.uuid) == (f"/dev/mapper/{name}", "vg0/secret", "root-uuid")
    assert job.steps == [
        {"action": "vg_activate", "vg": "vg0", "config": job.steps[0]["config"]},
        {"action": "luks_open", "name": name, "device": "/dev/vg0/secret"},
    ]
    assert next(c for c in run.calls if c[:2] == ["cryptsetup", "open"])[-2:] == ["/dev/vg0/secret", name]
    assert undo_plan(job.steps) == [
        f"close LUKS mapping {name} (/dev/vg0/secret)",
        "deactivate volume group vg0",
    ]

    run.calls.clear()
    run.replies[("cryptsetup", "status")] = "active"
    undo(run, job.steps)
    assert [c[:2] for c in run.calls] == [
        ["cryptsetup", "status"],
        ["cryptsetup", "close"],
        ["vgchange", "--config"],
    ]


def test_a_target_with_a_plain_root_never_needs_the_key(tmp_path, monkeypatch, device_mapper):
    run = FakeRunner()
    job = job_with(tmp_path, monkeypatch, run, [BOOT, LOCKED], roots=("partition 1",))

    assert target.find_root(job, "")[0] is BOOT
    assert run.calls == [] and job.steps == []


def test_a_root_nowhere_after_every_layer_is_no_root_found(tmp_path, monkeypatch, device_mapper):
    name = mapping(tmp_path)
    run = FakeRunner(
        {
            ("cryptsetup", "luksDump"): LUKS_DUMP,
            ("blkid", "--probe", "--output", "udev", f"/dev/mapper/{name}"): udev("ext4"),
        }
    )
    job = job_with(tmp_path, monkeypatch, run, [BOOT, LOCKED], key=luks.Key(key_file="/k"), roots=())

    with pytest.raises(NoRootFound):
        target.find_root(job, "")
    assert [s["action"] for s in job.steps] == ["luks_open"], "opened once, then nothing new to open"
    assert [c["volume"].split()[0:3] for c in job.candidates] == [
        ["partition", "1", "ext4"],
        ["inside", "LUKS", "partition"],
    ]


def test_a_closed_mapping_is_skipped_by_the_undo():
    argv = ["cryptsetup", "status", "lifeline-mnt-1"]
    run = FakeRunner(
        {("cryptsetup", "status"): tool_error(argv, 4, "/dev/mapper/lifeline-mnt-1 is inactive.")}
    )
    steps = [{"action": "luks_open", "name": "lifeline-mnt-1", "device": "/dev/vdb2"}]

    assert undo(run, steps) == ([], [])
    assert run.calls == [argv]


def test_what_udev_activated_on_a_mapping_is_deactivated_before_it_is_closed(tmp_path, monkeypatch):
    """A failure after the unlock but before the attachment activated anything: udev already did."""
    mapping = tmp_path / "lifeline-mnt-1"
    mapping.write_text("")
    monkeypatch.setattr(luks, "MAPPER_DIR", str(tmp_path))
    monkeypatch.setattr(disks, "stacked_on", lambda device: ["dm-7"] if device == str(mapping) else [])
    run = FakeRunner()
    steps = [{"action": "luks_open", "name": "lifeline-mnt-1", "device": "/dev/vdb2"}]

    done, left = undo(run, steps)

    assert (done, left) == (["closed LUKS mapping lifeline-mnt-1 (/dev/vdb2)"], [])
    assert [c[:2] for c in run.calls] == [
        ["cryptsetup", "status"],
        ["vgchange", "--config"],
        ["cryptsetup", "close"],
    ]
    assert run.calls[1][2] == lvm.only_devices_config([str(mapping)]), "only what the mapping shows"
    assert run.calls[1][3:] == ["--activate", "n"]
