#!/usr/bin/env bash
# make demo: a real Debian root broken the way incident 1 broke a host (libc.so.6 renamed away),
# recovered by playbooks/restore-glibc.yml in front of you. Works on a copy under .cache/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${DEMO_SUITE:-bookworm}
trees=${LIFELINE_TREES:-/var/cache/lifeline/trees}
work=$PWD/.cache/demo
root=$work/$suite-root
export ANSIBLE_DISPLAY_SKIPPED_HOSTS=false ANSIBLE_CONFIG=$PWD/ansible.cfg

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

[ -d "$trees/$suite/etc" ] || { echo "demo: $trees/$suite is missing: run 'make images-$suite'" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"

step "A real Debian $suite root (debootstrapped by 'make images-$suite'), copied to $root"
cp -a "$trees/$suite" "$root"
show chroot "$root" /bin/ls /usr/lib/x86_64-linux-gnu/libc.so.6

step "Incident 1: an admin renames libc.so.6 away"
show roles/drill/files/glibc.sh "$root" libc_renamed

step "Now every dynamically linked program of that system fails with the loader's own message"
if show chroot "$root" /bin/ls -x /; then
  echo "demo: ls still works, the fault was not planted" >&2
  exit 1
fi

step "The recovery"
show .venv/bin/ansible-playbook playbooks/restore-glibc.yml -e target_root="$root" \
  -e lifeline_report_dir="$work/reports"

step "The same command works again"
show chroot "$root" /bin/ls -x /

step "The report's summary ($(ls "$work"/reports/restore-glibc-*.json))"
.venv/bin/python - "$work"/reports/restore-glibc-*.json <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
glibc, found, check = report["glibc"], report["found"], report["verification"]
print(f"result:      {report['result']}")
print(f"glibc:       {glibc['version']} ({glibc['package']}), {glibc['layout']}")
print(f"before:      {found['audit']['broken_files']} of {found['audit']['elf_files']} ELF files could not load")
for finding in found["findings"]:
    print(f"found:       {finding['detail']}")
for action in report["actions"]:
    print(f"done:        {action['action']} {action['path']} from {action['source']} {action['origin']}")
    print(f"             {action['after']}")
print(f"after:       {check['audit']['broken_files']} of {check['audit']['elf_files']} broken; "
      f"glibc problems: {len(check['glibc_problems'])}; loader cache {check['loader_cache']}")
print("smoke test:  " + ", ".join(f"{s['command']} -> {s['rc']}" for s in check["smoke_test"]))
PY
