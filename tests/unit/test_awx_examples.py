"""The AWX/AAP job templates (docs/awx/), the ssh rescuer inventory example and the execution
environment's metadata against what the playbooks and roles really take, so the examples cannot
drift from the argument specs."""

from __future__ import annotations

import pytest
import yaml

from support.paths import REPO

PLAYBOOKS = ("restore-glibc", "repair-crontab", "migrate-root", "inspect-target")
BOOLEAN_CHOICES = ["false", "true"]


def role_options() -> dict[str, dict]:
    """Every option of every role's argument specs (all entry points), by name."""
    options: dict[str, dict] = {}
    for specs in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        for entry in yaml.safe_load(specs.read_text())["argument_specs"].values():
            options.update(entry.get("options", {}))
    return options


def template_of(playbook: str) -> dict:
    (template,) = yaml.safe_load((REPO / "docs/awx" / f"{playbook}.yml").read_text())["job_templates"]
    return template


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_each_playbook_has_a_job_template_whose_survey_asks_only_for_what_its_roles_take(playbook):
    template = template_of(playbook)
    assert template["playbook"] == f"playbooks/{playbook}.yml"
    assert (REPO / template["playbook"]).is_file()
    assert template["become_enabled"] is True and template["survey_enabled"] is True
    options = role_options()
    questions = template["related"]["survey_spec"]["spec"]
    assert questions
    for question in questions:
        option = options.get(question["variable"])
        assert option is not None, f"{playbook}: {question['variable']} is no role option"
        if question["type"] == "multiplechoice":
            assert question["default"] in question["choices"]
        if option.get("type") == "bool":
            assert question["type"] == "multiplechoice" and question["choices"] == BOOLEAN_CHOICES
            assert question["default"] == str(option.get("default", False)).lower(), question["variable"]
        if option.get("no_log"):
            assert question["type"] == "password", question["variable"]
    extra = yaml.safe_load(template["extra_vars"])
    assert extra == {"lifeline_rescuer_report_dir": "/var/log/lifeline"}


def test_migrate_root_asks_for_the_disruption_gate_and_defaults_to_no():
    (gate,) = [
        q
        for q in template_of("migrate-root")["related"]["survey_spec"]["spec"]
        if q["variable"] == "root_migrate_allow_disruption"
    ]
    assert gate["required"] is True
    assert gate["default"] == "false"
    assert role_options()["root_migrate_allow_disruption"]["default"] is False


def test_the_ssh_rescuer_inventory_becomes_root_and_keeps_the_report_on_the_rescuer():
    inventory = yaml.safe_load((REPO / "inventory/examples/rescuer-over-ssh.yml").read_text())
    rescue = inventory["all"]["children"]["rescue"]
    assert rescue["hosts"], "the group the playbooks target by default has a host"
    assert all(name.endswith(".example.org") for name in rescue["hosts"])
    facts = rescue["vars"]
    assert facts["ansible_become"] is True
    assert "ansible_connection" not in facts  # ssh, Ansible's default
    assert facts["lifeline_rescuer_report_dir"].startswith("/")
    report_defaults = (REPO / "roles/report/defaults/main.yml").read_text()
    assert "lifeline_rescuer_report_dir" in report_defaults


def test_the_execution_environment_takes_the_collection_needs_from_its_metadata():
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    meta = yaml.safe_load((REPO / "meta/execution-environment.yml").read_text())
    bindep = (REPO / meta["dependencies"]["system"]).read_text().splitlines()
    packages = [line.split()[0] for line in bindep if line.strip() and not line.startswith("#")]
    # The controller's needs only: the ssh client. The rescuer's tools never go into the EE.
    assert packages == ["openssh-client", "openssh-clients"]
    pins = {definition["dependencies"][k]["package_pip"] for k in ("ansible_core", "ansible_runner")}
    dev = set((REPO / "requirements/dev.txt").read_text().split())
    assert pins <= dev, f"the EE's pins {pins} differ from requirements/dev.txt"
