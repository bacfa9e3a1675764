"""Real RPM-family roots for the tests: the bookworm tree's own binaries packed by rpmbuild into
packages named and laid out as RHEL lays them out, then installed by real rpm into a fresh root,
so the root's package database is written by rpm itself.

Three layouts (``LAYOUTS``):
- ``rhel6``: no usrmove (real /bin, /sbin, /lib64), ``/lib64/libc.so.6 -> libc-2.36.so``, file
  digests in md5 as RHEL 6's rpm wrote them;
- ``rhel8``: usrmove (/bin, /sbin, /lib, /lib64 are links into /usr), versioned files with soname
  links, sha256 digests;
- ``rhel9``: usrmove, and ``libc.so.6`` and ``ld-linux-x86-64.so.2`` are the files themselves, as
  glibc 2.34 and later packages ship them.
Each glibc package lists its files under ``/lib64`` and ldconfig as ``/sbin/ldconfig``, as the real
ones do, also where those directories are links into /usr.

The database Debian's rpm 4.18 writes is sqlite (``rpmdb.sqlite``), the backend of RHEL 9 and later,
in every layout: Debian's rpm cannot write Berkeley DB or ndb. Those backends are proven on the real
databases of the shared rpm corpus (``../shared/rpm-corpus``), written by the distributions themselves.

The roots and the packages are built once into the machine cache (``CACHE/rpmroots/<stamp>``, the
stamp a hash of the recipe, this file and ``rpmbuild``, and of the bookworm tree's glibc version)
under a lock, so two pytest workers never build them twice; a test copies a root with ``root_copy``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from support import rpmbuild
from support.rpmbuild import Package
from support.rpmbuild import rpm_of_copy as rpm_of_copy  # the playbook tests' name for it
from support.trees import CACHE, debian_tree

ARCH = "x86_64"
# What the roots are built by: this file, and the spec, rpmbuild and rpm install it runs. A change
# to either is a new stamp, so the roots are built again.
RECIPES = (Path(__file__), Path(rpmbuild.__file__))
# Where Debian keeps its libraries; the packed files come from there.
MULTIARCH = "usr/lib/x86_64-linux-gnu"
# python3 with its standard library takes a while to pack.
BUILD_TIMEOUT = 600
# A cached build of another recipe is removed when no test has used it for this long (a checkout of
# another version may still be using it now).
UNUSED_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Layout:
    name: str
    release: str
    usrmove: bool
    # Files named libc-2.36.so with soname links (before glibc 2.34), or the sonames are the files.
    versioned: bool
    # rpm's file digest algorithm: md5 (RHEL 6), sha256 (RHEL 7 and later).
    digest: str
    version_id: str
    pretty_name: str


LAYOUTS = {
    "rhel6": Layout(
        "rhel6", "1.el6", False, True, "md5", "6.10", "Red Hat Enterprise Linux Server release 6.10"
    ),
    "rhel8": Layout("rhel8", "1.el8", True, True, "sha256", "8.10", "Red Hat Enterprise Linux release 8.10"),
    "rhel9": Layout("rhel9", "1.el9", True, False, "sha256", "9.6", "Red Hat Enterprise Linux release 9.6"),
}

# glibc's shared objects in the bookworm tree: soname -> stem of the versioned name older glibc
# packages used (ld-2.36.so, libc-2.36.so, ...); None: the soname is the file in every layout.
GLIBC_LIBRARIES = {
    "ld-linux-x86-64.so.2": "ld",
    "libc.so.6": "libc",
    "libm.so.6": "libm",
    "libmvec.so.1": "libmvec",
    "libpthread.so.0": "libpthread",
    "libdl.so.2": "libdl",
    "librt.so.1": "librt",
    "libresolv.so.2": "libresolv",
    "libutil.so.1": "libutil",
    "libanl.so.1": "libanl",
    "libBrokenLocale.so.1": "libBrokenLocale",
    "libnss_files.so.2": "libnss_files",
    "libnss_dns.so.2": "libnss_dns",
    "libnss_compat.so.2": "libnss_compat",
    "libnss_hesiod.so.2": "libnss_hesiod",
    "libthread_db.so.1": "libthread_db",
    "libc_malloc_debug.so.0": None,
}

# The RPM names of the Debian packages whose libraries the packed programs need.
RPM_NAMES = {
    "libtinfo6": "ncurses-libs",
    "libncursesw6": "ncurses-libs",
    "libselinux1": "libselinux",
    "libpcre2-8-0": "pcre2",
    "libacl1": "libacl",
    "libattr1": "libattr",
    "libgmp10": "gmp",
    "libcap2": "libcap",
    "zlib1g": "zlib",
    "libexpat1": "expat",
    "libssl3": "openssl-libs",
    "libbz2-1.0": "bzip2-libs",
    "liblzma5": "xz-libs",
    "libffi8": "libffi",
    "libsqlite3-0": "sqlite-libs",
    "libreadline8": "readline",
    "libuuid1": "libuuid",
    "libcrypt1": "libxcrypt",
    "libzstd1": "libzstd",
    "libgdbm6": "gdbm-libs",
    "libgdbm-compat4": "gdbm-libs",
    "libdb5.3": "libdb",
    "libnsl2": "libnsl2",
    "libtirpc3": "libtirpc",
    "libmpdec3": "mpdecimal",
    "libcom-err2": "libcom_err",
    "libgssapi-krb5-2": "krb5-libs",
    "libk5crypto3": "krb5-libs",
    "libkrb5-3": "krb5-libs",
    "libkrb5support0": "krb5-libs",
    "libkeyutils1": "keyutils-libs",
}

# bookworm's python3, packed with its standard library where Debian's interpreter looks for it.
PYTHON = "python3.11"
# Parts of the standard library no test needs (they make the package 3 times bigger).
PYTHON_SKIPPED = ("__pycache__", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3")

LD_SO_CONF = "include ld.so.conf.d/*.conf\n"
# The packed programs are Debian's: Debian's loader searches /lib/x86_64-linux-gnu and
# /usr/lib/x86_64-linux-gnu by itself, never /lib64 or /usr/lib64 as RHEL's loader does. This file
# names them, so the root's ldconfig puts their libraries in /etc/ld.so.cache and the programs run.
LIB64_CONF = "/lib64\n/usr/lib64\n"


def new_package(layout: Layout, name: str, version: str, stage: Path) -> Package:
    return Package(
        name,
        version,
        layout.release,
        stage,
        summary=f"{name} laid out as {layout.name} lays it out, made of Debian bookworm's binaries",
        arch=ARCH,
        digest=layout.digest,
        payload="xz",
    )


def glibc_version(tree: Path) -> str:
    """The upstream version of the tree's libc6 (2.36 for bookworm), from its dpkg status."""
    status = (tree / "var/lib/dpkg/status").read_text()
    found = re.search(r"^Package: libc6\n(?:[^\n]+\n)*?Version: ([0-9.]+)-", status, re.M)
    assert found, f"no libc6 in {tree}/var/lib/dpkg/status"
    return found.group(1)


def stamp(tree: Path) -> str:
    """The content stamp of the cached roots: their recipe (``RECIPES``), and the glibc it packs."""
    digest = hashlib.sha256()
    for recipe in RECIPES:
        digest.update(recipe.read_bytes())
    digest.update(glibc_version(tree).encode())
    return digest.hexdigest()[:16]


def lib64(layout: Layout) -> str:
    """Where non-glibc libraries live: /lib64 before usrmove (RHEL 6 kept the base ones there)."""
    return "/usr/lib64" if layout.usrmove else "/lib64"


def program_path(layout: Layout, debian_path: str) -> str:
    """/bin/ls stays /bin/ls on RHEL 6 and is /usr/bin/ls after usrmove, as coreutils lists it: the
    programs RHEL 6 kept in /bin are the ones Debian still lists under /bin."""
    if layout.usrmove and re.match(r"^/s?bin/", debian_path):
        return "/usr" + debian_path
    return debian_path


def dpkg_list(tree: Path, package: str) -> list[str]:
    info = tree / "var/lib/dpkg/info"
    path = next(p for p in (info / f"{package}.list", info / f"{package}:amd64.list") if p.exists())
    return path.read_text().splitlines()


def needed_libraries(tree: Path, elf_files: list[str]) -> set[str]:
    """The resolved paths (inside the tree) of every library these programs need, by the tree's ldd."""
    found: set[str] = set()
    for path in elf_files:
        done = subprocess.run(
            ["chroot", str(tree), "/usr/bin/ldd", path],
            capture_output=True,
            text=True,
            timeout=rpmbuild.TOOL_TIMEOUT,
            check=False,
        )
        for line in done.stdout.splitlines():
            match = re.search(r"=> (/\S+) \(", line)
            if match:
                found.add(match.group(1))
        if "not found" in done.stdout:
            raise RuntimeError(f"{path} in {tree} has libraries not found: {done.stdout}")
    return found


def owner_of(tree: Path, path: str) -> str:
    """The Debian package owning a library path of the tree (dpkg lists them under /lib or /usr/lib)."""
    name = os.path.basename(path)
    for listing in sorted((tree / "var/lib/dpkg/info").glob("*.list")):
        for line in listing.read_text().splitlines():
            if line.endswith("/" + name) and "x86_64-linux-gnu" in line:
                return listing.stem.split(":")[0]
    raise RuntimeError(f"no Debian package of {tree} owns {path}")


def glibc_package(layout: Layout, tree: Path, version: str, stage: Path) -> Package:
    package = new_package(layout, "glibc", version, stage)
    for soname, stem in GLIBC_LIBRARIES.items():
        source = tree / MULTIARCH / soname
        if layout.versioned and stem:
            real = f"{stem}-{version}.so" if stem != "libthread_db" else "libthread_db-1.0.so"
            package.add_file(source, f"/lib64/{real}")
            package.add_link(f"/lib64/{soname}", real)
        else:
            package.add_file(source, f"/lib64/{soname}")
    for name in ("libmemusage.so", "libpcprofile.so"):
        package.add_file(tree / MULTIARCH / name, f"/usr/lib64/{name}")
    package.add_file(tree / "usr/sbin/ldconfig", "/sbin/ldconfig")
    package.add_text("/etc/ld.so.conf", LD_SO_CONF, config="noreplace")
    package.add_dir("/etc/ld.so.conf.d")
    package.add_text("/etc/ld.so.conf.d/lib64.conf", LIB64_CONF, config="noreplace")
    package.add_text("/etc/ld.so.cache", "", config="missingok,noreplace", ghost=True)
    package.add_dir("/var/cache/ldconfig", 0o700)
    return package


def glibc_common_package(layout: Layout, tree: Path, version: str, stage: Path) -> Package:
    package = new_package(layout, "glibc-common", version, stage)
    for name in ("ldd", "getent"):
        package.add_file(tree / "usr/bin" / name, f"/usr/bin/{name}")
    return package


def filesystem_package(layout: Layout, stage: Path) -> Package:
    package = new_package(layout, "filesystem", "3.8", stage)
    dirs = ["/etc", "/home", "/media", "/mnt", "/opt", "/root", "/srv", "/usr", "/usr/bin", "/usr/lib"]
    dirs += ["/usr/lib64", "/usr/libexec", "/usr/sbin", "/usr/share", "/var", "/var/cache", "/var/lib"]
    dirs += ["/var/log", "/var/tmp", "/run", "/boot", "/dev", "/proc", "/sys", "/tmp", "/usr/local"]
    if not layout.usrmove:
        dirs += ["/bin", "/sbin", "/lib", "/lib64"]
    for path in dirs:
        package.add_dir(path, {"/tmp": 0o1777, "/var/tmp": 0o1777, "/root": 0o550}.get(path, 0o755))
    if layout.usrmove:
        for top in ("bin", "sbin", "lib", "lib64"):
            package.add_link(f"/{top}", f"usr/{top}")
    return package


def setup_package(layout: Layout, tree: Path, stage: Path) -> Package:
    package = new_package(layout, "setup", "2.12.2", stage)
    for name in ("passwd", "group", "shadow", "shells", "nsswitch.conf"):
        package.add_file(tree / "etc" / name, f"/etc/{name}", config="noreplace")
    package.add_text("/etc/hosts", "127.0.0.1 localhost\n", config="noreplace")
    package.add_text("/etc/fstab", "", config="noreplace")
    return package


def release_package(layout: Layout, stage: Path) -> Package:
    """redhat-release: RHEL 6 has only /etc/redhat-release; 7 and later also os-release."""
    major = layout.version_id.split(".")[0]
    package = new_package(layout, "redhat-release", layout.version_id, stage)
    package.add_text("/etc/redhat-release", layout.pretty_name + "\n")
    package.add_link("/etc/system-release", "redhat-release")
    if layout.usrmove:
        package.add_text(
            "/usr/lib/os-release",
            f'NAME="Red Hat Enterprise Linux"\nVERSION="{layout.version_id}"\nID="rhel"\n'
            f'ID_LIKE="fedora"\nVERSION_ID="{layout.version_id}"\nPLATFORM_ID="platform:el{major}"\n'
            f'PRETTY_NAME="Red Hat Enterprise Linux {layout.version_id}"\n',
        )
        package.add_link("/etc/os-release", "../usr/lib/os-release")
    return package


def program_packages(layout: Layout, tree: Path, stage: Path) -> tuple[list[Package], list[str]]:
    """bash, coreutils and python3 with Debian's programs; and the tree paths of their ELF files."""
    bash = new_package(layout, "bash", "5.2.15", stage / "bash")
    bash.add_file(tree / "bin/bash", program_path(layout, "/bin/bash"))
    bash.add_link(program_path(layout, "/bin/sh"), "bash")
    coreutils = new_package(layout, "coreutils", "9.1", stage / "coreutils")
    elf_files = ["/bin/bash"]
    for path in dpkg_list(tree, "coreutils"):
        source = tree / path.lstrip("/")
        if re.match(r"^/(usr/)?s?bin/[^/]+$", path) and source.is_file() and not source.is_symlink():
            coreutils.add_file(source, program_path(layout, path))
            elf_files.append(path)
    python = new_package(layout, "python3", "3.11.2", stage / "python3")
    python.add_file(tree / "usr/bin" / PYTHON, f"/usr/bin/{PYTHON}")
    python.add_link("/usr/bin/python3", PYTHON)
    elf_files.append(f"/usr/bin/{PYTHON}")
    stdlib = tree / "usr/lib" / PYTHON
    for top, dirs, names in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in PYTHON_SKIPPED and d != "site-packages")
        for name in sorted(names):
            source = Path(top) / name
            inside = "/" + str(source.relative_to(tree))
            if source.is_symlink():
                continue
            python.add_file(source, inside)
            if name.endswith(".so"):
                elf_files.append(inside)
    return [bash, coreutils, python], elf_files


def library_packages(layout: Layout, tree: Path, elf_files: list[str], stage: Path) -> list[Package]:
    """Every non-glibc library the programs need, in packages named as RHEL names them, with the file
    names and soname links Debian gives them."""
    packages: dict[str, Package] = {}
    glibc_names = set(GLIBC_LIBRARIES)
    for path in sorted(needed_libraries(tree, elf_files)):
        name = os.path.basename(path)
        if name in glibc_names:
            continue
        rpm_name = RPM_NAMES.get(owner_of(tree, path), owner_of(tree, path))
        package = packages.setdefault(rpm_name, new_package(layout, rpm_name, "1.0", stage / rpm_name))
        source = tree / path.lstrip("/")
        if source.is_symlink():
            real = os.readlink(source)
            assert "/" not in real, f"{source} -> {real}"
            package.add_file(source, f"{lib64(layout)}/{real}")
            package.add_link(f"{lib64(layout)}/{name}", real)
        else:
            package.add_file(source, f"{lib64(layout)}/{name}")
    return list(packages.values())


def build_layout(layout: Layout, tree: Path, into: Path) -> None:
    """``into/root`` installed by rpm from ``into/rpms``."""
    version = glibc_version(tree)
    work = into / "build"
    stage = work / "stage"
    packages = [
        filesystem_package(layout, stage / "filesystem"),
        setup_package(layout, tree, stage / "setup"),
        release_package(layout, stage / "redhat-release"),
        glibc_package(layout, tree, version, stage / "glibc"),
        glibc_common_package(layout, tree, version, stage / "glibc-common"),
    ]
    programs, elf_files = program_packages(layout, tree, stage)
    packages += programs + library_packages(layout, tree, elf_files, stage / "libs")
    rpms = into / "rpms"
    rpms.mkdir()
    built = []
    for package in packages:
        made = rpmbuild.build(package, work / "topdir", timeout=BUILD_TIMEOUT)
        built.append(rpms / made.name)
        made.rename(built[-1])
    root = into / "root"
    root.mkdir()
    # filesystem first, alone: its /lib64 -> usr/lib64 link must be there before glibc's /lib64
    # files, as RHEL's dependency order makes it.
    rpmbuild.install(root, built[0])
    rpmbuild.install(root, *built[1:])
    # RHEL's glibc runs ldconfig in its scriptlet; the root's own (static) ldconfig does it here.
    rpmbuild.run("chroot", root, "/sbin/ldconfig")
    shutil.rmtree(work)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached(layout_name: str) -> Path:
    """The cached build of one layout (``root/`` and ``rpms/``), built on first use. The bookworm tree
    or rpm's tools missing fail the test (never a skip)."""
    layout = LAYOUTS[layout_name]
    tree = debian_tree("bookworm")
    for name in ("rpm", "rpmbuild", "rpm2cpio"):
        rpmbuild.tool(name)
    top = CACHE / "rpmroots"
    done = top / stamp(tree) / layout.name
    if not (done / "root").is_dir():
        with locked(top / "lock"):
            if not (done / "root").is_dir():
                build_cached(layout, tree, done)
    os.utime(done.parent)
    return done


def build_cached(layout: Layout, tree: Path, done: Path) -> None:
    """Build into a directory beside ``done`` and rename it: a build that fails part way leaves
    nothing a later test would take for a root."""
    done.parent.mkdir(parents=True, exist_ok=True)
    for old in done.parent.parent.iterdir():
        if old.is_dir() and old != done.parent and time.time() - old.stat().st_mtime > UNUSED_SECONDS:
            shutil.rmtree(old)
    partial = Path(tempfile.mkdtemp(prefix=f".{layout.name}-", dir=done.parent))
    try:
        build_layout(layout, tree, partial)
        partial.rename(done)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def pristine_root(layout_name: str) -> Path:
    """The cached root: read it, never change it (copy it with ``root_copy``)."""
    return cached(layout_name) / "root"


def root_copy(layout_name: str, where: Path) -> Path:
    """A private copy of the layout's root at ``where`` (cp -a: owners, modes and links kept)."""
    rpmbuild.run("cp", "-a", pristine_root(layout_name), where)
    return where


def package_file(layout_name: str, name: str = "glibc") -> Path:
    """The built .rpm of ``name`` for the layout (glibc's is what a repair restores from)."""
    [found] = (cached(layout_name) / "rpms").glob(f"{name}-[0-9]*.{ARCH}.rpm")
    return found


def foreign_libc() -> Path:
    """bullseye's libc (glibc 2.31): the foreign glibc of incident 2."""
    return (debian_tree("bullseye") / MULTIARCH / "libc.so.6").resolve()
