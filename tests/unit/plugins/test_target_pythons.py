"""The modules run on every Python from the declared floor up (tests/config.yml: 3.8), not only import.

Each interpreter runs one playbook through Ansible itself (ansible_python_interpreter), the way a
rescuer or a live target with that Python would: the read-only modules on a small bookworm root,
a real crontab repair and a persistence scan of incident 4's planted job. The repair is checked on
disk, not through the module's own report.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
RULES = REPO / "roles" / "crontab_repair" / "files" / "persistence_rules.yml"
FLOOR = (3, 8)
VERSIONS = [(3, minor) for minor in range(FLOOR[1], 14)]
GOOD_JOB = "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n"
HIDDEN_JOB = "*/3 * * * * root /usr/bin/.sysupdate\n"

PLAYBOOK = """
- name: Every kind of module, on this interpreter
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Which Python runs the modules
      ansible.builtin.setup:
        gather_subset: [min]
    - name: Audit the ELF files
      lifeline.rescue.glibc_audit: {root: "{{ root }}", fail_on_broken: true}
      register: glibc
    - name: Audit the crontabs
      lifeline.rescue.crontab_audit: {root: "{{ root }}"}
      register: audit
    - name: Repair the crontabs
      lifeline.rescue.crontab_repair: {root: "{{ root }}"}
      register: repair
    - name: Scan for persistence
      lifeline.rescue.persistence_scan: {root: "{{ root }}", rules: "{{ rules }}"}
      register: scan
    - name: Preflight a migration onto a device that is not one
      lifeline.rescue.root_preflight: {root_migrate_device: /dev/null}
      register: preflight
    - name: Keep what each returned
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: >-
          {{ {'python': ansible_facts.python_version, 'glibc': glibc, 'audit': audit, 'repair': repair,
              'scan': scan, 'preflight': preflight} | to_json }}
"""


def interpreter(version: tuple[int, int]) -> str | None:
    """A python3.N that runs: this lane's own, one on PATH, or one pyenv installed."""
    name = f"python{version[0]}.{version[1]}"
    candidates = [sys.executable] if sys.version_info[:2] == version else []
    candidates += [p for p in [shutil.which(name)] if p]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(str(p) for p in pyenv.glob(f"{version[0]}.{version[1]}.*/bin/{name}"))
    for candidate in candidates:
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip() == str(version):
            return candidate
    return None


@pytest.mark.parametrize("version", VERSIONS, ids=[f"python{v[0]}.{v[1]}" for v in VERSIONS])
def test_the_modules_run_on(version, small_root, tmp_path):
    python = interpreter(version)
    if python is None:
        pytest.fail(
            f"no Python {version[0]}.{version[1]} on this machine (PATH or pyenv): the modules' "
            "supported versions cannot all be proven; install it (pyenv install) and run again"
        )
    crontab = small_root / "etc" / "crontab"
    crontab.write_bytes(b"SHELL=/bin/sh\n" + b"\0" * 64 + GOOD_JOB.encode() + b"\0" * 7)
    (small_root / "etc" / "cron.d").mkdir()
    (small_root / "etc" / "cron.d" / "sysupdate").write_text(HIDDEN_JOB)
    (small_root / "etc" / "os-release").write_text("ID=debian\nVERSION_ID=12\n")
    playbook = tmp_path / "pythons.yml"
    playbook.write_text(PLAYBOOK)
    out = tmp_path / "result.json"
    extra = {
        "root": str(small_root),
        "rules": yaml.safe_load(RULES.read_text()),
        "out": str(out),
        "ansible_python_interpreter": python,
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook), "-e", json.dumps(extra)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        },
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())

    assert tuple(int(n) for n in result["python"].split(".")[:2]) == version
    assert result["glibc"]["healthy"] is True and result["glibc"]["summary"]["elf_files"] >= 3
    assert any(f["lines"] or f["bytes"] for f in result["audit"]["files"] if f["path"] == "/etc/crontab")
    assert result["repair"]["changed"] is True
    # The repair on disk: no NUL byte left, the valid job kept whole.
    repaired = crontab.read_bytes()
    assert b"\0" not in repaired and GOOD_JOB.encode() in repaired
    assert any(f["path"] == "/etc/cron.d/sysupdate" for f in result["scan"]["findings"]), result["scan"]
    kinds = {b["kind"] for b in result["preflight"]["blockers"]}
    assert "target_not_block_device" in kinds and result["preflight"]["ready"] is False
