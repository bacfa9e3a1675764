"""repair-crontab run the way AWX and ansible-navigator run it: ansible-runner inside the execution
environment image (execution-environment.yml, built by `make images`), with the collection the
image holds, against a rescuer container reached over ssh as an unprivileged user with become.

The repair is checked on the target's files with chkcrontab, the connection in the rescuer's sshd
log and the job's events, the report in the run's artifact data (set_stats) and on the rescuer.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import chkcrontab_lib
import pytest

from support.paths import PLANTERS, REPO
from support.trees import TREES

EE_IMAGE = "localhost/lifeline/ee:bookworm"
RESCUER_IMAGE = "localhost/lifeline/rescuer-ssh:bookworm"
COLLECTION_IN_EE = "/usr/share/ansible/collections/ansible_collections/lifeline/rescue"
# The user ansible-builder's images run as (AWX runs them the same way).
EE_UID = 1000
FAULTS = ("crontab_nul_blocks", "crontab_bad_minute")
# The rescuer's host key is made with its image: nothing to check it against.
NO_KNOWN_HOSTS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(REPO / "tools" / "setup" / "containers.conf")}


def podman(*args: str, timeout: int = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=PODMAN_ENV, timeout=timeout, check=check
    )


def chkcrontab_errors(path: Path) -> int:
    with contextlib.redirect_stdout(io.StringIO()):
        return chkcrontab_lib.check_crontab(str(path), chkcrontab_lib.LogCounter())


def files_json_of_checkout(tmp_path: Path) -> dict:
    """The FILES.json (every file's sha256) of the collection built from this checkout."""
    out = tmp_path / "build"
    subprocess.run(
        [
            str(REPO / ".venv/bin/ansible-galaxy"),
            "collection",
            "build",
            "--force",
            "--output-path",
            str(out),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (tarball,) = out.glob("lifeline-rescue-*.tar.gz")
    listing = subprocess.run(
        ["tar", "-xzOf", str(tarball), "FILES.json"], capture_output=True, check=True, timeout=60
    )
    return json.loads(listing.stdout)


@pytest.fixture(scope="module")
def images() -> None:
    for image in (EE_IMAGE, RESCUER_IMAGE):
        if podman("image", "exists", image, check=False).returncode != 0:
            pytest.fail(f"no image {image}: run `make images` (tools/images/build-ee.sh builds it)")


@pytest.fixture
def rescuer(tmp_path, images):
    """A rescuer container: sshd, a user "rescue" with sudo, a copy of the bookworm tree with a
    crontab broken like incident 4 at /srv/target. Yields (container name, address, key, root)."""
    root = tmp_path / "target"
    subprocess.run(["cp", "-a", str(TREES / "bookworm"), str(root)], check=True, timeout=300)
    subprocess.run(
        ["sh", str(PLANTERS / "cron.sh"), str(root), *FAULTS], check=True, capture_output=True, timeout=60
    )
    assert chkcrontab_errors(root / "etc/crontab") > 0
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "lifeline-ee-test", "-f", str(keys / "id")],
        check=True,
        timeout=60,
    )
    name = f"lifeline-ee-rescuer-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "-d", "--rm", "--name", name, "--hostname", "rescuer",
        "-v", f"{keys / 'id.pub'}:/home/rescue/.ssh/authorized_keys:ro",
        "-v", f"{root}:/srv/target",
        RESCUER_IMAGE,
    )  # fmt: skip
    try:
        address = podman("inspect", "--format", "{{.NetworkSettings.IPAddress}}", name).stdout.strip()
        deadline = time.monotonic() + 30
        while "Server listening" not in podman("logs", name).stderr:
            if time.monotonic() > deadline:
                pytest.fail(f"sshd in {name} did not start within 30s: {podman('logs', name).stderr[-2000:]}")
            time.sleep(0.5)
        assert address, f"{name} has no address on podman's network"
        yield name, address, keys / "id", root
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def private_data_dir(tmp_path: Path, address: str, key: Path) -> Path:
    """ansible-runner's directory as AWX hands it to the execution environment: the job's playbook
    (a runbook importing the collection's), the inventory, the extra variables and the ssh key."""
    data = tmp_path / "runner"
    for sub in ("project", "inventory", "env"):
        (data / sub).mkdir(parents=True)
    (data / "project/site.yml").write_text(
        "---\n- ansible.builtin.import_playbook: lifeline.rescue.repair_crontab\n"
    )
    (data / "inventory/hosts.json").write_text(
        json.dumps(
            {
                "rescue": {
                    "hosts": {
                        "rescuer": {
                            "ansible_host": address,
                            "ansible_user": "rescue",
                            "ansible_become": True,
                            "ansible_python_interpreter": "/usr/bin/python3",
                            "ansible_ssh_private_key_file": "/runner/env/id",
                            "ansible_ssh_common_args": NO_KNOWN_HOSTS,
                        }
                    }
                }
            }
        )
    )
    (data / "env/extravars").write_text(
        json.dumps(
            {
                "target_root": "/srv/target",
                "lifeline_rescuer_report_dir": "/var/log/lifeline",
            }
        )
    )
    (data / "env/id").write_bytes(key.read_bytes())
    for path in [data, *data.rglob("*")]:
        os.chown(path, EE_UID, 0)
    (data / "env/id").chmod(0o600)
    return data


def events_of(data: Path) -> list[dict]:
    (events_dir,) = (data / "artifacts").glob("*/job_events")
    events = [json.loads(p.read_text()) for p in events_dir.glob("*.json")]
    return sorted(events, key=lambda e: e.get("counter", 0))


def test_a_repair_runs_in_the_execution_environment_over_ssh_and_its_report_reaches_the_artifacts(
    tmp_path, rescuer
):
    name, address, key, root = rescuer
    # The image holds the collection as this checkout builds it: a stale image proves nothing.
    in_image = json.loads(podman("run", "--rm", EE_IMAGE, "cat", f"{COLLECTION_IN_EE}/FILES.json").stdout)
    if in_image != files_json_of_checkout(tmp_path):
        pytest.fail(
            f"{EE_IMAGE} holds another version of lifeline.rescue than this checkout: run `make images`"
        )

    data = private_data_dir(tmp_path, address, key)
    done = podman(
        "run", "--rm", "-v", f"{data}:/runner", EE_IMAGE,
        "ansible-runner", "run", "/runner", "-p", "site.yml",
        timeout=600, check=False,
    )  # fmt: skip
    status = (data / "artifacts").glob("*/status")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert [p.read_text() for p in status] == ["successful"]

    # Repaired on the target: chkcrontab finds no error, no NUL byte is left.
    crontab = root / "etc/crontab"
    assert b"\0" not in crontab.read_bytes()
    assert chkcrontab_errors(crontab) == 0
    # Through ssh as "rescue", then become: sshd saw the key, the backup is root's.
    assert "Accepted publickey for rescue" in podman("logs", name).stderr
    backups = list((root / "var/backups/lifeline").rglob("etc/crontab"))
    assert backups and all(b.stat().st_uid == 0 for b in backups)
    events = events_of(data)
    # Every task ran for the rescuer (delegated ones too: "rescuer -> localhost"), but the guard's,
    # which only the controller evaluates (playbooks/require-hosts.yml).
    ran = [e["event_data"] for e in events if e.get("event") == "runner_on_ok"]
    guard = "Refuse to run when lifeline_hosts matches no host"
    assert {d.get("host") for d in ran if d.get("play") != guard} == {"rescuer"}
    assert {d.get("host") for d in ran if d.get("play") == guard} == {"localhost"}

    # The summary reached the run's artifact data; the whole report is on the rescuer and on the
    # controller, the same document: there in ./reports of where the run started (/runner), not in
    # the playbook's directory inside the installed collection, which the EE's user cannot write.
    (stats,) = [e for e in events if e.get("event") == "playbook_on_stats"]
    summary = stats["event_data"]["artifact_data"]["lifeline_reports"]["rescuer"]["repair-crontab"]
    assert summary["result"] == "repaired"
    assert summary["check_mode"] is False
    assert summary["rescuer_report"].startswith("/var/log/lifeline/repair-crontab-rescuer-")
    on_rescuer = json.loads(podman("exec", name, "cat", summary["rescuer_report"]).stdout)
    controller = summary["controller_report"]
    assert controller.startswith("/runner/reports/")
    on_controller = json.loads((data / controller.removeprefix("/runner/")).read_text())
    assert on_rescuer == on_controller
    assert on_rescuer["result"] == "repaired" and on_rescuer["host"] == "rescuer"
    assert on_rescuer["verification"]["crontabs_healthy"] is True


def test_collections_requirements_install_the_collection_a_run_needs_from_the_checkout(tmp_path):
    """What AWX does when it syncs a project from this checkout: ansible-galaxy installs
    collections/requirements.yml from the checkout's top, then the job's collections path is
    only where it installed them."""
    installed = tmp_path / "collections"
    # Not the checkout's ansible.cfg, whose collections path holds the checkout itself.
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(installed),
    }
    galaxy = [str(REPO / ".venv/bin/ansible-galaxy"), "collection", "install", "-p", str(installed)]
    subprocess.run(
        [*galaxy, "-r", "collections/requirements.yml"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    manifest = json.loads((installed / "ansible_collections/lifeline/rescue/MANIFEST.json").read_text())
    assert manifest["collection_info"]["name"] == "rescue"
    runbook = tmp_path / "site.yml"
    runbook.write_text("---\n- ansible.builtin.import_playbook: lifeline.rescue.repair_crontab\n")
    check = subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "--syntax-check", "-i", "localhost,", str(runbook)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
