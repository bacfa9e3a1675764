"""rescue_attach and rescue_detach run in-process the way Ansible runs them, on real images: check mode
attaches read-only and the check-mode detach takes it away, a killed run's record is refused or
undone on request, and a disk in use or built upon is refused. The kernel's mount table, losetup and
the image's own bytes judge, not the modules."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.attach.attachment import state_file_for
from ansible_collections.lifeline.rescue.plugins.modules import rescue_attach, rescue_detach

from support.modules import run_module

pytest_plugins = ("support.processes",)
MIB = 1 << 20


def sh(*argv: str | Path) -> str:
    return subprocess.run([*map(str, argv)], capture_output=True, text=True, check=True, timeout=120).stdout


@pytest.fixture
def root_image(tmp_path) -> Path:
    """A qcow2 image of a whole-disk ext4 filesystem holding a minimal Linux root."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text('ID=debian\nPRETTY_NAME="Tiny 12"\n')
    (tree / "etc" / "fstab").write_text("LABEL=tiny / ext4 defaults 0 1\n")
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"")
    os.truncate(raw, 32 * MIB)
    sh("mkfs.ext4", "-q", "-F", "-L", "tiny", "-d", tree, raw)
    image = tmp_path / "vm-101-disk-0.qcow2"
    sh("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, image)
    raw.unlink()
    return image


@pytest.fixture
def attach(tmp_path, capsys):
    """rescue_attach with a mount point of this test's own; the detach always runs afterwards."""
    point = str(tmp_path / "mnt")

    def run(check_mode: bool = False, **args) -> tuple[int, dict]:
        return run_module(rescue_attach, capsys, mount_point=point, _ansible_check_mode=check_mode, **args)

    run.point = point
    yield run
    run_module(rescue_detach, capsys, mount_point=point)


def detach(capsys, point: str, check_mode: bool = False) -> tuple[int, dict]:
    return run_module(rescue_detach, capsys, mount_point=point, _ansible_check_mode=check_mode)


def mount_options(point: str) -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == point:
                return fields[5].split(",")
    return []


def daemons_serving(image: Path) -> list[int]:
    """The qemu-storage-daemon processes whose command line names ``image`` (from /proc)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"qemu-storage-daemon") and any(str(image).encode() in a for a in argv):
            found.append(int(pid))
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def nothing_left(image: Path, point: str) -> None:
    """No loop device, export, daemon or record of this attachment is left."""
    loops = json.loads(sh("losetup", "--list", "--json") or '{"loopdevices": []}')["loopdevices"]
    ours = (str(image), Path(state_file_for(point)).stem)  # the image, or its export file
    assert [loop for loop in loops if any(o in (loop.get("back-file") or "") for o in ours)] == []
    assert mount_options(point) == []
    assert not os.path.exists(state_file_for(point))
    assert daemons_serving(image) == []


def test_check_mode_attaches_read_only_and_the_check_mode_detach_takes_it_away(root_image, attach, capsys):
    before = sha256(root_image)

    rc, attached = attach(check_mode=True, target_image=str(root_image))

    assert rc == 0, attached["msg"]
    assert attached["readonly"] is True
    assert attached["os_release"]["PRETTY_NAME"] == "Tiny 12"
    assert attached["image"]["format"] == "qcow2" and attached["image"]["exported"] is True
    assert mount_options(attach.point)[0] == "ro"
    rc, detached = detach(capsys, attach.point, check_mode=True)
    assert rc == 0 and detached["left"] == [], detached
    assert detached["undone"][0] == f"unmounted {attach.point}"
    nothing_left(root_image, attach.point)
    assert sha256(root_image) == before


def test_a_read_write_attachment_is_only_described_by_a_check_mode_detach(root_image, attach, capsys):
    rc, attached = attach(target_image=str(root_image))
    assert rc == 0, attached["msg"]
    assert mount_options(attach.point)[0] == "rw"

    rc, detached = detach(capsys, attach.point, check_mode=True)

    assert rc == 0 and detached["undone"][0] == f"would unmount {attach.point}"
    assert mount_options(attach.point)[0] == "rw"
    assert detach(capsys, attach.point)[0] == 0
    nothing_left(root_image, attach.point)


def test_a_killed_run_s_record_is_refused_then_undone_on_request(root_image, attach):
    rc, first = attach(target_image=str(root_image))
    assert rc == 0, first["msg"]
    # The run is killed here: nothing detaches. The next run must not pile a second attachment on it.

    rc, again = attach(target_image=str(root_image))
    assert rc == 1 and "rescue_mount_undo_earlier=true" in again["msg"], again["msg"]
    assert again["steps"] == [] and mount_options(attach.point)[0] == "rw"

    rc, reclaimed = attach(target_image=str(root_image), undo_earlier=True)
    assert rc == 0, reclaimed["msg"]
    assert reclaimed["earlier_undone"][0] == f"unmounted {attach.point}"
    assert any(u.startswith("stopped the export of") for u in reclaimed["earlier_undone"])
    assert len(daemons_serving(root_image)) == 1


def test_an_image_open_for_writing_is_refused_naming_the_process_and_may_be_looked_at(
    root_image, attach, spawn
):
    writer = spawn(["sh", "-c", 'exec 3<>"$1"; exec sleep 60', "sh", str(root_image)], cwd="/")

    rc, refused = attach(target_image=str(root_image))

    assert rc == 1
    assert f"pid {writer.pid} (sleep) fd 3 {root_image} (open for writing)" in refused["msg"], refused["msg"]
    assert "target_readonly" in refused["msg"]
    assert refused["steps"] == [] and mount_options(attach.point) == []

    rc, looked = attach(readonly=True, target_image=str(root_image))
    assert rc == 0, looked["msg"]
    assert any(f"pid {writer.pid} (sleep)" in line and "may change it" in line for line in looked["plan"])


def test_an_image_other_images_are_built_on_is_refused_for_writing(root_image, attach, tmp_path):
    overlay = tmp_path / "web1.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", root_image.name, "-F", "qcow2", overlay)

    rc, refused = attach(target_image=str(root_image))
    assert rc == 1 and f"is the backing file of {overlay}" in refused["msg"], refused["msg"]

    rc, through = attach(target_image=str(overlay))
    assert rc == 0, through["msg"]
    assert through["image"]["backing_chain"] == [str(root_image)]
    assert any("writes go into" in line for line in through["plan"]), through["plan"]
