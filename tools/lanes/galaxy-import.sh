#!/usr/bin/env bash
# galaxy-importer on the collection as published (the lint lane): what Galaxy and Automation Hub
# check on an upload, offline.
#
#   tools/lanes/galaxy-import.sh
#
# The collection is built with `ansible-galaxy collection build` (build_ignore applies) into a
# temporary directory and imported there with tools/lanes/galaxy-importer.cfg, which turns off the
# one check that needs a registry (ansible-test in a container; `make sanity` runs it). Run as
# root, the import runs in a network namespace of its own, which proves it needs no network.
# Environment: GALAXY_IMPORT_SECONDS (default 600) stops the import after that long.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
venv=$repo/.venv
limit=${GALAXY_IMPORT_SECONDS:-600}

fail() {
  printf 'galaxy-import: FAILED: %s\n' "$*" >&2
  exit 1
}

"$venv/bin/python" -c 'import galaxy_importer' 2>/dev/null || fail "no galaxy_importer in $venv (run: make venv)"
work=$(mktemp -d "${TMPDIR:-/tmp}/lifeline-galaxy-import.XXXXXX")
trap 'rm -rf "$work"' EXIT

timeout 300 "$venv/bin/ansible-galaxy" collection build --force --output-path "$work" >/dev/null ||
  fail "ansible-galaxy collection build"
tarball=$(ls "$work"/lifeline-rescue-*.tar.gz)

offline=()
if unshare --net true 2>/dev/null; then
  offline=(unshare --net)
  network="in a network namespace without a network"
else
  network="with the network as it is (not root: no network namespace)"
fi
export GALAXY_IMPORTER_CONFIG=$repo/tools/lanes/galaxy-importer.cfg
# Its ansible-doc and ansible-lint runs keep their temporary files in the work directory.
export GALAXY_IMPORTER_TMP_ROOT_DIR=$work GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP=$work/ansible-tmp
export PATH="$venv/bin:$PATH"
printf 'galaxy-import: importing %s %s\n' "$(basename "$tarball")" "$network"
cd "$work"
start=$SECONDS
rc=0
timeout --kill-after=30 "$limit" "${offline[@]}" "$venv/bin/python" -m galaxy_importer.main "$tarball" >import.log 2>&1 ||
  rc=$?
# The "Loading <plugin>" lines are one per file; what matters is every other line.
grep -v '^Loading ' import.log || true
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  fail "galaxy-importer was stopped after ${limit}s (GALAXY_IMPORT_SECONDS)"
fi
if [ "$rc" -eq 0 ] && ! grep -q '^Importer processing completed successfully' import.log; then
  printf 'galaxy-import: galaxy-importer exited 0 without saying it completed\n'
  rc=1
fi
# Galaxy accepts a collection it has warnings about (ansible-lint's findings are warnings); this
# lane does not.
if [ "$rc" -eq 0 ] && grep -qE '^(WARNING|ERROR)' import.log; then
  printf 'galaxy-import: galaxy-importer reported the WARNING or ERROR lines above\n'
  rc=1
fi
printf 'galaxy-import: %s in %ss\n' "$([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)")" "$((SECONDS - start))"
exit "$rc"
