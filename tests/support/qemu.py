"""Virtual machines for the VM lane: qemu under software emulation (TCG), reached by ssh.

Each VM boots a copy-on-write overlay of a cached disk (tools/images/build-vm-disks.sh) through its
own GRUB, with qemu's user network forwarding a local port to its sshd; its serial console goes to a
file (shown when a test fails) and its monitor to a socket (disks attached while it runs, the plug
pulled).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
from pathlib import Path

CACHE = Path(os.environ.get("LIFELINE_CACHE", "/var/cache/lifeline")) / "vm"
DISKS = CACHE / "disks"
KEY = CACHE / "id_ed25519"
SSH_OPTIONS = [
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=5",
    "-o", "BatchMode=yes",
]  # fmt: skip


class VMError(AssertionError):
    """A VM did not do what the test needs; the message carries the end of its console."""


def overlay(base: Path, path: Path) -> Path:
    """A qcow2 file that reads ``base`` (never written) and keeps every write for itself."""
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base), str(path)], check=True
    )
    return path


def blank_disk(path: Path, size: str = "2G") -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class VM:
    def __init__(self, name: str, disks: list[Path], workdir: Path, memory: int = 1024, cpus: int = 2):
        self.name = name
        self.disks = disks
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.memory, self.cpus = memory, cpus
        self.port = free_port()
        self.console = self.dir / "console.log"
        self.monitor = self.dir / "monitor.sock"
        self.process: subprocess.Popen | None = None
        self.boots = 0

    # ---- life cycle ------------------------------------------------------------------------------

    def start(self) -> VM:
        assert self.process is None or self.process.poll() is not None, f"{self.name} is running"
        self.boots += 1
        drives = []
        for index, disk in enumerate(self.disks):
            drives += ["-drive", f"file={disk},if=virtio,format=qcow2,index={index}"]
        argv = [
            "qemu-system-x86_64", "-accel", "tcg", "-m", str(self.memory), "-smp", str(self.cpus),
            "-display", "none", "-serial", f"file:{self.console}.{self.boots}",
            "-monitor", f"unix:{self.monitor},server=on,wait=off",
            "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{self.port}-:22",
            *drives,
        ]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def wait_for_ssh(self, timeout: float = 300) -> VM:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise VMError(f"{self.name}: qemu ended (exit {self.process.returncode}){self.tail()}")
            if self.ssh("true", check=False, timeout=20).returncode == 0:
                return self
            time.sleep(3)
        raise VMError(f"{self.name}: no ssh after {timeout:.0f}s{self.tail()}")

    def boot(self, timeout: float = 300, attempts: int = 2) -> VM:
        """Start and wait for ssh. Under emulation a boot can stall for good (a soft lockup of a
        vCPU the host did not schedule): such a boot is ended and started again, once; a disk that
        cannot boot fails every attempt. Each attempt keeps its own console file."""
        for attempt in range(1, attempts + 1):
            try:
                return self.start().wait_for_ssh(timeout)
            except VMError:
                self.pull_the_plug()
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def pull_the_plug(self) -> None:
        """End the VM at once, as a hypervisor's 'stop' does: what the guest did not write is lost."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def power_off(self, timeout: float = 180) -> None:
        """A clean shutdown through the guest's own systemd (its disks are written out)."""
        self.ssh("systemctl poweroff", check=False, timeout=30)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise VMError(f"{self.name}: still running {timeout}s after poweroff{self.tail()}") from exc

    def reboot(self, timeout: float = 300) -> VM:
        """Reboot from inside and wait until ssh answers from a new boot."""
        before = self.ssh("cat /proc/sys/kernel/random/boot_id").stdout
        self.ssh("systemctl reboot", check=False, timeout=30)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(5)
            answer = self.ssh("cat /proc/sys/kernel/random/boot_id", check=False, timeout=20)
            if answer.returncode == 0 and answer.stdout != before:
                return self
        raise VMError(f"{self.name}: did not come back within {timeout:.0f}s of the reboot{self.tail()}")

    # ---- talking to it ---------------------------------------------------------------------------

    def ssh(self, command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        argv = ["ssh", "-i", str(KEY), "-p", str(self.port), *SSH_OPTIONS, "root@127.0.0.1", command]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, errors="replace")
        except subprocess.TimeoutExpired:
            done = subprocess.CompletedProcess(argv, 255, "", f"ssh timed out after {timeout}s")
        if check and done.returncode != 0:
            raise VMError(
                f"{self.name}: `{command}` failed (exit {done.returncode}): {done.stderr.strip()}"
                f"{done.stdout.strip()}"
            )
        return done

    def copy_in(self, source: Path, dest: str) -> None:
        target = f"root@127.0.0.1:{dest}"
        argv = ["scp", "-q", "-i", str(KEY), "-P", str(self.port), *SSH_OPTIONS, str(source), target]
        subprocess.run(argv, check=True, timeout=120)

    def hmp(self, command: str) -> str:
        """One command to qemu's human monitor; its answer."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(30)
            sock.connect(str(self.monitor))
            read = b""
            while not read.endswith(b"(qemu) "):
                read += sock.recv(4096)
            sock.sendall(command.encode() + b"\n")
            read = b""
            while not read.endswith(b"(qemu) "):
                read += sock.recv(4096)
        return read.decode(errors="replace")

    def attach(self, disk: Path, serial: str) -> str:
        """Plug ``disk`` in while the VM runs (a cloud's volume attach); its device path in the guest."""
        before = set(self.ssh("ls /sys/block").stdout.split())
        self.hmp(f"drive_add 0 if=none,id={serial},file={disk},format=qcow2")
        self.hmp(f"device_add virtio-blk-pci,drive={serial},id={serial}-dev,serial={serial}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = set(self.ssh("udevadm settle; ls /sys/block").stdout.split()) - before
            if new:
                return f"/dev/{new.pop()}"
            time.sleep(2)
        raise VMError(f"{self.name}: {disk} attached but no new disk appeared{self.tail()}")

    def inventory(self, path: Path, group: str = "rescue", **hostvars) -> Path:
        """An Ansible inventory with this VM as the only host of ``group``, reached over real ssh."""
        variables = {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": "root",
            "ansible_connection": "ssh",
            "ansible_ssh_private_key_file": str(KEY),
            "ansible_ssh_common_args": shlex.join(SSH_OPTIONS),
            "ansible_python_interpreter": "/usr/bin/python3",
            **hostvars,
        }
        path.write_text(json.dumps({group: {"hosts": {self.name: variables}}}, indent=2))  # JSON is YAML
        return path

    def tail(self, lines: int = 40) -> str:
        log = Path(f"{self.console}.{self.boots}")
        text = log.read_text(errors="replace") if log.exists() else ""
        return f"\n--- {self.name}'s console, last lines ---\n" + "\n".join(text.splitlines()[-lines:])
