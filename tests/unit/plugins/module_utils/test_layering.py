"""The layering of plugins/module_utils, read from the imports themselves.

At the bottom, ``errors`` (the one LifelineError) and two packages that import nothing of the
collection but it: ``target`` (a broken root read as data) and ``host`` (the rescuer's kernel and
tools). Above them ``packages`` (package databases and package files, read offline), then one
package per concern; each imports only the layers below and itself, except that the persistence scan
may read cron. Nothing in module_utils imports a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from support.paths import REPO

MODULE_UTILS = REPO / "plugins" / "module_utils"
COLLECTION = "ansible_collections.lifeline.rescue.plugins"
MU = f"{COLLECTION}.module_utils"

BOTTOM = {"errors"}
# package -> the packages it may import besides itself
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "target": BOTTOM,
    "host": BOTTOM,
    "packages": BOTTOM | {"target", "host"},
    "attach": BOTTOM | {"target", "host"},
    "glibc": BOTTOM | {"target", "host", "packages"},
    "cron": BOTTOM | {"target", "host", "packages"},
    "persistence": BOTTOM | {"target", "host", "packages", "cron"},
    "migrate": BOTTOM | {"target", "host"},
}


def imported(path: Path) -> set[str]:
    """The collection names a file imports, as dotted paths below ``plugins``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith(COLLECTION + "."):
                base = node.module[len(COLLECTION) + 1 :]
                names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(
                alias.name[len(COLLECTION) + 1 :]
                for alias in node.names
                if alias.name.startswith(COLLECTION + ".")
            )
        elif isinstance(node, ast.ImportFrom) and node.level:
            names.add(f"<relative import of level {node.level}>")
    return names


def package_of(path: Path, top: Path) -> str:
    """``errors`` for errors.py, else the first folder below module_utils."""
    parts = path.relative_to(top).parts
    return parts[0] if len(parts) > 1 else path.stem


def violations(top: Path) -> list[str]:
    """Every import in ``top`` (a module_utils tree) that the layering forbids, as 'file: import'."""
    found = []
    for path in sorted(top.rglob("*.py")):
        if path.name == "__init__.py":
            if path.read_text().strip():
                found.append(f"{path.relative_to(top)}: a package's __init__.py stays empty")
            continue
        mine = package_of(path, top)
        allowed = ALLOWED.get(mine)
        if allowed is None:
            found.append(f"{path.relative_to(top)}: {mine} is not a known layer; add it to the layering")
            continue
        for name in sorted(imported(path)):
            parts = name.split(".")
            if parts[0] != "module_utils" or len(parts) < 2:
                found.append(f"{path.relative_to(top)}: imports {name}")
            elif parts[1] != mine and parts[1] not in allowed:
                found.append(f"{path.relative_to(top)}: {mine} imports {'.'.join(parts[1:])}")
    return found


def test_module_utils_keeps_its_layers():
    assert violations(MODULE_UTILS) == []


def test_every_layer_is_a_package_with_an_empty_init():
    packages = {p.name for p in MODULE_UTILS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages == set(ALLOWED) - BOTTOM
    for name in packages:
        assert (MODULE_UTILS / name / "__init__.py").read_text() == ""


@pytest.mark.parametrize(
    ("where", "line", "expected"),
    [
        ("host/disks.py", f"from {MU}.target import rootfs", "host imports target.rootfs"),
        ("target/rootfs.py", f"from {MU}.glibc import elf", "target imports glibc.elf"),
        ("glibc/elf.py", f"from {MU}.cron import crontab", "glibc imports cron.crontab"),
        ("cron/files.py", f"from {MU}.persistence import scan", "cron imports persistence"),
        ("migrate/pivot.py", f"import {MU}.attach.attachment", "migrate imports attach"),
        ("host/lvm.py", f"from {COLLECTION}.modules import rescue_attach", "imports modules.rescue_attach"),
        ("errors.py", f"from {MU}.host import runner", "errors imports host.runner"),
        ("newpkg/thing.py", "import os", "newpkg is not a known layer"),
    ],
)
def test_a_wrong_import_is_found(tmp_path, where, line, expected):
    """The check itself: a copy of module_utils with one import added that points the wrong way."""
    for path in MODULE_UTILS.rglob("*.py"):
        copy = tmp_path / path.relative_to(MODULE_UTILS)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
    planted = tmp_path / where
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text((planted.read_text() if planted.exists() else "") + f"\n{line}\n")
    found = violations(tmp_path)
    assert len(found) == 1 and expected in found[0], found


def test_the_allowed_imports_pass(tmp_path):
    """persistence may read cron; a pattern package may read target and host."""
    (tmp_path / "persistence").mkdir()
    (tmp_path / "persistence" / "x.py").write_text(
        f"from {COLLECTION}.module_utils.cron import crontab\n"
        f"from {COLLECTION}.module_utils.target import rootfs\n"
        f"from {COLLECTION}.module_utils.host.runner import ToolError\n"
        f"from {COLLECTION}.module_utils.errors import LifelineError\n"
    )
    assert violations(tmp_path) == []
