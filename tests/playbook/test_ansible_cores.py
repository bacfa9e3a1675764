"""The supported ansible-core range: the smoke set (tests marked ``smoke``) runs on each older release
of the range with ``LIFELINE_ANSIBLE_CORE=X.Y`` (``make cores``) and on .venv's pinned release with the
whole lane. These tests prove each run is on the release it claims and that the harness's warning
check sees what that release prints when a collection does not support it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support import ansible_cores

pytestmark = pytest.mark.smoke


def test_the_playbooks_run_on_the_ansible_core_the_lane_names(run_playbook):
    run = run_playbook("ansible-version.yml")

    assert run.status == "successful", run.failures()
    [said] = run.results("Say the ansible-core release and the Python running ansible-playbook")
    assert said["msg"]["version"] == ansible_cores.expected_version()
    assert Path(said["msg"]["python"]).parent == ansible_cores.bin_dir()


def test_the_warning_check_sees_a_collection_that_does_not_support_this_core(tmp_path):
    """A collection that excludes every release, used by a playbook run from a directory without
    the checkout's ansible.cfg: the line this release prints is one the harness fails a run on."""
    collection = tmp_path / "ansible_collections" / "probe" / "excluded"
    (collection / "meta").mkdir(parents=True)
    (collection / "meta" / "runtime.yml").write_text('---\nrequires_ansible: "<2.0"\n')
    (collection / "galaxy.yml").write_text("namespace: probe\nname: excluded\nversion: 1.0.0\n")
    (collection / "roles" / "hello" / "tasks").mkdir(parents=True)
    (collection / "roles" / "hello" / "tasks" / "main.yml").write_text(
        "---\n- name: Say hello\n  ansible.builtin.debug:\n    msg: hello\n"
    )
    (tmp_path / "play.yml").write_text(
        "---\n- name: Use the probe\n  hosts: localhost\n  gather_facts: false\n"
        "  roles: [probe.excluded.hello]\n"
    )
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
        "ANSIBLE_COLLECTIONS_PATH": str(tmp_path),
        "ANSIBLE_HOME": str(tmp_path / "home"),
        "ANSIBLE_NOCOLOR": "1",
    }
    done = subprocess.run(
        [str(ansible_cores.bin_dir() / "ansible-playbook"), "-i", "localhost,", "-c", "local", "play.yml"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    warned = ansible_cores.warnings_in(done.stdout + done.stderr)
    assert any("probe.excluded does not support Ansible version" in line for line in warned), (
        done.stdout + done.stderr
    )
