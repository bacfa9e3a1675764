"""Test rpms made and installed with the real tools, one way for every test.

- ``Package``: a package described in Python (name, version, release, arch, its files staged with
  their modes, symbolic links, directories, %config and %ghost entries, the file digest and payload
  compression to build with); ``build(package, topdir)`` writes its spec and runs rpmbuild.
- ``build_spec(spec, topdir)``: rpmbuild on a spec's own text (packages whose %install makes the files).
- ``install(root, *packages)``: real rpm installs them into the root's own database.
- ``rpm_of_copy(root, *args, scratch=...)``: real rpm on a root's files with a copy of its database.
- ``tool``, ``run``: a tool the tests need, found or the test failed naming ``make apt``; its output.

Every build has its own _topdir and HOME (the user's ~/.rpmmacros never changes what is built), and
rpmbuild leaves the files as they are given: no stripping, no debuginfo, no build-id links, no brp
scripts that byte-compile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BUILD_TIMEOUT = 300
TOOL_TIMEOUT = 300

# Payload compression, as the header's PAYLOADCOMPRESSOR names it -> the _binary_payload that makes it.
PAYLOADS = {
    "gzip": "w9.gzdio",
    "bzip2": "w9.bzdio",
    "xz": "w6.xzdio",
    "lzma": "w7.lzdio",
    "zstd": "w19.zstdio",
}
# File digest algorithm -> its _binary_filedigest_algorithm value.
DIGESTS = {"md5": 1, "sha256": 8}

SPEC = """\
Name: {p.name}
Version: {p.version}
Release: {p.release}
Summary: {p.summary}
License: Various
BuildArch: {p.arch}
AutoReqProv: no

%description
{p.summary}.

%install
cp -a {p.stage}/. %{{buildroot}}/

%files
%defattr(-,root,root,-)
{files}
"""


def tool(name: str) -> str:
    """The path of an rpm tool (rpm, rpmbuild, rpm2cpio, rpm2archive, cpio); missing, the test fails."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run `make apt` (tools/setup/apt-packages.txt installs it)")
    return found


def run(
    *argv: str | Path, timeout: float = TOOL_TIMEOUT, stdin: bytes | None = None, env: dict | None = None
) -> bytes:
    """The stdout of a tool the test runs itself; a failure fails the test with its stderr."""
    done = subprocess.run(
        [str(a) for a in argv], input=stdin, capture_output=True, timeout=timeout, check=False, env=env
    )
    assert done.returncode == 0, f"{argv}: exit {done.returncode}: {done.stderr.decode(errors='replace')}"
    return done.stdout


@dataclass
class Package:
    """One package: its files staged under ``stage``, and their %files lines."""

    name: str
    version: str
    release: str
    stage: Path
    summary: str
    arch: str = "noarch"
    digest: str = "sha256"
    payload: str = "gzip"
    lines: list[str] = field(default_factory=list)

    def _staged(self, path: str) -> Path:
        target = self.stage / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _list(self, path: str, config: str | None, ghost: bool) -> None:
        # A quoted name is taken as it is: rpm would split one with a space.
        directives = ["%ghost"] if ghost else []
        directives += [f"%config({config})"] if config else []
        self.lines.append(" ".join([*directives, f'"{path}"']))

    def add_file(self, source: Path, path: str, *, config: str | None = None) -> None:
        """A copy of ``source`` (followed if it is a link), with its mode."""
        shutil.copy2(source, self._staged(path), follow_symlinks=True)
        self._list(path, config, ghost=False)

    def add_text(
        self,
        path: str,
        content: str | bytes,
        mode: int = 0o644,
        *,
        config: str | None = None,
        ghost: bool = False,
    ) -> None:
        target = self._staged(path)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        target.chmod(mode)
        self._list(path, config, ghost)

    def add_link(self, path: str, to: str) -> None:
        os.symlink(to, self._staged(path))
        self._list(path, None, ghost=False)

    def add_dir(self, path: str, mode: int = 0o755) -> None:
        target = self.stage / path.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(mode)
        self.lines.append(f'%dir "{path}"')

    def spec(self) -> str:
        self.stage.mkdir(parents=True, exist_ok=True)
        return SPEC.format(p=self, files="\n".join(self.lines))


def build(package: Package, topdir: Path, timeout: float = BUILD_TIMEOUT) -> Path:
    """The binary package rpmbuild makes of ``package`` under ``topdir``."""
    return build_spec(
        package.spec(),
        topdir,
        name=package.name,
        payload=package.payload,
        digest=package.digest,
        timeout=timeout,
    )


def build_spec(
    spec: str,
    topdir: Path,
    *,
    name: str = "package",
    payload: str = "gzip",
    digest: str = "sha256",
    timeout: float = BUILD_TIMEOUT,
) -> Path:
    """The one binary package rpmbuild makes from ``spec`` (written as ``topdir/NAME.spec``), named
    NAME-VERSION-RELEASE.ARCH.rpm in ``topdir/RPMS/NAME``; several specs may share a topdir."""
    topdir.mkdir(parents=True, exist_ok=True)
    spec_file = topdir / f"{name}.spec"
    spec_file.write_text(spec)
    made_in = topdir / "RPMS" / name
    shutil.rmtree(made_in, ignore_errors=True)
    run(
        tool("rpmbuild"),
        "-bb",
        "--quiet",
        "--define",
        f"_topdir {topdir}",
        "--define",
        f"_rpmdir {made_in}",
        "--define",
        "_rpmfilename %{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm",
        "--define",
        f"_binary_payload {PAYLOADS[payload]}",
        "--define",
        f"_binary_filedigest_algorithm {DIGESTS[digest]}",
        # The files as they are given: no stripping, no debuginfo, no build-id links, no brp scripts.
        "--define",
        "__os_install_post %{nil}",
        "--define",
        "debug_package %{nil}",
        "--define",
        "_build_id_links none",
        spec_file,
        timeout=timeout,
        env={**os.environ, "HOME": str(topdir)},
    )
    made = sorted(made_in.glob("*.rpm"))
    assert len(made) == 1, f"rpmbuild made {made}"
    return made[0]


def install(root: Path, *packages: Path, timeout: float = TOOL_TIMEOUT) -> None:
    """``packages`` installed by real rpm into ``root``, in the root's own database at /var/lib/rpm
    (Debian's rpm would use /root/.rpmdb otherwise), never the machine's; sqlite, the one backend
    Debian's rpm writes. The order rpm installs them in is its own: a package whose files need
    another's links in place first (/lib64 -> usr/lib64) is installed by an earlier call."""
    run(
        tool("rpm"),
        "--root",
        root,
        "--dbpath",
        "/var/lib/rpm",
        "--define",
        "_db_backend sqlite",
        # --force-debian: Debian's rpm objects to installing on a Debian machine without it.
        # --nodeps: the packages declare no dependencies; --noscripts, --notriggers: they have none.
        "-i",
        "--force-debian",
        "--nodeps",
        "--noscripts",
        "--notriggers",
        *packages,
        timeout=timeout,
    )
    # rpm leaves sqlite's -shm and an empty -wal behind: the database is closed and whole without
    # them, and a root that starts with none shows whoever creates them later.
    for name in ("rpmdb.sqlite-shm", "rpmdb.sqlite-wal"):
        (root / "var/lib/rpm" / name).unlink(missing_ok=True)


def rpm_of_copy(
    root: Path, *args: str, scratch: Path, database: Path | None = None
) -> subprocess.CompletedProcess:
    """Real rpm on ``root``'s files with a COPY of its database: rpm opens sqlite read-write and
    leaves -shm/-wal files beside it, which must never appear in a target under test (a reader
    takes a -wal's pages as part of the database). rpm puts ``--dbpath`` below ``--root`` even when it
    is absolute (an absolute path would make rpm create an empty database inside the root); enough
    ``..`` climb back out of the root to the copy in ``scratch``. ``database``: another directory's
    database to copy (a pristine root's, for a root whose own is gone)."""
    copy = scratch / "rpmdb"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(database or root / "var/lib/rpm", copy)
    dbpath = "/.." * len(root.resolve().parts) + str(copy.resolve())
    return subprocess.run(
        [tool("rpm"), "--root", str(root), "--dbpath", dbpath, "--define", "_db_backend sqlite", *args],
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
        env={**os.environ, "LC_ALL": "C"},
    )
