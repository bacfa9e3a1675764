"""The collection as a user gets it: built, installed with the README's command into a fresh home, and
run by its collection names from a directory without the checkout's ansible.cfg and inventory.

Without a rescuer named every playbook must stop before anything runs, fail, and say how to name
one; the README's quick start must repair a broken root exactly as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from support.faults import plant_glibc
from support.paths import REPO
from support.roots import chroot, fails_for_glibc
from support.trees import debian_tree

QUICK_START = re.search(
    r"^## Quick start: the installed collection\n(.*?)^## ", (REPO / "README.md").read_text(), re.M | re.S
)
GUARD_PLAY = "Refuse to run when lifeline_hosts matches no host"
# The playbooks a user runs by collection name (a name with a hyphen cannot be one); each imports
# its hyphenated twin or is the playbook itself.
COLLECTION_PLAYBOOKS = sorted(p.stem for p in (REPO / "playbooks").glob("*.yml") if "-" not in p.stem)
# What the README's quick start names as the broken root.
README_ROOT = "/mnt/sysimage"


def blocks(kind: str) -> list[str]:
    assert QUICK_START, "README.md has a section '## Quick start: the installed collection'"
    return re.findall(rf"```{kind}\n(.*?)```", QUICK_START.group(1), re.S)


def commands(program: str) -> list[list[str]]:
    """The quick start's shell commands that run ``program``, continuation lines joined, comments dropped."""
    text = "\n".join(blocks("sh")).replace("\\\n", " ")
    argvs = [shlex.split(line, comments=True) for line in text.splitlines()]
    return [argv for argv in argvs if argv and argv[0] == program]


@dataclass(frozen=True)
class User:
    """A user's machine: a home with the collection installed and nothing else of Ansible's, and an
    empty working directory."""

    home: Path
    workdir: Path

    def run(
        self, argv: list[str], cwd: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
        env["HOME"] = str(self.home)
        # The ansible of the environment running the tests, not one found elsewhere.
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        # As a shell says where a command runs (a relative report directory is taken from it).
        env["PWD"] = str(cwd or self.workdir)
        return subprocess.run(
            argv,
            cwd=cwd or self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> User:
    """The collection built from the checkout and installed by the README's own install command."""
    found = User(tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("work"))
    built = tmp_path_factory.mktemp("built")
    done = found.run(
        ["ansible-galaxy", "collection", "build", str(REPO), "--output-path", str(built)], cwd=built
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [install] = commands("ansible-galaxy")
    done = found.run(install, cwd=built)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (found.home / ".ansible/collections/ansible_collections/lifeline/rescue/MANIFEST.json").is_file()
    return found


def plays(output: str) -> list[str]:
    return re.findall(r"^PLAY \[(.*)\] \*", output, re.M)


def test_every_collection_playbook_is_covered():
    assert COLLECTION_PLAYBOOKS == [
        "drill",
        "inspect_target",
        "migrate_root",
        "repair_crontab",
        "restore_glibc",
    ]


@pytest.mark.parametrize(
    "playbook", sorted(p.name for p in (REPO / "playbooks").glob("*-*.yml") if p.name != "require-hosts.yml")
)
def test_every_playbook_imports_the_refusal_before_anything_else(playbook):
    [first, *_] = yaml.safe_load((REPO / "playbooks" / playbook).read_text())
    assert first.get("ansible.builtin.import_playbook") == "require-hosts.yml", first


@pytest.mark.parametrize("playbook", COLLECTION_PLAYBOOKS)
def test_without_a_rescuer_every_playbook_fails_before_anything_runs_and_says_how_to_name_one(user, playbook):
    done = user.run(["ansible-playbook", f"lifeline.rescue.{playbook}", "-e", "target_root=/nonexistent"])

    assert done.returncode != 0, done.stdout
    assert "No host matched lifeline_hosts=rescue" in done.stdout, done.stdout + done.stderr
    assert "-i HOST, -e lifeline_hosts=HOST" in done.stdout
    assert "a group named rescue" in done.stdout
    assert plays(done.stdout) == [GUARD_PLAY], "nothing ran after the refusal"


@pytest.fixture(scope="module")
def inventory(user) -> Path:
    """This machine as the rescuer in the group rescue, and a host outside it that cannot be reached."""
    path = user.workdir / "limits.yml"
    rescuer = {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}
    outside = {"ansible_host": "192.0.2.1"}
    groups = {
        "rescue": {"hosts": {"localhost": rescuer}},
        "others": {"hosts": {"elsewhere.example.org": outside}},
    }
    path.write_text(yaml.safe_dump({"all": {"children": groups}}))
    return path


def test_a_limit_that_keeps_the_rescuer_runs_the_playbook(user, inventory):
    limited = ["ansible-playbook", "-i", str(inventory), "-l", "localhost"]

    done = user.run([*limited, "lifeline.rescue.inspect_target", "-e", "target_root=/nonexistent"])

    # The inspection itself ran (and refused the missing root), not the refusal of the host pattern.
    assert plays(done.stdout) == [GUARD_PLAY, "Inspect a broken system"], done.stdout
    assert "No host matched" not in done.stdout
    assert "target_root=/nonexistent does not look like a Linux root" in done.stdout


def test_a_limit_that_leaves_out_every_rescuer_is_refused_without_contacting_a_host(user, inventory):
    limited = ["ansible-playbook", "-i", str(inventory), "-l", "elsewhere.example.org"]

    done = user.run([*limited, "lifeline.rescue.repair_crontab", "-e", "target_root=/nonexistent"])

    assert done.returncode != 0
    said = "No host matched lifeline_hosts=rescue within --limit elsewhere.example.org"
    assert said in done.stdout, done.stdout
    assert plays(done.stdout) == [GUARD_PLAY]
    assert "UNREACHABLE" not in done.stdout


@dataclass(frozen=True)
class QuickStart:
    root: Path
    done: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def quick_start(user, tmp_path_factory) -> QuickStart:
    """The README's restore-glibc command, run as written on a copy of bookworm whose libc.so.6 was
    renamed away (incident 1) standing in for /mnt/sysimage."""
    root = tmp_path_factory.mktemp("quick-start") / "sysimage"
    subprocess.run(["cp", "-a", str(debian_tree("bookworm")), str(root)], check=True, timeout=300)
    plant_glibc(root, "libc_renamed")
    assert fails_for_glibc(chroot(root, "/bin/ls", "/"))
    [command] = [argv for argv in commands("ansible-playbook") if "lifeline.rescue.restore_glibc" in argv]
    assert f"target_root={README_ROOT}" in command
    return QuickStart(root, user.run([arg.replace(README_ROOT, str(root)) for arg in command], timeout=600))


def test_the_quick_start_repairs_a_broken_root_as_written(quick_start):
    assert quick_start.done.returncode == 0, quick_start.done.stdout + quick_start.done.stderr
    assert [line for line in quick_start.done.stdout.splitlines() if "[WARNING]" in line] == []
    # The root's own programs run again.
    for argv in (["/bin/ls", "/"], ["/usr/bin/python3", "-c", "import math"]):
        done = chroot(quick_start.root, *argv)
        assert done.returncode == 0, (argv, done.stderr)


def test_the_quick_start_writes_its_report_where_it_was_run(user, quick_start):
    # The README: lifeline_report_dir defaults to ./reports, relative to where you run ansible-playbook.
    [report] = (user.workdir / "reports").glob("restore-glibc-*.json")
    assert json.loads(report.read_text())["result"] == "repaired"


def test_the_quick_start_inventory_puts_the_rescuer_where_the_playbooks_look(user):
    [inventory] = blocks("yaml")
    (user.workdir / "rescuer.yml").write_text(inventory)
    [command] = [argv for argv in commands("ansible-playbook") if "rescuer.yml" in argv]

    done = user.run([*command, "--list-hosts"])

    assert done.returncode == 0, done.stdout + done.stderr
    [repair] = [play for play in done.stdout.split("play #") if "Repair crontabs" in play]
    assert re.search(r"^\s+rescuer\.example\.org$", repair, re.M), done.stdout
