"""attach.target: a failure at any step undoes what was attached, proven with real mounts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.attach import target
from ansible_collections.lifeline.rescue.plugins.module_utils.attach.attachment import Attachment

from support.roots import mounts_under
from support.runners import run as tool_run
from support.runners import tool_error


def runner(fails_on: str):
    """The rescuer's tools for real (support.runners), except that a mount of ``fails_on`` fails as
    mount would."""

    def run(argv: list[str]) -> str:
        if argv[0] == "mount" and argv[-1].endswith(fails_on):
            raise tool_error(argv, 32, "injected failure")
        return tool_run(argv)

    return run


@pytest.fixture
def linux_root(small_root: Path) -> Path:
    (small_root / "etc" / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
    (small_root / "etc" / "fstab").write_text("")
    for inside in ("dev", "proc", "sys", "run"):
        (small_root / inside).mkdir()
    return small_root


def test_a_failed_bind_undoes_every_mount_made_before_it(linux_root, tmp_path):
    state = tmp_path / "state.json"
    job = Attachment(run=runner("/sys"), mount_point=str(linux_root), state_file=str(state))
    try:
        with pytest.raises(target.AttachFailed, match="injected failure") as failed:
            target.attach(job, "root", str(linux_root), bind_api=True)
    finally:
        leftovers = mounts_under(linux_root)
        for point in reversed(leftovers):
            subprocess.run(["umount", "-l", point], check=False, timeout=60)
    assert leftovers == []
    # /dev, /dev/pts and /proc were bound before /sys failed: each undone, newest first.
    undone = failed.value.undone
    assert [u.split()[1] for u in undone if u.startswith("unmounted")] == [
        f"{linux_root}/proc",
        f"{linux_root}/dev/pts",
        f"{linux_root}/dev",
    ], undone
    assert failed.value.steps_left == [] and not state.exists()


def test_a_root_that_is_not_linux_is_refused_before_anything(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    job = Attachment(run=runner("never"), mount_point=str(empty), state_file=str(tmp_path / "s.json"))
    with pytest.raises(target.AttachFailed) as failed:
        target.attach(job, "root", str(empty), bind_api=True)
    assert job.steps == [] and failed.value.undone == [] and mounts_under(empty) == []


def test_the_running_root_is_refused():
    job = Attachment(run=runner("never"), mount_point="/")
    with pytest.raises(target.AttachFailed, match="own running root"):
        target.attach(job, "root", "/")


def test_an_unknown_kind_is_refused():
    with pytest.raises(target.AttachError, match="unknown kind"):
        target.attach(Attachment(run=runner("never"), mount_point="/mnt/x"), "floppy", "/dev/fd0")


@pytest.mark.parametrize(
    ("kind", "make", "message"),
    [
        ("image", None, "no such file; check the target_image path"),
        ("image", "dir", "is not a regular file"),
        ("device", "file", "is not a block device"),
    ],
)
def test_a_path_of_the_wrong_kind_is_refused(tmp_path, kind, make, message):
    path = tmp_path / "given"
    if make == "dir":
        path.mkdir()
    elif make == "file":
        path.write_bytes(b"\0" * 512)
    job = Attachment(run=runner("never"), mount_point=str(tmp_path / "mnt"), state_file=str(tmp_path / "s"))
    with pytest.raises(target.AttachFailed, match=message):
        target.attach(job, kind, str(path))
    assert job.steps == []
