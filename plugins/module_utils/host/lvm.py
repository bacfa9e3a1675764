# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LVM through its own tools: JSON reports, a view limited to chosen devices, and the plan for a new
logical volume (physical volumes, volume group, volume) that refuses to write over anything found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.host import disks
from ansible_collections.lifeline.rescue.plugins.module_utils.host.disks import DiskError
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner

# lvcreate's --extents forms (100%FREE, 50%VG); anything else is a size for --size (20G, 512M).
_EXTENTS = re.compile(r"^\d+%(FREE|VG|PVS)$", re.IGNORECASE)
_SIZE = re.compile(r"^\d+(\.\d+)?[bBsSkKmMgGtTpPeE]?$")
# Names LVM accepts for a volume group or a logical volume (lvm(8), "VALID NAMES").
_NAME = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$")


def only_devices_config(devices: list[str]) -> str:
    """LVM settings that make it see only these devices, whatever else the host has."""
    accept = ", ".join(f'"a|^{re.escape(d)}$|"' for d in devices)
    only = f'[ {accept}, "r|.*|" ]'
    return f"devices {{ filter = {only} global_filter = {only} use_devicesfile = 0 }}"


def read_only_config(vg_names: list[str]) -> str:
    """LVM settings that activate these volume groups' volumes read-only and never write metadata."""
    names = ", ".join(f'"{name}"' for name in vg_names)
    return f" global {{ metadata_read_only = 1 }} activation {{ read_only_volume_list = [ {names} ] }}"


def report(run: Runner, argv: list[str], kind: str) -> list[dict]:
    """The rows of an LVM report command (vgs, lvs, pvs) for ``kind`` ("vg", "lv", "pv")."""
    text = run([*argv, "--reportformat", "json"])
    return [row for block in json.loads(text).get("report", []) for row in block.get(kind, [])]


def active_here(run: Runner, vg_uuids: list[str], on: frozenset[str] = frozenset()) -> set[str]:
    """The volume groups of ``vg_uuids`` with a volume active on this host (device-mapper's view),
    leaving out volumes built only on the devices ``on`` ("major:minor"): the target's own, which
    the rescuer's udev activates by itself the moment a LUKS mapping holding them opens.

    LVM names each volume's device-mapper device "LVM-" + its group's UUID + its own, without dashes.
    """
    text = run(
        ["dmsetup", "info", "--columns", "--noheadings", "--separator", " ", "--options", "uuid,devnos_used"]
    )
    active = set()
    for line in text.splitlines():
        uuid, _space, used = line.strip().partition(" ")
        if not uuid.startswith("LVM-"):
            continue
        below = {number for number in used.replace(" ", ",").split(",") if number}
        if not below or not below <= on:
            active.add(uuid[4:36])
    return {uuid for uuid in vg_uuids if uuid.replace("-", "") in active}


def rename_vg(run: Runner, config: str, uuid: str, name: str) -> None:
    """Rename the volume group ``uuid`` to ``name``, also when the host has a group of that name.

    vgrename refuses a name whose /dev/NAME exists ("already exists in filesystem"), which is
    the case when a rescuer's own group bears the name its patient's group is given back. For the
    rename LVM is pointed at an empty device directory: a rename of an inactive group makes no
    device node. A physical volume that is itself a device-mapper device (a LUKS mapping) makes
    device-mapper create its control node there (mapper/control), removed with the directory.
    """
    empty = tempfile.mkdtemp(prefix="lifeline-lvm-dev-")
    try:
        run(["vgrename", "--config", f'{config} devices {{ dir = "{empty}" }}', uuid, name])
    finally:
        shutil.rmtree(empty)


@dataclass
class VolumePlan:
    """What it takes to have ``/dev/VG/LV``: the commands still to run (none when it exists)."""

    vg: str
    lv: str
    device: str
    exists: bool
    commands: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_names(vg: str, lv: str, size: str) -> None:
    for what, name in (("vg", vg), ("lv", lv)):
        if not _NAME.match(name or "") or name in (".", ".."):
            raise DiskError(f"{what}={name!r} is not a name LVM accepts (letters, digits, + _ . -)")
    if not (_EXTENTS.match(size) or _SIZE.match(size)):
        raise DiskError(f"size={size!r}: give 100%FREE, N%VG or a size such as 20G")


def _free_for_a_pv(run: Runner, pv: str) -> list[str]:
    """Why ``pv`` cannot become a physical volume (empty when it can), from what is on it now."""
    try:
        st = os.stat(pv)
    except OSError as exc:
        return [f"{pv} cannot be read ({exc.strerror})"]
    if not stat.S_ISBLK(st.st_mode):
        return [f"{pv} is not a block device"]
    why = []
    found = disks.probe(run, pv)
    if found.get("PTTYPE"):
        table = found["PTTYPE"]
        why.append(f"{pv} holds a {table} partition table (name a partition, or wipe it: wipefs -a)")
    elif found.get("TYPE"):
        label = f" LABEL={found['LABEL']}" if found.get("LABEL") else ""
        why.append(
            f"{pv} holds {found['TYPE']} (UUID={found.get('UUID', '?')}{label}): lifeline never writes "
            "over it; wipe it yourself (wipefs -a) if its contents may go, or name another device"
        )
    holders = disks.stacked_on(pv)
    if holders:
        why.append(f"{pv} is in use by {', '.join(holders)}")
    return why


def plan_volume(run: Runner, vg: str, lv: str, pvs: list[str], size: str = "100%FREE") -> VolumePlan:
    """The commands that make logical volume ``lv`` in volume group ``vg`` (made on ``pvs`` if missing).

    Nothing runs here but LVM's and blkid's reports. Raises DiskError when the volume cannot be made
    without writing over something: a device with a filesystem, a partition table or another
    volume group on it, or a volume group that lacks a named device.
    """
    check_names(vg, lv, size)
    device = f"/dev/{vg}/{lv}"
    vg_exists = _vg_exists(run, vg)
    if vg_exists and any(row["lv_name"] == lv for row in report(run, ["lvs", "-o", "lv_name", vg], "lv")):
        return VolumePlan(vg, lv, device, exists=True, notes=[f"{device} exists already"])
    plan = VolumePlan(vg, lv, device, exists=False)
    pv_rows = {row["pv_name"]: row["vg_name"] for row in report(run, ["pvs", "-o", "pv_name,vg_name"], "pv")}
    pv_rows = {os.path.realpath(name): owner for name, owner in pv_rows.items()}
    if vg_exists:
        outside = [pv for pv in pvs if pv_rows.get(os.path.realpath(pv)) != vg]
        if outside:
            raise DiskError(
                f"volume group {vg} exists and {', '.join(outside)} is not in it: extend it yourself "
                f"(vgextend {vg} DEVICE) or leave pvs out to use its free space"
            )
        plan.notes.append(f"volume group {vg} exists: the volume is made in its free space")
    else:
        if not pvs:
            raise DiskError(f"volume group {vg} does not exist: name the devices for it in pvs (/dev/vdb)")
        why = []
        for pv in pvs:
            owner = pv_rows.get(os.path.realpath(pv))
            if owner is None:
                why += _free_for_a_pv(run, pv)
                plan.commands.append(["pvcreate", "--yes", pv])
            elif owner:
                why.append(f"{pv} belongs to volume group {owner} already")
        if why:
            raise DiskError("Nothing was changed: " + "; ".join(why))
        plan.commands.append(["vgcreate", "--yes", vg, *pvs])
    amount = ["--extents", size] if _EXTENTS.match(size) else ["--size", size]
    plan.commands.append(["lvcreate", "--yes", "--wipesignatures", "y", "--name", lv, *amount, vg])
    return plan


def _vg_exists(run: Runner, vg: str) -> bool:
    return any(row["vg_name"] == vg for row in report(run, ["vgs", "-o", "vg_name"], "vg"))
