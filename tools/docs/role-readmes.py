#!/usr/bin/env python3
"""The entry points and variables of every role's README.md, generated from meta/argument_specs.yml.

    tools/docs/role-readmes.py            rewrite the generated part of each roles/*/README.md
    tools/docs/role-readmes.py --check    change nothing; exit 1 naming each README that differs
    tools/docs/role-readmes.py --roles DIR      the roles of another tree (the tests' copies)

A README is the text its authors wrote (what the role does, an example), then the generated part
between the two markers below, which this tool owns. A role without a README gets one whose text
is the description of its meta/main.yml, to be written properly by hand. The lint lane runs
--check, so that a README and its argument specs cannot drift apart.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BEGIN = "<!-- BEGIN generated from meta/argument_specs.yml by tools/docs/role-readmes.py: do not edit -->"
END = "<!-- END generated from meta/argument_specs.yml -->"
COLLECTION = "lifeline.rescue"

# Ansible's documentation markup, as Markdown: C(code), O(option), V(value), RV(return value),
# E(environment), M(module), P(plugin), I(italic), B(bold), U(url), L(text,url).
MARKUP = [
    (re.compile(r"\b(?:C|O|V|RV|E|M)\(([^()]*)\)"), r"`\1`"),
    (re.compile(r"\bP\(([^()#]*)#[^()]*\)"), r"`\1`"),
    (re.compile(r"\bI\(([^()]*)\)"), r"*\1*"),
    (re.compile(r"\bB\(([^()]*)\)"), r"**\1**"),
    (re.compile(r"\bU\(([^()]*)\)"), r"<\1>"),
    (re.compile(r"\bL\(([^(),]*),\s*([^()]*)\)"), r"[\1](\2)"),
]


class SpecError(Exception):
    """A role's argument specs cannot be read or do not have the expected shape."""


def markdown(text: str) -> str:
    for pattern, replacement in MARKUP:
        text = pattern.sub(replacement, text)
    return text


def paragraphs(description: object) -> list[str]:
    """A description (a string or a list of them) as Markdown paragraphs on one line each."""
    if description is None:
        return []
    items = description if isinstance(description, list) else [description]
    return [markdown(" ".join(str(item).split())) for item in items]


def cell(text: str) -> str:
    """Text a Markdown table cell can hold: one line, no column separator."""
    return " ".join(text.split()).replace("|", "\\|")


def yaml_value(value: object) -> str:
    """A default as YAML a user would write in their variables (flow style, one line)."""
    if value == "":
        return '`""`'
    dumped = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
    # A scalar is dumped as a document with its end marker.
    return "`" + dumped.strip().removesuffix("\n...") + "`"


def type_of(option: dict) -> str:
    kind = option.get("type", "str")
    if kind == "list" and "elements" in option:
        return f"list of {option['elements']}"
    return str(kind)


def option_rows(options: dict, prefix: str = "") -> list[str]:
    rows = []
    for name, option in options.items():
        if not isinstance(option, dict):
            raise SpecError(f"option {prefix}{name} is not a mapping")
        if option.get("required"):
            default = "required"
        elif "default" in option:
            default = yaml_value(option["default"])
        else:
            default = "(none)"
        text = " ".join(paragraphs(option.get("description")))
        if "choices" in option:
            text += " Choices: " + ", ".join(yaml_value(choice) for choice in option["choices"]) + "."
        kind = type_of(option) + (", no_log" if option.get("no_log") else "")
        rows.append(f"| `{prefix}{name}` | {kind} | {cell(default)} | {cell(text)} |")
        if isinstance(option.get("options"), dict):
            rows.extend(option_rows(option["options"], prefix=f"{prefix}{name}."))
    return rows


def generated(role: str, specs: dict) -> str:
    """The generated part of a role's README, markers included."""
    lines = [BEGIN, "", "## Entry points and variables", ""]
    for entry, spec in specs.items():
        call = (
            f"`{COLLECTION}.{role}`" if entry == "main" else f"`{COLLECTION}.{role}`, `tasks_from: {entry}`"
        )
        lines += [f"### `{entry}` ({call})", ""]
        short = spec.get("short_description")
        if short:
            lines += [markdown(" ".join(str(short).split())) + ".", ""]
        for paragraph in paragraphs(spec.get("description")):
            lines += [paragraph, ""]
        options = spec.get("options") or {}
        if options:
            lines += [
                "| variable | type | default | description |",
                "|---|---|---|---|",
                *option_rows(options),
                "",
            ]
        else:
            lines += ["No variables.", ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def load_specs(role_dir: Path) -> dict:
    path = role_dir / "meta" / "argument_specs.yml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read it: {exc}") from exc
    specs = data.get("argument_specs") if isinstance(data, dict) else None
    if not isinstance(specs, dict) or not specs:
        raise SpecError(f"{path}: no argument_specs mapping with an entry point")
    for entry, spec in specs.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("options") or {}, dict):
            raise SpecError(f"{path}: entry point {entry} is not a mapping with options")
    return specs


def first_text(role_dir: Path, role: str) -> str:
    """The text of a README the tool creates: the role's own one-line description."""
    description = ""
    try:
        meta = yaml.safe_load((role_dir / "meta" / "main.yml").read_text(encoding="utf-8"))
        description = str(meta["galaxy_info"]["description"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        pass
    return f"# {COLLECTION}.{role}\n\n{description}.\n\n"


def expected_readme(role_dir: Path, current: str | None) -> str:
    role = role_dir.name
    part = generated(role, load_specs(role_dir))
    if current is None:
        return first_text(role_dir, role) + part
    start = current.find(BEGIN)
    stop = current.find(END)
    if start < 0 and stop < 0:
        return current.rstrip("\n") + "\n\n" + part
    if start < 0 or stop < start:
        raise SpecError(f"{role_dir / 'README.md'}: the markers of the generated part are broken")
    return current[:start] + part + current[stop + len(END) :].lstrip("\n")


def roles_in(roles_dir: Path) -> list[Path]:
    roles = sorted(p for p in roles_dir.iterdir() if (p / "meta" / "argument_specs.yml").is_file())
    if not roles:
        raise SpecError(f"{roles_dir}: no role with meta/argument_specs.yml")
    return roles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; fail when a README differs")
    parser.add_argument("--roles", type=Path, default=REPO / "roles", help="the roles directory")
    args = parser.parse_args(argv)
    stale = []
    try:
        for role_dir in roles_in(args.roles):
            readme = role_dir / "README.md"
            current = readme.read_text(encoding="utf-8") if readme.exists() else None
            want = expected_readme(role_dir, current)
            if current == want:
                continue
            if args.check:
                stale.append(readme)
                diff = difflib.unified_diff(
                    (current or "").splitlines(keepends=True),
                    want.splitlines(keepends=True),
                    f"{readme} (now)",
                    f"{readme} (from meta/argument_specs.yml)",
                )
                sys.stdout.writelines(list(diff)[:80])
            else:
                readme.write_text(want, encoding="utf-8")
                print(f"role-readmes: wrote {readme}")
    except SpecError as exc:
        print(f"role-readmes: {exc}", file=sys.stderr)
        return 2
    if stale:
        names = ", ".join(str(path) for path in stale)
        print(
            f"role-readmes: {names} differ from meta/argument_specs.yml: run tools/docs/role-readmes.py",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
