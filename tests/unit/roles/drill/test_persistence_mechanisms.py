"""The drill role's persistence_planted fault: the mechanisms it knows are the planters' own, and the
mechanisms it refuses are exactly those no drill could prove recovered.

The role reads the planters' headers itself (vars/main.yml, evaluated here by Ansible's templar as a
play would); this test reads the headers and the planters' case arms on its own, so a mechanism a
planter gains in one place and not the other fails here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support import persistence_drill as drill
from support.paths import PLANTERS, REPO

ROLE = REPO / "roles" / "drill"
# A planter's header: the leading comment lines; a mechanism is a line "#   name  what it plants".
HEADER = re.compile(r"(?:#.*\n)+")
HEADER_MECHANISM = re.compile(r"(?m)^#   ([a-z0-9_]+)\s")
# The words of a case arm's pattern ("a | b | \\\n c)"), whatever the planter dispatches with.
CASE_ARM = re.compile(r"(?m)^[ \t]*((?:[a-z0-9_]+[ \t]*\|[ \t]*(?:\\\n[ \t]*)?)*[a-z0-9_]+)\)")


# Ansible's templar with the role's vars, in a process of its own: loading Ansible's plugins installs
# its collection finder for ``ansible_collections``, which the test process must not get.
TEMPLAR = """
import json, sys
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

init_plugin_loader()
asked = json.load(sys.stdin)
role_vars = yaml.safe_load(open(asked["vars"]).read())
variables = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in role_vars.items()}
variables.update(asked["given"])
templar = Templar(loader=DataLoader(), variables=variables)
print(json.dumps(templar.template(trust_as_template(asked["expression"]))))
"""


def role_value(expression: str, **given) -> object:
    """``expression`` evaluated with the role's vars, as a task of the role would see it."""
    asked = {
        "vars": str(ROLE / "vars" / "main.yml"),
        "given": {"role_path": str(ROLE), "drill_persistence": [], **given},
        "expression": expression,
    }
    done = subprocess.run(
        [sys.executable, "-c", TEMPLAR], input=json.dumps(asked), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def header_mechanisms(planter: Path) -> list[str]:
    return HEADER_MECHANISM.findall(HEADER.match(planter.read_text()).group(0))


def case_arms(planter: Path) -> set[str]:
    return {word for arm in CASE_ARM.findall(planter.read_text()) for word in re.findall(r"[a-z0-9_]+", arm)}


def persistence_planters() -> dict[str, Path]:
    """The planters whose usage line takes mechanisms (cron.sh and glibc.sh plant faults)."""
    planters = sorted(PLANTERS.glob("*.sh"))
    found = {p.stem: p for p in planters if " ROOT MECHANISM..." in HEADER.match(p.read_text())[0]}
    assert len(found) >= 6, f"persistence planters missing from {PLANTERS}: {sorted(found)}"
    return found


def test_the_drill_knows_exactly_the_mechanisms_each_planter_lists_and_plants():
    known = role_value("{{ __drill_persistence_planters }}")

    planters = persistence_planters()
    assert sorted(known) == sorted(planters)
    for family, planter in planters.items():
        assert known[family] == header_mechanisms(planter), family
        # A mechanism the planter dispatches but its header does not list (or the reverse).
        assert set(known[family]) == case_arms(planter), family


def test_every_refused_entry_names_a_mechanism_of_a_planter():
    known = role_value("{{ __drill_persistence_planters }}")
    refused = role_value("{{ __drill_persistence_refused }}")

    for entry in refused:
        family, _, mechanism = entry.partition(":")
        assert mechanism in known.get(family, []), entry


# No planter's mechanism: a planter's own name for it is needed, spelt exactly.
NO_MECHANISMS = ["hooks:nope", "cron:crontab_malware_job", "motd", "hooks:", ":motd", "Hooks:motd"]
NO_MECHANISMS += ["hooks:motd "]


@pytest.mark.parametrize(
    ("given", "unknown", "refused"),
    [
        (["hooks:motd", "accounts:uid0_account"], [], []),
        (NO_MECHANISMS, NO_MECHANISMS, []),
        (["logins:root_key", "logins:root_key", "hooks:motd"], [], ["logins:root_key"]),
    ],
    ids=["known", "unknown", "refused"],
)
def test_entries_no_planter_plants_and_refused_mechanisms_are_named(given, unknown, refused):
    assert role_value("{{ __drill_persistence_unknown }}", drill_persistence=given) == unknown
    said = role_value("{{ __drill_persistence_refusals }}", drill_persistence=given)
    assert [s.partition(": ")[0] for s in said] == refused
    assert all(s.partition(": ")[2] for s in said), said


def test_each_family_is_planted_once_with_its_mechanisms_in_the_order_given():
    given = ["logins:rhosts", "hooks:motd", "logins:sshrc", "hooks:motd"]

    assert role_value("{{ __drill_persistence_families }}", drill_persistence=given) == {
        "logins": ["rhosts", "sshrc"],
        "hooks": ["motd"],
    }


def as_planted(root: Path, path: str) -> tuple:
    """What the drill's fingerprint sees: a directory by its mode and owner only (its entries may
    move out while it stays), anything else byte for byte."""
    host = root / path.lstrip("/")
    if host.is_dir() and not host.is_symlink():
        st = host.lstat()
        return ("directory", st.st_mode, st.st_uid, st.st_gid)
    return drill.state_of(root, path)


def quarantined(root: Path, family: str, mechanisms: list[str]) -> tuple[dict[str, list[str]], list]:
    """Plant ``mechanisms`` of ``family``, scan, quarantine: for each mechanism the planted paths no
    longer as planted, and the quarantine's actions."""
    planted = drill.plant(root, family, mechanisms)
    before = {p: as_planted(root, p) for p in planted.all_paths()}
    actions = drill.quarantine(drill.scan(root))
    changed = {m: [p for p in planted.paths[m] if as_planted(root, p) != before[p]] for m in mechanisms}
    return changed, actions


@pytest.mark.parametrize("family", sorted(persistence_planters()))
def test_the_quarantine_changes_a_planted_path_of_every_mechanism_the_drill_accepts(tmp_path, family):
    refused = role_value("{{ __drill_persistence_refused }}")
    accepted = [m for m in header_mechanisms(PLANTERS / f"{family}.sh") if f"{family}:{m}" not in refused]
    root = drill.copy_tree("bookworm", tmp_path)

    changed, _actions = quarantined(root, family, accepted)

    assert [m for m in accepted if not changed[m]] == [], "the drill's recovered proof would fail for these"
    shutil.rmtree(root)


@pytest.mark.parametrize(
    "entry", sorted(yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["__drill_persistence_refused"])
)
def test_a_refused_mechanism_planted_alone_is_left_as_planted_by_the_quarantine(tmp_path, entry):
    family, _, mechanism = entry.partition(":")
    root = drill.copy_tree("bookworm", tmp_path)

    changed, actions = quarantined(root, family, [mechanism])

    assert changed[mechanism] == [], "the quarantine does undo it: the drill need not refuse it"
    manual = [a for a in actions if a.action == "manual"]
    reason = role_value("{{ __drill_persistence_refused }}")[entry]
    # The refusal's reason is the truth: a manual step of the report, or nothing but the inventory.
    assert bool(manual) == ("manual steps" in reason), [a.reason for a in manual]
    shutil.rmtree(root)
