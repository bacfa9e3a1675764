"""The roots the persistence and crontab tests plant into, as fixtures (a test module loads them with
``pytest_plugins = ("support.planted_roots",)``): the shipped rules, a small root with bookworm's
package database and accounts, bookworm's cron files with incident 4's NUL blocks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    rules as persistence_rules,
)

from support.paths import RULES_FILE
from support.planted import MINUTE, NULS, STOCK_CRONTAB, plant
from support.trees import debian_tree


@pytest.fixture(scope="module")
def rules() -> list[persistence_rules.Rule]:
    return persistence_rules.load_rules(yaml.safe_load(RULES_FILE.read_text()))


@pytest.fixture(scope="module")
def dpkg_database(tmp_path_factory) -> Path:
    """The part of bookworm's dpkg database that says who owns what: status and the file lists."""
    source = debian_tree("bookworm") / "var/lib/dpkg"
    copy = tmp_path_factory.mktemp("dpkg") / "dpkg"
    (copy / "info").mkdir(parents=True)
    shutil.copy2(source / "status", copy / "status")
    for listed in (source / "info").glob("*.list"):
        shutil.copy2(listed, copy / "info" / listed.name)
    return copy


@pytest.fixture
def base(small_root, dpkg_database) -> Path:
    """The small root with bookworm's package database and accounts, plus users alice and mallory."""
    tree = debian_tree("bookworm")
    (small_root / "var/lib").mkdir(parents=True)
    subprocess.run(["cp", "-a", str(dpkg_database), str(small_root / "var/lib/dpkg")], check=True)
    users = "alice:x:1000:1000::/home/alice:/bin/bash\nmallory:x:1001:1001::/home/mallory:/bin/bash\n"
    plant(small_root, "/etc/passwd", (tree / "etc/passwd").read_text() + users)
    plant(small_root, "/etc/group", (tree / "etc/group").read_text() + "alice:x:1000:\nmallory:x:1001:\n")
    plant(small_root, "/etc/crontab", STOCK_CRONTAB)
    for home, uid in (("root", 0), ("home/alice", 1000), ("home/mallory", 1001)):
        (small_root / home).mkdir(parents=True, mode=0o700)
        os.chown(small_root / home, uid, uid)
    return small_root


@pytest.fixture
def polluted(tmp_path) -> tuple[Path, bytes]:
    """The cron files of bookworm, with NUL blocks in the middle of /etc/crontab."""
    tree = debian_tree("bookworm")
    root = tmp_path / "root"
    for name in ("etc/os-release", "etc/passwd", "etc/group", "etc/crontab", "etc/cron.d/e2scrub_all"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tree / name, root / name, follow_symlinks=True)
    (root / "usr").mkdir()
    (root / "var/log").mkdir(parents=True)
    original = (root / "etc/crontab").read_bytes()
    lines = original.splitlines(keepends=True)
    (root / "etc/crontab").write_bytes(
        b"".join(lines[:-3]) + NULS + MINUTE[:10] + NULS + MINUTE[10:] + NULS + b"".join(lines[-3:])
    )
    return root, original
