"""Incidents 2, 4 and 5 end to end in qemu VMs: roots on LVM and on LVM inside LUKS, real boots,
Ansible over real ssh.

Every proof comes from the VMs themselves: they boot (or not), sshd answers (or not), the kernel's
mount table, LVM's and device-mapper's own listings, and cron's log in the systemd journal.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from support.paths import PLANTERS
from support.qemu import CACHE, VM, VMError, blank_disk, overlay
from support.trees import TREES

# A libc of another glibc release (2.31), as incident 2's /opt/glibc-2.14 was to its host.
FOREIGN_LIBC = TREES / "bullseye" / "lib" / "x86_64-linux-gnu" / "libc-2.31.so"
MINUTE_JOB = "(root) CMD (date >> /var/tmp/lifeline-minute.log)"


def libc6_package() -> Path:
    """The libc6 .deb the VMs' glibc came from (the disks' own package cache)."""
    found = sorted((CACHE / "debs").glob("libc6_*_amd64.deb"))
    assert len(found) == 1, f"expected one libc6 package in {CACHE / 'debs'}, found {found}"
    return found[0]


def wait_for(vm: VM, command: str, what: str, timeout: float = 150) -> str:
    """Run ``command`` until it succeeds; its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = vm.ssh(command, check=False)
        if done.returncode == 0:
            return done.stdout
        time.sleep(5)
    raise VMError(f"{vm.name}: {what} not seen within {timeout:.0f}s ({command}){vm.tail()}")


def break_glibc_then_pull_the_plug(vm: VM) -> None:
    """Incident 2: libc.so.6 pointed at a foreign glibc (every new ssh session dies), then the plug pulled."""
    vm.copy_in(FOREIGN_LIBC, "/root/libc-2.31.so")
    vm.copy_in(PLANTERS / "glibc.sh", "/root/glibc.sh")
    vm.ssh("sync && sh /root/glibc.sh / libc_foreign /root/libc-2.31.so", check=False)
    assert vm.ssh("true", check=False).returncode != 0, "ssh still works with a foreign libc"
    time.sleep(15)  # ext4 commits its journal every 5 s: the new link is on the disk
    vm.pull_the_plug()


def boots_with_its_own_glibc(vm: VM) -> None:
    """The repaired VM boots from its LVM root, its programs run and libc.so.6 is its own again."""
    vm.boot()
    assert root_source(vm) == "/dev/mapper/vg0-root"
    assert vm.ssh("ls /usr/bin >/dev/null && python3 -c 'print(6 * 7)'").stdout.strip() == "42"
    libc = vm.ssh("readlink -f /lib/x86_64-linux-gnu/libc.so.6").stdout.strip()
    assert libc == "/usr/lib/x86_64-linux-gnu/libc.so.6", libc


def root_source(vm: VM) -> str:
    """The device / is mounted from, as the VM's kernel says (/proc/self/mountinfo)."""
    for line in vm.ssh("cat /proc/self/mountinfo").stdout.splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[fields.index("-") + 2]
    raise AssertionError("no / in the VM's mountinfo")


def test_patient_broken_like_incidents_2_and_4_repaired_from_a_rescue_vm_then_boots(
    vm_disks, vms, tmp_path, run_playbook
):
    patient_disk = overlay(vm_disks / "patient.img", tmp_path / "patient.qcow2")
    patient = vms("patient", [patient_disk]).boot()
    assert root_source(patient) == "/dev/mapper/vg0-root"

    # The disk of a running guest, attached on the hypervisor itself: refused, its qemu named. A
    # read-only look is allowed; it stops at the root on LVM, which this host cannot activate.
    running = run_playbook("playbooks/inspect-target.yml", target_image=str(patient_disk))
    assert running.status == "failed"
    assert [m for m in running.failures() if "(qemu-system-x86" in m and "(open for writing)" in m], (
        running.failures()
    )
    looked = run_playbook(
        "playbooks/inspect-target.yml", target_image=str(patient_disk), target_readonly=True
    )
    assert [m for m in looked.failures() if "no device-mapper" in m], looked.failures()

    # Incident 4 while a shell still works; cron itself must say the crontab is broken.
    patient.copy_in(PLANTERS / "cron.sh", "/root/cron.sh")
    patient.ssh(
        "sh /root/cron.sh / crontab_nul_blocks crontab_bad_minute crontab_malware_job startup_item_malware"
        " && systemctl restart cron"
    )
    wait_for(patient, "journalctl -b -u cron | grep -q 'bad minute'", "cron's 'bad minute'", 60)
    assert patient.ssh("test -e /var/tmp/.sysupdate-ran", check=False).returncode != 0

    # Incident 2 while the patient runs.
    break_glibc_then_pull_the_plug(patient)

    # The rescuer boots from its own disk, whose volume group is also vg0, then gets the patient's.
    rescue = vms("rescue", [overlay(vm_disks / "rescue.img", tmp_path / "rescue.qcow2")]).boot()
    assert root_source(rescue) == "/dev/mapper/vg0-root"
    rescue.copy_in(libc6_package(), "/root/libc6.deb")
    device = rescue.attach(patient_disk, "patient")
    inventory = rescue.inventory(tmp_path / "rescue.json")
    reports = tmp_path / "reports"

    def restore_glibc(target_device: str):
        return run_playbook(
            "playbooks/restore-glibc.yml",
            inventory=inventory,
            target_device=target_device,
            glibc_restore_source="/root/libc6.deb",
            lifeline_report_dir=str(reports),
        )

    glibc = restore_glibc(device)
    assert glibc.rc == 0, glibc.failures()
    steps = glibc.results("Attach the broken system and find its root")[0]["steps"]
    renames = [s for s in steps if s["action"] == "vg_rename"]
    assert [(r["from"], r["to"]) for r in renames] == [("vg0", "vg0_lifeline")], steps

    cron = run_playbook(
        "playbooks/repair-crontab.yml",
        inventory=inventory,
        target_device=device,
        crontab_repair_quarantine=True,
        lifeline_report_dir=str(reports),
    )
    assert cron.rc == 0, cron.failures()
    # bookworm keeps cron's words in the journal only (no rsyslog): the audit read them there.
    [audit] = cron.results(
        "Check every crontab the way cron reads it, and collect the cron errors already logged"
    )
    logged = {(e["log"], e["kind"], e["crontab"]) for e in audit["logged_errors"]}
    assert ("journal:/var/log/journal", "bad minute", "/etc/crontab") in logged, audit["logged_errors"]

    # Everything of the patient's is deactivated and its volume group is vg0 again (LVM's own view,
    # limited to the patient's partition), and the rescuer still runs from its own vg0.
    assert rescue.ssh("dmsetup ls --target linear | cut -f1").stdout.split() == ["vg0-root"]
    only = f'devices {{ filter = [ "a|^{device}1$|", "r|.*|" ] use_devicesfile = 0 }}'
    pv = rescue.ssh(f"pvs --noheadings -o vg_name,lv_active --config '{only}' {device}1").stdout.split()
    assert pv == ["vg0"], pv
    assert root_source(rescue) == "/dev/mapper/vg0-root"

    # A disk copied from the rescuer's own image carries the UUIDs of the group the rescuer runs
    # from: activating it would hand back the rescuer's root. Refused, nothing activated or mounted.
    clone = rescue.attach(overlay(vm_disks / "rescue.img", tmp_path / "clone.qcow2"), "clone")
    libc_before = rescue.ssh("sha256sum /usr/lib/x86_64-linux-gnu/libc.so.6").stdout
    refused = restore_glibc(clone)
    assert refused.status == "failed"
    assert [m for m in refused.failures() if "has the UUID of a volume group active on this rescuer" in m], (
        refused.failures()
    )
    assert rescue.ssh("dmsetup ls --target linear | cut -f1").stdout.split() == ["vg0-root"]
    assert (
        rescue.ssh(
            "findmnt --noheadings --output TARGET --list | grep -c '^/mnt/'", check=False
        ).stdout.strip()
        == "0"
    )
    assert rescue.ssh("sha256sum /usr/lib/x86_64-linux-gnu/libc.so.6").stdout == libc_before
    rescue.power_off()

    # The patient boots from its repaired disk and answers ssh.
    boots_with_its_own_glibc(patient)

    # cron's own log on the patient: the repaired every-minute job runs, no error since this boot,
    # and neither the malware's job nor its startup items ran.
    wait_for(patient, f"journalctl -b -u cron | grep -qF '{MINUTE_JOB}'", "the every-minute job", 150)
    log = patient.ssh("journalctl -b -u cron --no-pager").stdout
    assert "bad minute" not in log and "Syntax error" not in log, log
    assert ".sysupdate" not in log, log
    assert patient.ssh("test -e /var/tmp/.sysupdate-ran", check=False).returncode != 0
    active = patient.ssh("grep -v '^#' /etc/crontab").stdout
    assert ".sysupdate" not in active, active


def test_live_root_moves_from_a_partition_into_a_new_logical_volume_and_boots_from_it(
    vm_disks, vms, tmp_path, run_playbook
):
    disks = [overlay(vm_disks / "mover.img", tmp_path / "mover.qcow2"), blank_disk(tmp_path / "new.qcow2")]
    mover = vms("mover", disks).boot()
    assert root_source(mover) == "/dev/vda1"
    mover.ssh("echo written-before-the-move > /var/lib/lifeline-marker")

    migrated = run_playbook(
        "playbooks/migrate-root.yml",
        inventory=mover.inventory(tmp_path / "mover.json", group="rescue"),
        root_migrate_device="/dev/vg1/root",
        root_migrate_lvm={"vg": "vg1", "pvs": ["/dev/vdb"]},
        root_migrate_allow_disruption=True,
        root_migrate_update_initramfs=True,
        root_migrate_update_bootloader=True,
        root_migrate_bootloader_devices=["/dev/vda"],
        lifeline_report_dir=str(tmp_path / "reports"),
    )
    assert migrated.rc == 0, migrated.failures()
    # Over the same kind of ssh connection, without a reboot: / is the new volume.
    assert root_source(mover) == "/dev/mapper/vg1-root"
    assert mover.ssh("cat /var/lib/lifeline-marker").stdout.strip() == "written-before-the-move"

    # After a reboot through its own GRUB the VM comes up on the new volume.
    mover.reboot()
    assert root_source(mover) == "/dev/mapper/vg1-root"
    assert mover.ssh("cat /var/lib/lifeline-marker").stdout.strip() == "written-before-the-move"
    assert mover.ssh("systemctl is-active cron ssh").stdout.split() == ["active", "active"]
    fstab = mover.ssh("findmnt --fstab --noheadings --output SOURCE /").stdout.strip()
    uuid = mover.ssh("blkid -s UUID -o value /dev/mapper/vg1-root").stdout.strip()
    assert fstab == f"UUID={uuid}", fstab


# A target whose root is LUKS on LVM, made on the rescuer itself (its passphrase goes through Ansible).
SEALED_PASSPHRASE = "sealed passphrase 5b1e"
MAKE_SEALED = f"""set -e
pvcreate -q {{disk}}
vgcreate -q vgsealed {{disk}}
lvcreate -q -n sealed -L 256M vgsealed
printf %s '{SEALED_PASSPHRASE}' | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 \\
  --pbkdf-force-iterations 1000 --key-file=- /dev/vgsealed/sealed
printf %s '{SEALED_PASSPHRASE}' | cryptsetup open --key-file=- /dev/vgsealed/sealed made
mkfs.ext4 -q /dev/mapper/made
mkdir -p /mnt/made && mount /dev/mapper/made /mnt/made
mkdir /mnt/made/etc /mnt/made/root && echo ID=sealed > /mnt/made/etc/os-release && : > /mnt/made/etc/fstab
umount /mnt/made && cryptsetup close made && vgchange -q -an vgsealed
"""
READ_SEALED = f"""set -e
vgchange -q -ay vgsealed >/dev/null
printf %s '{SEALED_PASSPHRASE}' | cryptsetup open --readonly --key-file=- /dev/vgsealed/sealed check
mount -o ro /dev/mapper/check /mnt/made
cat /mnt/made/root/lifeline-marker
umount /mnt/made && cryptsetup close check && vgchange -q -an vgsealed >/dev/null
"""

# LVM on LUKS whose volume group has a name of its own: the rescuer's udev activates it the moment
# the LUKS mapping opens, and it must still be taken for the target's, not for a copy of the rescuer's.
MAKE_UNIQUE = f"""set -e
printf %s '{SEALED_PASSPHRASE}' | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 \\
  --pbkdf-force-iterations 1000 --key-file=- {{disk}}
printf %s '{SEALED_PASSPHRASE}' | cryptsetup open --key-file=- {{disk}} made
pvcreate -q /dev/mapper/made && vgcreate -q vgunique /dev/mapper/made && lvcreate -q -n root -L 256M vgunique
mkfs.ext4 -q /dev/vgunique/root
mount /dev/vgunique/root /mnt/made
mkdir /mnt/made/etc /mnt/made/root && echo ID=unique > /mnt/made/etc/os-release && : > /mnt/made/etc/fstab
umount /mnt/made && vgchange -q -an vgunique >/dev/null && cryptsetup close made
"""
READ_UNIQUE = f"""set -e
printf %s '{SEALED_PASSPHRASE}' | cryptsetup open --readonly --key-file=- {{disk}} check
vgchange -q -ay vgunique >/dev/null
mount -o ro /dev/vgunique/root /mnt/made
cat /mnt/made/root/lifeline-marker
umount /mnt/made && vgchange -q -an vgunique >/dev/null && cryptsetup close check
"""


def crypt_mappings(vm: VM) -> list[str]:
    """The names of the dm-crypt mappings active in ``vm`` (device-mapper's own listing)."""
    listed = vm.ssh("dmsetup ls --target crypt").stdout.splitlines()
    return [line.split()[0] for line in listed if line.strip() and line.strip() != "No devices found"]


def test_vault_with_its_root_on_lvm_inside_luks_repaired_with_its_key_file_then_boots(
    vm_disks, vms, tmp_path, run_playbook
):
    vault_disk = overlay(vm_disks / "vault.img", tmp_path / "vault.qcow2")
    vault = vms("vault", [vault_disk]).boot()
    assert root_source(vault) == "/dev/mapper/vg0-root"
    assert crypt_mappings(vault) == ["vda2_crypt"]

    # Incident 2 on the vault.
    break_glibc_then_pull_the_plug(vault)

    rescue = vms("rescue", [overlay(vm_disks / "rescue.img", tmp_path / "rescue.qcow2")]).boot()
    rescue.copy_in(libc6_package(), "/root/libc6.deb")
    rescue.copy_in(vm_disks / "vault.key", "/root/vault.key")
    device = rescue.attach(vault_disk, "vault")
    inventory = rescue.inventory(tmp_path / "rescue.json")

    glibc = run_playbook(
        "playbooks/restore-glibc.yml",
        inventory=inventory,
        target_device=device,
        target_luks_key_file="/root/vault.key",
        glibc_restore_source="/root/libc6.deb",
        lifeline_report_dir=str(tmp_path / "reports"),
    )
    assert glibc.rc == 0, glibc.failures()
    [attached] = glibc.results("Attach the broken system and find its root")
    steps = attached["steps"]
    # Unlocked first, then its volume group (named like the rescuer's) renamed and activated.
    assert [s["action"] for s in steps if s["action"] != "mount"][-3:] == [
        "luks_open",
        "vg_rename",
        "vg_activate",
    ]
    [opened] = [s for s in steps if s["action"] == "luks_open"]
    assert opened["device"] == f"{device}2" and opened["name"].startswith("lifeline-mnt-lifeline-")
    assert attached["root_volume"]["lv"] == "vg0_lifeline/root"

    # Nothing of the vault's is left on the rescuer: no crypt mapping, only its own vg0-root.
    assert crypt_mappings(rescue) == []
    assert rescue.ssh("dmsetup ls --target linear | cut -f1").stdout.split() == ["vg0-root"]
    status = rescue.ssh(f"cryptsetup status {opened['name']}", check=False)
    assert status.returncode == 4 and "is inactive" in status.stdout, status
    assert (
        rescue.ssh(
            "findmnt --noheadings --list --output TARGET | grep -c '^/mnt/'", check=False
        ).stdout.strip()
        == "0"
    )
    assert root_source(rescue) == "/dev/mapper/vg0-root"

    def write_through(name: str, make: str, read: str, marker: str) -> None:
        """A blank disk laid out by ``make``, written through rescue_mount with the passphrase, then
        read back by hand (``read``); nothing of it left open on the rescuer."""
        disk = rescue.attach(blank_disk(tmp_path / f"{name}.qcow2"), name)
        rescue.ssh(make.format(disk=disk))
        written = run_playbook(
            "write-into-target.yml",
            inventory=inventory,
            target_device=disk,
            target_luks_passphrase=SEALED_PASSPHRASE,
            marker=marker,
        )
        assert written.rc == 0, written.failures()
        assert SEALED_PASSPHRASE not in json.dumps(written.events), "the passphrase reached Ansible's output"
        assert crypt_mappings(rescue) == []
        assert rescue.ssh(read.format(disk=disk)).stdout.strip() == marker

    # LUKS on LVM: a logical volume that is LUKS2 holding ext4, unlocked with a passphrase.
    write_through("sealed", MAKE_SEALED, READ_SEALED, "written through LUKS on LVM")
    # LVM on LUKS with a volume group of its own, which the rescuer's udev activates on unlock.
    write_through("unique", MAKE_UNIQUE, READ_UNIQUE, "written through LVM on LUKS")
    assert rescue.ssh("dmsetup ls --target linear | cut -f1").stdout.split() == ["vg0-root"]
    rescue.power_off()

    # The vault boots from its repaired disk, unlocking itself, and runs python3.
    boots_with_its_own_glibc(vault)
