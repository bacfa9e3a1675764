"""Every module's DOCUMENTATION says what its argument_spec() does, and nothing else."""

from __future__ import annotations

import importlib

import pytest
import yaml

from support.paths import REPO

MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py"))
KEYS = ("type", "default", "elements", "required", "choices", "aliases")
DEFAULTS = {"type": "str", "required": False}


def load(name: str):
    return importlib.import_module(f"ansible_collections.lifeline.rescue.plugins.modules.{name}")


def described(option: dict) -> dict:
    """An option as Ansible reads it: missing keys take Ansible's defaults."""
    return {key: option.get(key, DEFAULTS.get(key)) for key in KEYS}


def test_there_are_modules():
    assert {"rescue_attach", "rescue_detach"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_documented_options_are_the_argument_spec(name):
    module = load(name)
    documented = yaml.safe_load(module.DOCUMENTATION)["options"] or {}
    spec = module.argument_spec()

    assert sorted(documented) == sorted(spec), "options documented vs options accepted"
    for option, doc in documented.items():
        assert "type" in doc, f"{option}: DOCUMENTATION gives no type"
        assert doc.get("description"), f"{option}: no description"
        assert described(doc) == described(spec[option]), option


@pytest.mark.parametrize("name", MODULES)
def test_documentation_header(name):
    doc = yaml.safe_load(load(name).DOCUMENTATION)

    assert doc["module"] == name
    assert {"check_mode", "diff_mode"} <= set(doc["attributes"])


@pytest.mark.parametrize("name", MODULES)
def test_examples_use_the_full_collection_name(name):
    examples = yaml.safe_load(load(name).EXAMPLES)

    assert examples, "no EXAMPLES"
    for task in examples:
        assert f"lifeline.rescue.{name}" in task, f"{task.get('name')}: not lifeline.rescue.{name}"


@pytest.mark.parametrize("name", MODULES)
def test_every_return_value_is_described(name):
    returned = yaml.safe_load(load(name).RETURN)

    for key, value in returned.items():
        assert {"description", "returned", "type", "sample"} <= set(value), key
        if value["type"] == "list":
            assert "elements" in value, key
