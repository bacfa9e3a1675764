#!/usr/bin/env python3
"""Benchmark: lifeline's whole-root audit against `lddtree -R` and `scanelf` on a server-sized root.

    .venv/bin/python tools/bench/audit.py [--suite bookworm | --root ROOT] [--runs 5] [--no-cold]

The default root is the suite's busy-server root of `make images` (nginx, apache, PostgreSQL,
python3, perl, docker...); --root takes any root (a minimal one: the cached Debian trees). Over the
same files, measured in one run:
  lifeline  audit.audit_root(ROOT) in a child python, as Ansible runs a module: interpreter start and
            imports included (the audit's own time, measured inside the child, is printed beside it)
  scanelf   `scanelf -R -y -B -F '%F %i %n %r %S' DIRS` over the audit's directories resolved inside
            the root, each once: ELF headers read in C, nothing resolved (the floor)
  lddtree   `lddtree -R ROOT FILES` over the dynamically linked files the audit found
Warm is the best of --runs after a first run that fills the page cache; cold drops the page cache
(`sync; echo 3 > /proc/sys/vm/drop_caches`, needs root) before the one run of each.

The resolution is checked too: for every dynamically linked file, its interpreter and every library
of its load tree (NEEDED name => path) as lddtree prints them against lifeline's loader
(RootLoader.load_tree, what the audit resolves with); where the two differ, the target's own ld.so
(`ld.so --list` in a chroot of the root) decides. Exits non-zero when lifeline and the target's
ld.so disagree on a file, or when a warm target is missed (lddtree -R / audit >= 25, audit /
scanelf <= 2). lddtree needs pyelftools: run the bench with the project's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".collections"
sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import audit, loader  # noqa: E402

CACHE = Path(os.environ.get("LIFELINE_CACHE", "/var/cache/lifeline"))
SERVERS = Path(os.environ.get("LIFELINE_SERVERS", CACHE / "servers"))
LDDTREE = "/usr/bin/lddtree"
SCANELF = "scanelf"
LOADER = "/lib64/ld-linux-x86-64.so.2"
TOOL_TIMEOUT = 1800
LIST_TIMEOUT = 60
AT_LEAST_LDDTREE = 25.0
AT_MOST_SCANELF = 2.0

# The audit as a module runs it: a fresh python that imports it and audits the root.
AUDIT_CHILD = """
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import audit
begun = time.perf_counter()
found = audit.audit_root(sys.argv[2])
json.dump({"audit": time.perf_counter() - begun, "summary": found.summary()}, sys.stdout)
"""


class Timed:
    """One run of a tool: wall seconds, CPU seconds (user + system) and what it printed."""

    def __init__(self, argv: list[str]) -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)
        self.wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            sys.exit(
                f"bench/audit.py: {argv[0]} {argv[1]} ... failed ({done.returncode}): {done.stderr[-2000:]}"
            )
        self.stdout = done.stdout


def drop_caches() -> str:
    """Empty the page cache (and dentries and inodes); the reason when this user cannot."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as knob:
            knob.write("3\n")
    except OSError as exc:
        return f"cannot drop the page cache ({exc.strerror}): run the bench as root"
    return ""


def scan_dirs(root: str) -> list[str]:
    """The audit's directories, resolved inside the root, each real directory once (as the audit walks)."""
    seen, dirs = set(), []
    for top in audit.SCAN_DIRS:
        host = audit.rootfs.resolve(root, top).host
        try:
            st = os.stat(host)
        except OSError:
            continue
        if os.path.isdir(host) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            dirs.append(host)
    return dirs


def lddtree_trees(root: str, out: str) -> dict[str, dict[str, str | None]]:
    """{file: {NEEDED name: path or None, and "(interpreter)"}} from lddtree's printed trees."""
    trees: dict[str, dict[str, str | None]] = {}
    current: dict[str, str | None] = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            path, _, interp = line.partition(" (interpreter => ")
            current = trees.setdefault(path[len(root) :], {})
            interp = interp.rstrip(")")
            if interp and interp != "None":
                current["(interpreter)"] = interp[len(root) :]
            continue
        name, arrow, path = line.strip().partition(" => ")
        if arrow:
            current.setdefault(name, None if path in ("not found", "None") else path[len(root) :])
    return trees


def lifeline_tree(rl: loader.RootLoader, inside: str) -> dict[str, str | None]:
    """The same for lifeline: the interpreter and each name of the load tree, first resolution wins."""
    objects = rl.load_tree(inside)
    tree: dict[str, str | None] = {}
    if objects[0].info.interpreter:
        tree["(interpreter)"] = objects[0].info.interpreter
    for obj in objects:
        for found in obj.found:
            tree.setdefault(found.name, found.path)
    return tree


def same_files(root: str, tree: dict[str, str | None]) -> dict[str, str | None]:
    """``tree`` with each path as the file it leads to inside the root, the interpreter only once:
    libc's NEEDED ld-linux-x86-64.so.2 is the interpreter already loaded for lifeline (and ld.so),
    and lddtree leaves it out of an executable's tree."""
    files = {name: path and audit.rootfs.resolve(root, path).inside for name, path in tree.items()}
    interpreter = files.get("(interpreter)")
    return {n: p for n, p in files.items() if n == "(interpreter)" or interpreter is None or p != interpreter}


def target_ld_so(root: str, inside: str) -> dict[str, str | None]:
    """{NEEDED name: path} of the whole load tree as the target's own ld.so lists it (same architecture)."""
    done = subprocess.run(
        ["chroot", root, LOADER, "--list", inside],
        capture_output=True,
        text=True,
        timeout=LIST_TIMEOUT,
        check=False,
    )
    listed: dict[str, str | None] = {}
    for line in done.stdout.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if arrow:
            listed[name] = None if rest.startswith("not found") else rest.split(" (")[0]
    return listed


def compare(root: str, files: list[str], trees: dict[str, dict[str, str | None]]) -> tuple[list, list]:
    """(files where lifeline and the target's ld.so disagree, files where only lddtree differs)."""
    rl = loader.RootLoader(root)
    differ, lddtree_wrong = [], []
    for inside in files:
        mine, theirs = lifeline_tree(rl, inside), trees.get(inside, {})
        if same_files(root, mine) == same_files(root, theirs):
            continue
        # ld.so lists itself without a name; every other name must lead to the same file.
        itself = audit.rootfs.resolve(root, LOADER).inside
        ours = {n: p for n, p in same_files(root, mine).items() if n != "(interpreter)" and p != itself}
        if same_files(root, target_ld_so(root, inside)) == ours:
            lddtree_wrong.append(inside)
        else:
            differ.append((inside, mine, theirs))
    return differ, lddtree_wrong


def seconds(runs: list[Timed]) -> str:
    best = min(runs, key=lambda r: r.wall)
    return f"{best.wall:8.3f} s wall {best.cpu:7.3f} s cpu"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--suite", default="bookworm", help="busy-server root of `make images` (bookworm)")
    where.add_argument("--root", help="any root instead")
    parser.add_argument("--runs", type=int, default=5, help="warm runs of the audit and scanelf (best kept)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-cache runs")
    args = parser.parse_args()
    root = os.path.abspath(args.root or SERVERS / args.suite)
    if not os.path.isfile(os.path.join(root, "usr/lib/os-release")):
        sys.exit(f"bench/audit.py: {root} is not a root (the busy-server roots need `make images`)")

    report = audit.audit_root(root)
    entries = sum(1 for _ in audit.walk(root, audit.SCAN_DIRS))
    dynamic = sorted(f.path for f in report.files if f.libraries)
    dirs = scan_dirs(root)
    commands = {
        "lifeline": [sys.executable, "-c", AUDIT_CHILD, str(COLLECTIONS), root],
        "scanelf": [SCANELF, "-R", "-y", "-B", "-F", "%F %i %n %r %S", *dirs],
        "lddtree": [sys.executable, LDDTREE, "-R", root, *dynamic],
    }
    warm: dict[str, list[Timed]] = {name: [] for name in commands}
    for name in ("lifeline", "scanelf"):
        Timed(commands[name])  # fills the page cache
    for _ in range(args.runs):
        for name in ("lifeline", "scanelf"):
            warm[name].append(Timed(commands[name]))
    warm["lddtree"].append(Timed(commands["lddtree"]))
    cold: dict[str, Timed] = {}
    cold_problem = "skipped (--no-cold)" if args.no_cold else ""
    for name in () if args.no_cold else commands:
        cold_problem = drop_caches()
        if cold_problem:
            break
        cold[name] = Timed(commands[name])

    differ, lddtree_wrong = compare(root, dynamic, lddtree_trees(root, warm["lddtree"][0].stdout))
    inside_child = min(json.loads(r.stdout)["audit"] for r in warm["lifeline"])
    best = {name: min(r.wall for r in runs) for name, runs in warm.items()}
    versus_lddtree = best["lddtree"] / best["lifeline"]
    versus_scanelf = best["lifeline"] / best["scanelf"]
    scanelf_found = len(warm["scanelf"][0].stdout.splitlines())

    print(f"root:        {root}")
    print(f"directories: {' '.join(os.path.relpath(d, root) for d in dirs)}")
    print(
        f"files:       {entries} under them (links included), {len(report.files)} ELF "
        f"({scanelf_found} by scanelf), {len(dynamic)} dynamically linked"
    )
    print(f"warm (best of {args.runs}; lddtree one run):")
    print(f"  lifeline audit {seconds(warm['lifeline'])}  (the audit itself {inside_child:.3f} s)")
    print(f"  scanelf        {seconds(warm['scanelf'])}")
    print(f"  lddtree -R     {seconds(warm['lddtree'])}")
    if cold:
        print("cold (page cache dropped before each):")
        for name, label in (
            ("lifeline", "lifeline audit"),
            ("scanelf", "scanelf       "),
            ("lddtree", "lddtree -R    "),
        ):
            print(f"  {label} {seconds([cold[name]])}")
    else:
        print(f"cold: {cold_problem}")
    met_lddtree = versus_lddtree >= AT_LEAST_LDDTREE
    met_scanelf = versus_scanelf <= AT_MOST_SCANELF
    print(
        f"ratios warm: lddtree -R / audit {versus_lddtree:.1f}x (target >= {AT_LEAST_LDDTREE:.0f}x: "
        f"{'met' if met_lddtree else 'MISSED'}); audit / scanelf {versus_scanelf:.2f}x "
        f"(target <= {AT_MOST_SCANELF:.0f}x: {'met' if met_scanelf else 'MISSED'})"
    )
    if cold:
        print(
            f"ratios cold: lddtree -R / audit {cold['lddtree'].wall / cold['lifeline'].wall:.1f}x; "
            f"audit / scanelf {cold['lifeline'].wall / cold['scanelf'].wall:.2f}x"
        )
    print(
        f"resolution:  {'identical' if not differ else f'{len(differ)} files differ'} (the same file for "
        f"every name and interpreter) over the load trees "
        f"of {len(dynamic)} files ({len(lddtree_wrong)} where lddtree differs and the target's own ld.so "
        "agrees with lifeline)"
    )
    for inside in lddtree_wrong[:5]:
        print(f"  lddtree wrong: {inside}")
    for inside, mine, theirs in differ[:10]:
        print(f"  {inside}: lifeline {mine}\n    lddtree {theirs}")
    print(f"summary:     {report.summary()}")
    return 0 if not differ and met_lddtree and met_scanelf else 1


if __name__ == "__main__":
    sys.exit(main())
