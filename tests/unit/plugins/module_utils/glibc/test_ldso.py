"""The target's loader configuration, read offline; ldconfig and the target's own ld.so are the oracles."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import ldso

from support.trees import SUITES
from support.trees import debian_tree as tree


def build(root: Path, files: dict[str, str | tuple[str]]) -> Path:
    """Files (text) and symlinks (a 1-tuple holding the target) under root."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            path.symlink_to(content[0])
        else:
            path.write_text(content)
    return root


def paths(root: Path) -> list[str]:
    return [d.path for d in ldso.read_ld_so_conf(str(root))[0]]


@pytest.mark.parametrize("suite", SUITES)
def test_conf_dirs_match_ldconfig(suite):
    """ldconfig -v lists the directories it reads, in order, each once (by inode), existing ones only."""
    root = tree(suite)
    out = subprocess.run(
        ["ldconfig", "-r", str(root), "-N", "-X", "-v"], capture_output=True, text=True, check=True
    ).stdout
    from_ldconfig = [
        m.group(1) for m in re.finditer(r"^(/\S*): \(from (?!<builtin>)", out, flags=re.MULTILINE)
    ]
    ours, seen = [], set()
    for entry in ldso.read_ld_so_conf(str(root))[0]:
        try:
            st = os.stat(f"{root}{entry.path}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            ours.append(entry.path)
    assert ours == from_ldconfig
    assert from_ldconfig, "ldconfig listed no directory: the oracle did not run"


# ld.so --help (which prints the search path) exists from glibc 2.33: bookworm and later.
@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_system_dirs_match_the_targets_own_loader(suite):
    """The tree's ld.so prints its compiled-in search path (this rescuer's architecture matches)."""
    root = tree(suite)
    out = subprocess.run(
        ["chroot", str(root), "/lib64/ld-linux-x86-64.so.2", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    from_loader = re.findall(r"^\s+(/\S+) \(system search path\)$", out, flags=re.MULTILINE)
    assert ldso.system_dirs(str(root), "x86_64", elf64=True) == from_loader


CONF_CASES = [
    pytest.param(
        {"etc/ld.so.conf": "# comment\n/opt/a\n\n  /opt/b  # trailing comment\n"},
        ["/opt/a", "/opt/b"],
        id="comments and blanks",
    ),
    pytest.param(
        {
            "etc/ld.so.conf": "include /etc/ld.so.conf.d/*.conf\n/opt/last\n",
            "etc/ld.so.conf.d/b.conf": "/opt/b\n",
            "etc/ld.so.conf.d/a.conf": "/opt/a\n",
            "etc/ld.so.conf.d/c.txt": "/opt/not-a-conf\n",
        },
        ["/opt/a", "/opt/b", "/opt/last"],
        id="include glob, matches sorted, in place",
    ),
    pytest.param(
        {"etc/ld.so.conf": "include more/*.conf\n", "etc/more/x.conf": "/opt/x\n"},
        ["/opt/x"],
        id="relative include against the including file's directory",
    ),
    pytest.param(
        {"etc/ld.so.conf": "include /etc/ld.so.conf\n/opt/a\n"},
        ["/opt/a"],
        id="a file including itself",
    ),
    pytest.param(
        {"etc/ld.so.conf": "/opt/a\n/opt/a/\n/opt/b=libc5\nhwcap 0 nosegneg\n"},
        ["/opt/a", "/opt/b"],
        id="duplicates, trailing slash, libc5 type, hwcap line",
    ),
    pytest.param(
        {
            "etc/ld.so.conf": "include /etc/ld.so.conf.d/*.conf\n",
            "etc/ld.so.conf.d": ("/etc/escape",),
            "etc/escape/x.conf": "/opt/inside\n",
        },
        ["/opt/inside"],
        id="an absolute link to a directory resolves inside the root",
    ),
    pytest.param(
        {"etc/ld.so.conf": "include /nowhere/*.conf\n/opt/a\n"},
        ["/opt/a"],
        id="a pattern that matches nothing",
    ),
]


@pytest.mark.parametrize(("files", "expected"), CONF_CASES)
def test_read_ld_so_conf(tmp_path, files, expected):
    assert paths(build(tmp_path / "root", files)) == expected


def test_an_include_loop_is_a_problem_not_a_hang(tmp_path):
    root = build(
        tmp_path / "root", {"etc/ld.so.conf": "include a.conf\n", "etc/a.conf": "include ld.so.conf\n/x\n"}
    )
    dirs, problems = ldso.read_ld_so_conf(str(root))
    assert [d.path for d in dirs] == ["/x"]
    assert any("include loop" in p for p in problems)


def test_a_missing_ld_so_conf_is_a_problem(tmp_path):
    (tmp_path / "root" / "etc").mkdir(parents=True)
    dirs, problems = ldso.read_ld_so_conf(str(tmp_path / "root"))
    assert dirs == []
    assert problems and "/etc/ld.so.conf" in problems[0]


def test_sources_name_file_and_line(tmp_path):
    root = build(tmp_path / "root", {"etc/ld.so.conf": "include d/*.conf\n", "etc/d/x.conf": "\n/opt/x\n"})
    [entry] = ldso.read_ld_so_conf(str(root))[0]
    assert entry.source == "/etc/d/x.conf:2"


def test_glob_inside_never_lists_the_rescuers_directories(tmp_path):
    """A link climbing out of the root clamps to the root's own /etc, which holds only the link."""
    root = build(tmp_path / "root", {"etc/ld.so.conf.d": ("../../../../../../etc",)})
    assert ldso.glob_inside(str(root), "/etc/ld.so.conf.d/*") == ["/etc/ld.so.conf.d/ld.so.conf.d"]


@pytest.mark.parametrize(
    ("layout", "machine", "elf64", "expected"),
    [
        pytest.param(
            ["lib/x86_64-linux-gnu"],
            "x86_64",
            True,
            ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"],
            id="debian",
        ),
        pytest.param(["lib64"], "x86_64", True, ["/lib64", "/usr/lib64"], id="red hat 64-bit"),
        pytest.param(["lib64"], "i386", False, ["/lib", "/usr/lib"], id="32-bit"),
        pytest.param(
            ["lib/aarch64-linux-gnu"],
            "aarch64",
            True,
            ["/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib", "/usr/lib"],
            id="arm64",
        ),
    ],
)
def test_system_dirs_by_layout(tmp_path, layout, machine, elf64, expected):
    for directory in layout:
        (tmp_path / directory).mkdir(parents=True)
    assert ldso.system_dirs(str(tmp_path), machine, elf64) == expected
