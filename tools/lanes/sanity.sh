#!/usr/bin/env bash
# `make sanity`: ansible-test sanity on the collection as it is published, offline.
#
#   tools/lanes/sanity.sh [ANSIBLE-TEST SANITY ARGUMENTS...]     e.g. --test pylint, --test import
#
# The collection is built with `ansible-galaxy collection build` (so build_ignore applies) and
# unpacked into a temporary ansible_collections/lifeline/rescue, where ansible-test runs from
# .venv. ansible-test's download sites are not reachable: every sanity venv it makes gets pip
# from a get-pip stand-in (tools/lanes/sanity-get-pip.py) that installs a pip wheel taken from PyPI;
# the tests' own requirements (pinned by ansible-test) come from PyPI. The compile and import
# tests run on every Python the machine has and on the Debian trees' interpreters
# (tools/lanes/sanity-pythons.py: 3.9 from bullseye, 3.13 from trixie), when `make images` built them.
#
# Cached in $LIFELINE_CACHE/ansible-test (shared by the checkouts, one run at a time): the pip
# wheel, the interpreters, and HOME for ansible-test, which keeps its sanity venvs under
# ~/.ansible/test. Environment: SANITY_SECONDS (default 2400) stops ansible-test after that long.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
venv=$repo/.venv
: "${LIFELINE_CACHE:=/var/cache/lifeline}"
: "${LIFELINE_TREES:=$LIFELINE_CACHE/trees}"
cache=$LIFELINE_CACHE/ansible-test
limit=${SANITY_SECONDS:-2400}

say() { printf 'sanity: %s\n' "$*"; }
fail() {
  printf 'sanity: FAILED: %s\n' "$*" >&2
  exit 1
}

[ -x "$venv/bin/ansible-test" ] || fail "no $venv/bin/ansible-test (run: make venv)"
for tool in patchelf shellcheck; do
  command -v "$tool" >/dev/null || fail "$tool is missing (run: make apt)"
done
mkdir -p "$cache/wheels" "$cache/home"

# One run at a time on the machine: the sanity venvs are shared and made on first use.
exec 9>"$cache/lock"
flock -w "$limit" 9 || fail "another sanity run held $cache/lock for ${limit}s"

work=$(mktemp -d "${TMPDIR:-/tmp}/lifeline-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT

# What ansible-test needs: the pip it bootstraps into its venvs, the Pythons it supports.
read -r pip_version controller versions < <(timeout 60 "$venv/bin/python" - <<'PY'
import sys, types
from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS
from ansible_test._internal.python_requirements import get_venv_packages
pip = get_venv_packages(types.SimpleNamespace(version="%d.%d" % sys.version_info[:2]))["pip"]
print(pip, "%d.%d" % sys.version_info[:2], ",".join(SUPPORTED_PYTHON_VERSIONS))
PY
) || fail "cannot read ansible-test's pip version and Python versions (its internals changed?)"
wheel=$cache/wheels/pip-$pip_version-py3-none-any.whl
if [ ! -f "$wheel" ]; then
  say "downloading pip $pip_version from PyPI (ansible-test puts it into every sanity venv)"
  timeout 300 "$venv/bin/python" -m pip download --disable-pip-version-check -q --no-deps \
    --only-binary :all: -d "$cache/wheels" "pip==$pip_version" || fail "pip download pip==$pip_version"
  [ -f "$wheel" ] || fail "pip download left no $wheel"
fi
# ansible-test runs ~/.ansible/test/cache/get_pip_<version>.py when it is there (HOME is set below).
get_pip=$cache/home/.ansible/test/cache/get_pip_${pip_version//./_}.py
mkdir -p "$(dirname "$get_pip")"
sed "s|@PIP_WHEEL@|$wheel|" tools/lanes/sanity-get-pip.py >"$get_pip.new"
if cmp -s "$get_pip.new" "$get_pip"; then rm -f "$get_pip.new"; else mv "$get_pip.new" "$get_pip"; fi

# The Pythons of compile and import: ansible-test's own, and each other supported version this
# machine can run (tools/lanes/sanity-pythons.py), named python3.N in $work/bin, first on PATH, and
# given as targets, so that a python3.N on PATH that does not run (a pyenv shim) is never used.
IFS=, read -r -a supported <<<"$versions"
found=$(timeout 600 "$venv/bin/python" tools/lanes/sanity-pythons.py "$LIFELINE_TREES" "$cache/pythons" \
  "$cache/home/.ansible/test/venv" "$controller" "${supported[@]}") ||
  fail "preparing the Debian trees' interpreters (message above)"
mkdir -p "$work/bin"
targets=(--target-python "$controller")
tested=("$controller")
while read -r version python; do
  [ -n "$version" ] || continue
  ln -s "$python" "$work/bin/python$version"
  targets+=(--target-python "$version@$work/bin/python$version")
  tested+=("$version")
done <<<"$found"
pythons=$(printf '%s\n' "${tested[@]}" | sort -V | paste -sd' ')
say "compile and import run on Python $pythons (for the modules, those of tests/config.yml)"

# The collection as published: built, then unpacked where ansible-test wants it.
timeout 300 "$venv/bin/ansible-galaxy" collection build --force --output-path "$work" >/dev/null ||
  fail "ansible-galaxy collection build"
tarball=$(ls "$work"/lifeline-rescue-*.tar.gz)
root=$work/ansible_collections/lifeline/rescue
mkdir -p "$root"
timeout 300 tar -xzf "$tarball" -C "$root" || fail "unpacking $tarball"
say "testing $(basename "$tarball") ($(find "$root" -type f | wc -l) files)"

# HOME holds ansible-test's cache (the get-pip stand-in, the sanity venvs); the user's own pip
# configuration (an index mirror, say) still applies through XDG_CONFIG_HOME.
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$HOME/.config}
export HOME=$cache/home
export PATH="$work/bin:$venv/bin:$PATH"
cd "$root"
start=$SECONDS
rc=0
timeout --kill-after=60 "$limit" "$venv/bin/ansible-test" sanity --color no "${targets[@]}" "$@" ||
  rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  fail "ansible-test sanity was stopped after ${limit}s (SANITY_SECONDS)"
fi
say "ansible-test sanity: $([ "$rc" -eq 0 ] && echo passed || echo "FAILED (exit $rc)") in $((SECONDS - start))s"
exit "$rc"
