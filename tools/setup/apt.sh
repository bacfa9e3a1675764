#!/usr/bin/env bash
# Install the Debian packages listed in tools/setup/apt-packages.txt that are not installed yet.
# Nothing is missing: no apt-get at all (not even update). Prints one line either way.
set -euo pipefail
cd "$(dirname "$0")/../.."
list=${1:-tools/setup/apt-packages.txt}

declare -A reason
packages=()
while IFS= read -r line; do
  name=${line%%#*}
  name=${name//[[:space:]]/}
  [ -n "$name" ] || continue
  why=""
  [[ $line == *"#"* ]] && why=$(sed -e 's/^[^#]*#[[:space:]]*//' <<<"$line")
  packages+=("$name")
  reason[$name]=$why
done <"$list"

installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }

missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done

if [ ${#missing[@]} -eq 0 ]; then
  echo "apt: up to date (${#packages[@]} packages from $list installed)"
  exit 0
fi

why=""
for p in "${missing[@]}"; do why+="${why:+; }$p: ${reason[$p]}"; done
echo "apt: installing ${missing[*]} — $why"

if [ "$(id -u)" -ne 0 ]; then
  echo "apt: FAILED: installing packages needs root (run: sudo make apt)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/lifeline-apt.XXXXXX)
trap 'rm -f "$log"' EXIT
if ! apt-get update -q >"$log" 2>&1; then
  cat "$log" >&2
  echo "apt: FAILED: apt-get update (output above)" >&2
  exit 1
fi
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "apt: FAILED: apt-get install ${missing[*]} (last lines above)" >&2
  exit 1
fi

still=()
for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
if [ ${#still[@]} -gt 0 ]; then
  echo "apt: FAILED: still not installed after apt-get install: ${still[*]}" >&2
  exit 1
fi
echo "apt: installed ${missing[*]}"
