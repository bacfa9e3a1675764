#!/usr/bin/env python3
"""Install the Ansible collections of requirements/collections.txt into .venv/collections, offline.

Galaxy is not reachable; the `ansible` community bundle on PyPI carries every collection. Its wheel
is downloaded once into the machine cache ($LIFELINE_CACHE/downloads, default
/var/cache/lifeline/downloads) and only the named collections are extracted from it. A stamp beside
them (wheel sha256 + collection list) makes a second run a no-op. Run it with .venv/bin/python.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements" / "collections.txt"
VENV = Path(os.environ.get("VENV", REPO / ".venv"))
DEST = VENV / "collections" / "ansible_collections"
STAMP = VENV / "collections" / ".lifeline-collections.stamp"
DOWNLOADS = Path(os.environ.get("LIFELINE_CACHE", "/var/cache/lifeline")) / "downloads"


def fail(message: str) -> None:
    print(f"collections: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def read_requirements() -> tuple[str, list[str]]:
    bundle, names = "", []
    for raw in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "==" in line:
            bundle = line
        else:
            names.append(line)
    if not bundle.startswith("ansible==") or not names:
        fail(f"{REQUIREMENTS} needs one 'ansible==VERSION' line and at least one collection name")
    return bundle, names


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wheel_ok(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as wheel:
            return any(n.endswith(".dist-info/RECORD") for n in wheel.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def get_wheel(bundle: str) -> Path:
    version = bundle.split("==", 1)[1]
    wheel = DOWNLOADS / f"ansible-{version}-py3-none-any.whl"
    if wheel.exists() and wheel_ok(wheel):
        return wheel
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    print(f"collections: downloading {bundle} (the community bundle wheel, ~54 MB) into {DOWNLOADS}")
    with tempfile.TemporaryDirectory(dir=DOWNLOADS, prefix=".download.") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        done = subprocess.run([*cmd, "-d", tmp, bundle], capture_output=True, text=True, check=False)
        got = Path(tmp) / wheel.name
        if done.returncode != 0 or not wheel_ok(got):
            sys.stderr.write(done.stdout + done.stderr)
            fail(f"pip download {bundle} did not produce a valid {wheel.name}")
        os.replace(got, wheel)
    return wheel


def extract(wheel: Path, names: list[str]) -> dict[str, str]:
    versions = {}
    with zipfile.ZipFile(wheel) as archive:
        members = archive.namelist()
        for name in names:
            namespace, collection = name.split(".", 1)
            prefix = f"ansible_collections/{namespace}/{collection}/"
            wanted = [m for m in members if m.startswith(prefix)]
            if not wanted:
                fail(f"{wheel.name} has no {prefix}")
            target = DEST / namespace / collection
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{collection}.") as tmp:
                for member in wanted:
                    archive.extract(member, tmp)
                built = Path(tmp) / prefix
                if target.exists():
                    shutil.rmtree(target)
                os.replace(built, target)
            manifest = json.loads((target / "MANIFEST.json").read_text(encoding="utf-8"))
            versions[name] = manifest["collection_info"]["version"]
    return versions


def verify(names: list[str]) -> None:
    galaxy = VENV / "bin" / "ansible-galaxy"
    for name in names:
        # From the repo root, so that ansible.cfg's collections_path is the one in force.
        done = subprocess.run(
            [str(galaxy), "collection", "list", name],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        )
        if done.returncode != 0 or f"{name} " not in done.stdout or str(DEST) not in done.stdout:
            sys.stderr.write(done.stdout + done.stderr)
            fail(f"ansible-galaxy collection list {name} does not see {name} under {DEST}")


def main() -> None:
    bundle, names = read_requirements()
    wanted = f"{bundle} {' '.join(names)}"
    if STAMP.exists():
        stamp = STAMP.read_text(encoding="utf-8").split("\n", 1)[0]
        present = all((DEST / n.replace(".", "/") / "MANIFEST.json").exists() for n in names)
        if stamp.startswith(wanted + " ") and present:
            print(f"collections: up to date ({stamp.split(' sha256=')[0]} in {DEST.parent})")
            return
    print(
        f"collections: installing {', '.join(names)} from the {bundle} wheel (offline; Galaxy is not"
        " reachable) into .venv/collections — the molecule podman driver and scenarios need it"
    )
    wheel = get_wheel(bundle)
    versions = extract(wheel, names)
    verify(names)
    STAMP.write_text(f"{wanted} sha256={sha256(wheel)}\n{json.dumps(versions)}\n", encoding="utf-8")
    shown = ", ".join(f"{n} {v}" for n, v in versions.items())
    print(f"collections: {shown} installed and seen by ansible-galaxy")


if __name__ == "__main__":
    main()
