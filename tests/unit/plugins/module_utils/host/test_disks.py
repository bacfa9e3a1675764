"""disks: what is on a disk image, read from real image files built with sfdisk and mkfs."""

from __future__ import annotations

import json
import os
import random
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host import disks
from ansible_collections.lifeline.rescue.plugins.module_utils.host.disks import DiskError, Volume

from support.runners import ENV, FakeRunner, run

MIB = 1 << 20


def sh(*argv: str | Path, stdin: str | None = None) -> str:
    return subprocess.run(
        [str(a) for a in argv], input=stdin, capture_output=True, text=True, env=ENV, check=True
    ).stdout


# ---- building the images ------------------------------------------------------------------------


MKFS = {
    "ext4": (["mkfs.ext4", "-q", "-F"], "-L"),
    "xfs": (["mkfs.xfs", "-q", "-f"], "-L"),
    "btrfs": (["mkfs.btrfs", "-q", "-f"], "-L"),
    "vfat": (["mkfs.vfat"], "-n"),
    "swap": (["mkswap"], "-L"),
}


@dataclass
class Fs:
    """A filesystem made in its own file, to be copied into a partition."""

    fstype: str
    label: str = ""
    size_mib: int = 16

    def make(self, path: Path) -> Path:
        with open(path, "wb") as handle:
            handle.truncate(self.size_mib * MIB)
        mkfs, label_option = MKFS[self.fstype]
        sh(*mkfs, *([label_option, self.label] if self.label else []), path)
        return path


@dataclass
class Part:
    size_mib: int
    name: str = ""  # the GPT partition name
    fs: Fs | None = None
    kind: str = "L"  # sfdisk type shortcut: L (linux), E (extended)


@dataclass
class Image:
    path: Path
    label: str  # "gpt" or "dos"
    parts: list[Part]
    fs_files: dict[int, Path] = field(default_factory=dict)  # partition number -> its filesystem file

    def sfdisk(self) -> dict:
        """The oracle for the partition table: sfdisk's own JSON dump of the image."""
        return json.loads(sh("sfdisk", "--json", self.path))["partitiontable"]

    def number(self, entry: dict) -> int:
        """The partition number of an sfdisk entry: its node is the image path and the number."""
        return int(entry["node"].removeprefix(str(self.path)))


def make_image(path: Path, label: str, parts: list[Part]) -> Image:
    total = sum(p.size_mib for p in parts if p.kind != "E") + 2 * len(parts) + 2
    with open(path, "wb") as handle:
        handle.truncate(total * MIB)
    script = [f"label: {label}"]
    for part in parts:
        line = f"size={part.size_mib}MiB, type={part.kind}" if part.size_mib else f"type={part.kind}"
        if part.name:
            line += f', name="{part.name}"'
        script.append(line)
    sh("sfdisk", "--quiet", path, stdin="\n".join(script) + "\n")
    image = Image(path, label, parts)
    table = image.sfdisk()
    for entry, part in zip(table.get("partitions", []), parts, strict=True):  # both in partition number order
        if part.fs is None:
            continue
        number = image.number(entry)
        fs_file = part.fs.make(path.parent / f"{path.stem}-p{number}.{part.fs.fstype}")
        offset = entry["start"] * table["sectorsize"]
        sh(
            "dd",
            f"if={fs_file}",
            f"of={path}",
            "bs=1M",
            f"seek={offset}",
            "oflag=seek_bytes",
            "conv=notrunc,sparse",
            "status=none",
        )
        image.fs_files[number] = fs_file
    return image


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Image]:
    """Every image the lane reads, built once (sparse files: the 300 MB xfs costs no disk)."""
    top = tmp_path_factory.mktemp("images")
    built = {
        "gpt": make_image(
            top / "gpt.img",
            "gpt",
            [
                Part(16, "EFI system", Fs("vfat", "EFI")),
                Part(32, "root fs", Fs("ext4", "rootfs", 32)),
                Part(300, "var", Fs("xfs", "var", 300)),
                Part(112, "data", Fs("btrfs", "data", 110)),
                Part(8, "empty slot"),
                Part(8, "swap", Fs("swap", "swap", 8)),
            ],
        ),
        "dos": make_image(
            top / "dos.img",
            "dos",
            [
                Part(16, fs=Fs("ext4", "boot", 16)),
                Part(0, kind="E"),
                Part(24, fs=Fs("ext4", "root", 24)),
                Part(8, fs=Fs("swap", "swap2", 8)),
                Part(8),
            ],
        ),
        "names": make_image(
            top / "names.img",
            "gpt",
            [
                Part(8, "EFI system"),
                Part(8, "caf\u00e9 root"),
                Part(8, "plain", Fs("ext4", "my root", 8)),
            ],
        ),
        "empty-gpt": make_image(top / "empty-gpt.img", "gpt", []),
    }
    whole = top / "whole.img"
    Fs("ext4", "whole", 16).make(whole)
    built["whole"] = Image(whole, "", [], {0: whole})
    return built


def blkid_of(fs_file: Path) -> dict[str, str]:
    """The oracle for a filesystem: blkid's export of the filesystem's own file, shell-unquoted."""
    info = {}
    for line in sh("blkid", "--probe", "--output", "export", fs_file).splitlines():
        key, _, value = line.partition("=")
        info[key] = shlex.split(value)[0] if value else ""
    return info


def expected_volumes(image: Image) -> list[Volume]:
    table = image.sfdisk()
    sector = table["sectorsize"]
    volumes = []
    for part in table["partitions"]:
        number = image.number(part)
        if image.label == "gpt":
            partuuid, partlabel = part["uuid"].lower(), part.get("name", "")
        else:  # an MBR partition's PARTUUID is the disk identifier and the number, both in hex
            partuuid, partlabel = f"{int(table['id'], 16):08x}-{number:02x}", ""
        fs = blkid_of(image.fs_files[number]) if number in image.fs_files else {}
        volumes.append(
            Volume(
                fstype=fs.get("TYPE", ""),
                uuid=fs.get("UUID", ""),
                label=fs.get("LABEL", ""),
                partuuid=partuuid,
                partlabel=partlabel,
                number=number,
                start=part["start"] * sector,
                size=part["size"] * sector,
            )
        )
    return volumes


# ---- survey -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpt", "dos"])
def test_survey_matches_sfdisk_and_blkid(images, name):
    image = images[name]

    table, volumes = disks.survey(run, str(image.path))

    assert table == image.sfdisk()["label"] == image.label
    assert volumes == expected_volumes(image)


def test_survey_gpt_layout_in_words(images):
    """The same survey, spelled out: what a reader of the report expects to see."""
    _, volumes = disks.survey(run, str(images["gpt"].path))

    assert [(v.number, v.partlabel, v.fstype, v.label) for v in volumes] == [
        (1, "EFI system", "vfat", "EFI"),
        (2, "root fs", "ext4", "rootfs"),
        (3, "var", "xfs", "var"),
        (4, "data", "btrfs", "data"),
        (5, "empty slot", "", ""),
        (6, "swap", "swap", "swap"),
    ]
    assert [v.number for v in volumes if disks.mountable(v)] == [2, 3, 4]
    assert volumes[1].matches("PARTLABEL=root fs")
    assert volumes[1].matches("LABEL=rootfs")


def test_survey_dos_with_logical_partitions(images):
    _, volumes = disks.survey(run, str(images["dos"].path))

    assert [(v.number, v.fstype, v.label) for v in volumes] == [
        (1, "ext4", "boot"),
        (2, "", ""),  # the extended partition holds the logical ones, no filesystem
        (5, "ext4", "root"),
        (6, "swap", "swap2"),
        (7, "", ""),
    ]


def test_survey_whole_disk_filesystem(images):
    image = images["whole"]
    fs = blkid_of(image.path)

    table, volumes = disks.survey(run, str(image.path))

    assert (table, volumes) == (
        "",
        [Volume(fstype="ext4", uuid=fs["UUID"], label="whole", number=0, start=0, size=16 * MIB)],
    )
    assert volumes[0].name == "whole disk"


def test_survey_empty_partition_table(images):
    assert disks.survey(run, str(images["empty-gpt"].path)) == ("gpt", [])


@pytest.mark.parametrize(
    ("number", "attribute", "expected"),
    [
        pytest.param(1, "partlabel", "EFI system", id="GPT name with a space"),
        pytest.param(2, "partlabel", "caf\u00e9 root", id="GPT name in UTF-8"),
        pytest.param(3, "label", "my root", id="ext4 label with a space"),
    ],
)
def test_survey_names_survive_the_tools_escaping(images, number, attribute, expected):
    _, volumes = disks.survey(run, str(images["names"].path))

    assert getattr(next(v for v in volumes if v.number == number), attribute) == expected


def not_images(top: Path) -> dict[str, Path]:
    rng = random.Random(20240601)
    made = {
        "random bytes": rng.randbytes(MIB),
        "a text file": b"This is not a disk.\n" * 1000,
        "all zeros (a blank disk)": bytes(MIB),
        "an empty file": b"",
    }
    paths = {}
    for what, data in made.items():
        paths[what] = top / what.replace(" ", "-")
        paths[what].write_bytes(data)
    paths["a directory"] = top / "dir"
    paths["a directory"].mkdir()
    return paths


@pytest.mark.parametrize(
    "what", ["random bytes", "a text file", "all zeros (a blank disk)", "an empty file", "a directory"]
)
def test_survey_refuses_what_is_not_a_disk_image(tmp_path, what):
    path = not_images(tmp_path)[what]

    with pytest.raises(DiskError, match="not a disk image") as raised:
        disks.survey(run, str(path))

    assert str(path) in str(raised.value)
    assert "raw, qcow2, vmdk, vhdx, vpc, vdi" in str(raised.value)  # the formats it does read


def test_survey_of_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(DiskError):
        disks.survey(run, str(tmp_path / "missing.img"))


def test_whole_size_of_a_sparse_file(tmp_path):
    path = tmp_path / "sparse"
    with open(path, "wb") as handle:
        handle.truncate(300 * MIB)

    assert disks.whole_size(str(path)) == 300 * MIB


# ---- parsers ------------------------------------------------------------------------------------

# As partx prints them: an empty NAME leaves a trailing space.
PARTX_GPT = (
    "NR START SECTORS UUID NAME\n"
    "1 2048 32768 2205c28b-07fb-804d-a0e8-a94d2f586b7f EFI\\x20system\n"
    "2 34816 65536 2dca1acf-2959-a04d-97e9-30ccb15941f5 root\\x20fs\n"
    "3 100352 28672 3bedae48-f4c0-1a4e-bd50-589e485cb20b \n"
)
PARTX_DOS = (
    "NR START SECTORS UUID NAME\n"
    "1 2048 32768 4e86a34b-01 \n"
    "2 34816 96256 4e86a34b-02 \n"
    "5 36864 16384 4e86a34b-05 \n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            PARTX_GPT,
            [
                {
                    "NR": "1",
                    "START": "2048",
                    "SECTORS": "32768",
                    "UUID": "2205c28b-07fb-804d-a0e8-a94d2f586b7f",
                    "NAME": "EFI system",
                },
                {
                    "NR": "2",
                    "START": "34816",
                    "SECTORS": "65536",
                    "UUID": "2dca1acf-2959-a04d-97e9-30ccb15941f5",
                    "NAME": "root fs",
                },
                {
                    "NR": "3",
                    "START": "100352",
                    "SECTORS": "28672",
                    "UUID": "3bedae48-f4c0-1a4e-bd50-589e485cb20b",
                    "NAME": "",
                },
            ],
            id="gpt with spaced names and an unnamed partition",
        ),
        pytest.param(
            PARTX_DOS,
            [
                {"NR": "1", "START": "2048", "SECTORS": "32768", "UUID": "4e86a34b-01", "NAME": ""},
                {"NR": "2", "START": "34816", "SECTORS": "96256", "UUID": "4e86a34b-02", "NAME": ""},
                {"NR": "5", "START": "36864", "SECTORS": "16384", "UUID": "4e86a34b-05", "NAME": ""},
            ],
            id="dos with a logical partition",
        ),
        pytest.param("NR START SECTORS UUID NAME\n", [], id="header only"),
        pytest.param("", [], id="nothing (an empty table)"),
        pytest.param("\n\nNR START\n\n7 63\n\n", [{"NR": "7", "START": "63"}], id="blank lines"),
    ],
)
def test_parse_partx(text, expected):
    assert disks.parse_partx(text) == expected


def test_parse_partx_reads_the_real_tool(images):
    rows = disks.parse_partx(
        run(["partx", "--raw", "--output", "NR,START,SECTORS,UUID,NAME", str(images["gpt"].path)])
    )
    table = images["gpt"].sfdisk()

    assert [(int(r["NR"]), int(r["START"]), int(r["SECTORS"]), r["UUID"], r["NAME"]) for r in rows] == [
        (images["gpt"].number(p), p["start"], p["size"], p["uuid"].lower(), p.get("name", ""))
        for p in table["partitions"]
    ]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("EFI\\x20system", "EFI system"),
        ("no-escapes_at.all", "no-escapes_at.all"),
        ("\\x2F\\x2f", "//"),
        ("back\\x5cx20slash", "back\\x20slash"),
        ("half\\x2", "half\\x2"),
        ("\\xzz", "\\xzz"),
        ("caf\\xc3\\xa9", "caf\u00e9"),
        ("", ""),
    ],
    ids=[
        "space",
        "none",
        "upper and lower hex",
        "escaped backslash is not decoded twice",
        "incomplete",
        "not hex",
        "utf-8 bytes (partx escapes each byte)",
        "empty",
    ],
)
def test_unhex(field, expected):
    assert disks.unhex(field) == expected


# Real `blkid --probe --output udev` output; the _ENC values keep every byte (\\xHH for unsafe ones).
BLKID_EXT4 = """\
ID_FS_LABEL=rootfs
ID_FS_LABEL_ENC=rootfs
ID_FS_UUID=f2c32c5a-88d8-412d-9900-da75a7ac2707
ID_FS_UUID_ENC=f2c32c5a-88d8-412d-9900-da75a7ac2707
ID_FS_VERSION=1.0
ID_FS_BLOCK_SIZE=1024
ID_FS_TYPE=ext4
ID_FS_USAGE=filesystem
"""


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        pytest.param(BLKID_EXT4, "TYPE", "ext4", id="type"),
        pytest.param(BLKID_EXT4, "UUID", "f2c32c5a-88d8-412d-9900-da75a7ac2707", id="uuid"),
        pytest.param(BLKID_EXT4, "LABEL", "rootfs", id="label"),
        pytest.param(
            "ID_PART_TABLE_UUID=07ca\nID_PART_TABLE_TYPE=gpt\n", "PTTYPE", "gpt", id="partition table"
        ),
        pytest.param("ID_FS_LABEL_ENC=a=b\n", "LABEL", "a=b", id="equals sign in the value"),
        pytest.param("\nnot a pair\nID_FS_TYPE=xfs\n", "TYPE", "xfs", id="junk lines"),
        # `mkfs.ext4 -L "my 'q\"$\\"` as blkid prints it: ID_FS_LABEL mangles it, the _ENC form keeps it.
        pytest.param(
            "ID_FS_LABEL=my_'q\"$\\\nID_FS_LABEL_ENC=my\\x20\\x27q\\x22\\x24\\x5c\n",
            "LABEL",
            "my 'q\"$\\",
            id="escaped: space, quotes, dollar, backslash",
        ),
        pytest.param(
            "ID_FS_LABEL_ENC=caf\u00e9\\x20root\n", "LABEL", "caf\u00e9 root", id="utf-8 kept as is"
        ),
    ],
)
def test_parse_blkid_udev(text, key, expected):
    assert disks.parse_blkid_udev(text)[key] == expected


def test_parse_blkid_udev_of_nothing():
    assert disks.parse_blkid_udev("") == {}


LOSETUP_ONE = """\
{
   "loopdevices": [
      {
         "name": "/dev/loop0",
         "back-ino": %d,
         "back-maj:min": "     %s  "
      }
   ]
}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", [], id="old losetup prints nothing"),
        pytest.param('{\n   "loopdevices": [\n\n   ]\n}\n', [], id="no loop devices"),
        pytest.param(
            LOSETUP_ONE % (2146462, "254:0"),
            [{"name": "/dev/loop0", "back-ino": 2146462, "back-maj:min": "     254:0  "}],
            id="one device, space-padded BACK-MAJ:MIN as printed",
        ),
        pytest.param("{}", [], id="no loopdevices key"),
    ],
)
def test_parse_losetup_json(text, expected):
    assert disks.parse_losetup_json(text) == expected


def test_loops_backed_by_matches_device_and_inode(tmp_path):
    image, other = tmp_path / "vm.raw", tmp_path / "other.raw"
    image.write_bytes(b"")
    other.write_bytes(b"")
    st = image.stat()
    majmin = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    listing = (
        '{"loopdevices": ['
        f'{{"name": "/dev/loop0", "back-ino": {other.stat().st_ino}, "back-maj:min": "  {majmin} "}},'
        f'{{"name": "/dev/loop3", "back-ino": {st.st_ino}, "back-maj:min": "     {majmin}  "}},'
        f'{{"name": "/dev/loop4", "back-ino": {st.st_ino}, "back-maj:min": " {os.major(st.st_dev) + 1}:0"}},'
        f'{{"name": "/dev/loop5", "back-ino": null, "back-maj:min": null}}'
        "]}"
    )
    fake = FakeRunner({("losetup",): listing})

    assert disks.loops_backed_by(fake, str(image)) == ["/dev/loop3"]
    assert fake.calls == [["losetup", "--list", "--json", "--output", "NAME,BACK-INO,BACK-MAJ:MIN"]]


# ---- Volume -------------------------------------------------------------------------------------

PART2 = Volume(
    fstype="ext4",
    uuid="1f0b2c3d-aaaa-4bbb-8ccc-0123456789ab",
    label="rootfs",
    partuuid="2dca1acf-2959-a04d-97e9-30ccb15941f5",
    partlabel="root fs",
    number=2,
    device="/dev/loop3p2",
)
LV = Volume(fstype="xfs", uuid="5c808aa9-5e89-434c-a6e4-233d43ffb980", lv="vg0/root", device="/dev/vg0/root")
DASHED_LV = Volume(fstype="ext4", lv="my-vg/my-lv", device="/dev/my-vg/my-lv")
BARE = Volume(fstype="", number=0)

MATCHES = [
    (PART2, "UUID=1f0b2c3d-aaaa-4bbb-8ccc-0123456789ab", True, "UUID="),
    (PART2, "UUID=1F0B2C3D-AAAA-4BBB-8CCC-0123456789AB", True, "UUID in upper case"),
    (PART2, 'UUID="1f0b2c3d-aaaa-4bbb-8ccc-0123456789ab"', True, "quoted UUID"),
    (PART2, "uuid=1f0b2c3d-aaaa-4bbb-8ccc-0123456789ab", True, "lower-case key"),
    (PART2, "UUID=1f0b2c3d", False, "UUID prefix only"),
    (PART2, "LABEL=rootfs", True, "LABEL="),
    (PART2, "LABEL=root", False, "other LABEL"),
    (PART2, "PARTUUID=2dca1acf-2959-a04d-97e9-30ccb15941f5", True, "PARTUUID="),
    (PART2, "PARTLABEL=root fs", True, "PARTLABEL= with a space"),
    (PART2, "/dev/disk/by-uuid/1f0b2c3d-aaaa-4bbb-8ccc-0123456789ab", True, "by-uuid path"),
    (PART2, "/dev/disk/by-label/rootfs", True, "by-label path"),
    (PART2, "/dev/disk/by-partuuid/2dca1acf-2959-a04d-97e9-30ccb15941f5", True, "by-partuuid path"),
    (PART2, "/dev/disk/by-uuid/5c808aa9-5e89-434c-a6e4-233d43ffb980", False, "by-uuid of another"),
    (PART2, "2", True, "partition number"),
    (PART2, "3", False, "other partition number"),
    (PART2, "/dev/loop3p2", True, "its device"),
    (PART2, "/dev/sda2", False, "the target's own device name"),
    (PART2, "vg0/root", False, "an LV name on a partition"),
    (LV, "vg0/root", True, "VG/LV"),
    (LV, "/dev/vg0/root", True, "/dev/VG/LV"),
    (LV, "/dev/mapper/vg0-root", True, "/dev/mapper/VG-LV"),
    (LV, "UUID=5c808aa9-5e89-434c-a6e4-233d43ffb980", True, "LV by UUID"),
    (LV, "0", False, "an LV is no partition 0"),
    (LV, "vg0/swap", False, "another LV"),
    (DASHED_LV, "my-vg/my-lv", True, "dashed VG/LV"),
    (DASHED_LV, "/dev/my-vg/my-lv", True, "dashed /dev/VG/LV"),
    (DASHED_LV, "/dev/mapper/my--vg-my--lv", True, "dashed mapper name doubles the dashes"),
    (DASHED_LV, "/dev/mapper/my-vg-my-lv", False, "undoubled mapper name"),
    (BARE, "UUID=", False, "empty UUID never matches"),
    (BARE, "LABEL=", False, "empty LABEL never matches"),
    (BARE, 'LABEL=""', False, "empty quoted LABEL never matches"),
    (BARE, "PARTUUID=", False, "empty PARTUUID never matches"),
    (BARE, "PARTLABEL=", False, "empty PARTLABEL never matches"),
    (BARE, "/dev/disk/by-uuid/", False, "empty by-uuid never matches"),
    (BARE, "/dev/disk/by-label/", False, "empty by-label never matches"),
    (BARE, "", False, "empty spec never matches"),
    (PART2, "UUID=", False, "empty UUID never matches a volume with one"),
    (PART2, "NOSUCHKEY=rootfs", False, "unknown key"),
]


@pytest.mark.parametrize(
    ("volume", "spec", "expected"), [m[:3] for m in MATCHES], ids=[m[3] for m in MATCHES]
)
def test_volume_matches(volume, spec, expected):
    assert volume.matches(spec) is expected


@pytest.mark.parametrize(
    ("volume", "name", "described"),
    [
        (
            PART2,
            "partition 2",
            "partition 2 ext4 UUID=1f0b2c3d-aaaa-4bbb-8ccc-0123456789ab LABEL=rootfs /dev/loop3p2",
        ),
        (LV, "vg0/root", "vg0/root xfs UUID=5c808aa9-5e89-434c-a6e4-233d43ffb980 /dev/vg0/root"),
        (BARE, "whole disk", "whole disk no filesystem"),
    ],
    ids=["partition", "logical volume", "whole disk without filesystem"],
)
def test_volume_name_and_describe(volume, name, described):
    assert (volume.name, volume.describe()) == (name, described)
    assert volume.as_dict()["name"] == name


@pytest.mark.parametrize(
    ("fstype", "mountable"),
    [
        ("ext4", True),
        ("ext3", True),
        ("ext2", True),
        ("xfs", True),
        ("btrfs", True),
        ("vfat", False),
        ("swap", False),
        ("LVM2_member", False),
        ("crypto_LUKS", False),
        ("", False),
    ],
)
def test_mountable(fstype, mountable):
    assert disks.mountable(Volume(fstype=fstype)) is mountable


@pytest.mark.parametrize(
    ("misc", "expected"),
    [
        pytest.param(" 58 memory_bandwidth\n236 device-mapper\n 60 loop-control\n", True, id="listed"),
        pytest.param("236 device-mapper", True, id="last line without newline"),
        pytest.param(" 58 memory_bandwidth\n237 loop-control\n", False, id="not listed"),
        pytest.param("236 device-mapper-foo\n237 not-device-mapper\n", False, id="similar names"),
        pytest.param("", False, id="empty file"),
        pytest.param("\n\n", False, id="blank lines"),
    ],
)
def test_has_device_mapper(tmp_path, misc, expected):
    fake = tmp_path / "misc"
    fake.write_text(misc)

    assert disks.has_device_mapper(str(fake)) is expected


def test_has_device_mapper_without_proc_misc_asks_dev_mapper(tmp_path):
    assert disks.has_device_mapper(str(tmp_path / "missing")) is os.path.exists("/dev/mapper/control")
