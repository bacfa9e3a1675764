#!/usr/bin/env python3
"""Benchmark: lifeline's persistence scan beside two peers, chkrootkit and rkhunter, on busy servers.

    .venv/bin/python tools/bench/persistence-peers.py [--suite bookworm] [--root ROOT] [--work DIR]
        [--by-family] [FAMILY:MECHANISM ...]   (default: cron:crontab_malware_job cron:startup_item_malware;
                                                FAMILY:* is every mechanism the planter's header lists)

Each FAMILY:MECHANISM is planted by the drill role's planter (roles/drill/files/FAMILY.sh ROOT
MECHANISM) into its own copy of the root (default: the suite's busy-server root of `make images`),
or with --by-family every mechanism of a family into one copy (each still judged by its own paths:
rkhunter takes minutes a root);
lifeline's scan, chkrootkit and rkhunter then scan each copy and a pristine one. A scanner "found" a
mechanism when it reports, on the planted copy and not on the pristine one, something that names a
planted path (or its file name); lifeline must report it above "info". The planted paths are what
the planter records (PLANT_RECORD) and what a walk of the copy before and after shows changed.

How each scans a root that is not the running system:
  lifeline    persistence.scan(ROOT, rules): the root read as data.
  chkrootkit  `chkrootkit -q -r ROOT`: its file checks look below ROOT; its process, interface and
              kernel checks still read the running host (the same on every copy, so they cancel).
  rkhunter    its --rootdir option is deprecated and ignored (1.4.6), so it runs in a chroot of the
              copy (its script, configuration and data copied in, the copy's own tools), with a
              private /proc of its own pid namespace and no network.
Prints the table mechanism x scanner and each scanner's run time on the pristine root with the
ratio lifeline / faster peer, measured in one run. Needs root (chroot, namespaces).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLANTERS = REPO / "roles" / "drill" / "files"
RULES_FILE = REPO / "roles" / "crontab_repair" / "files" / "persistence_rules.yml"
CACHE = Path(os.environ.get("LIFELINE_CACHE", "/var/cache/lifeline"))
SERVERS = Path(os.environ.get("LIFELINE_SERVERS", CACHE / "servers"))
DEFAULT_MECHANISMS = ("cron:crontab_malware_job", "cron:startup_item_malware")
ALARMS = ("low", "medium", "high", "critical")
SCANNERS = ("lifeline", "chkrootkit", "rkhunter")
# What rkhunter needs inside the chroot, from the host's package.
RKHUNTER_FILES = ("/usr/bin/rkhunter", "/etc/rkhunter.conf", "/usr/share/rkhunter", "/var/lib/rkhunter")
# The file properties and the passwd and group copies rkhunter --propupd stored describe the host,
# not the root: a responder has no baseline of a broken root, so the copy gets none.
RKHUNTER_HOST_BASELINE = ("rkhunter.dat", "rkhunter.dat.old", "passwd", "group")
COPY_TIMEOUT = 1800
SCAN_TIMEOUT = 1800

# Run in a child python so its time is measured like the peers' (interpreter start included).
LIFELINE_SCAN = """
import json, sys
import yaml
sys.path.insert(0, sys.argv[1])
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import rules, scan
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # what Ansible reads YAML with when libyaml is there
result = scan.scan(sys.argv[2], rules.load_rules(yaml.load(open(sys.argv[3]).read(), Loader=loader)))
json.dump([(f.rule.id, f.rule.severity, f.item.kind, f.item.file.path, f.item.payload or "")
           for f in result.findings], sys.stdout)
"""


def run(argv: list[str], timeout: int = SCAN_TIMEOUT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)


def copy_root(source: Path, dest: Path) -> Path:
    done = run(["cp", "-a", str(source), str(dest)], timeout=COPY_TIMEOUT)
    if done.returncode != 0:
        sys.exit(f"bench: cp -a {source} {dest} failed: {done.stderr.strip()}")
    return dest


def walk_state(root: Path) -> dict[str, tuple]:
    """Every entry of the root (by its path inside the root) with type, mode, owner, size, mtime."""
    state = {}
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(top, name)
            st = os.lstat(path)
            state["/" + os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns)
    return state


def mechanisms_of(family: str) -> list[str]:
    """The mechanisms a planter's header lists ("#   NAME   what it plants" in its first comment)."""
    planter = PLANTERS / f"{family}.sh"
    if not planter.is_file():
        sys.exit(f"bench: no planter {planter}")
    names = []
    for line in planter.read_text().splitlines()[1:]:
        if not line.startswith("#"):
            break
        listed = re.match(r"#   ([a-z0-9_]+)\s{2,}\S", line)
        if listed:
            names.append(listed.group(1))
    return names


def plant(root: Path, family: str, mechanism: str) -> list[str]:
    """Plant one mechanism; the paths inside the root it created or changed (files, not the
    directories that merely gained an entry)."""
    planter = PLANTERS / f"{family}.sh"
    if not planter.is_file():
        sys.exit(f"bench: no planter {planter} for {family}:{mechanism}")
    before = walk_state(root)
    with tempfile.TemporaryDirectory() as record:
        done = run(
            ["sh", str(planter), str(root), mechanism],
            timeout=120,
            env={**os.environ, "PLANT_RECORD": record},
        )
        if done.returncode != 0:
            sys.exit(f"bench: {planter.name} {mechanism} failed: {done.stderr.strip()}")
        listed = Path(record, "planted")
        recorded = {
            line.partition(" ")[2] for line in (listed.read_text().splitlines() if listed.exists() else ())
        }
    after = walk_state(root)
    changed = {
        path
        for path, facts in after.items()
        if before.get(path) != facts and not (before.get(path) and os.path.isdir(root / path.lstrip("/")))
    }
    return sorted(recorded | changed)


def lifeline(root: Path) -> tuple[float, list[list[str]]]:
    started = time.perf_counter()
    done = run([sys.executable, "-c", LIFELINE_SCAN, str(REPO / ".collections"), str(root), str(RULES_FILE)])
    took = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"bench: lifeline's scan of {root} failed: {done.stderr.strip()[-2000:]}")
    return took, json.loads(done.stdout)


def chkrootkit(root: Path) -> tuple[float, list[str]]:
    started = time.perf_counter()
    done = run(["chkrootkit", "-q", "-r", str(root)], env={**os.environ, "LC_ALL": "C"})
    took = time.perf_counter() - started
    # Its lines name paths with the root in front (sometimes twice): as the root's own paths.
    lines = [re.sub("/{2,}", "/", line.replace(str(root) + "/", "/")) for line in done.stdout.splitlines()]
    return took, [line for line in lines if line.strip()]


def rkhunter(root: Path) -> tuple[float, list[str]]:
    """rkhunter's warnings in a chroot of the root (the copy gains rkhunter's own files first)."""
    for path in RKHUNTER_FILES:
        if not os.path.exists(path):
            sys.exit(f"bench: {path} is missing: install rkhunter (make apt)")
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.isdir(path):
            shutil.copytree(
                path,
                target,
                symlinks=True,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns(*RKHUNTER_HOST_BASELINE),
            )
        else:
            shutil.copy2(path, target)
    script = (
        'mount -t proc proc "$1/proc" && exec chroot "$1" /usr/bin/rkhunter --check --sk --nocolors'
        " --rwo --nomow --noappend-log --logfile /var/log/rkhunter.bench.log"
    )
    started = time.perf_counter()
    done = run(
        [
            "unshare",
            "--mount",
            "--pid",
            "--fork",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            str(root),
        ],
        env={**os.environ, "LC_ALL": "C"},
    )
    took = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: warnings were given
        sys.exit(f"bench: rkhunter in {root} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return took, [line for line in done.stdout.splitlines() if line.strip()]


def named(lines: list[str], paths: list[str]) -> list[str]:
    """The lines that name one of the paths, or its file name as a word."""
    found = []
    for line in lines:
        for path in paths:
            name = re.escape(os.path.basename(path))
            if path in line or re.search(rf"(^|[\s/'`\"]){name}($|[\s'`\":])", line):
                found.append(line)
                break
    return found


def scan_all(root: Path) -> dict[str, tuple[float, object]]:
    # rkhunter last: it adds its own files to the copy.
    return {"lifeline": lifeline(root), "chkrootkit": chkrootkit(root), "rkhunter": rkhunter(root)}


def verdicts(results: dict, pristine: dict, paths: list[str]) -> dict[str, str]:
    on_paths = [f for f in results["lifeline"][1] if f[3] in paths or f[4] in paths]
    alarms = [f for f in on_paths if f[1] in ALARMS]
    verdict = {
        "lifeline": f"found ({len(alarms)} alarms)"
        if alarms
        else "listed (info)"
        if on_paths
        else "not found"
    }
    for peer in ("chkrootkit", "rkhunter"):
        new = [line for line in results[peer][1] if line not in set(pristine[peer][1])]
        hits = named(new, paths)
        if hits:
            verdict[peer] = f"found ({len(hits)} lines)"
        else:
            verdict[peer] = "not found" + (f" ({len(new)} other new lines)" if new else "")
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mechanisms", nargs="*", default=list(DEFAULT_MECHANISMS), metavar="FAMILY:MECHANISM")
    parser.add_argument("--suite", default="bookworm")
    parser.add_argument("--root", type=Path, help="the root to copy (default: the suite's busy-server root)")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp"), help="where the copies go")
    parser.add_argument("--show", action="store_true", help="print each scanner's new lines per mechanism")
    parser.add_argument("--by-family", action="store_true", help="one copy a family, not a mechanism")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (chroot and namespaces for rkhunter, a faithful copy of the root)")
    for tool in ("chkrootkit", "rkhunter", "unshare", "chroot"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is not installed (run: make apt)")
    pairs = []
    for pair in args.mechanisms:
        family, sep, mechanism = pair.partition(":")
        if not sep or not family or not mechanism:
            sys.exit(f"bench: {pair!r} is not FAMILY:MECHANISM")
        pairs += [(family, m) for m in (mechanisms_of(family) if mechanism == "*" else [mechanism])]
    source = args.root or SERVERS / args.suite
    if not (source / "etc" / "os-release").exists():
        sys.exit(f"bench: {source} is not a root: run `make images` (it builds the busy-server roots)")

    work = Path(tempfile.mkdtemp(prefix="lifeline-peers.", dir=args.work))
    try:
        # Names of one length: chkrootkit cuts some paths it prints at a fixed width, so copies
        # whose paths differ in length would differ in its output for no other reason.
        pristine = scan_all(copy_root(source, work / "root00"))
        if args.show:
            for peer in ("chkrootkit", "rkhunter"):
                for line in pristine[peer][1]:
                    print(f"  pristine {peer}: {line}")
        rows = []
        groups: list[list[tuple[str, str]]] = []
        for family, mechanism in pairs:
            if args.by_family and groups and groups[-1][0][0] == family:
                groups[-1].append((family, mechanism))
            else:
                groups.append([(family, mechanism)])
        for number, group in enumerate(groups, start=1):
            root = copy_root(source, work / f"root{number:02d}")
            planted = [(family, mechanism, plant(root, family, mechanism)) for family, mechanism in group]
            results = scan_all(root)
            for family, mechanism, paths in planted:
                rows.append((f"{family}:{mechanism}", paths, verdicts(results, pristine, paths)))
            if args.show:
                for peer in ("chkrootkit", "rkhunter"):
                    for line in results[peer][1]:
                        if line not in set(pristine[peer][1]):
                            print(f"  {group[0][0]} {peer}: {line}")
            shutil.rmtree(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    width = max([len(r[0]) for r in rows] + [len("mechanism")])
    print(f"\nroot: {source} (a copy per {'family' if args.by_family else 'mechanism'})\n")
    print(f"{'mechanism':{width}}  " + "  ".join(f"{s:28}" for s in SCANNERS))
    for name, paths, verdict in rows:
        print(f"{name:{width}}  " + "  ".join(f"{verdict[s]:28}" for s in SCANNERS))
        print(f"{'':{width}}  planted: {' '.join(paths)}")
    times = {scanner: pristine[scanner][0] for scanner in SCANNERS}
    pristine_alarms = [f for f in pristine["lifeline"][1] if f[1] in ALARMS]
    print("\nrun time on the pristine root: " + ", ".join(f"{s} {t:.1f}s" for s, t in times.items()))
    faster = min(("chkrootkit", "rkhunter"), key=times.get)
    print(f"lifeline / {faster} (the faster peer): {times['lifeline'] / times[faster]:.2f}")
    print(
        f"on the pristine root: lifeline alarms {len(pristine_alarms)}, chkrootkit lines "
        f"{len(pristine['chkrootkit'][1])}, rkhunter warning lines {len(pristine['rkhunter'][1])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
