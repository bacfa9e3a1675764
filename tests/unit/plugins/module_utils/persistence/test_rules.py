"""Persistence rules as data: what is refused and how, and how a user's list adjusts the shipped one."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    rules as persistence_rules,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence

from support.paths import RULES_FILE
from support.planted import HIDDEN_JOB, STOCK_CRONTAB, SYSUPDATE, found, plant

pytest_plugins = ("support.planted_roots",)


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({"id": "x"}, "rules must be a list of mappings, not dict"),
        (["x"], "rule 1: must be a mapping, not str"),
        (
            [{"id": "Bad Id", "description": "d", "severity": "low", "locations": ["cron"]}],
            "rule 1: id must be",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"comand": "x"}}],
            "rule 1 (a): unknown match key(s) comand; known: command,",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "colour": 1, "locations": ["cron"]}],
            "rule 1 (a): unknown key(s) colour;",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"command": "curl ("}}],
            "rule 1 (a): command pattern 'curl (' is not a valid regular expression: missing ), unterminated",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "locations": ["crontab", "cron"]}],
            "rule 1 (a): unknown location kind(s) crontab; known: cron, cron_script,",
        ),
        (
            [{"id": "a", "description": "d", "severity": "severe", "locations": ["cron"]}],
            "severity must be one of",
        ),
        ([{"id": "a", "description": "", "severity": "low", "locations": ["cron"]}], "description must be"),
        ([{"id": "a", "description": "d", "severity": "low"}], "no match conditions and no locations"),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"every_minutes": "5"}}],
            "every_minutes must be a whole number",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"payload_unowned": "yes"}}],
            "payload_unowned must be true or false",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"indicator_paths": ["tmp/x"]}}],
            "indicator path 'tmp/x' must be absolute or start with ~/",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"rules": ["nope"]}}],
            "rule a: match.rules names 'nope', which is not an enabled rule",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "scope": "lines", "locations": ["cron"]}],
            "scope",
        ),
    ],
)
def test_invalid_rules_are_refused_with_what_is_wrong(rules, problem):
    with pytest.raises(persistence_rules.PersistenceError) as error:
        persistence_rules.load_rules(rules)
    assert problem in str(error.value)


def test_every_problem_is_named_at_once():
    with pytest.raises(persistence_rules.PersistenceError) as error:
        persistence_rules.load_rules(
            [
                {"id": "a", "description": "d", "severity": "low", "match": {"command": "("}},
                {"id": "b", "description": "d", "severity": "nope", "locations": ["cron"]},
            ]
        )
    assert "rule 1 (a): command pattern" in str(error.value)
    assert "rule 2 (b): severity must be" in str(error.value)


def test_a_later_rule_replaces_a_shipped_one_and_enabled_false_drops_it(base):
    shipped = yaml.safe_load(RULES_FILE.read_text())
    plant(base, "/etc/crontab", STOCK_CRONTAB + HIDDEN_JOB)
    plant(base, "/usr/bin/.sysupdate", SYSUPDATE, 0o755)
    own = [
        {"id": "frequent-unpackaged-job", "enabled": False},
        {
            "id": "exec-hidden-path",
            "description": "Ours",
            "severity": "critical",
            "match": {"executes": r"/\."},
        },
        {"id": "sysupdate", "description": "Named", "severity": "low", "match": {"command": "sysupdate"}},
    ]

    rules = persistence_rules.load_rules(shipped + own)
    result = persistence.scan(str(base), rules)

    assert found(result) == {
        ("exec-hidden-path", "cron", "/etc/crontab", 5),
        ("sysupdate", "cron", "/etc/crontab", 5),
        ("unowned-file-in-packaged-dir", "package_file", "/usr/bin/.sysupdate", None),
    }
    assert next(f.rule for f in result.findings if f.rule.id == "exec-hidden-path").severity == "critical"


def test_shipped_rules_are_documented():
    text = RULES_FILE.read_text()
    for rule in yaml.safe_load(text):
        block = text[text.index(f"- id: {rule['id']}\n") :].split("\n- id:")[0]
        assert "\n  # " in block, f"{rule['id']}: no comment saying why"


@pytest.mark.parametrize(
    ("path", "hidden"),
    [
        ("/usr/bin/.sysupdate", True),
        ("/root/.configrc/a", True),
        ("/tmp/.X11-unix/.x/run", True),
        ("/opt/app/.venv/bin/python", False),
        ("/home/alice/.local/bin/backup", False),
        ("/home/alice/.cargo/bin/tool", False),
        ("/home/alice/.nvm/versions/node/v20.1.0/bin/node", False),
        ("/opt/app/.venv/bin/.hidden", True),
        ("/home/alice/.local/share/x", True),
        ("/usr/bin/../lib/x", False),
    ],
)
def test_hidden_path_rule_spares_tool_managers_directories(path, hidden):
    """A dotted component is a sign, except the directories tool managers install programs into."""
    shipped = persistence_rules.load_rules(yaml.safe_load(RULES_FILE.read_text()))
    pattern = next(r for r in shipped if r.id == "exec-hidden-path").executes[0]
    assert bool(pattern.search(path)) is hidden


@pytest.mark.parametrize(
    ("command", "runs_something"),
    [
        (
            'echo \'Please login as the user "debian" rather than the user "root".\';echo;sleep 10;exit 142',
            False,
        ),
        ("exit 1", False),
        ("/usr/bin/rrsync -ro /srv/backup", True),
        ("echo hi; /tmp/.x", True),
        ("echo $(id)", True),
        ("sleep 10 && sh", True),
    ],
)
def test_a_forced_command_that_only_refuses_the_login_runs_nothing(command, runs_something):
    """cloud-init's refusal of root logins prints, sleeps and exits: not a command to review."""
    shipped = persistence_rules.load_rules(yaml.safe_load(RULES_FILE.read_text()))
    pattern = next(r for r in shipped if r.id == "authorized-key-forced-command").command[0]
    assert bool(pattern.search(command)) is runs_something
