"""The modules run on rescuers, whose Python may be older than the controller's: bullseye's 3.9 is
the oldest of the three Debian roots. Its own interpreter (from the bullseye tree, with the tree's
standard library) must compile every plugin, import every module and module_util, and run the
helpers every attach and migration goes through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ansible

from support.paths import REPO
from support.trees import debian_tree

PROBE = r"""
import importlib, pathlib, pkgutil, sys
import ansible_collections.lifeline.rescue.plugins.module_utils as utils
import ansible_collections.lifeline.rescue.plugins.modules as modules

for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.py")):
    compile(path.read_text(), str(path), "exec", dont_inherit=True)
for package in (utils, modules):
    for found in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(found.name)

from ansible_collections.lifeline.rescue.plugins.module_utils.host import disks
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import pivot

rows = disks.parse_partx("NR START SECTORS UUID NAME\n1 2048 409600 0a0b-01 boot\n2 411648 40960 0a0b-02 \n")
assert [r["NR"] for r in rows] == ["1", "2"], rows
plan = pivot.plan_switch(
    "1 0 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "2 1 0:5 / /proc rw,nosuid - proc proc rw\n"
    "3 1 0:6 / /run rw - tmpfs tmpfs rw\n"
    "4 1 8:17 / /mnt/newroot rw - ext4 /dev/sdb1 rw\n",
    "/mnt/newroot",
)
assert [s["action"] for s in plan.steps][:1] == ["pivot_root"], plan.steps
print("ok", sys.version_info[:2])
"""


def test_every_module_imports_and_runs_under_bullseyes_python_3_9(tmp_path):
    tree = debian_tree("bullseye")
    python = tree / "usr" / "bin" / "python3.9"
    # Only ansible's own module_utils (the part that runs on targets) beside the collection.
    shim = tmp_path / "site"
    shim.mkdir()
    (shim / "ansible").symlink_to(Path(ansible.__file__).parent)
    env = {
        "PYTHONHOME": str(tree / "usr"),
        "PYTHONPATH": f"{REPO / '.collections'}{os.pathsep}{shim}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": os.environ.get("PATH", ""),
    }
    done = subprocess.run(
        [str(python), "-c", PROBE, str(REPO / "plugins")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok (3, 9)"), (done.stdout, sys.version)
