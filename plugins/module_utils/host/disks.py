# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find what is on a disk image or block device, without attaching anything.

Partitions come from ``partx --show`` and filesystems from ``blkid --probe`` at each partition's
offset, so the same code reads a raw image file and a disk, and check mode can say what a run
would find before a loop device exists.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import asdict, dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner, ToolError

# Filesystems a Linux root (or /boot, /usr, /var) can live on, and how to mount each on a rescuer.
ROOT_FSTYPES = ("ext4", "ext3", "ext2", "xfs", "btrfs")
# Read-only without replaying a journal. btrfs has no option every kernel knows (nologreplay, then
# rescue=nologreplay): the read-only loop device under it is what keeps it from writing.
PROBE_OPTIONS = {
    "ext4": ["ro", "noload"],
    "ext3": ["ro", "noload"],
    "ext2": ["ro"],
    "xfs": ["ro", "norecovery"],
}
NOT_FILESYSTEMS = ("swap", "LVM2_member", "linux_raid_member", "crypto_LUKS")


class DiskError(LifelineError):
    """A disk, image or tool did not do what was needed; the message says what and what to do."""


@dataclass
class Volume:
    """A filesystem or container found on the target: a partition, the whole disk, or a logical volume."""

    fstype: str = ""
    uuid: str = ""
    label: str = ""
    partuuid: str = ""
    partlabel: str = ""
    number: int = 0  # partition number; 0 for a whole disk or a logical volume
    start: int = 0  # byte offset on the disk
    size: int = 0  # bytes
    device: str = ""  # the block device once attached
    lv: str = ""  # "vg/lv" for a logical volume

    @property
    def name(self) -> str:
        if self.lv:
            return self.lv
        return f"partition {self.number}" if self.number else "whole disk"

    def describe(self) -> str:
        bits = [self.name, self.fstype or "no filesystem"]
        bits += [f"{key}={value}" for key, value in (("UUID", self.uuid), ("LABEL", self.label)) if value]
        if self.device:
            bits.append(self.device)
        return " ".join(bits)

    def matches(self, spec: str) -> bool:
        """True when an fstab spec or a user's ``target_partition`` names this volume."""
        key, sep, value = spec.partition("=")
        if sep:
            return _same(key.upper(), self._ids().get(key.upper(), ""), value.strip('"'))
        for key, prefix in (
            ("UUID", "/dev/disk/by-uuid/"),
            ("LABEL", "/dev/disk/by-label/"),
            ("PARTUUID", "/dev/disk/by-partuuid/"),
            ("PARTLABEL", "/dev/disk/by-partlabel/"),
        ):
            if spec.startswith(prefix):
                return _same(key, self._ids()[key], unhex(spec[len(prefix) :]))
        if self.lv:
            vg, _slash, lv = self.lv.partition("/")
            mapper = f"/dev/mapper/{vg.replace('-', '--')}-{lv.replace('-', '--')}"
            return spec in (self.lv, f"/dev/{self.lv}", mapper)
        if spec.isdigit():
            return int(spec) == self.number
        return bool(self.device) and spec == self.device

    def _ids(self) -> dict[str, str]:
        return {
            "UUID": self.uuid,
            "LABEL": self.label,
            "PARTUUID": self.partuuid,
            "PARTLABEL": self.partlabel,
        }

    def as_dict(self) -> dict:
        data = asdict(self)
        data["name"] = self.name
        return data


# blkid's udev output: the _ENC values keep the exact bytes (\\xHH for unsafe ones), unlike
# ``-o export``, which mangles non-ASCII labels into M- notation.
_BLKID_UDEV_KEYS = {
    "ID_FS_TYPE": "TYPE",
    "ID_FS_UUID_ENC": "UUID",
    "ID_FS_LABEL_ENC": "LABEL",
    "ID_PART_TABLE_TYPE": "PTTYPE",
}


def _same(key: str, mine: str, wanted: str) -> bool:
    """UUIDs compare without case, as mount(8) does; labels are names and keep their case."""
    if not mine or not wanted:
        return False
    return mine.lower() == wanted.lower() if key.endswith("UUID") else mine == wanted


def parse_blkid_udev(text: str) -> dict[str, str]:
    """``blkid --probe --output udev`` of one device, as {TYPE, UUID, LABEL, PTTYPE}."""
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in _BLKID_UDEV_KEYS:
            info[_BLKID_UDEV_KEYS[key]] = unhex(value)
    return info


def unhex(field: str) -> str:
    """Undo util-linux's \\xHH escapes; each one is a byte, so escaped UTF-8 comes back whole."""
    raw = bytearray()
    for hexed, plain in re.findall(r"\\x([0-9a-fA-F]{2})|(.)", field, flags=re.DOTALL):
        raw += bytes([int(hexed, 16)]) if hexed else plain.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "replace")


def parse_partx(text: str) -> list[dict[str, str]]:
    """``partx --raw -o NR,START,SECTORS,UUID,NAME`` output, header line first."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split()
    # No zip(strict=...): rescuers run Pythons older than 3.10 (bullseye: 3.9).
    return [dict(zip(header, map(unhex, line.split(" ")))) for line in lines[1:]]


def probe(run: Runner, path: str, start: int = 0, size: int = 0) -> dict[str, str]:
    argv = ["blkid", "--probe", "--output", "udev"]
    if start or size:
        argv += ["--offset", str(start), "--size", str(size)]
    try:
        return parse_blkid_udev(run([*argv, path]))
    except ToolError:
        # blkid exits 2 when it recognises nothing: an empty partition or not a disk at all.
        return {}


def volume_from(info: dict[str, str], **where) -> Volume:
    return Volume(
        fstype=info.get("TYPE", ""),
        uuid=info.get("UUID", ""),
        label=info.get("LABEL", ""),
        partuuid=info.get("PART_ENTRY_UUID", ""),
        partlabel=info.get("PART_ENTRY_NAME", ""),
        **where,
    )


def survey(run: Runner, path: str) -> tuple[str, list[Volume]]:
    """(partition table type, volumes) of an image file or block device, read without attaching it."""
    whole = probe(run, path)
    table = whole.get("PTTYPE", "")
    if not table:
        if whole.get("TYPE"):
            return "", [volume_from(whole, size=whole_size(path))]
        raise DiskError(
            f"{path} holds no partition table and no filesystem that blkid recognises: it is not a disk "
            "image, or not one of a format lifeline reads (raw, qcow2, vmdk, vhdx, vpc, vdi; an image "
            "whose header is damaged may need target_image_format)"
        )
    columns = "NR,START,SECTORS,UUID,NAME"
    rows = parse_partx(run(["partx", "--raw", "--output", columns, path]))
    sector = 512
    volumes = []
    for row in rows:
        start, size = int(row["START"]) * sector, int(row["SECTORS"]) * sector
        info = probe(run, path, start, size)
        info.setdefault("PART_ENTRY_UUID", row.get("UUID", ""))
        info.setdefault("PART_ENTRY_NAME", row.get("NAME", ""))
        volumes.append(volume_from(info, number=int(row["NR"]), start=start, size=size))
    return table, volumes


def whole_size(path: str) -> int:
    st = os.stat(path)
    if stat.S_ISBLK(st.st_mode):
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
    return st.st_size


def mountable(volume: Volume) -> bool:
    return volume.fstype in ROOT_FSTYPES


def has_device_mapper(proc_misc: str = "/proc/misc") -> bool:
    try:
        with open(proc_misc, encoding="ascii", errors="replace") as handle:
            return any(line.split()[-1:] == ["device-mapper"] for line in handle)
    except OSError:
        return os.path.exists("/dev/mapper/control")


def parse_losetup_json(text: str) -> list[dict[str, str]]:
    """``losetup --list --json -O NAME,BACK-FILE,BACK-INO,BACK-MAJ:MIN`` rows (empty when none)."""
    if not text.strip():
        return []
    return json.loads(text).get("loopdevices", [])


def file_id(path: str) -> str:
    """A file's identity as losetup shows a backing file: "MAJOR:MINOR INODE" of where it lives."""
    st = os.stat(path)
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)} {st.st_ino}"


def loop_backings(run: Runner) -> dict[str, str]:
    """{loop device: file_id of its backing file} for every attached loop device."""
    rows = parse_losetup_json(run(["losetup", "--list", "--json", "--output", "NAME,BACK-INO,BACK-MAJ:MIN"]))
    # losetup pads BACK-MAJ:MIN with spaces in JSON output.
    return {row["name"]: f"{str(row.get('back-maj:min')).strip()} {row.get('back-ino')}" for row in rows}


def loops_backed_by(run: Runner, path: str) -> list[str]:
    """Loop devices whose backing file is ``path`` (matched by device and inode, not by name)."""
    want = file_id(path)
    return [name for name, backing in loop_backings(run).items() if backing == want]


def sys_block_name(device: str) -> str:
    """The kernel's name for a block device node (/dev/loop3 -> loop3), from its device number."""
    rdev = os.stat(device).st_rdev
    link = os.readlink(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}")
    return os.path.basename(link)


def partition_nodes(disk: str) -> dict[int, tuple[str, str]]:
    """{number: (kernel name, "major:minor")} of the partitions the kernel knows on ``disk``."""
    name = sys_block_name(disk)
    base = f"/sys/class/block/{name}"
    found = {}
    for entry in sorted(os.listdir(base)):
        try:
            with open(f"{base}/{entry}/partition", encoding="ascii") as handle:
                number = int(handle.read())
            with open(f"{base}/{entry}/dev", encoding="ascii") as handle:
                found[number] = (entry, handle.read().strip())
        except (OSError, ValueError):
            continue
    return found


def device_numbers(disk: str) -> set[tuple[int, int]]:
    """The device numbers of a disk and all its partitions."""
    rdev = os.stat(disk).st_rdev
    numbers = {(os.major(rdev), os.minor(rdev))}
    for _name, majmin in partition_nodes(disk).values():
        major, _colon, minor = majmin.partition(":")
        numbers.add((int(major), int(minor)))
    return numbers


def device_nodes(disk: str) -> set[str]:
    """The /dev paths of a disk and of its partitions."""
    return {
        f"/dev/{sys_block_name(disk)}",
        *(f"/dev/{name}" for name, _majmin in partition_nodes(disk).values()),
    }


def stacked_on(disk: str) -> list[str]:
    """Devices built on top of a disk or its partitions (device-mapper, md): /sys holders."""
    name = sys_block_name(disk)
    found = []
    for entry in [name, *(n for n, _majmin in partition_nodes(disk).values())]:
        try:
            found += os.listdir(f"/sys/class/block/{entry}/holders")
        except OSError:
            continue
    return sorted(set(found))
