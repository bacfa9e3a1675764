#!/usr/bin/env bash
# The development virtualenv .venv, with exactly the versions of requirements/dev.lock.
#
#   tools/setup/venv.sh          create or sync .venv; nothing to do when the stamp matches
#   tools/setup/venv.sh --lock   regenerate requirements/dev.lock from requirements/dev.txt
#
# The lock is every package (transitive ones too) pinned by `pip freeze --all` in a scratch venv
# that installed requirements/dev.txt; its first line records the sha256 of dev.txt it came from.
# .venv is re-synced only when dev.txt, dev.lock or the base interpreter changed (stamp inside .venv).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
venv=${VENV:-$repo/.venv}
req=requirements/dev.txt
lock=requirements/dev.lock
stamp=$venv/.lifeline-venv.stamp

die() {
  echo "venv: FAILED: $*" >&2
  exit 1
}

# The base interpreter: PYTHON, else python3 found on PATH outside any virtualenv.
base_python() {
  local cand=${PYTHON:-python3} path
  if [[ $cand != */* ]]; then
    path=$(PATH=$(tr ':' '\n' <<<"$PATH" | grep -v -e "^$venv/bin\$" -e '/\.venv/bin$' | paste -sd:) command -v "$cand") ||
      die "no $cand on PATH (set PYTHON=/path/to/python3.11)"
    cand=$path
  fi
  "$cand" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' ||
    die "$cand is $("$cand" -V 2>&1); ansible-core 2.19 needs Python >= 3.11 (set PYTHON=...)"
  # Resolve pyenv shims and symlinks to the real interpreter the venv will point at.
  "$cand" -c 'import os, sys; print(os.path.realpath(sys.executable))'
}

sha() { sha256sum "$@" | cut -c1-64; }

# chkcrontab (a test oracle for the cron grammar) is not in the lock: its setup.py does not run on
# Python 3.11, but its one module does. The sdist is pinned by URL and sha256 and only
# chkcrontab_lib.py goes into .venv's site-packages (pip never sees it, so the sync leaves it alone).
chkcrontab_version=1.7
chkcrontab_url=https://files.pythonhosted.org/packages/0b/d9/43d725bea993478b12858a3b56de0b97c1f932083372a60ef8f376d5b9fc/chkcrontab-1.7.tar.gz
chkcrontab_sha256=5686794374910b146704c2d660cb592fa1322f73c5b1e49ef6724f39e556bd3e

setup_chkcrontab() {
  local site marker
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') ||
    die "cannot find the site-packages of .venv"
  marker=$site/chkcrontab_lib.sdist-sha256
  if [ -f "$site/chkcrontab_lib.py" ] && [ "$(cat "$marker" 2>/dev/null)" = "$chkcrontab_sha256" ]; then
    echo "chkcrontab: up to date (chkcrontab_lib $chkcrontab_version from the pinned sdist in .venv)"
    return 0
  fi
  echo "chkcrontab: installing chkcrontab_lib $chkcrontab_version from its PyPI sdist (sha256-pinned) into .venv — the lint oracle of the cron grammar tests"
  rm -f "$marker"
  "$venv/bin/python" - "$chkcrontab_url" "$chkcrontab_sha256" "$site" <<'PY' || die "could not install chkcrontab_lib from $chkcrontab_url"
import hashlib, io, os, py_compile, sys, tarfile, urllib.request
url, want, site = sys.argv[1:]
with urllib.request.urlopen(url, timeout=60) as response:
    data = response.read(1 << 22)
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"sha256 of {url} is {got}, expected {want}")
with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
    member = tar.getmember(url.rsplit("/", 1)[1].removesuffix(".tar.gz") + "/chkcrontab_lib.py")
    module = tar.extractfile(member).read()
target = os.path.join(site, "chkcrontab_lib.py")
with open(target + ".tmp", "wb") as handle:
    handle.write(module)
os.replace(target + ".tmp", target)
# Compiled now, so importing it never prints the old module's invalid-escape warnings.
py_compile.compile(target, quiet=2)
PY
  "$venv/bin/python" -c 'import chkcrontab_lib; chkcrontab_lib.CronLineFactory().ParseLine("* * * * * root true")' ||
    die "chkcrontab_lib was installed but does not import"
  echo "$chkcrontab_sha256" >"$marker"
}

# junit-10.xsd (Jenkins' JUnit schema, MIT licensed) is what tests/unit/lifeline_drill/ (test_reports.py,
# test_cli.py) validates the drill runner's junit.xml against. No package installs it: pytest's sdist carries it as a test
# fixture, so pip downloads that sdist (pinned by version and sha256) and only the schema is kept,
# in .venv/share/lifeline (outside site-packages, so the sync leaves it alone).
junit_xsd_pytest=9.2.0
junit_xsd_sha256=97c4f3b1f3c7414aa36465e09b8220f1d03627993bd51b1282e193753c80557b

setup_junit_xsd() {
  local target=$venv/share/lifeline/junit-10.xsd marker tmp ok=true
  marker=$target.sdist-sha256
  if [ -f "$target" ] && [ "$(cat "$marker" 2>/dev/null)" = "$junit_xsd_sha256" ]; then
    echo "junit-10.xsd: up to date (from the pinned pytest $junit_xsd_pytest sdist in .venv/share/lifeline)"
    return 0
  fi
  echo "junit-10.xsd: extracting it from pytest $junit_xsd_pytest's sdist (sha256-pinned) into .venv/share/lifeline — the schema the drill runner's junit.xml is tested against"
  rm -f "$marker"
  tmp=$(mktemp -d /tmp/lifeline-xsd.XXXXXX)
  # --no-binary: the schema is only in the sdist, never in the wheel.
  "$venv/bin/pip" download -q --no-deps --no-binary :all: "pytest==$junit_xsd_pytest" -d "$tmp" >"$tmp/pip.log" 2>&1 ||
    { tail -n 20 "$tmp/pip.log" >&2; ok=false; }
  if $ok; then
    "$venv/bin/python" - "$tmp/pytest-$junit_xsd_pytest.tar.gz" "$junit_xsd_sha256" "$target" <<'PY' || ok=false
import hashlib, os, sys, tarfile
sdist, want, target = sys.argv[1:]
with open(sdist, "rb") as handle:
    got = hashlib.sha256(handle.read()).hexdigest()
if got != want:
    sys.exit(f"sha256 of {os.path.basename(sdist)} is {got}, expected {want}")
member = os.path.basename(sdist).removesuffix(".tar.gz") + "/testing/example_scripts/junit-10.xsd"
with tarfile.open(sdist, mode="r:gz") as tar:
    schema = tar.extractfile(tar.getmember(member)).read()
os.makedirs(os.path.dirname(target), exist_ok=True)
with open(target + ".tmp", "wb") as handle:
    handle.write(schema)
os.replace(target + ".tmp", target)
PY
  fi
  rm -rf "$tmp"
  $ok || die "could not get junit-10.xsd from the sdist of pytest==$junit_xsd_pytest (see above)"
  "$venv/bin/python" -c 'import sys, xmlschema; xmlschema.XMLSchema(sys.argv[1])' "$target" ||
    die "$target was extracted but is not a schema xmlschema can load"
  echo "$junit_xsd_sha256" >"$marker"
}
lock_source() { sed -n '1s/^# sha256 of requirements\/dev.txt: //p' "$lock" 2>/dev/null; }

make_lock() {
  local py=$1 scratch
  scratch=$(mktemp -d /tmp/lifeline-lock.XXXXXX)
  trap 'rm -rf "$scratch"' RETURN
  "$py" -m venv "$scratch/venv" || die "python -m venv failed while locking"
  local log=$scratch/pip.log
  if ! { "$scratch/venv/bin/python" -m pip install -q --upgrade pip &&
    "$scratch/venv/bin/python" -m pip install -q -r "$req"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "pip could not install $req into a scratch venv (see above)"
  fi
  {
    echo "# sha256 of requirements/dev.txt: $(sha "$req")"
    echo "# Generated by tools/setup/venv.sh --lock (make lock) with $("$py" -V 2>&1); do not edit."
    "$scratch/venv/bin/python" -m pip freeze --all --exclude-editable | LC_ALL=C sort -f -t= -k1,1
  } >"$lock.tmp"
  mv "$lock.tmp" "$lock"
}

py=$(base_python)

if [ "${1:-}" = "--lock" ]; then
  echo "lock: resolving $req in a scratch venv and pinning every package into $lock"
  make_lock "$py"
  echo "lock: $lock has $(grep -vc '^#' "$lock") pinned packages"
  exit 0
fi

if [ "$(lock_source)" != "$(sha "$req")" ]; then
  if [ "${CI:-}" = "true" ]; then
    die "$lock does not match $req (edited without relocking): run \`make lock\` and commit $lock"
  fi
  echo "lock: $lock is missing or older than $req — re-resolving and pinning every package"
  make_lock "$py"
fi

want="dev.txt=$(sha "$req") dev.lock=$(sha "$lock") python=$py $("$py" -V 2>&1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$venv/bin/python" -c '' 2>/dev/null; then
  echo "venv: up to date ($(grep -vc '^#' "$lock") pinned packages of $lock in .venv)"
  setup_chkcrontab
  setup_junit_xsd
  exit 0
fi

count=$(grep -vc '^#' "$lock")
if [ -x "$venv/bin/python" ] && [ "$("$venv/bin/python" -c 'import os, sys; print(os.path.realpath(sys._base_executable))' 2>/dev/null)" = "$py" ]; then
  why="requirements changed since .venv was last synced"
  [ -f "$stamp" ] || why=".venv was not made by this script"
  fresh=false
else
  why="there is no usable .venv"
  fresh=true
fi
echo "venv: installing $count pinned packages of $lock into .venv (ansible-core, molecule, ansible-lint, ruff, pytest, ...) — $why"

log=$(mktemp /tmp/lifeline-venv.XXXXXX)
trap 'rm -f "$log"' EXIT
pip() { "$venv/bin/python" -m pip "$@" >>"$log" 2>&1; }
fail_pip() {
  tail -n 30 "$log" >&2
  die "$* (pip output above)"
}

if $fresh; then
  rm -rf "$venv"
  "$py" -m venv "$venv" || die "$py -m venv $venv failed"
fi
rm -f "$stamp"
pip install -q -c "$lock" pip setuptools || fail_pip "could not install the locked pip and setuptools"
pip install -q -r "$req" -c "$lock" || fail_pip "could not install $req with the versions of $lock"
# Sync: remove what the lock does not name (left from an older lock), then prove .venv == lock.
compare() {
  "$venv/bin/python" - "$lock" "$1" <<'PY'
import re, subprocess, sys
def norm(line):
    name, _, version = line.strip().partition("==")
    return re.sub(r"[-_.]+", "-", name).lower(), version
lock = dict(norm(l) for l in open(sys.argv[1]) if l.strip() and not l.startswith("#"))
out = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
                     capture_output=True, text=True, check=True).stdout
have = dict(norm(l) for l in out.splitlines() if l.strip())
if sys.argv[2] == "extra":
    print(" ".join(sorted(set(have) - set(lock))))
else:
    for name in sorted(set(have) | set(lock)):
        if have.get(name) != lock.get(name):
            print(f"  {name}: .venv has {have.get(name, '-')}, lock has {lock.get(name, '-')}")
PY
}
extra=$(compare extra) || die "could not list the packages of .venv"
if [ -n "$extra" ]; then
  # shellcheck disable=SC2086
  pip uninstall -q -y $extra || fail_pip "could not remove packages the lock does not name: $extra"
fi
pip check || fail_pip "pip check found inconsistent dependencies"
drift=$(compare drift) || die "could not compare .venv with $lock"
[ -z "$drift" ] || die ".venv differs from $lock after installing:"$'\n'"$drift"
echo "$want" >"$stamp"
echo "venv: .venv now holds exactly the $count packages of $lock"
setup_chkcrontab
setup_junit_xsd
