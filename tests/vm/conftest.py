"""The VM lane: incidents that need LVM, a real boot and real ssh, in qemu VMs (support/qemu.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import playbooks
from support.qemu import DISKS, KEY, VM


@pytest.fixture
def run_playbook(tmp_path, request) -> playbooks.RunPlaybook:
    """Runs a playbook with ansible-runner (support/playbooks.py); a bare name is one of playbooks/ here."""
    return playbooks.runner(tmp_path, Path(request.path).parent / "playbooks")


@pytest.fixture(scope="session")
def vm_disks() -> Path:
    """The cached disks of tools/images/build-vm-disks.sh (`make vm-disks`); the lane fails without them."""
    missing = [
        f"{name}.img"
        for name in ("patient", "rescue", "mover", "vault")
        if not (DISKS / f"{name}.img").is_file()
    ]
    missing += [] if (DISKS / "vault.key").is_file() else ["vault.key"]
    if missing or not KEY.is_file():
        pytest.fail(f"VM disks {missing or ''} or the key {KEY} are missing: run `make vm-disks`")
    return DISKS


@pytest.fixture
def vms(tmp_path):
    """Make VMs for one test; every one still running is stopped after it, whatever happened."""
    made: list[VM] = []

    def make(name: str, disks: list[Path], **kwargs) -> VM:
        vm = VM(name, disks, tmp_path / "vms", **kwargs)
        made.append(vm)
        return vm

    yield make
    for vm in made:
        vm.pull_the_plug()
