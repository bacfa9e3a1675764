"""The package_info module, run in-process the way Ansible runs it, on real roots; its listing is
judged by the manager's own query tool run on the same database."""

from __future__ import annotations

import shutil

import pytest
from ansible_collections.lifeline.rescue.plugins.modules import package_info

from support import rpm_corpus
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


@pytest.mark.parametrize(
    ("entry", "backend"),
    [("scancode/rhel8-bdb", "bdb"), ("libguestfs/fedora33-glibc", "sqlite"), ("go-rpmdb/sle15-bci", "ndb")],
)
def test_an_rpm_root_is_listed_as_rpm_listed_it(tmp_path, capsys, deadline, entry, backend):
    """A root holding a real distribution's rpm database: the listing is rpm's own (rpm-qa.txt of the
    corpus, made by real rpm), glibc's files are glibc-files.tsv path for path, and nothing is written."""
    root = tmp_path / "root"
    for top in ("etc", "usr/bin"):
        (root / top).mkdir(parents=True)
    (root / "etc/redhat-release").write_text("Red Hat Enterprise Linux release 8.0 (Ootpa)\n")
    database = rpm_corpus.plant(entry, root)
    before = database.read_bytes()
    rc, result = run_module(package_info, capsys, deadline(60), root=str(root))
    assert rc == 0, result
    assert (result["manager"], result["backend"]) == ("rpm", backend)
    assert result["path"] == "/var/lib/rpm/" + database.name
    assert sorted(p["label"] for p in result["packages"]) == sorted(rpm_corpus.nvras(entry))

    rc, result = run_module(package_info, capsys, deadline(60), root=str(root), names=["glibc"], files=True)
    (glibc,) = result["packages"]
    expected = [line.split("\t")[0] for line in rpm_corpus.file_tables(entry)["glibc"]]
    assert [f["path"] for f in glibc["files"]] == expected
    assert {f["algorithm"] for f in glibc["files"] if f["digest"]} == {"sha256"}
    assert database.read_bytes() == before and sorted(p.name for p in database.parent.iterdir()) == [
        database.name
    ]
