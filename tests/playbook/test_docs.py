"""The examples of docs/ run as written: each runbook parses and imports real playbooks by their
collection names, the drill matrix and inventory are what the runner and drill.yml accept."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lifeline_drill.matrix import parse_matrix
from support.paths import REPO

DOCS = REPO / "docs"
FAULTS = yaml.safe_load((REPO / "roles" / "drill" / "meta" / "argument_specs.yml").read_text())[
    "argument_specs"
]["main"]["options"]["drill_fault"]["choices"]


def yaml_blocks(name: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (DOCS / name).read_text(), re.DOTALL)


RUNBOOKS = [block for block in yaml_blocks("runbooks.md") if "import_playbook" in block]


@pytest.mark.parametrize("block", RUNBOOKS, ids=[f"runbook {n}" for n in range(len(RUNBOOKS))])
def test_each_runbook_of_the_docs_parses_and_imports_real_playbooks(tmp_path, block):
    runbook = tmp_path / "runbook.yml"
    runbook.write_text(block)
    checked = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--syntax-check",
            "-i",
            "localhost,",
            str(runbook),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        cwd=tmp_path,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_runbooks_import_every_playbook():
    imported = set(re.findall(r"import_playbook: lifeline\.rescue\.(\w+)", "".join(RUNBOOKS)))
    assert imported == {"restore_glibc", "repair_crontab", "migrate_root", "inspect_target", "drill"}


def test_the_drill_docs_matrix_and_inventory_are_what_the_runner_and_the_role_accept():
    blocks = [yaml.safe_load(block) for block in yaml_blocks("drills.md")]
    [matrix] = [b for b in blocks if isinstance(b, dict) and "drills" in b]
    [inventory] = [b for b in blocks if isinstance(b, dict) and "all" in b]
    drills = parse_matrix(matrix)
    hosts = inventory["all"]["children"]["drill_targets"]["hosts"]

    assert {d.fault for d in drills} <= set(FAULTS)
    assert {d.target for d in drills} <= set(hosts)
    assert all(host["lifeline_disposable"] is True for host in hosts.values())
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", (DOCS / "drills.md").read_text(), re.MULTILINE))
    assert documented == set(FAULTS), "docs/drills.md lists every fault the role takes, and no other"
