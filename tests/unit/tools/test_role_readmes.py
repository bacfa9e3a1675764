"""tools/docs/role-readmes.py: a role's README and its meta/argument_specs.yml cannot drift apart."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.paths import REPO

TOOL = REPO / "tools" / "docs" / "role-readmes.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def roles(tmp_path: Path) -> Path:
    """A copy of every role's README and meta/ (all the tool reads)."""
    copy = tmp_path / "roles"
    for role in (REPO / "roles").iterdir():
        if (role / "meta" / "argument_specs.yml").is_file():
            shutil.copytree(role / "meta", copy / role.name / "meta")
            if (role / "README.md").is_file():
                shutil.copy2(role / "README.md", copy / role.name / "README.md")
    return copy


def test_every_role_of_the_checkout_has_its_readme_up_to_date() -> None:
    result = run("--check")
    assert result.returncode == 0, result.stdout + result.stderr
    for role in (REPO / "roles").iterdir():
        if (role / "meta" / "argument_specs.yml").is_file():
            assert "## Entry points and variables" in (role / "README.md").read_text(), role.name


def test_a_changed_default_in_the_specs_fails_the_check_until_regenerated(roles: Path) -> None:
    specs_path = roles / "rescue_mount" / "meta" / "argument_specs.yml"
    specs_path.write_text(
        specs_path.read_text().replace("default: /mnt/lifeline\n", "default: /mnt/elsewhere\n")
    )
    readme = roles / "rescue_mount" / "README.md"
    before = readme.read_text()

    drifted = run("--check", "--roles", str(roles))
    assert drifted.returncode == 1
    assert str(readme) in drifted.stderr
    assert "+| `rescue_mount_point` | path | `/mnt/elsewhere` |" in drifted.stdout
    assert readme.read_text() == before, "--check changes nothing"

    assert run("--roles", str(roles)).returncode == 0
    assert "| `rescue_mount_point` | path | `/mnt/elsewhere` |" in readme.read_text()
    assert run("--check", "--roles", str(roles)).returncode == 0


def test_a_hand_edited_table_fails_the_check_and_the_authors_text_is_kept(roles: Path) -> None:
    readme = roles / "glibc_restore" / "README.md"
    text = readme.read_text()
    readme.write_text(
        text.replace(
            "| `glibc_restore_smoke_test` | bool | `true` |",
            "| `glibc_restore_smoke_test` | bool | `false` |",
        )
    )
    assert run("--check", "--roles", str(roles)).returncode == 1
    readme.write_text("# Written by hand\n\nWhat the role does.\n" + text[text.index("<!-- BEGIN") :])
    assert run("--roles", str(roles)).returncode == 0
    regenerated = readme.read_text()
    assert regenerated.startswith("# Written by hand\n\nWhat the role does.\n<!-- BEGIN")
    assert regenerated[regenerated.index("<!-- BEGIN") :] == text[text.index("<!-- BEGIN") :]


def test_a_new_variable_an_entry_point_and_suboptions_appear_in_the_table(roles: Path) -> None:
    specs_path = roles / "report" / "meta" / "argument_specs.yml"
    specs = yaml.safe_load(specs_path.read_text())
    specs["argument_specs"]["summary"] = {
        "short_description": "Say what a report holds",
        "options": {
            "report_fields": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "description": ["Fields, C(name) and O(report_fields.kind)", "One | per line."],
                "options": {"kind": {"type": "str", "choices": ["text", ""], "default": "text"}},
            }
        },
    }
    specs_path.write_text(yaml.safe_dump(specs))
    assert run("--check", "--roles", str(roles)).returncode == 1
    assert run("--roles", str(roles)).returncode == 0
    readme = (roles / "report" / "README.md").read_text()
    assert "### `summary` (`lifeline.rescue.report`, `tasks_from: summary`)" in readme
    row = "| `report_fields` | list of dict | required | Fields, `name` and `report_fields.kind` One \\| per"
    assert row in readme
    assert '| `report_fields.kind` | str | `text` | Choices: `text`, `""`. |' in readme


def test_a_role_without_readme_fails_the_check_and_gets_one(roles: Path) -> None:
    (roles / "drill" / "README.md").unlink()
    result = run("--check", "--roles", str(roles))
    assert result.returncode == 1
    assert not (roles / "drill" / "README.md").exists()
    assert run("--roles", str(roles)).returncode == 0
    created = (roles / "drill" / "README.md").read_text()
    assert created.startswith("# lifeline.rescue.drill\n\nPlant a fault")
    assert "| `drill_fault` | str | required |" in created


@pytest.mark.parametrize(
    "specs",
    [
        "argument_specs: [",
        "argument_specs: {}\n",
        "just text\n",
        "argument_specs:\n  main: 3\n",
        "\0\1garbage",
    ],
)
def test_unreadable_specs_are_a_clear_error(roles: Path, specs: str) -> None:
    (roles / "report" / "meta" / "argument_specs.yml").write_text(specs)
    result = run("--check", "--roles", str(roles))
    assert result.returncode == 2
    assert "report/meta/argument_specs.yml" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_markers_are_a_clear_error(roles: Path) -> None:
    readme = roles / "report" / "README.md"
    readme.write_text(readme.read_text().replace("<!-- END generated from meta/argument_specs.yml -->", ""))
    result = run("--roles", str(roles))
    assert result.returncode == 2
    assert "markers" in result.stderr
