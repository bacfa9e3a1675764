"""The package_info module, run in-process the way Ansible runs it, on real roots; its listing is
judged by the manager's own query tool run on the same database."""

from __future__ import annotations

import shutil

from ansible_collections.lifeline.rescue.plugins.modules import package_info

from support.modules import run_module
from support.runners import output
from support.trees import debian_tree


def test_a_debian_root_is_listed_as_dpkg_query_lists_it(capsys, deadline):
    root = debian_tree("bookworm")
    rc, result = run_module(package_info, capsys, deadline(60), root=str(root))
    assert rc == 0 and result["changed"] is False
    assert (result["manager"], result["backend"], result["path"]) == (
        "dpkg",
        "dpkg status",
        "/var/lib/dpkg/status",
    )
    shown = output(
        "dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f=${db:Status-Abbrev}${Package} ${Version}\n"
    )
    expected = sorted(line[3:] for line in shown.splitlines() if line.startswith("ii "))
    assert sorted(f"{p['name']} {p['version']}" for p in result["packages"]) == expected


def test_names_and_files_limit_and_widen_the_listing(capsys, deadline):
    root = debian_tree("bookworm")
    rc, result = run_module(package_info, capsys, deadline(60), root=str(root), names=["libc6"], files=True)
    assert rc == 0
    (libc,) = result["packages"]
    listed = {f["path"] for f in libc["files"]}
    assert listed == set(output("dpkg-query", f"--admindir={root}/var/lib/dpkg", "-L", "libc6").split()) - {
        "/."
    }
    assert all(f["algorithm"] == "md5" for f in libc["files"] if f["digest"])


def test_a_root_without_a_database_says_so_and_a_damaged_one_fails(tmp_path, capsys, deadline):
    root = tmp_path / "root"
    shutil.copytree(debian_tree("bookworm") / "etc", root / "etc", symlinks=True)
    for top in ("usr/bin", "var/lib"):
        (root / top).mkdir(parents=True)
    rc, result = run_module(package_info, capsys, deadline(60), root=str(root))
    assert rc == 0 and result["manager"] == "" and result["packages"] == []

    (root / "var/lib/dpkg").mkdir()
    (root / "var/lib/dpkg/status").mkdir()  # a directory where the status file should be
    rc, result = run_module(package_info, capsys, deadline(60), root=str(root))
    assert rc == 1 and result["msg"].startswith("the package database cannot be read: ")
