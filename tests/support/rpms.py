"""Real .rpm files made by the rescuer's rpmbuild, for the tests of the pure-Python rpm readers.

``build(workdir, spec, payload=..., digest=...)`` runs rpmbuild -bb in ``workdir`` (its own _topdir,
no post-install scripts that would strip or byte-compile) and returns the one binary package it made.
``PAYLOADS`` names rpm's payload io modes by the compressor the header then records.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# PAYLOADCOMPRESSOR -> the _binary_payload io mode that makes it.
PAYLOADS = {
    "gzip": "w9.gzdio",
    "bzip2": "w9.bzdio",
    "xz": "w6.xzdio",
    "lzma": "w7.lzdio",
    "zstd": "w19.zstdio",
}
# _binary_filedigest_algorithm values: 1 md5, 8 sha256.
DIGESTS = {"md5": 1, "sha256": 8}

# A package with every kind of entry a payload holds: regular files (one executable, one larger
# than a compression block, one empty, one with a non-ASCII UTF-8 name), a symbolic link, a
# hard-link pair, directories, a %config file and a %ghost file (listed, never shipped).
# rpmbuild refuses names that are not UTF-8 ("invalid utf-8 encoding in Basenames").
DEMO_SPEC = r"""
Name: demo
Version: 1.2
Release: 3.el8
Epoch: 2
Summary: demo
License: MIT
Vendor: lifeline tests
BuildArch: noarch
%description
demo
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/share/demo %{buildroot}/etc %{buildroot}/usr/lib/demo
printf '#!/bin/sh\necho demo\n' > %{buildroot}/usr/bin/demo
chmod 4755 %{buildroot}/usr/bin/demo
head -c 70000 /dev/urandom > %{buildroot}/usr/lib/demo/libdemo.so.1
ln -s libdemo.so.1 %{buildroot}/usr/lib/demo/libdemo.so
printf 'shared content\n' > %{buildroot}/usr/share/demo/a
ln %{buildroot}/usr/share/demo/a %{buildroot}/usr/share/demo/b
: > %{buildroot}/usr/share/demo/empty
printf 'accents\n' > %{buildroot}/usr/share/demo/café
printf 'key=value\n' > %{buildroot}/etc/demo.conf
%files
%dir /usr/share/demo
/usr/bin/demo
/usr/lib/demo
/usr/share/demo/*
%config(noreplace) /etc/demo.conf
%ghost /var/log/demo.log
"""


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: run `make setup` (tools/setup/apt-packages.txt installs it)")
    return found


def build(
    workdir: Path, spec: str = DEMO_SPEC, payload: str = "gzip", digest: str = "sha256", timeout: float = 300
) -> Path:
    """The binary package rpmbuild makes from ``spec`` with that payload compression and file digest."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_file = workdir / "package.spec"
    spec_file.write_text(spec)
    top = workdir / "top"
    argv = [
        tool("rpmbuild"),
        "-bb",
        "--quiet",
        "--define",
        f"_topdir {top}",
        "--define",
        f"_binary_payload {PAYLOADS[payload]}",
        "--define",
        f"_binary_filedigest_algorithm {DIGESTS[digest]}",
        "--define",
        "__os_install_post %{nil}",
        "--define",
        "debug_package %{nil}",
        "--define",
        "_build_id_links none",
        str(spec_file),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"rpmbuild failed: {done.stderr[-2000:]}"
    made = sorted((top / "RPMS").rglob("*.rpm"))
    assert len(made) == 1, f"rpmbuild made {made}"
    return made[0]


def run(*argv: str | Path, timeout: float = 120, stdin: bytes | None = None) -> bytes:
    """The stdout of a judging tool; a failure fails the test with its stderr."""
    done = subprocess.run(
        [str(a) for a in argv], input=stdin, capture_output=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv}: exit {done.returncode}: {done.stderr.decode(errors='replace')}"
    return done.stdout
