"""The collection tarball ships collection content only, also when the checkout's caches exist, and
its links share the one placeholder base of galaxy.yml."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from support.paths import REPO

ANSIBLE_GALAXY = Path(sys.executable).parent / "ansible-galaxy"

# What an installed collection is made of; everything else in the tarball is a leak. Patterns are
# fnmatch patterns on the member's path ("*" also matches "/").
SHIPPED = [
    "MANIFEST.json",
    "FILES.json",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "changelogs/changelog.yaml",
    "changelogs/config.yaml",
    "meta/*",
    "playbooks/*",
    "plugins/*",
    "roles/*",
    "docs/*",
    "inventory/*",
    # What an execution environment is built from (ansible-builder reads them from the collection).
    "execution-environment.yml",
    "ansible-navigator.yml",
    "bindep.txt",
    "requirements.txt",
    "collections/requirements.yml",
    # What ansible-test sanity reads when it runs on the installed collection.
    "tests/config.yml",
    "tests/sanity/*",
]
# Caches and outputs a working checkout has: made in the copy before it is built.
CACHES = [
    ".ansible/collections/ansible_collections/x/y/galaxy.yml",
    ".ruff_cache/0.17.6/12345",
    ".pytest_cache/v/cache/lastfailed",
    ".mypy_cache/3.11/x.json",
    ".cache/logs/lane-unit.log",
    "drill-results/junit.xml",
    "reports/restore-glibc-localhost-20260101T000000Z.json",
    "tests/output/.tmp/sanity.log",
    "plugins/modules/__pycache__/glibc_audit.cpython-311.pyc",
    "plugins/modules/.ruff_cache/CACHEDIR.TAG",
    "roles/drill/files/.glibc.sh.swp",
    "lifeline-rescue-0.0.9.tar.gz",
]
COPY_IGNORED = shutil.ignore_patterns(".git", ".venv", ".cache", ".collections", "__pycache__", "*_cache")


def shipped(member: str) -> bool:
    name = member.rstrip("/")
    if any(fnmatch.fnmatch(name, pattern) for pattern in SHIPPED):
        return True
    # A directory leading to shipped content (tests/ for tests/config.yml).
    return any(pattern.startswith(name + "/") for pattern in SHIPPED)


@pytest.fixture(scope="module")
def tarball_members(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if not ANSIBLE_GALAXY.exists():
        pytest.fail(f"no {ANSIBLE_GALAXY}: run make venv")
    checkout = tmp_path_factory.mktemp("checkout") / "rescue"
    shutil.copytree(REPO, checkout, symlinks=True, ignore=COPY_IGNORED)
    for cache in CACHES:
        path = checkout / cache
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("a cache, not collection content\n")
    out = tmp_path_factory.mktemp("build")
    build = subprocess.run(
        [str(ANSIBLE_GALAXY), "collection", "build", "--output-path", str(out), str(checkout)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (tarball,) = out.glob("lifeline-rescue-*.tar.gz")
    # `tar tzf`, the way a user looks at it.
    listing = subprocess.run(
        ["tar", "tzf", str(tarball)], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    with tarfile.open(tarball) as archive:
        assert sorted(m.name + ("/" if m.isdir() else "") for m in archive.getmembers()) == sorted(listing)
    return listing


def test_the_tarball_ships_collection_content_only(tarball_members: list[str]) -> None:
    leaks = [member for member in tarball_members if not shipped(member)]
    assert not leaks, f"not collection content (add to build_ignore in galaxy.yml): {leaks}"


def test_no_cache_of_the_checkout_is_shipped(tarball_members: list[str]) -> None:
    names = {member.rstrip("/") for member in tarball_members}
    assert not [cache for cache in CACHES if cache in names]
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_what_galaxy_and_a_user_need_is_shipped(tarball_members: list[str]) -> None:
    names = {member.rstrip("/") for member in tarball_members}
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta").is_dir())
    needed = {
        "MANIFEST.json",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "changelogs/changelog.yaml",
        "meta/runtime.yml",
        "tests/config.yml",
        *(f"roles/{role}/README.md" for role in roles),
        *(f"roles/{role}/meta/argument_specs.yml" for role in roles),
    }
    assert needed - names == set()
    assert any(name.startswith("plugins/modules/") and name.endswith(".py") for name in names)
    assert any(name.startswith("playbooks/") for name in names)


def test_the_allowlist_rejects_what_the_checkout_has_beside_the_collection() -> None:
    for leak in ["Makefile", "DEVELOPERS.md", "requirements/dev.lock", "lifeline_drill/cli.py",
                 "tests/unit/conftest.py", "tools/lanes/sanity.sh", ".ruff_cache/x", "ansible.cfg",
                 "changelogs/fragments/x.yml", "molecule/drill/molecule.yml"]:  # fmt: skip
        assert not shipped(leak), leak
    for content in ["roles/drill/README.md", "plugins/modules/glibc_audit.py", "tests/", "tests/config.yml"]:
        assert shipped(content), content


def test_links_share_one_placeholder_base_defined_only_in_galaxy_yml() -> None:
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    links = {key: galaxy[key] for key in ("repository", "documentation", "homepage", "issues")}
    base = galaxy["repository"]
    assert base.startswith("https://example.org/"), "a placeholder under example.org until there is a home"
    assert all(link.startswith(base) for link in links.values()), links
    elsewhere = [
        path.relative_to(REPO)
        for top in ("README.md", "docs", "roles", "playbooks", "plugins", "meta", "changelogs")
        for path in ([REPO / top] if (REPO / top).is_file() else (REPO / top).rglob("*"))
        if path.is_file()
        and path.suffix in {".md", ".yml", ".yaml", ".py", ".j2"}
        and base in path.read_text()
    ]
    assert not elsewhere, f"the placeholder base {base} belongs in galaxy.yml only"
    assert "placeholder" in (REPO / "README.md").read_text()
