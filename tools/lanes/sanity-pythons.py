#!/usr/bin/env python3
"""The Python interpreters ansible-test sanity's compile and import tests run on, besides its own.

    tools/sanity-pythons.py TREES CACHE VENVS CONTROLLER VERSION...

For each VERSION (ansible-test's supported ones) other than CONTROLLER (ansible-test's own),
the first of these that works: the interpreter of a Debian tree in TREES (the `make images`
trees: bullseye has 3.9, trixie 3.13; what rescuers run), a python3.N on PATH, one that pyenv
installed (machines that have pyenv). A tree's interpreter is made runnable here without a
chroot: CACHE/<suite>/bin/python3.N is a copy whose ELF loader and library path (DT_RPATH, set
with patchelf) are the tree's own, so it runs on the tree's glibc and libraries, and
CACHE/<suite>/lib -> TREE/usr/lib is where it finds its standard library; a venv made from it
works too (ansible-test's import test makes one). The tree is never written. The copy is made
again only when the tree's interpreter or loader changed.

ansible-test's sanity venvs in VENVS made with another interpreter than the one chosen now for
their version are removed (ansible-test would reuse them: it names them by version only).

Prints on stderr one line per VERSION (which interpreter, or why none) and on stdout
"VERSION PATH" for each interpreter found. Exits 1 when a tree's interpreter exists but could
not be made to work (no trees at all is not an error: `make images` builds them).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

TIMEOUT = 120


def say(message: str) -> None:
    print(f"sanity: {message}", file=sys.stderr)


def resolve_in(root: Path, path: str) -> Path:
    """PATH resolved inside ROOT the way a chroot would: absolute links lead back into ROOT."""
    parts = [p for p in path.split("/") if p]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        here = root.joinpath(*done, part)
        if here.is_symlink():
            hops += 1
            if hops > 40:
                raise OSError(f"too many levels of links resolving {path} in {root}")
            target = os.readlink(here)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        done.append(part)
    return root.joinpath(*done)


def run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=TIMEOUT).stdout.strip()


def digest(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(str(f).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def prepare(tree: Path, cache: Path, version: str) -> Path:
    """CACHE/<suite>/bin/python<version>, made again when the tree's interpreter changed."""
    python = resolve_in(tree, f"/usr/bin/python{version}")
    loader = resolve_in(tree, run(["patchelf", "--print-interpreter", str(python)]))
    multiarch = loader.parent.name  # x86_64-linux-gnu: the loader lives in the multiarch dir
    libdirs = [resolve_in(tree, f"{d}/{multiarch}") for d in ("/lib", "/usr/lib")]
    rpath = ":".join(dict.fromkeys(str(d) for d in libdirs if d.is_dir()))
    home = cache / tree.name
    copy = home / "bin" / f"python{version}"
    stamp = home / "stamp.json"
    want = {"python": str(python), "loader": str(loader), "rpath": rpath, "sha256": digest(python, loader)}
    if copy.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return copy
    say(f"python{version} from the {tree.name} tree: preparing {copy} (loader {loader}, libraries {rpath})")
    if home.exists():
        shutil.rmtree(home)
    copy.parent.mkdir(parents=True)
    shutil.copy2(python, copy)
    run(["patchelf", "--set-interpreter", str(loader), "--force-rpath", "--set-rpath", rpath, str(copy)])
    (home / "lib").symlink_to(resolve_in(tree, "/usr/lib"))
    stamp.write_text(json.dumps(want, indent=1) + "\n")
    return copy


def problem_with(python: Path, version: str, prepared: bool) -> str:
    """'' when PYTHON runs as VERSION and can make a venv; else what went wrong. A prepared copy
    must also load the tree's libraries (ssl, ctypes) and find its own prefix."""
    check = "import sys, venv; print('%d.%d' % sys.version_info[:2])"
    if prepared:
        check += f"; import ssl, ctypes; assert sys.prefix == {str(python.parent.parent)!r}, sys.prefix"
    try:
        out = run([str(python), "-I", "-c", check])
    except subprocess.CalledProcessError as e:
        lines = (e.stderr or e.stdout).strip().splitlines()
        return lines[0] if lines else f"exit {e.returncode}"
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return "" if out == version else f"it is Python {out}"


def candidates(trees: Path, version: str) -> list[tuple[str, Path]]:
    """Where a python<version> may come from, best first: a Debian tree (a directory), the
    machine's PATH, pyenv's installed versions."""
    found: list[tuple[str, Path]] = []
    if trees.is_dir():
        for tree in sorted(p for p in trees.iterdir() if p.is_dir() and not p.name.startswith(".")):
            link = resolve_in(tree, "/usr/bin/python3")
            if link.is_file() and link.name == f"python{version}":
                found.append((f"the {tree.name} tree", tree))
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(("PATH", Path(on_path)))
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    installed = [
        p for p in pyenv.glob(f"{version}.*/bin/python{version}") if re.fullmatch(r"[0-9.]+", p.parts[-3])
    ]
    installed.sort(key=lambda p: [int(n) for n in p.parts[-3].split(".")], reverse=True)
    return found + [("pyenv", p) for p in installed]


def prune(venvs: Path, chosen: dict[str, Path]) -> None:
    """Remove ansible-test's sanity venvs (VENVS/<label>/<version>/<hash>) that no longer run on
    the interpreter chosen for their version, or on any (a tree or pyenv version gone): ansible-test
    names them by version and requirements only, and would reuse them."""
    for cfg in venvs.glob("*/*/*/pyvenv.cfg"):
        venv = cfg.parent
        version = venv.parent.name
        home = dict(
            (k.strip(), v.strip())
            for k, _, v in (line.partition("=") for line in cfg.read_text().splitlines())
        ).get("home", "")
        python = venv / "bin" / "python"
        other = version in chosen and Path(home).resolve() != chosen[version].resolve().parent
        if other or not python.exists():
            say(f"removing the sanity venv {venv}: made with an interpreter no longer used ({home})")
            shutil.rmtree(venv)


def main() -> int:
    trees, cache, venvs = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    controller, versions = sys.argv[4], sys.argv[5:]
    chosen: dict[str, Path] = {}
    broken = 0
    for version in versions:
        if version == controller:
            continue
        for source, where in candidates(trees, version):
            is_tree = where.is_dir()
            try:
                python = prepare(where, cache, version) if is_tree else where
            except (OSError, subprocess.SubprocessError) as e:
                say(f"python{version} from {source}: cannot be prepared: {e}")
                broken += 1
                continue
            problem = problem_with(python, version, prepared=is_tree)
            if problem:
                say(f"python{version} from {source} ({python}) does not work: {problem}")
                broken += is_tree
                continue
            say(f"python{version}: {python} (from {source})")
            print(version, python)
            chosen[version] = python
            break
        else:
            say(f"python{version}: none on this machine, not tested")
    prune(venvs, chosen)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
