"""What the modules' documentation must hold beyond what ansible-test's validate-modules checks
(`make sanity` checks DOCUMENTATION against the argument spec, the attributes, the RETURN schema and
the markup): every example calls the module by its full collection name, and every return value has
a sample, so that a runbook writer sees the shape of what comes back."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

MODULES = sorted(p.stem for p in (Path(__file__).resolve().parents[4] / "plugins" / "modules").glob("*.py"))


def load(name: str):
    return importlib.import_module(f"ansible_collections.lifeline.rescue.plugins.modules.{name}")


def test_there_are_modules():
    assert {"rescue_attach", "rescue_detach", "glibc_restore", "crontab_repair", "root_switch"} <= set(
        MODULES
    )


@pytest.mark.parametrize("name", MODULES)
def test_examples_use_the_full_collection_name(name):
    examples = yaml.safe_load(load(name).EXAMPLES)

    assert examples, "no EXAMPLES"
    for task in examples:
        assert f"lifeline.rescue.{name}" in task, f"{task.get('name')}: not lifeline.rescue.{name}"


def samples_missing(values: dict, where: str = "") -> list[str]:
    """Return values (and values they contain) without a sample, or lists without elements."""
    missing = []
    for key, value in values.items():
        if "sample" not in value and "contains" not in value:
            missing.append(f"{where}{key}: no sample")
        if value.get("type") == "list" and "elements" not in value:
            missing.append(f"{where}{key}: a list without elements")
        missing += samples_missing(value.get("contains") or {}, f"{where}{key}.")
    return missing


@pytest.mark.parametrize("name", MODULES)
def test_every_return_value_has_a_sample(name):
    assert samples_missing(yaml.safe_load(load(name).RETURN)) == []


def test_a_missing_sample_is_found():
    assert samples_missing({"a": {"type": "list", "returned": "always", "description": "x"}}) == [
        "a: no sample",
        "a: a list without elements",
    ]
