#!/usr/bin/env python3
"""Check the documentation of every module in plugins/modules against its code.

For each plugins/modules/NAME.py (run with .venv/bin/python, from anywhere):
  - DOCUMENTATION, EXAMPLES and RETURN parse as YAML; DOCUMENTATION names the module NAME and has
    short_description, description and author; EXAMPLES is a list of tasks, one calling
    lifeline.rescue.NAME;
  - the module's top-level function argument_spec() (the project's convention, see DEVELOPERS.md)
    and the documented options (DOCUMENTATION with its doc fragments, as ansible-doc merges them)
    name the same options, each with the same type, default, choices,
    required, elements and aliases, suboptions recursively; every documented option has a
    description;
  - every RETURN key (and every key it `contains`) has description, returned and type;
  - `ansible-doc -t module lifeline.rescue.NAME` renders it.
With no module file at all it says so and succeeds; a problem anywhere makes it exit 1.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = REPO / "plugins" / "modules"
COLLECTION = "lifeline.rescue"
UNSET = object()

try:
    import yaml
    from ansible.module_utils.common.parameters import DEFAULT_TYPE_VALIDATORS  # noqa: F401
except ImportError as error:  # pragma: no cover - wrong interpreter
    sys.exit(f"check-module-docs: {error}: run it with .venv/bin/python (make venv)")


def compare_options(spec: dict, documented: dict | None, where: str) -> list[str]:
    """Problems between an argument spec and the documented options (both directions)."""
    problems = []
    documented = documented or {}
    if not isinstance(documented, dict):
        return [f"{where}: documented options must be a mapping, not {type(documented).__name__}"]
    for name in sorted(set(spec) - set(documented)):
        problems.append(f"{where}: option '{name}' is in argument_spec() but not documented")
    for name in sorted(set(documented) - set(spec)):
        problems.append(f"{where}: option '{name}' is documented but not in argument_spec()")
    for name in sorted(set(spec) & set(documented)):
        code, doc = spec[name] or {}, documented[name] or {}
        here = f"{where}.{name}"
        if not doc.get("description"):
            problems.append(f"{here}: no description")
        pairs = {
            "type": (code.get("type", "str"), doc.get("type", "str")),
            "default": (code.get("default"), doc.get("default")),
            "required": (bool(code.get("required", False)), bool(doc.get("required", False))),
            "choices": (code.get("choices"), doc.get("choices")),
            "elements": (code.get("elements"), doc.get("elements")),
            "aliases": (sorted(code.get("aliases") or []), sorted(doc.get("aliases") or [])),
        }
        for key, (in_code, in_doc) in pairs.items():
            if key == "choices" and in_code is not None and in_doc is not None:
                in_code, in_doc = list(in_code), list(in_doc)
            if in_code != in_doc:
                problems.append(
                    f"{here}: {key} is {in_code!r} in argument_spec() but {in_doc!r} in DOCUMENTATION"
                )
        if code.get("options") or doc.get("suboptions"):
            problems += compare_options(code.get("options") or {}, doc.get("suboptions"), here)
    return problems


def check_return(values, where: str, top: bool) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, dict):
        return [f"{where}: must be a mapping of return values, not {type(values).__name__}"]
    problems = []
    for key, body in values.items():
        here = f"{where}.{key}"
        if not isinstance(body, dict):
            problems.append(f"{here}: must be a mapping with description, returned and type")
            continue
        for field in ("description", "returned", "type") if top else ("description", "type"):
            if not body.get(field):
                problems.append(f"{here}: no {field}")
        if "contains" in body:
            problems += check_return(body["contains"], f"{here}.contains", top=False)
    return problems


def load_yaml(module, name: str) -> tuple[object, list[str]]:
    text = getattr(module, name, UNSET)
    if text is UNSET:
        return None, [f"{name} is not defined"]
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as error:
        return None, [f"{name} is not valid YAML: {error}"]


def check_module(path: Path, merged: dict | None) -> tuple[list[str], str]:
    name = path.stem
    problems: list[str] = []
    try:
        module = importlib.import_module(f"ansible_collections.lifeline.rescue.plugins.modules.{name}")
    except Exception as error:  # any import failure is a finding, not a crash of the checker
        return [f"cannot be imported: {type(error).__name__}: {error}"], ""

    doc, found = load_yaml(module, "DOCUMENTATION")
    problems += found
    examples, found = load_yaml(module, "EXAMPLES")
    problems += found
    returns, found = load_yaml(module, "RETURN")
    problems += found

    if doc is not None and not isinstance(doc, dict):
        problems.append("DOCUMENTATION is not a mapping")
        doc = None
    if doc is not None:
        if doc.get("module") != name:
            problems.append(f"DOCUMENTATION.module is {doc.get('module')!r}, the file is {name}.py")
        for field in ("short_description", "description", "author"):
            if not doc.get(field):
                problems.append(f"DOCUMENTATION has no {field}")

    spec_function = getattr(module, "argument_spec", None)
    if not callable(spec_function):
        problems.append("no top-level function argument_spec() returning the spec (see DEVELOPERS.md)")
    elif merged is not None:
        spec = spec_function()
        if not isinstance(spec, dict):
            problems.append(f"argument_spec() returned {type(spec).__name__}, not a dict")
        else:
            problems += compare_options(spec, merged.get("options"), "options")

    if examples is not None:
        tasks = examples if isinstance(examples, list) else []
        if not tasks or not all(isinstance(task, dict) for task in tasks):
            problems.append("EXAMPLES must be a YAML list of tasks")
        elif not any(f"{COLLECTION}.{name}" in task for task in tasks):
            problems.append(f"no task in EXAMPLES calls {COLLECTION}.{name}")
    problems += check_return(returns, "RETURN", top=True)

    options = len((merged or {}).get("options") or {})
    values = len(returns) if isinstance(returns, dict) else 0
    return problems, f"{options} options, {values} return values"


def ansible_doc(name: str) -> tuple[list[str], dict | None]:
    """Problems rendering the module with ansible-doc, and its documentation with the fragments merged."""
    binary = Path(sys.executable).parent / "ansible-doc"
    command = ["ansible-doc", "--json", "-t", "module", f"{COLLECTION}.{name}"]
    done = subprocess.run(
        [str(binary), *command[1:]],
        cwd=REPO,  # ansible.cfg's collections_path reaches the checkout through .collections
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
    )
    if done.returncode != 0 or "not found" in done.stderr or "ERROR" in done.stderr:
        detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return [f"{' '.join(command)} failed (exit {done.returncode}): " + " | ".join(detail)], None
    try:
        return [], json.loads(done.stdout)[f"{COLLECTION}.{name}"]["doc"]
    except (ValueError, KeyError) as error:
        return [f"{' '.join(command)} did not render the module: {error}"], None


def main() -> int:
    files = sorted(p for p in MODULES.glob("*.py") if p.name != "__init__.py") if MODULES.is_dir() else []
    if not files:
        print(f"module docs: no module in {MODULES.relative_to(REPO)}/ (no *.py file): nothing to check")
        return 0
    sys.path.insert(0, str(REPO / ".collections"))
    bad = 0
    for path in files:
        rendered, merged = ansible_doc(path.stem)
        problems, counts = check_module(path, merged)
        problems += rendered
        if problems:
            bad += 1
            print(f"module docs: {path.stem}: {len(problems)} problem(s)")
            for problem in problems:
                print(f"  {path.relative_to(REPO)}: {problem}")
        else:
            print(f"module docs: {path.stem}: ok ({counts})")
    print(f"module docs: {len(files) - bad} of {len(files)} modules ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
